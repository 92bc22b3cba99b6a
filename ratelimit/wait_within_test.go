package ratelimit_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/ratelimit"
)

// TestWaitWithin: with a long Config.MaxWait, callers of WaitWithin with a
// short bound are served while a token comes within it and turned away
// with an *Error (and its estimate) otherwise, soon; Wait on the same
// limiter keeps the long bound.
func TestWaitWithin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.process(t, ratelimit.Config{MaxWait: time.Minute})
	// One token now, then one every 100 ms: of 20 callers bounded to
	// 250 ms, only the first few can be served.
	lim := ratelimit.Limit{Rate: 10, Burst: 1}
	const n, bound = 20, 250 * time.Millisecond
	type result struct {
		err     error
		elapsed time.Duration
	}
	results := make(chan result, n)
	start := time.Now()
	for range n {
		go func() {
			err := p.lim.WaitWithin(t.Context(), key, lim, ratelimit.PriorityLow, bound)
			results <- result{err, time.Since(start)}
		}()
	}
	granted := 0
	for range n {
		r := <-results
		if r.err == nil {
			granted++
			continue
		}
		var te *ratelimit.Error
		require.ErrorAs(t, r.err, &te)
		require.Positive(t, te.RetryAfter)
		require.Less(t, r.elapsed, bound+2*time.Second, "turned away near the bound, not after Config.MaxWait")
	}
	t.Logf("%d of %d granted within %s", granted, n, bound)
	require.GreaterOrEqual(t, granted, 1)
	require.LessOrEqual(t, granted, 8)

	// Wait keeps Config.MaxWait: a caller behind a short queue is served.
	for range 3 {
		require.NoError(t, p.lim.Wait(t.Context(), key, lim, ratelimit.PriorityLow))
	}
	require.Zero(t, p.lim.Stats().Waiting)
}
