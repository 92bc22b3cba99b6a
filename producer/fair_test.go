package producer_test

import (
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/producer"
)

// TestAdmitShare checks the share computation: the room left in a bucket's
// window W is shared by weight among the runs with recipients still to
// admit, a run holding at most its share of W pending; a run done
// admitting leaves its share to the others; a run not in the list, or a
// full bucket, admits nothing.
func TestAdmitShare(t *testing.T) {
	t.Parallel()
	run := func(id string, weight int, size, expanded, settled int64) campaigns.BucketRun {
		return campaigns.BucketRun{ID: id, Run: 1, Weight: weight, State: "running", Size: size, Expanded: expanded, Settled: settled}
	}
	for _, tc := range []struct {
		name string
		w    int64
		runs []campaigns.BucketRun
		want map[string]int64
	}{
		{"alone: the whole window", 300, []campaigns.BucketRun{run("a", 5, 30000, 100, 0)},
			map[string]int64{"a": 200}},
		{"alone and full", 300, []campaigns.BucketRun{run("a", 5, 30000, 1300, 1000)},
			map[string]int64{"a": 0}},
		{"a small run behind a big one gets half as room frees", 300, []campaigns.BucketRun{
			run("big", 5, 30000, 1300, 1050), run("small", 5, 3000, 0, 0)},
			map[string]int64{"big": 0, "small": 50}},
		{"equal shares of an empty bucket", 300, []campaigns.BucketRun{
			run("a", 5, 30000, 0, 0), run("b", 5, 3000, 0, 0)},
			map[string]int64{"a": 150, "b": 150}},
		{"by priority", 300, []campaigns.BucketRun{
			run("a", 2, 30000, 0, 0), run("b", 4, 3000, 0, 0)},
			map[string]int64{"a": 100, "b": 200}},
		{"a run done admitting leaves its share", 300, []campaigns.BucketRun{
			run("done", 5, 100, 100, 40), run("b", 5, 3000, 0, 0)},
			map[string]int64{"b": 240}},
		{"a paused run's pending counts, its weight does not", 300, []campaigns.BucketRun{
			{ID: "p", Run: 1, Weight: 5, State: "paused", Size: 1000, Expanded: 100}, run("b", 5, 3000, 0, 0)},
			map[string]int64{"b": 200}},
		{"rounded up: never zero while there is room", 10, []campaigns.BucketRun{
			run("a", 1, 100, 0, 0), run("b", 1, 100, 0, 0), run("c", 1, 100, 0, 0), run("d", 10, 100, 0, 0)},
			map[string]int64{"a": 1, "d": 8}},
		{"not registered", 300, []campaigns.BucketRun{run("a", 5, 100, 0, 0)},
			map[string]int64{"x": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for id, want := range tc.want {
				require.Equal(t, want, producer.AdmitShare(tc.w, tc.runs, id, 1), "run %s", id)
			}
		})
	}
}

// TestBucketRegistry: a run's first expand pass registers it in its
// bucket; an expand pass of a stopped run takes it out; PruneBuckets drops
// a registered run that is not live (a crash left it there).
func TestBucketRegistry(t *testing.T) {
	b := setup(t, producer.Config{ChunkSize: 10})
	ctx := t.Context()
	c := b.campaign(t, 30)
	run, err := b.prod.Start(ctx, c.ID)
	require.NoError(t, err)
	require.NoError(t, b.prod.HandleLaunch(ctx, asynq.NewTask(task.TypeLaunch, task.Encode(task.Run{Campaign: c.ID, Run: run}))))
	bucket := "wx00000000000fake1:" + c.Kind.API()
	runs, err := b.store.BucketRuns(ctx, bucket)
	require.NoError(t, err)
	require.Empty(t, runs, "registered at its first expand pass")

	require.NoError(t, b.prod.HandleExpand(ctx, expandTask(c.ID, run, 0)))
	runs, err = b.store.BucketRuns(ctx, bucket)
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.Equal(t, campaigns.BucketRun{ID: c.ID, Run: run, Weight: campaigns.PriorityDefault, State: "running", Size: 30, Expanded: 10}, runs[0])

	require.NoError(t, b.prod.Cancel(ctx, c.ID))
	require.NoError(t, b.prod.HandleExpand(ctx, expandTask(c.ID, run, 1)))
	n, err := b.rdb.Client().HLen(ctx, b.rdb.Keys().BucketRuns(bucket)).Result()
	require.NoError(t, err)
	require.Zero(t, n, "a stopped run leaves its bucket")

	require.NoError(t, b.store.AddBucketRun(ctx, bucket, "cgone", 1, 5))
	require.NoError(t, b.prod.PruneBuckets(ctx))
	n, err = b.rdb.Client().HLen(ctx, b.rdb.Keys().BucketRuns(bucket)).Result()
	require.NoError(t, err)
	require.Zero(t, n, "PruneBuckets drops a run that is not live")
}
