package rdb_test

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/rdb"
)

// TestBucketRuns: runs added to a bucket's registry are read back with
// their weights and counters; a removed run and a run that stopped being
// live (its record says so) are not returned, and the stale one is dropped
// from the registry; another bucket's registry is separate.
func TestBucketRuns(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	for _, id := range []string{"c1", "c2", "c3"} {
		require.NoError(t, r.CreateCampaign(ctx, id, []byte(`{}`), "draft", timeNow()))
		_, err := r.StartRun(ctx, id, "running", "running", 100, r.Keys().Audience(id), "draft")
		require.NoError(t, err)
	}
	require.NoError(t, r.MarkExpanded(ctx, "c1", 1, 40))
	_, err := r.RecordOutcomes(ctx, "c1", 1, "completed", rdb.Settle{OpenID: "o1", Outcome: rdb.Outcome{Status: rdb.OutcomeSent, MsgID: 1}})
	require.NoError(t, err)
	require.NoError(t, r.AddBucketRun(ctx, "wxA:template", "c1", 1, 5))
	require.NoError(t, r.AddBucketRun(ctx, "wxA:template", "c2", 1, 2))
	require.NoError(t, r.AddBucketRun(ctx, "wxA:template", "c3", 1, 5))
	require.NoError(t, r.AddBucketRun(ctx, "wxA:template", "c9", 1, 5)) // no such run
	require.NoError(t, r.AddBucketRun(ctx, "wxB:template", "c2", 1, 5))

	runs, err := r.BucketRuns(ctx, "wxA:template")
	require.NoError(t, err)
	sort.Slice(runs, func(i, j int) bool { return runs[i].ID < runs[j].ID })
	require.Equal(t, []rdb.BucketRun{
		{ID: "c1", Run: 1, Weight: 5, State: "running", Size: 100, Expanded: 40, Settled: 1},
		{ID: "c2", Run: 1, Weight: 2, State: "running", Size: 100},
		{ID: "c3", Run: 1, Weight: 5, State: "running", Size: 100},
	}, runs)
	require.Equal(t, int64(39), runs[0].Pending())
	n, err := r.Client().HLen(ctx, r.Keys().BucketRuns("wxA:template")).Result()
	require.NoError(t, err)
	require.Equal(t, int64(3), n, "the run that does not exist was dropped")

	require.NoError(t, r.RemoveBucketRun(ctx, "wxA:template", "c2", 1))
	require.NoError(t, r.RemoveBucketRun(ctx, "wxA:template", "c2", 1), "removing twice is no error")
	require.NoError(t, r.SetStates(ctx, "c3", 1, "cancelled", "stopping", "test", "running"))
	runs, err = r.BucketRuns(ctx, "wxA:template")
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.Equal(t, "c1", runs[0].ID)
	n, err = r.Client().HLen(ctx, r.Keys().BucketRuns("wxA:template")).Result()
	require.NoError(t, err)
	require.Equal(t, int64(1), n, "the stopped run was dropped")

	runs, err = r.BucketRuns(ctx, "wxB:template")
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.Equal(t, "c2", runs[0].ID)
	runs, err = r.BucketRuns(ctx, "wxC:template")
	require.NoError(t, err)
	require.Empty(t, runs)
}
