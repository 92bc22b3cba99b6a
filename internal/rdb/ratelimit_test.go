package rdb_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/rdb"
)

const rateKey = "wx00000000000test1:message/template/send"

// pollRate calls cond on the test's goroutine every millisecond until it
// holds, and fails the test after a generous deadline.
func pollRate(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 20 s")
		}
		<-tick.C
	}
}

func TestTakeRateTokensGrantsWhatIsThere(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()

	// A new bucket is full: 5 of 100 are granted, the rest is due at 1/s.
	g, err := r.TakeRateTokens(ctx, rateKey, 1, 5, 100)
	require.NoError(t, err)
	require.Equal(t, 5, g.Granted)
	require.InDelta(t, 1, g.Rate, 1e-9)
	require.Zero(t, g.PausedFor)
	require.WithinDuration(t, time.Now(), g.At, 5*time.Second, "the server's time, this machine's clock")
	// The next token in 1 s; the missing 95 are capped at the bucket's 5,
	// due in 5 s.
	require.Equal(t, time.Second, g.NextIn)
	require.Equal(t, 5*time.Second, g.AllIn)

	// Whole tokens only: right after, less than one has refilled.
	g, err = r.TakeRateTokens(ctx, rateKey, 1, 5, 1)
	require.NoError(t, err)
	require.Zero(t, g.Granted)
	require.Positive(t, g.NextIn)
	require.LessOrEqual(t, g.NextIn, time.Second)

	// Asking for fewer than are there grants all of them.
	g, err = r.TakeRateTokens(ctx, "other", 1, 5, 3)
	require.NoError(t, err)
	require.Equal(t, 3, g.Granted)
	require.Zero(t, g.NextIn)
	require.Zero(t, g.AllIn)
	info, err := r.RateInfo(ctx, "other")
	require.NoError(t, err)
	require.True(t, info.Known)
	require.Equal(t, 1.0, info.Rate)
	require.Equal(t, 5, info.Burst)
	require.InDelta(t, min(5, 2+info.At.Sub(g.At).Seconds()), info.Tokens, 1e-6)
	require.Equal(t, 1.0, info.Factor)
}

func TestTakeRateTokensRefills(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	const rate = 50.0

	g, err := r.TakeRateTokens(ctx, rateKey, rate, 5, 5)
	require.NoError(t, err)
	require.Equal(t, 5, g.Granted)
	drained := g.At

	// Poll (no sleeps) until 10 more tokens have been granted: the 10th
	// comes 10/rate = 200 ms after the bucket was drained by the server's
	// clock, never sooner.
	total := 0
	var last time.Time
	pollRate(t, func() bool {
		g, err := r.TakeRateTokens(ctx, rateKey, rate, 5, 1)
		require.NoError(t, err)
		total += g.Granted
		last = g.At
		return total >= 10
	})
	require.Equal(t, 10, total)
	require.GreaterOrEqual(t, last.Sub(drained), 200*time.Millisecond-time.Microsecond)
}

func TestTakeRateTokensCapacity(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()

	g, err := r.TakeRateTokens(ctx, rateKey, 1000, 3, 100)
	require.NoError(t, err)
	require.Equal(t, 3, g.Granted)
	// Wait until the bucket is full again (3 ms at 1000/s), then for a
	// while longer: it never holds more than its burst.
	var first time.Time
	pollRate(t, func() bool {
		info, err := r.RateInfo(ctx, rateKey)
		require.NoError(t, err)
		require.LessOrEqual(t, info.Tokens, 3.0)
		if info.Tokens < 3 {
			return false
		}
		if first.IsZero() {
			first = info.At
		}
		return info.At.Sub(first) > 50*time.Millisecond
	})
	g, err = r.TakeRateTokens(ctx, rateKey, 1000, 3, 100)
	require.NoError(t, err)
	require.Equal(t, 3, g.Granted)

	// A smaller burst passed later caps what is there.
	pollRate(t, func() bool {
		info, err := r.RateInfo(ctx, rateKey)
		require.NoError(t, err)
		return info.Tokens == 3
	})
	g, err = r.TakeRateTokens(ctx, rateKey, 1000, 1, 100)
	require.NoError(t, err)
	require.Equal(t, 1, g.Granted)
}

func TestTakeRateTokensExpiresWhenFull(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()

	g, err := r.TakeRateTokens(ctx, rateKey, 100, 10, 10)
	require.NoError(t, err)
	// Empty at 100/s: full again in 100 ms, kept one second longer.
	exp, err := r.Client().PExpireTime(ctx, r.Keys().RateBucket(rateKey)).Result()
	require.NoError(t, err)
	require.InDelta(t, g.At.Add(1100*time.Millisecond).UnixMilli(), (exp / time.Millisecond), 2)
}

func TestPauseRate(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()

	until := time.Now().Add(time.Hour)
	p, err := r.PauseRate(ctx, rateKey, until)
	require.NoError(t, err)
	require.Equal(t, until.UnixMicro(), p.Until.UnixMicro())
	require.InDelta(t, time.Hour.Seconds(), p.For.Seconds(), 5)

	g, err := r.TakeRateTokens(ctx, rateKey, 10, 5, 1)
	require.NoError(t, err)
	require.Zero(t, g.Granted)
	require.InDelta(t, time.Hour.Seconds(), g.PausedFor.Seconds(), 5)
	require.Equal(t, until.UnixMicro(), g.PausedUntil.UnixMicro())
	info, err := r.RateInfo(ctx, rateKey)
	require.NoError(t, err)
	require.Equal(t, until.UnixMicro(), info.PausedUntil.UnixMicro())
	ttl, err := r.Client().PTTL(ctx, r.Keys().RateBucket(rateKey)).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 59*time.Minute, "the pause outlives the bucket's refill")

	// A shorter pause does not cut a longer one.
	p, err = r.PauseRate(ctx, rateKey, time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, until.UnixMicro(), p.Until.UnixMicro())

	ok, err := r.ResumeRate(ctx, rateKey)
	require.NoError(t, err)
	require.True(t, ok)
	g, err = r.TakeRateTokens(ctx, rateKey, 10, 5, 1)
	require.NoError(t, err)
	require.Equal(t, 1, g.Granted)
	ok, err = r.ResumeRate(ctx, rateKey)
	require.NoError(t, err)
	require.False(t, ok)

	// A pause in the past does nothing.
	p, err = r.PauseRate(ctx, rateKey, time.Now().Add(-time.Second))
	require.NoError(t, err)
	require.Zero(t, p.For)
	g, err = r.TakeRateTokens(ctx, rateKey, 10, 5, 1)
	require.NoError(t, err)
	require.Equal(t, 1, g.Granted)
}

func TestPauseRateEnds(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()

	p, err := r.PauseRate(ctx, rateKey, time.Now().Add(200*time.Millisecond))
	require.NoError(t, err)
	require.Positive(t, p.For)
	pollRate(t, func() bool {
		g, err := r.TakeRateTokens(ctx, rateKey, 10, 5, 1)
		require.NoError(t, err)
		if g.Granted == 0 {
			require.Positive(t, g.PausedFor)
		}
		return g.Granted == 1
	})
	info, err := r.RateInfo(ctx, rateKey)
	require.NoError(t, err)
	require.False(t, info.At.Before(p.Until), "granted only once the pause ended by the server's clock")
	require.True(t, info.PausedUntil.IsZero())
}

func TestSlowRate(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	s := rdb.RateSlowdown{Cut: 0.5, Floor: 0.2, Hold: time.Hour, Recovery: time.Hour}

	_, err := r.TakeRateTokens(ctx, rateKey, 100, 10, 10)
	require.NoError(t, err)
	got, err := r.SlowRate(ctx, rateKey, s)
	require.NoError(t, err)
	require.True(t, got.Applied)
	require.InDelta(t, 0.5, got.Factor, 1e-9)
	require.Equal(t, time.Hour, got.RecoveredIn)

	// The grant answer uses the effective rate: 50/s.
	g, err := r.TakeRateTokens(ctx, rateKey, 100, 10, 100)
	require.NoError(t, err)
	require.InDelta(t, 50, g.Rate, 0.1, "the factor climbs by 0.5 an hour")
	require.Positive(t, g.NextIn)
	require.LessOrEqual(t, g.NextIn, 20*time.Millisecond, "one token in 1/50 s at most")
	info, err := r.RateInfo(ctx, rateKey)
	require.NoError(t, err)
	require.InDelta(t, 0.5, info.Factor, 1e-3)
	require.WithinDuration(t, info.At.Add(time.Hour), info.RecoveredAt, time.Second)

	// Within Hold, further cuts are ignored.
	got, err = r.SlowRate(ctx, rateKey, s)
	require.NoError(t, err)
	require.False(t, got.Applied)
	require.InDelta(t, 0.5, got.Factor, 1e-3)

	// Without a hold, cuts compound down to the floor.
	s.Hold = 0
	got, err = r.SlowRate(ctx, rateKey, s)
	require.NoError(t, err)
	require.True(t, got.Applied)
	require.InDelta(t, 0.25, got.Factor, 1e-3)
	got, err = r.SlowRate(ctx, rateKey, s)
	require.NoError(t, err)
	require.InDelta(t, 0.2, got.Factor, 1e-9)
}

func TestSlowRateRecovers(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()

	_, err := r.TakeRateTokens(ctx, rateKey, 100, 10, 1)
	require.NoError(t, err)
	got, err := r.SlowRate(ctx, rateKey, rdb.RateSlowdown{Cut: 0.5, Floor: 0.1, Recovery: 300 * time.Millisecond})
	require.NoError(t, err)
	require.True(t, got.Applied)

	// The factor rises linearly: never below the cut, back at 1 after the
	// recovery, and the slowdown is then forgotten.
	prev := 0.5
	pollRate(t, func() bool {
		info, err := r.RateInfo(ctx, rateKey)
		require.NoError(t, err)
		require.GreaterOrEqual(t, info.Factor, prev-1e-9)
		prev = info.Factor
		return info.Factor == 1 && info.RecoveredAt.IsZero()
	})
	g, err := r.TakeRateTokens(ctx, rateKey, 100, 10, 1)
	require.NoError(t, err)
	require.Equal(t, 100.0, g.Rate)
	n, err := r.Client().HExists(ctx, r.Keys().RateBucket(rateKey), "sf").Result()
	require.NoError(t, err)
	require.False(t, n)
}

func TestSlowRateRefillsBeforeTheCut(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()

	// Drain a 1000/s rateKey, let it refill a little, then cut it to a
	// tenth: what refilled before the cut counts at the full rate.
	_, err := r.TakeRateTokens(ctx, rateKey, 1000, 100, 100)
	require.NoError(t, err)
	var before rdb.RateInfo
	pollRate(t, func() bool {
		before, err = r.RateInfo(ctx, rateKey)
		require.NoError(t, err)
		return before.Tokens >= 20
	})
	_, err = r.SlowRate(ctx, rateKey, rdb.RateSlowdown{Cut: 0.1, Floor: 0.1, Recovery: time.Hour})
	require.NoError(t, err)
	after, err := r.RateInfo(ctx, rateKey)
	require.NoError(t, err)
	require.GreaterOrEqual(t, after.Tokens, before.Tokens)
}

func TestRateInfoUnknownBucket(t *testing.T) {
	t.Parallel()
	r := setup(t)
	info, err := r.RateInfo(t.Context(), "never-used")
	require.NoError(t, err)
	require.False(t, info.Known)
	require.Equal(t, 1.0, info.Factor)
	require.True(t, info.PausedUntil.IsZero())
	require.WithinDuration(t, time.Now(), info.At, 5*time.Second)
}

func TestRateBucketKey(t *testing.T) {
	t.Parallel()
	require.Equal(t, "wxmass:{rate:"+rateKey+"}:bucket", rdb.Keys{}.RateBucket(rateKey))
	require.Equal(t, "p:{rate:c1}:bucket", rdb.Keys{Prefix: "p"}.RateBucket("c1"))
}
