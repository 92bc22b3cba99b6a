// Package rdb holds all of wxmass's own Redis I/O: one method per operation,
// multi-key operations as Lua scripts, and every key built by the helpers in
// keys.go under one prefix.
//
// Keys that a script or a multi-key command touches together share a hash
// tag ({c:ID} for a campaign and its runs, {acct:APPID} for an account's
// token state, {rate:KEY} for a bucket), so every operation runs unchanged on
// Redis Cluster (cluster_test.go runs them on one). Keys of different tags
// (the campaign index, the msgid index, the schedule index) are only ever
// written by separate commands or in plain pipelines, which go-redis splits
// by node; no operation uses MULTI, which cannot span slots. The key prefix
// must not contain '{' or '}' (see CheckPrefix).
// Times that several processes must agree on (token expiry, leases) are taken
// from the Redis server's clock inside the scripts, never from a process's.
package rdb
