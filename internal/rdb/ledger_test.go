package rdb_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/rdb"
)

// ledgerRun is a campaign "c1" with a running run of the given openids.
type ledgerRun struct {
	r   *rdb.RDB
	run int
}

func newLedgerRun(t *testing.T, openids ...string) *ledgerRun {
	t.Helper()
	r := setup(t)
	ctx := t.Context()
	require.NoError(t, r.CreateCampaign(ctx, "c1", []byte(`{}`), "draft", timeNow()))
	entries := make([]rdb.AudienceEntry, len(openids))
	for i, o := range openids {
		entries[i] = rdb.AudienceEntry{OpenID: o}
	}
	_, _, err := r.AppendAudience(ctx, "c1", entries, "draft")
	require.NoError(t, err)
	run, err := r.StartRun(ctx, "c1", "running", "running", int64(len(openids)), r.Keys().Audience("c1"), "draft")
	require.NoError(t, err)
	return &ledgerRun{r: r, run: run}
}

// opts are BeginAttempt options: a template send (dedupe) unless custom,
// with the window and grace given.
func opts(dedupe bool, window, grace time.Duration) rdb.BeginOptions {
	return rdb.BeginOptions{DoneState: "completed", Dedupe: dedupe, Window: window, Grace: grace, Proc: "host:1"}
}

func (l *ledgerRun) begin(t *testing.T, openid string, o rdb.BeginOptions) rdb.Begin {
	t.Helper()
	bs, err := l.r.BeginAttempts(t.Context(), "c1", l.run, o, openid)
	require.NoError(t, err)
	require.Len(t, bs, 1)
	return bs[0]
}

func (l *ledgerRun) record(t *testing.T, openid string, o rdb.Outcome, mode rdb.RecordMode) rdb.Recorded {
	t.Helper()
	rec, err := l.r.RecordOutcomes(t.Context(), "c1", l.run, "completed", rdb.Settle{OpenID: openid, Outcome: o, Mode: mode})
	require.NoError(t, err)
	return rec
}

func (l *ledgerRun) outcome(t *testing.T, openid string) rdb.Outcome {
	t.Helper()
	o, ok, err := l.r.GetOutcome(t.Context(), "c1", l.run, openid)
	require.NoError(t, err)
	require.True(t, ok, "%s has an outcome", openid)
	return o
}

func (l *ledgerRun) attempt(t *testing.T, openid string) (rdb.Attempt, bool) {
	t.Helper()
	as, ok, err := l.r.GetAttempts(t.Context(), "c1", l.run, []string{openid})
	require.NoError(t, err)
	return as[0], ok[0]
}

func (l *ledgerRun) counters(t *testing.T) map[string]int64 {
	t.Helper()
	rec, err := l.r.GetRun(t.Context(), "c1", l.run)
	require.NoError(t, err)
	return rec.Counters
}

// TestBeginAttempt: an attempt is recorded before each call; what a lost
// answer leads to depends on the dedupe key and its window.
func TestBeginAttempt(t *testing.T) {
	t.Parallel()
	const hour = time.Hour

	t.Run("FirstAttempt", func(t *testing.T) {
		t.Parallel()
		l := newLedgerRun(t, "a")
		b := l.begin(t, "a", opts(true, hour, hour))
		require.Equal(t, rdb.BeginSend, b.Action)
		require.Equal(t, 1, b.Attempt)
		require.Equal(t, l.run, b.ClientMsgRun)
		a, ok := l.attempt(t, "a")
		require.True(t, ok)
		require.Equal(t, 1, a.N)
		require.True(t, a.Open)
		require.False(t, a.Lost)
		require.Equal(t, "host:1", a.Proc)
		require.WithinDuration(t, time.Now(), a.First, 5*time.Second)
	})

	t.Run("AnsweredRetryIsNotLost", func(t *testing.T) {
		t.Parallel()
		l := newLedgerRun(t, "a")
		l.begin(t, "a", opts(false, hour, hour))
		// -1: answered, not delivered; the retry may send again, even
		// without a dedupe key.
		require.NoError(t, l.r.EndAttempts(t.Context(), "c1", l.run, rdb.EndAttempt{OpenID: "a"}))
		b := l.begin(t, "a", opts(false, hour, hour))
		require.Equal(t, rdb.BeginSend, b.Action)
		require.Equal(t, 2, b.Attempt)
		a, _ := l.attempt(t, "a")
		require.False(t, a.Lost)
	})

	t.Run("LostWithDedupeInsideWindow", func(t *testing.T) {
		t.Parallel()
		l := newLedgerRun(t, "a", "b")
		// a: the answer was lost and said so; b: its worker died (the
		// attempt stayed open). Both are sent again with the same
		// client_msg_id while the window lasts.
		l.begin(t, "a", opts(true, hour, hour))
		require.NoError(t, l.r.EndAttempts(t.Context(), "c1", l.run, rdb.EndAttempt{OpenID: "a", Lost: true}))
		l.begin(t, "b", opts(true, hour, hour))
		for _, o := range []string{"a", "b"} {
			b := l.begin(t, o, opts(true, hour, hour))
			require.Equal(t, rdb.BeginSend, b.Action, o)
			require.Equal(t, 2, b.Attempt, o)
			require.Equal(t, l.run, b.ClientMsgRun)
			a, _ := l.attempt(t, o)
			require.True(t, a.Lost, o)
			require.True(t, a.Open, o)
		}
	})

	t.Run("LostWithDedupeAfterWindow", func(t *testing.T) {
		t.Parallel()
		l := newLedgerRun(t, "a")
		l.begin(t, "a", opts(true, hour, hour))
		// A window of 0 has passed at once.
		b := l.begin(t, "a", opts(true, 0, hour))
		require.Equal(t, rdb.BeginSettled, b.Action)
		require.Equal(t, rdb.OutcomeUnknown, b.Status)
		require.Equal(t, "completed", b.Finished, "the run's only recipient")
		o := l.outcome(t, "a")
		require.Equal(t, rdb.OutcomeUnknown, o.Status)
		require.Contains(t, o.Detail, "window has passed")
		require.EqualValues(t, 1, l.counters(t)["unknown"])
	})

	t.Run("LostWithoutDedupe", func(t *testing.T) {
		t.Parallel()
		l := newLedgerRun(t, "a", "b")
		l.begin(t, "a", opts(false, hour, hour)) // its worker died
		b := l.begin(t, "a", opts(false, hour, hour))
		require.Equal(t, rdb.BeginSettled, b.Action)
		require.Equal(t, rdb.OutcomeUnknown, b.Status)
		require.Empty(t, b.Finished)
		require.Contains(t, l.outcome(t, "a").Detail, "never sent again")
		// And once settled, it is done.
		require.Equal(t, rdb.BeginDone, l.begin(t, "a", opts(false, hour, hour)).Action)
	})

	t.Run("PausedAndUntokened", func(t *testing.T) {
		t.Parallel()
		l := newLedgerRun(t, "a")
		o := opts(true, hour, hour)
		o.Untokened = true
		require.Equal(t, rdb.BeginNoToken, l.begin(t, "a", o).Action)
		require.NoError(t, l.r.SetStates(t.Context(), "c1", l.run, "paused", "paused", "", "running"))
		require.Equal(t, rdb.BeginPaused, l.begin(t, "a", opts(true, hour, hour)).Action)
		_, ok := l.attempt(t, "a")
		require.False(t, ok, "no attempt was begun")
		bs, err := l.r.BeginAttempts(t.Context(), "c1", l.run+1, opts(true, hour, hour), "a")
		require.NoError(t, err)
		require.Equal(t, rdb.BeginNoSuchRun, bs[0].Action)
	})

	t.Run("Carried", func(t *testing.T) {
		t.Parallel()
		l := newLedgerRun(t, "a")
		first := time.Now().Add(-time.Minute)
		require.NoError(t, l.r.CarryAttempts(t.Context(), "c1", l.run, map[string]rdb.Attempt{"a": {First: first, Lost: true, ClientMsgRun: 7}}))
		b := l.begin(t, "a", opts(true, hour, hour))
		require.Equal(t, rdb.BeginSend, b.Action)
		require.Equal(t, 1, b.Attempt)
		require.Equal(t, 7, b.ClientMsgRun, "the client_msg_id of the run it was carried from")
		a, _ := l.attempt(t, "a")
		require.Equal(t, first.UnixMilli(), a.First.UnixMilli(), "the window runs from the first attempt of the earlier run")
		// Past that window it is not sent again.
		l2 := newLedgerRun(t, "a")
		require.NoError(t, l2.r.CarryAttempts(t.Context(), "c1", l2.run, map[string]rdb.Attempt{"a": {First: first, Lost: true, ClientMsgRun: 7}}))
		require.Equal(t, rdb.BeginSettled, l2.begin(t, "a", opts(true, 30*time.Second, hour)).Action)
	})
}

// TestRecordRules: a failure after a lost answer is unknown; an answer
// replaces unknown; the counters follow.
func TestRecordRules(t *testing.T) {
	t.Parallel()
	const hour = time.Hour
	l := newLedgerRun(t, "lost", "clean", "crashed", "late", "sent")

	// lost: attempt 1's answer was lost, attempt 2 answered 43004.
	l.begin(t, "lost", opts(true, hour, hour))
	require.NoError(t, l.r.EndAttempts(t.Context(), "c1", l.run, rdb.EndAttempt{OpenID: "lost", Lost: true}))
	l.begin(t, "lost", opts(true, hour, hour))
	rec := l.record(t, "lost", rdb.Outcome{Status: rdb.OutcomeFailed, Code: 43004, Class: "recipient", Detail: "user unfollowed"}, rdb.RecordAnswered)
	require.Equal(t, []rdb.Stored{rdb.StoredUnknown}, rec.Stored)
	o := l.outcome(t, "lost")
	require.Equal(t, rdb.OutcomeUnknown, o.Status)
	require.Zero(t, o.Code)
	require.Contains(t, o.Detail, "failed 43004 (user unfollowed)")

	// clean: one attempt answered 43004: failed.
	l.begin(t, "clean", opts(true, hour, hour))
	rec = l.record(t, "clean", rdb.Outcome{Status: rdb.OutcomeFailed, Code: 43004, Class: "recipient"}, rdb.RecordAnswered)
	require.Equal(t, []rdb.Stored{rdb.StoredAsGiven}, rec.Stored)

	// crashed: its task ran out of retries with its attempt open.
	l.begin(t, "crashed", opts(true, hour, hour))
	rec = l.record(t, "crashed", rdb.Outcome{Status: rdb.OutcomeFailed, Class: "exhausted"}, rdb.RecordUnanswered)
	require.Equal(t, []rdb.Stored{rdb.StoredUnknown}, rec.Stored)

	// late: recorded unknown, then its call's answer comes: sent wins,
	// with its msgid, and the counters move.
	l.begin(t, "late", opts(false, hour, hour))
	l.record(t, "late", rdb.Outcome{Status: rdb.OutcomeUnknown, Detail: "no answer"}, rdb.RecordPlain)
	rec = l.record(t, "late", rdb.Outcome{Status: rdb.OutcomeSent, MsgID: 1 << 58}, rdb.RecordAnswered)
	require.Equal(t, []rdb.Stored{rdb.StoredResolved}, rec.Stored)
	require.Zero(t, rec.New)
	require.Equal(t, rdb.OutcomeSent, l.outcome(t, "late").Status)
	_, ok := l.attempt(t, "late")
	require.False(t, ok, "a sent recipient's attempt record is dropped")
	_, run, openid, ok, err := l.r.LookupMsgID(t.Context(), 1<<58)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []any{l.run, "late"}, []any{run, openid})
	// A second answer changes nothing; nor does a plain record.
	require.Equal(t, []rdb.Stored{rdb.StoredNothing}, l.record(t, "late", rdb.Outcome{Status: rdb.OutcomeFailed, Code: -1}, rdb.RecordAnswered).Stored)

	// sent: the last one completes the run.
	l.begin(t, "sent", opts(true, hour, hour))
	rec = l.record(t, "sent", rdb.Outcome{Status: rdb.OutcomeSent, MsgID: 1<<58 + 1}, rdb.RecordAnswered)
	require.Equal(t, "completed", rec.Finished)

	c := l.counters(t)
	require.EqualValues(t, 5, c["total"])
	require.EqualValues(t, 2, c["unknown"])
	require.EqualValues(t, 2, c["sent"])
	require.EqualValues(t, 1, c["failed"])
	require.EqualValues(t, 1, c["code:43004"])
	require.EqualValues(t, 1, c["class:recipient"])
	require.Zero(t, c["class:exhausted"])
	var sum int64
	for _, st := range []string{"sent", "delivered", "failed", "unknown", "skipped", "cancelled"} {
		sum += c[st]
	}
	require.EqualValues(t, 5, sum, "the statuses add up: %v", c)
	tl, err := l.r.GetTimeline(t.Context(), "c1", l.run)
	require.NoError(t, err)
	byStatus := map[string]int64{}
	for _, p := range tl {
		byStatus[p.Status] += p.N
	}
	require.Equal(t, map[string]int64{"sent": 2, "failed": 1, "unknown": 2}, byStatus, "the timeline moves with a resolution")
}

// TestStopAndSettle: a stopped run's recipients get skipped (or
// cancelled) only when certainly never sent, unknown otherwise; calls in
// flight are waited for; the run finishes, once, when all have outcomes.
func TestStopAndSettle(t *testing.T) {
	t.Parallel()
	const hour = time.Hour
	for _, final := range []string{rdb.RunFailed, rdb.RunCancelled} {
		t.Run(final, func(t *testing.T) {
			t.Parallel()
			ids := []string{"never", "answered", "lost", "open", "sent"}
			l := newLedgerRun(t, ids...)
			ctx := t.Context()
			l.begin(t, "answered", opts(true, hour, hour))
			require.NoError(t, l.r.EndAttempts(ctx, "c1", l.run, rdb.EndAttempt{OpenID: "answered"}))
			l.begin(t, "lost", opts(true, hour, hour))
			require.NoError(t, l.r.EndAttempts(ctx, "c1", l.run, rdb.EndAttempt{OpenID: "lost", Lost: true}))
			l.begin(t, "open", opts(true, hour, hour))
			l.begin(t, "sent", opts(true, hour, hour))
			l.record(t, "sent", rdb.Outcome{Status: rdb.OutcomeSent, MsgID: 5}, rdb.RecordAnswered)

			stopped, st, err := l.r.StopRun(ctx, "c1", l.run, final, "errcode 40125: appsecret | wrong")
			require.NoError(t, err)
			require.True(t, stopped)
			require.Equal(t, rdb.RunStopping, st)
			again, st, err := l.r.StopRun(ctx, "c1", l.run, rdb.RunCancelled, "again")
			require.NoError(t, err)
			require.False(t, again, "a stopped run is not stopped twice")
			require.Equal(t, rdb.RunStopping, st)
			c, err := l.r.GetCampaign(ctx, "c1")
			require.NoError(t, err)
			require.Equal(t, "stopping", c.State)

			// A send of the stopped run that comes now takes the rule too.
			b := l.begin(t, "never", opts(true, hour, hour))
			require.Equal(t, rdb.BeginSettled, b.Action)
			want := rdb.OutcomeSkipped
			if final == rdb.RunCancelled {
				want = rdb.OutcomeCancelled
			}
			require.Equal(t, want, b.Status)

			// The open attempt began less than the grace ago: pending.
			rec, err := l.r.GetRun(ctx, "c1", l.run)
			require.NoError(t, err)
			res, err := l.r.SettleStopped(ctx, "c1", l.run, rec.Audience, 0, 4, "completed", hour)
			require.NoError(t, err)
			require.Equal(t, 2, res.New, "answered and lost")
			require.Equal(t, 1, res.Pending)
			require.WithinDuration(t, time.Now(), res.Oldest, 5*time.Second)
			require.Empty(t, res.Finished)
			rec, err = l.r.GetRun(ctx, "c1", l.run)
			require.NoError(t, err)
			require.Equal(t, rdb.RunStopping, rec.State, "not finished while a call may be answered")
			require.True(t, rec.Finished.IsZero())
			require.Equal(t, final, rec.Final)
			require.False(t, rec.Stopped.IsZero())

			// After the grace (0 here) it is unknown, and the run finishes.
			res, err = l.r.SettleStopped(ctx, "c1", l.run, rec.Audience, 0, 4, "completed", 0)
			require.NoError(t, err)
			require.Equal(t, 1, res.New)
			require.Equal(t, final, res.Finished)
			rec, err = l.r.GetRun(ctx, "c1", l.run)
			require.NoError(t, err)
			require.Equal(t, final, rec.State)
			require.False(t, rec.Finished.IsZero())
			c, err = l.r.GetCampaign(ctx, "c1")
			require.NoError(t, err)
			require.Equal(t, final, c.State)

			require.Equal(t, want, l.outcome(t, "never").Status)
			require.Equal(t, want, l.outcome(t, "answered").Status, "answered, not delivered: certainly never sent")
			require.Equal(t, rdb.OutcomeUnknown, l.outcome(t, "lost").Status)
			require.Equal(t, rdb.OutcomeUnknown, l.outcome(t, "open").Status)
			require.Equal(t, rdb.OutcomeSent, l.outcome(t, "sent").Status)
			if final == rdb.RunFailed {
				require.Equal(t, "campaign stopped: errcode 40125: appsecret / wrong", l.outcome(t, "never").Detail)
			}
			require.EqualValues(t, 5, rec.Counters["total"])
			require.EqualValues(t, 2, rec.Counters[want])
			require.EqualValues(t, 2, rec.Counters["unknown"])

			// The open call's answer comes late: it replaces unknown.
			late := l.record(t, "open", rdb.Outcome{Status: rdb.OutcomeSent, MsgID: 6}, rdb.RecordAnswered)
			require.Equal(t, []rdb.Stored{rdb.StoredResolved}, late.Stored)
			require.Empty(t, late.Finished, "a finished run does not finish again")
			rec, err = l.r.GetRun(ctx, "c1", l.run)
			require.NoError(t, err)
			require.EqualValues(t, 2, rec.Counters["sent"])
			require.EqualValues(t, 1, rec.Counters["unknown"])
			require.EqualValues(t, 5, rec.Counters["total"])

			// Settling a finished run does nothing.
			res, err = l.r.SettleStopped(ctx, "c1", l.run, rec.Audience, 0, 4, "completed", 0)
			require.NoError(t, err)
			require.Equal(t, final, res.State)
			require.Zero(t, res.New)
		})
	}
}

// TestStopBeforeLaunch: a run stopped before its launch knew its audience
// finishes with none.
func TestStopBeforeLaunch(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	require.NoError(t, r.CreateCampaign(ctx, "c1", []byte(`{}`), "draft", timeNow()))
	run, err := r.StartRun(ctx, "c1", "running", "running", -1, "", "draft")
	require.NoError(t, err)
	stopped, _, err := r.StopRun(ctx, "c1", run, rdb.RunCancelled, "cancelled by an operator")
	require.NoError(t, err)
	require.True(t, stopped)
	fin, err := r.SetRunSize(ctx, "c1", run, 0, "", "completed")
	require.NoError(t, err)
	require.Equal(t, rdb.RunCancelled, fin)
	// The launch that comes later does not size it again.
	fin, err = r.SetRunSize(ctx, "c1", run, 40, r.Keys().RunAudience("c1", run), "completed")
	require.NoError(t, err)
	require.Empty(t, fin)
	rec, err := r.GetRun(ctx, "c1", run)
	require.NoError(t, err)
	require.Zero(t, rec.Size)
	require.Equal(t, rdb.RunCancelled, rec.State)
	_, _, err = r.StopRun(ctx, "c1", run+1, rdb.RunFailed, "x")
	require.ErrorIs(t, err, rdb.ErrRunNotFound)
}

// TestSettleManyInChunks: the settle of a large stopped run, a chunk at a
// time, gives every recipient exactly one outcome.
func TestSettleManyInChunks(t *testing.T) {
	t.Parallel()
	const n = 2500
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("o", i)
	}
	l := newLedgerRun(t, ids...)
	ctx := t.Context()
	for i := 0; i < n; i += 10 {
		l.begin(t, ids[i], opts(false, time.Hour, time.Hour))
		if i%20 == 0 {
			l.record(t, ids[i], rdb.Outcome{Status: rdb.OutcomeSent}, rdb.RecordAnswered)
		}
	}
	_, _, err := l.r.StopRun(ctx, "c1", l.run, rdb.RunFailed, "errcode 40037: template deleted")
	require.NoError(t, err)
	rec, err := l.r.GetRun(ctx, "c1", l.run)
	require.NoError(t, err)
	var fin string
	for start := int64(0); start < n; start += 1000 {
		res, err := l.r.SettleStopped(ctx, "c1", l.run, rec.Audience, start, min(start+1000, n)-1, "completed", 0)
		require.NoError(t, err)
		if res.Finished != "" {
			fin = res.Finished
		}
	}
	require.Equal(t, rdb.RunFailed, fin)
	c := l.counters(t)
	require.EqualValues(t, n, c["total"])
	require.EqualValues(t, n/20, c["sent"])
	require.EqualValues(t, n/20, c["unknown"], "attempts open at the stop")
	require.EqualValues(t, n-n/10, c["skipped"])
}

// TestResolveByReceipt: a success receipt whose msgid wxmass never saw
// settles a recipient whose template send lost its answer (noted under the
// account by EndAttempts): one awaiting its retry, or one already unknown,
// becomes delivered with the receipt's msgid; nobody else changes.
func TestResolveByReceipt(t *testing.T) {
	t.Parallel()
	const hour = time.Hour
	l := newLedgerRun(t, "pending", "unknown", "sent", "clean", "last")
	ctx := t.Context()
	for _, o := range []string{"pending", "unknown", "sent", "last"} {
		l.begin(t, o, opts(true, hour, hour))
		require.NoError(t, l.r.EndAttempts(ctx, "c1", l.run, rdb.EndAttempt{OpenID: o, Lost: true, Account: "shop"}))
	}
	l.begin(t, "clean", opts(true, hour, hour))
	l.record(t, "unknown", rdb.Outcome{Status: rdb.OutcomeUnknown, Detail: "window passed"}, rdb.RecordPlain)
	l.begin(t, "sent", opts(true, hour, hour))
	l.record(t, "sent", rdb.Outcome{Status: rdb.OutcomeSent, MsgID: 5}, rdb.RecordAnswered)
	now := time.Now()
	resolve := func(openid string, msgid int64, created time.Time) rdb.ReceiptResult {
		t.Helper()
		res, err := l.r.ResolveByReceipt(ctx, "shop", openid, msgid, created, 10*time.Minute, "completed")
		require.NoError(t, err)
		return res
	}

	res := resolve("pending", 100, now)
	require.True(t, res.Found)
	require.True(t, res.Changed)
	require.Equal(t, rdb.OutcomeDelivered, res.Status)
	o := l.outcome(t, "pending")
	require.Equal(t, rdb.OutcomeDelivered, o.Status)
	require.EqualValues(t, 100, o.MsgID)
	id, run, openid, ok, err := l.r.LookupMsgID(ctx, 100)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []any{"c1", l.run, "pending"}, []any{id, run, openid})
	require.False(t, resolve("pending", 100, now).Found, "the note is used up")

	res = resolve("unknown", 101, now)
	require.True(t, res.Changed)
	require.Equal(t, rdb.OutcomeDelivered, l.outcome(t, "unknown").Status)

	res = resolve("sent", 102, now)
	require.True(t, res.Found)
	require.False(t, res.Changed, "a recipient recorded sent keeps its msgid")
	require.Equal(t, rdb.OutcomeSent, res.Status)

	require.False(t, resolve("clean", 103, now).Found, "no note: its answer was not lost")
	require.False(t, resolve("last", 104, now.Add(-time.Hour)).Found, "a receipt from before the note")
	require.False(t, resolve("last", 104, now.Add(time.Hour)).Found, "a receipt long after it")

	c := l.counters(t)
	require.EqualValues(t, 2, c["delivered"])
	require.EqualValues(t, 1, c["sent"])
	require.Zero(t, c["unknown"])
	require.EqualValues(t, 3, c["total"])
	_, ok = l.attempt(t, "pending")
	require.False(t, ok, "a delivered recipient's attempt record is dropped")
	// A msgid the index holds for another recipient is never moved to the
	// receipt's user, even one whose answer was lost: "last" keeps its
	// note and "sent" its msgid.
	res = resolve("last", 5, now)
	require.False(t, res.Found, "msgid 5 is sent's")
	id, _, openid, ok, err = l.r.LookupMsgID(ctx, 5)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []any{"c1", "sent"}, []any{id, openid})
	_, hasOutcome, err := l.r.GetOutcome(ctx, "c1", l.run, "last")
	require.NoError(t, err)
	require.False(t, hasOutcome)
	_, err = l.r.ResolveByReceipt(ctx, "shop", "", 106, now, 10*time.Minute, "completed")
	require.ErrorContains(t, err, "empty openid")
	// The run's last recipient settled by a receipt finishes it.
	l.record(t, "clean", rdb.Outcome{Status: rdb.OutcomeFailed, Code: 43004, Class: "recipient"}, rdb.RecordAnswered)
	res = resolve("last", 104, now)
	require.True(t, res.Changed)
	require.Equal(t, "completed", res.Finished)
}
