package campaigns

import (
	"context"
	"time"

	"github.com/wxmass/wxmass/internal/rdb"
)

// LiveRun is the latest run of a campaign that is running, paused or
// stopping.
type LiveRun struct {
	ID    string
	Run   int
	State State // the campaign's state
}

// LiveRuns returns the latest run of every campaign that is running,
// paused or stopping (the runs the reconciler looks after).
func (s *Store) LiveRuns(ctx context.Context) ([]LiveRun, error) {
	cs, err := s.r.CampaignsInStates(ctx, string(StateRunning), string(StatePaused), string(StateStopping))
	if err != nil {
		return nil, err
	}
	out := make([]LiveRun, len(cs))
	for i, c := range cs {
		out[i] = LiveRun{ID: c.ID, Run: c.Run, State: State(c.State)}
	}
	return out, nil
}

// FinishRun finishes a live run whose recipients all have outcomes, by the
// rule a record that gives the last recipient its outcome follows
// (completed, or the state a stopped run is bound for). It returns the
// state the run finished in, or "" when it was not done or had finished.
func (s *Store) FinishRun(ctx context.Context, c *Campaign, run int) (string, error) {
	fin, err := s.r.FinishRun(ctx, c.ID, run, DoneState(c))
	return fin, runErr(c.ID, run, err)
}

// TakeLease takes the fleet-wide lease name for token, for ttl, if it is
// free, or renews it if token holds it; it reports whether token holds it.
func (s *Store) TakeLease(ctx context.Context, name, token string, ttl time.Duration) (bool, error) {
	return s.r.TakeLease(ctx, name, token, ttl)
}

// ReleaseLease gives up the lease name if token holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, token string) error {
	return s.r.ReleaseLease(ctx, name, token)
}

// BucketRun is a live run of a rate bucket with its counters; see
// rdb.BucketRun.
type BucketRun = rdb.BucketRun

// AddBucketRun registers run of campaign id as a live run of bucket (an
// (account, API) rate-limit key) with weight.
func (s *Store) AddBucketRun(ctx context.Context, bucket, id string, run, weight int) error {
	return s.r.AddBucketRun(ctx, bucket, id, run, weight)
}

// RemoveBucketRun takes a run out of bucket's registry.
func (s *Store) RemoveBucketRun(ctx context.Context, bucket, id string, run int) error {
	return s.r.RemoveBucketRun(ctx, bucket, id, run)
}

// BucketRuns returns the live runs registered in bucket with their
// counters, dropping the registered runs that are no longer live.
func (s *Store) BucketRuns(ctx context.Context, bucket string) ([]BucketRun, error) {
	return s.r.BucketRuns(ctx, bucket)
}
