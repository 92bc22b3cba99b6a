package rdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// BucketRun is one live run of a rate bucket as the registry and the run's
// record tell it.
type BucketRun struct {
	ID     string
	Run    int
	Weight int
	// State, Size, Expanded and Settled are the run record's (see
	// RunRecord).
	State    string
	Size     int64
	Expanded int64
	Settled  int64
}

// Pending is the number of recipients handed to send tasks and not settled
// yet (never negative).
func (b BucketRun) Pending() int64 { return max(0, b.Expanded-b.Settled) }

func bucketMember(id string, run int) string { return id + "|" + strconv.Itoa(run) }

// AddBucketRun registers run of campaign id as a live run of bucket with
// weight (its priority); registering it again updates its weight.
func (r *RDB) AddBucketRun(ctx context.Context, bucket, id string, run, weight int) error {
	if err := r.c.HSet(ctx, r.keys.BucketRuns(bucket), bucketMember(id, run), weight).Err(); err != nil {
		return fmt.Errorf("add bucket run: %w", err)
	}
	return nil
}

// RemoveBucketRun takes run of campaign id out of bucket's registry; a run
// not registered is no error.
func (r *RDB) RemoveBucketRun(ctx context.Context, bucket, id string, run int) error {
	if err := r.c.HDel(ctx, r.keys.BucketRuns(bucket), bucketMember(id, run)).Err(); err != nil {
		return fmt.Errorf("remove bucket run: %w", err)
	}
	return nil
}

// BucketRuns returns the live (running or paused) runs registered in
// bucket with their counters, in two round trips: the registry, then one
// pipeline over the runs' records (they are hash-tagged by campaign, so on
// Redis Cluster they cannot be read by one script). Registered runs whose
// record says they are no longer live (finished, stopping, or gone: a
// process crashed before it removed them) are dropped from the registry,
// in a third round trip only when there are any.
func (r *RDB) BucketRuns(ctx context.Context, bucket string) ([]BucketRun, error) {
	key := r.keys.BucketRuns(bucket)
	m, err := r.c.HGetAll(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("bucket runs: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	type entry struct {
		member string
		run    BucketRun
	}
	entries := make([]entry, 0, len(m))
	var stale []string
	for member, w := range m {
		id, n, ok := strings.Cut(member, "|")
		run, err := strconv.Atoi(n)
		if !ok || err != nil {
			stale = append(stale, member)
			continue
		}
		weight, _ := strconv.Atoi(w)
		entries = append(entries, entry{member, BucketRun{ID: id, Run: run, Weight: weight}})
	}
	pipe := r.c.Pipeline()
	recs := make([]*redis.SliceCmd, len(entries))
	totals := make([]*redis.StringCmd, len(entries))
	for i, e := range entries {
		recs[i] = pipe.HMGet(ctx, r.keys.Run(e.run.ID, e.run.Run), "state", "size", "expanded")
		totals[i] = pipe.HGet(ctx, r.keys.Counters(e.run.ID, e.run.Run), "total")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("bucket runs: %w", err)
	}
	out := make([]BucketRun, 0, len(entries))
	for i, e := range entries {
		vals := recs[i].Val()
		b := e.run
		b.State, _ = vals[0].(string)
		if b.State != "running" && b.State != "paused" {
			stale = append(stale, e.member)
			continue
		}
		if s, ok := vals[1].(string); ok {
			b.Size, _ = strconv.ParseInt(s, 10, 64)
		}
		if s, ok := vals[2].(string); ok {
			b.Expanded, _ = strconv.ParseInt(s, 10, 64)
		}
		b.Settled, _ = strconv.ParseInt(totals[i].Val(), 10, 64)
		out = append(out, b)
	}
	if len(stale) > 0 {
		if err := r.c.HDel(ctx, key, stale...).Err(); err != nil {
			return nil, fmt.Errorf("bucket runs: drop stale: %w", err)
		}
	}
	return out, nil
}
