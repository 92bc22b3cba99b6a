package console

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRateSampler: a run's rate is over the interval since its last view
// (at least sampleMin, at most sampleMax old), else its average since its
// start.
func TestRateSampler(t *testing.T) {
	t.Parallel()
	s := newRateSampler()
	start := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	at := start.Add(100 * time.Second)
	require.InDelta(t, 10.0, s.rate("c|1", 1000, start, at), 1e-9, "first view: since the start")
	require.InDelta(t, 10.0, s.rate("c|1", 1001, start, at.Add(time.Millisecond)), 0.1, "too soon: since the start, the sample kept")
	require.InDelta(t, 50.0, s.rate("c|1", 1500, start, at.Add(10*time.Second)), 1e-9, "over the last 10s")
	require.InDelta(t, 0.0, s.rate("c|1", 1500, start, at.Add(20*time.Second)), 1e-9, "paused: nothing settled since")
	later := at.Add(20*time.Second + sampleMax + time.Second)
	require.InDelta(t, 1500/later.Sub(start).Seconds(), s.rate("c|1", 1500, start, later), 1e-9, "an old sample is forgotten")
	require.Zero(t, s.rate("d|1", 0, time.Time{}, at), "no start, no rate")

	for i := range samplesMax + 10 {
		s.rate(string(rune('a'+i%26))+time.Duration(i).String(), 1, start, at)
	}
	require.LessOrEqual(t, len(s.last), samplesMax, "bounded")
}

func TestClockDuration(t *testing.T) {
	t.Parallel()
	require.Equal(t, "0:00:05", clockDuration(5*time.Second))
	require.Equal(t, "26:03:04", clockDuration(26*time.Hour+3*time.Minute+4*time.Second))
}
