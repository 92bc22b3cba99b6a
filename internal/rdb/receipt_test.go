package rdb_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/rdb"
)

// receiptRun seeds campaign c1's first run of size recipients o0..o(n-1),
// all sent with msgid base+i (as the worker records them), and returns the
// run number.
func receiptRun(t *testing.T, r *rdb.RDB, n int, base int64) int {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, r.CreateCampaign(ctx, "c1", []byte(`{}`), "draft", timeNow()))
	run, err := r.StartRun(ctx, "c1", "running", "running", int64(n)+1, r.Keys().Audience("c1"), "draft")
	require.NoError(t, err)
	settles := make([]rdb.Settle, n)
	for i := range settles {
		settles[i] = rdb.Settle{OpenID: fmt.Sprint("o", i), Outcome: rdb.Outcome{Status: rdb.OutcomeSent, MsgID: base + int64(i)}}
	}
	_, err = r.RecordOutcomes(ctx, "c1", run, "completed", settles...)
	require.NoError(t, err)
	return run
}

// counters returns the run's counters, and checks that the status
// counters add up to total.
func counters(t *testing.T, r *rdb.RDB, run int) map[string]int64 {
	t.Helper()
	rec, err := r.GetRun(t.Context(), "c1", run)
	require.NoError(t, err)
	var sum int64
	for _, s := range []string{rdb.OutcomeSent, rdb.OutcomeDelivered, rdb.OutcomeFailed, rdb.OutcomeSkipped, rdb.OutcomeCancelled} {
		sum += rec.Counters[s]
	}
	require.Equal(t, rec.Counters["total"], sum, "counters %v add up", rec.Counters)
	return rec.Counters
}

// TestApplyReceiptDelivered: a success receipt moves sent to delivered,
// keeping msgid and time, and moves the counters; applying it again, or a
// failure after it, changes nothing.
func TestApplyReceiptDelivered(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	const base = int64(1<<60) + 100
	run := receiptRun(t, r, 3, base)
	before, _, err := r.GetOutcome(ctx, "c1", run, "o1")
	require.NoError(t, err)

	res, err := r.ApplyReceipt(ctx, base+1, "o1", true, "ignored")
	require.NoError(t, err)
	require.Equal(t, rdb.ReceiptResult{Found: true, Changed: true, Campaign: "c1", Run: run, OpenID: "o1", Status: rdb.OutcomeDelivered}, res)
	o, ok, err := r.GetOutcome(ctx, "c1", run, "o1")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, rdb.Outcome{Status: rdb.OutcomeDelivered, MsgID: base + 1, At: before.At}, o)
	c := counters(t, r, run)
	require.EqualValues(t, 2, c["sent"])
	require.EqualValues(t, 1, c["delivered"])
	require.EqualValues(t, 3, c["total"])

	for _, delivered := range []bool{true, false} {
		res, err = r.ApplyReceipt(ctx, base+1, "o1", delivered, "user block")
		require.NoError(t, err)
		require.True(t, res.Found)
		require.False(t, res.Changed, "a replayed or late receipt changes nothing")
		require.Equal(t, rdb.OutcomeDelivered, res.Status)
	}
	require.Equal(t, c, counters(t, r, run))
}

// TestApplyReceiptFailed: a failure receipt moves sent to failed with class
// receipt and the reason as detail, and counts the reason.
func TestApplyReceiptFailed(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	const base = int64(1<<60) + 200
	run := receiptRun(t, r, 4, base)
	for i, reason := range []string{"user block", "user block", "system failed", ""} {
		res, err := r.ApplyReceipt(ctx, base+int64(i), fmt.Sprint("o", i), false, reason)
		require.NoError(t, err)
		require.True(t, res.Changed)
		require.Equal(t, rdb.OutcomeFailed, res.Status)
	}
	o, _, err := r.GetOutcome(ctx, "c1", run, "o0")
	require.NoError(t, err)
	require.Equal(t, rdb.OutcomeFailed, o.Status)
	require.Equal(t, rdb.ClassReceipt, o.Class)
	require.Equal(t, "user block", o.Detail)
	require.Equal(t, base, o.MsgID)
	o, _, err = r.GetOutcome(ctx, "c1", run, "o3")
	require.NoError(t, err)
	require.Equal(t, "unknown", o.Detail)

	c := counters(t, r, run)
	require.EqualValues(t, 0, c["sent"])
	require.EqualValues(t, 4, c["failed"])
	require.EqualValues(t, 4, c["class:receipt"])
	require.EqualValues(t, 2, c["receipt:user block"])
	require.EqualValues(t, 1, c["receipt:system failed"])
	require.EqualValues(t, 1, c["receipt:unknown"])
	require.EqualValues(t, 4, c["total"])

	// A delivered receipt after the failure changes nothing.
	res, err := r.ApplyReceipt(ctx, base, "o0", true, "")
	require.NoError(t, err)
	require.False(t, res.Changed)
	require.Equal(t, c, counters(t, r, run))
}

// TestApplyReceiptReasonIsClean: a reason cannot break the outcome's
// encoding or grow a counter name without bound.
func TestApplyReceiptReasonIsClean(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	const base = int64(1<<60) + 300
	run := receiptRun(t, r, 1, base)
	_, err := r.ApplyReceipt(ctx, base, "o0", false, "a|b "+strings.Repeat("é", 100))
	require.NoError(t, err)
	o, ok, err := r.GetOutcome(ctx, "c1", run, "o0")
	require.NoError(t, err)
	require.True(t, ok, "the outcome still parses")
	require.True(t, strings.HasPrefix(o.Detail, "a/b é"))
	require.LessOrEqual(t, len(o.Detail), rdb.ReceiptReasonMax)
	require.NotContains(t, o.Detail, "\uFFFD")
	require.EqualValues(t, 1, counters(t, r, run)["receipt:"+o.Detail])
}

// TestApplyReceiptMismatch: a receipt whose user is not the recipient of
// its msgid changes no outcome and no counter, and names the recipient;
// an empty user is an error.
func TestApplyReceiptMismatch(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	const base = int64(1<<60) + 500
	run := receiptRun(t, r, 2, base)
	before := counters(t, r, run)
	for _, delivered := range []bool{false, true} {
		res, err := r.ApplyReceipt(ctx, base+1, "o0", delivered, "user block")
		require.NoError(t, err)
		require.Equal(t, rdb.ReceiptResult{Found: true, Mismatch: true, Campaign: "c1", Run: run, OpenID: "o1"}, res)
	}
	for _, o := range []string{"o0", "o1"} {
		out, _, err := r.GetOutcome(ctx, "c1", run, o)
		require.NoError(t, err)
		require.Equal(t, rdb.OutcomeSent, out.Status, o)
	}
	require.Equal(t, before, counters(t, r, run))
	_, err := r.ApplyReceipt(ctx, base+1, "", false, "user block")
	require.ErrorContains(t, err, "empty openid")

	// The recipient's own receipt still applies.
	res, err := r.ApplyReceipt(ctx, base+1, "o1", false, "user block")
	require.NoError(t, err)
	require.True(t, res.Changed)
}

// TestApplyReceiptUnknown: an unknown msgid is Found false without error;
// an outcome that is not sent (failed at send, skipped) is never changed.
func TestApplyReceiptUnknown(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	res, err := r.ApplyReceipt(ctx, 987654321, "o0", true, "")
	require.NoError(t, err)
	require.Equal(t, rdb.ReceiptResult{}, res)

	const base = int64(1<<60) + 400
	run := receiptRun(t, r, 1, base)
	_, err = r.RecordOutcomes(ctx, "c1", run, "completed", rdb.Settle{OpenID: "f", Outcome: rdb.Outcome{Status: rdb.OutcomeFailed, Code: 43004, Class: "recipient", MsgID: base + 50}})
	require.NoError(t, err)
	before := counters(t, r, run)
	res, err = r.ApplyReceipt(ctx, base+50, "f", true, "")
	require.NoError(t, err)
	require.Equal(t, rdb.ReceiptResult{Found: true, Campaign: "c1", Run: run, OpenID: "f", Status: rdb.OutcomeFailed}, res)
	require.Equal(t, before, counters(t, r, run))
}

// TestApplyReceiptConcurrent: many racing copies of the same receipts (as
// WeChat's retries and several serve processes give) change each outcome
// exactly once.
func TestApplyReceiptConcurrent(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	const n, copies = 50, 4
	const base = int64(1<<60) + 1000
	run := receiptRun(t, r, n, base)
	var wg sync.WaitGroup
	changed := make(chan bool, n*copies)
	for i := range n {
		for range copies {
			wg.Go(func() {
				res, err := r.ApplyReceipt(ctx, base+int64(i), fmt.Sprint("o", i), i%5 != 0, "user block")
				require.NoError(t, err)
				changed <- res.Changed
			})
		}
	}
	wg.Wait()
	close(changed)
	count := 0
	for c := range changed {
		if c {
			count++
		}
	}
	require.Equal(t, n, count)
	c := counters(t, r, run)
	require.EqualValues(t, 40, c["delivered"])
	require.EqualValues(t, 10, c["failed"])
	require.EqualValues(t, 10, c["receipt:user block"])
	require.EqualValues(t, 0, c["sent"])
}

// TestFirstDelivery: the first claim of a key wins until it expires or is
// forgotten; keys live under the prefix.
func TestFirstDelivery(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	first, err := r.FirstDelivery(ctx, "msgid:gh_1:TEMPLATESENDJOBFINISH:1", time.Minute)
	require.NoError(t, err)
	require.True(t, first)
	first, err = r.FirstDelivery(ctx, "msgid:gh_1:TEMPLATESENDJOBFINISH:1", time.Minute)
	require.NoError(t, err)
	require.False(t, first)
	first, err = r.FirstDelivery(ctx, "msgid:gh_1:TEMPLATESENDJOBFINISH:2", time.Minute)
	require.NoError(t, err)
	require.True(t, first)

	ttl, err := r.Client().PTTL(ctx, r.Keys().ReceiptDedupe("msgid:gh_1:TEMPLATESENDJOBFINISH:1")).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 50*time.Second)
	require.True(t, strings.HasPrefix(r.Keys().ReceiptDedupe("k"), r.Keys().Prefix+":rcpt:"))

	require.NoError(t, r.ForgetDelivery(ctx, "msgid:gh_1:TEMPLATESENDJOBFINISH:1"))
	first, err = r.FirstDelivery(ctx, "msgid:gh_1:TEMPLATESENDJOBFINISH:1", time.Minute)
	require.NoError(t, err)
	require.True(t, first, "forgotten")

	first, err = r.FirstDelivery(ctx, "short", 50*time.Millisecond)
	require.NoError(t, err)
	require.True(t, first)
	require.Eventually(t, func() bool {
		first, err := r.FirstDelivery(ctx, "short", time.Minute)
		require.NoError(t, err)
		return first
	}, 5*time.Second, 20*time.Millisecond, "the claim expires")

	_, err = r.FirstDelivery(ctx, "k", 0)
	require.ErrorContains(t, err, "not positive")
}
