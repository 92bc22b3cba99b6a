package api

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Limiters of idle keys are dropped once full again, so many addresses do
// not grow the set without bound; a key still busy keeps its limiter.
func TestLimiterSetDropsIdleKeys(t *testing.T) {
	t.Parallel()
	s, err := newLimiterSet(Rate{Rate: 1, Burst: 2}, "test")
	require.NoError(t, err)
	t0 := time.Unix(1_700_000_000, 0)
	for i := range 1000 {
		require.Zero(t, s.take(fmt.Sprintf("192.0.2.%d", i), t0))
	}
	require.Equal(t, 1000, s.len())

	// Nine seconds on, a busy key empties its bucket; the others stay idle.
	busy := "198.51.100.1"
	require.Zero(t, s.take(busy, t0.Add(9*time.Second)))
	require.Zero(t, s.take(busy, t0.Add(9*time.Second)))
	require.Equal(t, 1001, s.len())

	// At ten seconds the set is swept: the busy key's bucket (one token
	// back of two) is kept, the full ones are dropped.
	t1 := t0.Add(limiterSweepInterval)
	require.Zero(t, s.take("203.0.113.1", t1))
	require.Equal(t, 2, s.len(), "idle keys dropped, the busy one kept")
	require.Zero(t, s.take(busy, t1))
	require.Equal(t, time.Second, s.take(busy, t1), "the busy key's bucket survived the sweep: empty, a token in 1 s")
	require.Zero(t, s.take("192.0.2.1", t1), "a dropped key starts full")
}

// Past limiterMaxEntries busy keys, new keys share one limiter.
func TestLimiterSetIsBounded(t *testing.T) {
	t.Parallel()
	s, err := newLimiterSet(Rate{Rate: 1, Burst: 2}, "test")
	require.NoError(t, err)
	t0 := time.Unix(1_700_000_000, 0)
	for i := range limiterMaxEntries {
		require.Zero(t, s.take(fmt.Sprint(i), t0))
	}
	require.Zero(t, s.take("new-1", t0))
	require.Zero(t, s.take("new-2", t0))
	require.Positive(t, s.take("new-3", t0), "new keys share the overflow bucket")
	require.Equal(t, limiterMaxEntries, s.len())
}

// The failure bucket's wait takes no token and makes no limiter for an
// address without failures.
func TestLimiterSetWait(t *testing.T) {
	t.Parallel()
	s, err := newLimiterSet(Rate{Rate: 0.5, Burst: 2}, "test")
	require.NoError(t, err)
	t0 := time.Unix(1_700_000_000, 0)
	require.Zero(t, s.wait("a", t0))
	require.Zero(t, s.len())
	s.spend("a", t0)
	require.Zero(t, s.wait("a", t0))
	s.spend("a", t0)
	require.Equal(t, 2*time.Second, s.wait("a", t0))
	require.Equal(t, time.Second, s.wait("a", t0.Add(time.Second)))
	require.Zero(t, s.wait("a", t0.Add(2*time.Second)))

	var none *limiterSet
	require.Zero(t, none.take("a", t0), "no limit")
	require.Zero(t, none.wait("a", t0))
	none.spend("a", t0)
}
