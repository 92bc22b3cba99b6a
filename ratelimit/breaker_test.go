package ratelimit_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/ratelimit"
)

// TestOutagePauseApartFromQuotaPause: an outage pause and a quota pause of
// one bucket are kept apart in Redis: each is resumed on its own (the quota
// probe's Resume leaves the outage pause, the breaker's ResumeOutage leaves
// the quota pause), callers see which one holds them, and the bucket grants
// again only when neither lasts.
func TestOutagePauseApartFromQuotaPause(t *testing.T) {
	t.Parallel()
	b := setup(t)
	cfg := ratelimit.Config{PauseRecheck: 50 * time.Millisecond}
	p1, p2 := b.process(t, cfg), b.process(t, cfg)
	lim := ratelimit.Limit{Rate: 100, Burst: 10}
	paused := func(p *proc) ratelimit.PauseReason {
		t.Helper()
		err := p.lim.Wait(t.Context(), key, lim, ratelimit.PriorityLow)
		var pe *ratelimit.PausedError
		if errors.As(err, &pe) {
			return pe.Reason
		}
		require.NoError(t, err)
		return ""
	}
	require.Equal(t, ratelimit.PauseReason(""), paused(p2))

	outageUntil := time.Now().Add(time.Minute)
	require.NoError(t, p1.lim.PauseOutage(t.Context(), key, outageUntil))
	require.Equal(t, ratelimit.PauseOutage, paused(p1))
	waitFor(t, "p2 sees the outage pause", func() bool { return paused(p2) == ratelimit.PauseOutage })
	st, err := p2.lim.State(t.Context(), key)
	require.NoError(t, err)
	require.True(t, st.Paused())
	require.True(t, st.PausedUntil.IsZero(), "an outage pause is no quota pause")
	require.Equal(t, outageUntil.UnixMicro(), st.OutageUntil.UnixMicro())

	// The quota probe's Resume does not end the outage pause.
	require.NoError(t, p2.lim.Resume(t.Context(), key))
	require.Equal(t, ratelimit.PauseOutage, paused(p2))

	// A quota pause ending later is what callers see; the breaker's
	// ResumeOutage leaves it.
	quotaUntil := time.Now().Add(time.Hour)
	require.NoError(t, p1.lim.Pause(t.Context(), key, quotaUntil))
	waitFor(t, "p2 sees the quota pause", func() bool { return paused(p2) == ratelimit.PauseQuota })
	require.NoError(t, p1.lim.ResumeOutage(t.Context(), key))
	require.Equal(t, ratelimit.PauseQuota, paused(p1))
	st, err = p2.lim.State(t.Context(), key)
	require.NoError(t, err)
	require.True(t, st.OutageUntil.IsZero())
	require.Equal(t, quotaUntil.UnixMicro(), st.PausedUntil.UnixMicro())

	// Both at once, then the quota resumed: the outage still holds.
	require.NoError(t, p1.lim.PauseOutage(t.Context(), key, outageUntil))
	require.NoError(t, p1.lim.Resume(t.Context(), key))
	waitFor(t, "p2 sees the outage pause alone", func() bool { return paused(p2) == ratelimit.PauseOutage })
	require.NoError(t, p2.lim.ResumeOutage(t.Context(), key))
	waitFor(t, "both processes grant again", func() bool { return paused(p1) == "" && paused(p2) == "" })
}

// TestBreakers: a breaker opens once (later opens keep its since), counts
// failed probes, closes once, and its state is what every process reads.
func TestBreakers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	br1, br2 := b.process(t, ratelimit.Config{}).lim.Breakers(), b.process(t, ratelimit.Config{}).lim.Breakers()
	const app = "wx00000000000test1"
	st, err := br2.State(t.Context(), app)
	require.NoError(t, err)
	require.False(t, st.Open)

	opened, since, err := br1.Open(t.Context(), app, time.Minute)
	require.NoError(t, err)
	require.True(t, opened)
	require.WithinDuration(t, time.Now(), since, 5*time.Second)
	opened, since2, err := br2.Open(t.Context(), app, time.Minute)
	require.NoError(t, err)
	require.False(t, opened, "opened once")
	require.Equal(t, since, since2)

	n, err := br2.ProbeFailed(t.Context(), app, time.Minute)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	st, err = br1.State(t.Context(), app)
	require.NoError(t, err)
	require.Equal(t, ratelimit.BreakerState{Open: true, Since: since, Probes: 1}, st)

	was, since3, err := br1.Close(t.Context(), app)
	require.NoError(t, err)
	require.True(t, was)
	require.Equal(t, since, since3)
	was, _, err = br2.Close(t.Context(), app)
	require.NoError(t, err)
	require.False(t, was, "closed once")
	n, err = br2.ProbeFailed(t.Context(), app, time.Minute)
	require.NoError(t, err)
	require.Zero(t, n, "a probe failing after the close does not reopen it")
	st, err = br2.State(t.Context(), app)
	require.NoError(t, err)
	require.False(t, st.Open)
}

// TestBreakerOneProber: of two processes claiming an account's probe slot
// at once, again and again, exactly one gets each slot.
func TestBreakerOneProber(t *testing.T) {
	t.Parallel()
	b := setup(t)
	brs := []*ratelimit.Breakers{b.process(t, ratelimit.Config{}).lim.Breakers(), b.process(t, ratelimit.Config{}).lim.Breakers()}
	const app = "wx00000000000test2"
	const hold = 200 * time.Millisecond
	var wins [2]atomic.Int64
	deadline := time.Now().Add(time.Second)
	var wg sync.WaitGroup
	for i, br := range brs {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				ok, err := br.ClaimProbe(t.Context(), app, []string{"a", "b"}[i], hold)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					wins[i].Add(1)
				}
			}
		})
	}
	wg.Wait()
	total := wins[0].Load() + wins[1].Load()
	t.Logf("claims won in 1 s with a %v hold: %d and %d", hold, wins[0].Load(), wins[1].Load())
	// One slot per hold: at most 5 in a second, and a sixth at the edge
	// (fewer only when a busy machine delays the claims).
	require.GreaterOrEqual(t, total, int64(2))
	require.LessOrEqual(t, total, int64(6), "two processes won one slot")
}
