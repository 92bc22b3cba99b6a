package rdb_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/rdb"
)

var (
	fireStates = []string{"scheduled", "completed"}
	onSchedule = []string{"scheduled", "running", "paused", "completed"}
)

// claim is a recurring schedule's claim of the fire at at.
func claim(id string, at, next time.Time, start bool) rdb.FireClaim {
	return rdb.FireClaim{
		ID: id, At: at, Next: next, Start: start, Sized: true,
		StartFrom: fireStates, Busy: []string{"running", "paused"},
		Running: "running", Scheduled: "scheduled", Unscheduled: "draft",
		Keep: time.Hour,
	}
}

func TestScheduleKeysShareTheCampaignSlot(t *testing.T) {
	t.Parallel()
	k := rdb.Keys{Prefix: "p"}
	require.Equal(t, "p:{c:c1}:fire:1772409600000", k.Fire("c1", 1772409600000))
	require.True(t, strings.HasPrefix(k.Fire("c1", 1), "p:{c:c1}:"), "the claim script's keys share the campaign's hash tag")
	require.Equal(t, "p:schedules", k.Schedules())
}

func TestClaimFire(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	t0 := time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)
	t1, t2 := t0.Add(time.Hour), t0.Add(2*time.Hour)

	require.NoError(t, r.CreateCampaign(ctx, "c1", []byte(`{}`), "draft", timeNow()))
	_, _, err := r.AppendAudience(ctx, "c1", []rdb.AudienceEntry{{OpenID: "oAAAAAAAAAAAAAAAAAAAAAAA0001"}}, "draft")
	require.NoError(t, err)

	// Not on a schedule: nothing to claim.
	rep, err := r.ClaimFire(ctx, claim("c1", t0, t1, true))
	require.NoError(t, err)
	require.Equal(t, rdb.FireUnscheduled, rep.Status)

	next, already, err := r.ScheduleCampaign(ctx, "c1", t0, "scheduled", []string{"draft"}, onSchedule)
	require.NoError(t, err)
	require.False(t, already)
	require.True(t, next.Equal(t0))

	// A claim of another time than the campaign's next fire loses.
	rep, err = r.ClaimFire(ctx, claim("c1", t1, t2, true))
	require.NoError(t, err)
	require.Equal(t, rdb.FireStale, rep.Status)
	require.True(t, rep.Next.Equal(t0))
	require.Zero(t, rep.Run)

	rep, err = r.ClaimFire(ctx, claim("c1", t0, t1, true))
	require.NoError(t, err)
	require.Equal(t, rdb.FireReply{Status: rdb.FireStarted, State: "scheduled", Next: rep.Next, Run: 1}, rep)
	require.True(t, rep.Won())
	require.True(t, rep.Next.Equal(t1))
	run, err := r.GetRun(ctx, "c1", 1)
	require.NoError(t, err)
	require.Equal(t, "running", run.State)
	require.EqualValues(t, 1, run.Size)
	require.Equal(t, r.Keys().Audience("c1"), run.Audience)

	// The same fire again: lost, and told which run it started.
	rep, err = r.ClaimFire(ctx, claim("c1", t0, t1, true))
	require.NoError(t, err)
	require.Equal(t, rdb.FireStale, rep.Status)
	require.Equal(t, 1, rep.Run)
	require.False(t, rep.Won())

	// The next fire while run 1 runs: won, nothing started.
	rep, err = r.ClaimFire(ctx, claim("c1", t1, t2, true))
	require.NoError(t, err)
	require.Equal(t, rdb.FireBusy, rep.Status)
	rec, err := r.GetCampaign(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, 1, rec.Run)

	// Taken off its schedule and put back on it at a time it fired
	// already (a clock behind the others): the claim key stops a second
	// run of that fire time.
	require.NoError(t, r.UnscheduleCampaign(ctx, "c1", "scheduled", "draft", []string{"running", "paused", "completed"}))
	nf, ok, err := r.NextFire(ctx, "c1")
	require.NoError(t, err)
	require.False(t, ok, "%v", nf)
	require.NoError(t, r.SetStates(ctx, "c1", 1, "completed", "completed", "", "running"))
	require.NoError(t, r.UpdateCampaign(ctx, "c1", nil, "draft", "completed"))
	_, _, err = r.ScheduleCampaign(ctx, "c1", t0, "scheduled", []string{"draft"}, onSchedule)
	require.NoError(t, err)
	rep, err = r.ClaimFire(ctx, claim("c1", t0, t1, true))
	require.NoError(t, err)
	require.Equal(t, rdb.FireStale, rep.Status)
	require.Equal(t, 1, rep.Run)
	require.True(t, rep.Next.Equal(t1), "the schedule still moves on")

	// Cancelled: the claim drops the next fire time.
	require.NoError(t, r.SetStates(ctx, "c1", 1, "cancelled", "cancelled", "", "scheduled"))
	rep, err = r.ClaimFire(ctx, claim("c1", t1, t2, true))
	require.NoError(t, err)
	require.Equal(t, rdb.FireUnscheduled, rep.Status)
	require.Equal(t, "cancelled", rep.State)
	_, ok, err = r.NextFire(ctx, "c1")
	require.NoError(t, err)
	require.False(t, ok)

	_, err = r.ClaimFire(ctx, claim("cnothere", t0, t1, true))
	require.ErrorIs(t, err, rdb.ErrCampaignNotFound)
}

func TestClaimFireOneOffSkipped(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	t0 := time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)
	require.NoError(t, r.CreateCampaign(ctx, "c1", []byte(`{}`), "draft", timeNow()))
	_, _, err := r.ScheduleCampaign(ctx, "c1", t0, "scheduled", []string{"draft"}, onSchedule)
	require.NoError(t, err)
	c := claim("c1", t0, time.Time{}, false)
	c.StartFrom, c.Busy = []string{"scheduled"}, nil
	rep, err := r.ClaimFire(ctx, c)
	require.NoError(t, err)
	require.Equal(t, rdb.FireSkipped, rep.Status)
	require.True(t, rep.Next.IsZero())
	rec, err := r.GetCampaign(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, "draft", rec.State, "a one-off skipped goes back to draft")
	require.Zero(t, rec.Run)
}

func TestScheduleIndex(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	t0 := time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)

	require.NoError(t, r.IndexSchedule(ctx, "a", t0))
	require.NoError(t, r.IndexSchedule(ctx, "b", t0.Add(time.Minute)))
	require.NoError(t, r.IndexSchedule(ctx, "c", t0.Add(time.Hour)))
	due, err := r.DueSchedules(ctx, t0.Add(time.Minute), 10)
	require.NoError(t, err)
	require.Equal(t, []rdb.DueSchedule{{ID: "a", At: time.UnixMilli(t0.UnixMilli())}, {ID: "b", At: time.UnixMilli(t0.Add(time.Minute).UnixMilli())}}, due)
	due, err = r.DueSchedules(ctx, t0.Add(time.Minute), 1)
	require.NoError(t, err)
	require.Len(t, due, 1, "at most limit")

	// The move is a compare-and-set: an entry moved by someone else stays.
	moved, err := r.MoveSchedule(ctx, "a", t0.Add(time.Second), t0.Add(time.Hour))
	require.NoError(t, err)
	require.False(t, moved)
	moved, err = r.MoveSchedule(ctx, "a", t0, t0.Add(2*time.Hour))
	require.NoError(t, err)
	require.True(t, moved)
	moved, err = r.MoveSchedule(ctx, "b", t0.Add(time.Minute), time.Time{})
	require.NoError(t, err)
	require.True(t, moved)
	due, err = r.DueSchedules(ctx, t0.Add(90*time.Minute), 10)
	require.NoError(t, err)
	require.Equal(t, []rdb.DueSchedule{{ID: "c", At: time.UnixMilli(t0.Add(time.Hour).UnixMilli())}}, due)
	moved, err = r.MoveSchedule(ctx, "gone", t0, t0)
	require.NoError(t, err)
	require.False(t, moved)
}
