package rdb

// BucketRuns is the hash of the live runs of one (account, API) rate bucket
// (key as ratelimit's, "appid:api"): field "campaign|run", value the run's
// weight (its campaign's priority). The expansion reads it to share the
// bucket's admission room between its runs (see producer's package doc).
// It is one key, hash-tagged by bucket, so on Redis Cluster its commands
// go to one node; the runs' own keys are read by a pipeline, not a script,
// because they are tagged by campaign and live on other nodes.
func (k Keys) BucketRuns(bucket string) string { return k.prefix() + ":{bucket:" + bucket + "}:runs" }
