package worker

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestBreakerCount: the breaker trips on threshold outage-like failures in
// a row of one account, an answer in between starts the count again, the
// accounts count apart, and there is no time window: a quiet account whose
// calls fail one a second (or one a minute) trips after as many failures
// as a busy one.
func TestBreakerCount(t *testing.T) {
	t.Parallel()
	const threshold = 5
	t.Run("opens on N in a row", func(t *testing.T) {
		t.Parallel()
		var b breaker
		for i := 1; i < threshold; i++ {
			require.False(t, b.observe("wx1", true, threshold), "failure %d", i)
		}
		require.True(t, b.observe("wx1", true, threshold))
		require.True(t, b.observe("wx1", true, threshold), "stays tripped while failures go on")
	})
	t.Run("an answer resets", func(t *testing.T) {
		t.Parallel()
		var b breaker
		for range 3 * threshold {
			for i := 1; i < threshold; i++ {
				require.False(t, b.observe("wx1", true, threshold))
			}
			require.False(t, b.observe("wx1", false, threshold))
		}
		b.observe("wx1", true, threshold)
		b.reset("wx1")
		for i := 1; i < threshold; i++ {
			require.False(t, b.observe("wx1", true, threshold), "a close starts the count again")
		}
	})
	t.Run("accounts apart", func(t *testing.T) {
		t.Parallel()
		var b breaker
		for i := 1; i < threshold; i++ {
			require.False(t, b.observe("wx1", true, threshold))
			require.False(t, b.observe("wx2", false, threshold))
			require.False(t, b.observe("wx3", true, threshold))
		}
		require.True(t, b.observe("wx1", true, threshold))
		require.False(t, b.observe("wx2", true, threshold))
		require.True(t, b.observe("wx3", true, threshold))
	})
	t.Run("quiet account trips", func(t *testing.T) {
		t.Parallel()
		// observe keeps no clock: failures a second or a minute apart
		// count as failures a millisecond apart do (the outage brake's
		// one-second window never trips for an account sending 1/s).
		var b breaker
		var tripped int
		for range threshold {
			if b.observe("wx-quiet", true, threshold) {
				tripped++
			}
		}
		require.Equal(t, 1, tripped)
	})
}
