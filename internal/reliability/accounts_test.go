//go:build reliability

package reliability

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestQuotaPauseOfOneAccount: three worker processes send for two Official
// Accounts, a and b, configured in an accounts file, each at 300/s, burst
// 30, under WeChat's daily limit of 8,000 template sends per account. Two
// campaigns start at once: A, 6,000 recipients of a, and B, 7,500 of b.
// Another system of account a has already sent 6,000 today, so A gets
// 45009 (daily quota reached) after 2,000 sends, while B still has some 18 s
// of sending ahead of it.
//
// Invariant 5: 45009 pauses (account a, template/send) and never turns
// recipients into failures; and the pause is a's alone:
//
//   - B sends on at its full rate while A is paused: at least 90 % of 300 a
//     second on average, counted by the fake, over the whole seconds between
//     A's pause and B's end;
//   - A does not complete while paused, and none of its recipients fails;
//   - once WeChat's quota is back (ResetQuotas, as clear_quota does), the
//     workers' quota probe (every second here) resumes a, and A completes;
//   - each account's calls stay within its own rate plus burst.
//
// (Why the head start: both campaigns send at the same rate, so without it
// A would reach any daily limit B stays under only after B had finished.)
func TestQuotaPauseOfOneAccount(t *testing.T) {
	const (
		nA, nB = 6000, 7500
		daily  = 8000
		spent  = 6000 // of a's quota, before the run
		rate   = 300
		burst  = 30
		probe  = time.Second
		// How long A is watched, paused, after B completed.
		hold = 3 * time.Second
	)
	begin := time.Now()
	a := FleetAccount{ID: "a", AppID: "wx0000000000000aaa", Secret: "a-secret-0123456789abcdef01234567", Rate: rate, Burst: burst}
	b := FleetAccount{ID: "b", AppID: "wx0000000000000bbb", Secret: "b-secret-0123456789abcdef01234567", Rate: rate, Burst: burst}
	api := wechat.APITemplateSend
	rs := StartRedis(t, redistest.ServerConfig{})
	fake := StartFake(t, wechattest.Config{
		Accounts: []wechattest.Account{{AppID: a.AppID, Secret: a.Secret}, {AppID: b.AppID, Secret: b.Secret}},
		Limits:   map[string]wechattest.Limit{api: {Daily: daily}},
	})
	fake.SpendQuota(t, a.AppID, a.Secret, spent)
	f := StartFleet(t, FleetConfig{RedisURL: rs.URL(), Fake: fake, Workers: 3, Accounts: []FleetAccount{a, b},
		Env: []string{"WXMASS_QUOTA_PROBE_INTERVAL=" + probe.String()}})
	runA := f.LaunchFor(t, f.Account(t, "a"), campaigns.KindTemplate, OpenIDs("ACCTA", nA))
	runB := f.LaunchFor(t, f.Account(t, "b"), campaigns.KindTemplate, OpenIDs("ACCTB", nB))

	// A's pause as wxmass records it: its bucket's pause, read every 100 ms
	// while B runs.
	ctx := context.Background()
	bucketA := a.AppID + ":" + api
	paused := func() bool {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		info, err := f.RDB().RateInfo(cctx, bucketA)
		require.NoError(t, err)
		return info.PausedUntil.After(info.At)
	}
	var pausedAt time.Time
	var atPause rdb.RunRecord
	recB := runB.Wait(t, 3*time.Minute, Hook{Every: 100 * time.Millisecond, Do: func(rdb.RunRecord) {
		if pausedAt.IsZero() && paused() {
			pausedAt = time.Now()
			var err error
			atPause, err = runA.Record(ctx)
			require.NoError(t, err)
			t.Logf("a paused at %d/%d of A settled", atPause.Settled(), nA)
		}
	}})
	require.False(t, pausedAt.IsZero(), "A was paused by 45009 while B ran")

	// B's rate while A was paused: whole seconds only.
	perB := fake.CallsPerSecond(b.AppID, api, pausedAt.Truncate(time.Second).Add(time.Second), runB.Finished.Truncate(time.Second))
	require.GreaterOrEqual(t, len(perB), 5, "B sent for at least 5 whole seconds while A was paused")
	meanB := float64(sum(perB)) / float64(len(perB))
	t.Logf("B's calls per second while A was paused: %v", perB)
	assert.GreaterOrEqual(t, meanB, 0.9*rate, "A's pause does not slow B: B at least 90%% of its rate while A is paused")
	perBoth := fake.CallsPerSecond(b.AppID, api, runB.Started.Truncate(time.Second).Add(time.Second), pausedAt.Truncate(time.Second))
	t.Logf("before A's pause, calls per second: A %v, B %v", fake.CallsPerSecond(a.AppID, api, runA.Started, pausedAt.Add(time.Second)),
		fake.CallsPerSecond(b.AppID, api, runA.Started, pausedAt.Add(time.Second)))

	// A, paused: it stays so, sends nothing and fails nobody, for a few
	// probes.
	watch := time.NewTicker(100 * time.Millisecond)
	defer watch.Stop()
	var recA rdb.RunRecord
	for end := time.Now().Add(hold); time.Now().Before(end); <-watch.C {
		var err error
		recA, err = runA.Record(ctx)
		require.NoError(t, err)
		require.Equal(t, string(campaigns.StateRunning), recA.State, "A does not complete while paused")
		require.Zero(t, recA.Counters[rdb.OutcomeFailed], "no recipient of A fails for the quota: %v", recA.Counters)
		require.True(t, paused(), "a stays paused until WeChat's quota is back")
	}
	resetAt := time.Now()
	sentPaused := recA.Counters[rdb.OutcomeSent]
	callsPaused := fake.Calls(a.AppID, api, pausedAt.Truncate(time.Second).Add(time.Second), resetAt.Truncate(time.Second))
	probes := fake.Calls(a.AppID, wechat.APIQuotaGet, pausedAt.Truncate(time.Second), resetAt.Truncate(time.Second).Add(time.Second))
	assert.EqualValues(t, daily-spent, sentPaused, "A sent exactly what was left of a's quota")
	t.Logf("a paused for %s: A at %d/%d sent, %d template calls of a in its whole seconds, %d quota probes",
		resetAt.Sub(pausedAt).Round(100*time.Millisecond), sentPaused, nA, callsPaused, probes)

	// WeChat's quota is back: the probe resumes a, and A completes.
	fake.ResetQuotas()
	recA = runA.Wait(t, 3*time.Minute)
	resumed, ok := fake.FirstCall(a.AppID, api, resetAt)
	require.True(t, ok, "A sent again after the reset")

	sA, sB := Check(t, runA), Check(t, runB)
	assert.EqualValues(t, nA, recA.Counters[rdb.OutcomeSent], "every recipient of A was sent")
	assert.EqualValues(t, nB, recB.Counters[rdb.OutcomeSent], "every recipient of B was sent")
	st := fake.Stats().APIs[api]
	assert.Positive(t, st.Errors[45009], "the fake answered 45009")

	sA.Scenario += " A"
	sA.Note("account a, %d of its daily %d spent before; 45009 at %d sent", spent, daily, atPause.Settled())
	sA.Note("paused %s with 0 failed: %d template calls in its whole seconds, %d quota probes", resetAt.Sub(pausedAt).Round(100*time.Millisecond), callsPaused, probes)
	sA.Note("sending again %s after ResetQuotas", resumed.Sub(resetAt).Round(100*time.Millisecond))
	sA.Note("45009 answered %d times", st.Errors[45009])
	sB.Scenario += " B"
	sB.Note("account b; %.0f/s (min %d) while a was paused, %d s; %.0f/s before, both sending", meanB, slices.Min(perB), len(perB),
		float64(sum(perBoth))/float64(max(1, len(perBoth))))
	sA.Elapsed, sB.Elapsed = time.Since(begin), time.Since(begin)
	Report(t, sA)
	Report(t, sB)
}
