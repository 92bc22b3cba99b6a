package rdb_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/rdb"
)

// TestMassAcceptedBatch: a batch whose job WeChat accepted is awaited, not
// tried again and not settled by a stop: BeginAttempt answers accepted,
// even after an earlier try lost its answer; a stopped run keeps it
// pending until its result, which records it sent (not unknown) and
// finishes the run. The first result stored stays; the msg_id finds the
// batch; a second accept keeps the first submission.
func TestMassAcceptedBatch(t *testing.T) {
	t.Parallel()
	const hour = time.Hour
	l := newLedgerRun(t, "b0:0-2", "b1:2-4")
	ctx := t.Context()
	l.begin(t, "b0:0-2", opts(true, 23*hour, time.Millisecond))
	require.NoError(t, l.r.EndAttempts(ctx, "c1", l.run, rdb.EndAttempt{OpenID: "b0:0-2", Lost: true}))
	sub := rdb.MassSubmission{ClientMsgID: "cmid0", MsgID: 1000000001, Recipients: 2, Submitted: time.Now(), Duplicate: true}
	fresh, stored, err := l.r.AcceptMass(ctx, "c1", l.run, "b0:0-2", "wxapp", "host:1", sub)
	require.NoError(t, err)
	require.True(t, fresh)
	require.Equal(t, sub.MsgID, stored.MsgID)
	again, stored, err := l.r.AcceptMass(ctx, "c1", l.run, "b0:0-2", "wxapp", "host:2", rdb.MassSubmission{MsgID: 999})
	require.NoError(t, err)
	require.False(t, again)
	require.EqualValues(t, 1000000001, stored.MsgID, "the first submission stays")
	a, ok := l.attempt(t, "b0:0-2")
	require.True(t, ok)
	require.True(t, a.Accepted)
	require.False(t, a.Lost, "the job stands: the lost answer no longer matters")
	require.Equal(t, rdb.BeginAccepted, l.begin(t, "b0:0-2", opts(true, 23*hour, time.Millisecond)).Action)

	id, run, batch, ok, err := l.r.LookupMassMsgID(ctx, "wxapp", 1000000001)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "c1", id)
	require.Equal(t, l.run, run)
	require.Equal(t, "b0:0-2", batch)

	stopped, _, err := l.r.StopRun(ctx, "c1", l.run, rdb.RunCancelled, "cancelled by an operator")
	require.NoError(t, err)
	require.True(t, stopped)
	res, err := l.r.SettleStopped(ctx, "c1", l.run, l.r.Keys().Audience("c1"), 0, -1, "completed", time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, 1, res.Pending, "the accepted batch waits for its result")
	require.Equal(t, 1, res.New, "the batch never sent is cancelled")
	require.Equal(t, rdb.OutcomeCancelled, l.outcome(t, "b1:2-4").Status)

	result := rdb.MassResult{Status: "sent", WeChatStatus: "send success", HasCounts: true, TotalCount: 2, FilterCount: 2, SentCount: 2, Via: "push", At: time.Now()}
	first, rec, err := l.r.FinishMass(ctx, "c1", l.run, "b0:0-2", "completed", result, rdb.Outcome{Status: rdb.OutcomeSent, Detail: "job sent"})
	require.NoError(t, err)
	require.True(t, first)
	require.Equal(t, rdb.RunCancelled, rec.Finished, "the run ends once its accepted batch has its result")
	require.Equal(t, rdb.OutcomeSent, l.outcome(t, "b0:0-2").Status)
	later, _, err := l.r.FinishMass(ctx, "c1", l.run, "b0:0-2", "completed", rdb.MassResult{Status: "failed", Via: "poll"}, rdb.Outcome{Status: rdb.OutcomeFailed})
	require.NoError(t, err)
	require.False(t, later)
	b, err := l.r.MassBatch(ctx, "c1", l.run, "b0:0-2")
	require.NoError(t, err)
	require.Equal(t, "push", b.Result.Via, "the first result stays")
	require.Equal(t, rdb.OutcomeSent, l.outcome(t, "b0:0-2").Status)
}

// TestMassReceived: per-user counts of a period, with sends to all
// counting for everyone.
func TestMassReceived(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	require.NoError(t, r.CountMassReceived(ctx, "wxapp", "2026-12", []string{"a", "b"}, time.Hour))
	require.NoError(t, r.CountMassReceived(ctx, "wxapp", "2026-12", []string{"a"}, time.Hour))
	require.NoError(t, r.CountMassReceived(ctx, "wxapp", "2026-12", nil, time.Hour))
	got, all, err := r.MassReceived(ctx, "wxapp", "2026-12", []string{"a", "b", "c"})
	require.NoError(t, err)
	require.EqualValues(t, 1, all)
	require.Equal(t, []int64{3, 2, 1}, got)
	got, _, err = r.MassReceived(ctx, "wxapp", "2027-01", []string{"a"})
	require.NoError(t, err)
	require.Equal(t, []int64{0}, got, "a new month starts at 0")
}
