package ratelimit_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/ratelimit"
)

// A daily quota holds across processes: together they are granted exactly
// Daily tokens, then every caller gets a *PausedError until the day ends;
// another bucket is not affected, and the next day starts from zero.
func TestWaitDailyQuota(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var mu sync.Mutex
	dayEnd := time.Now().Add(time.Hour).Truncate(time.Second)
	cfg := ratelimit.Config{DayEnd: func(time.Time) time.Time {
		mu.Lock()
		defer mu.Unlock()
		return dayEnd
	}, PauseRecheck: time.Millisecond}
	procs := []*ratelimit.Limiter{b.process(t, cfg).lim, b.process(t, cfg).lim, b.process(t, cfg).lim}
	lim := ratelimit.Limit{Rate: 1000, Burst: 100, Daily: 250}

	var granted, paused int
	var wg sync.WaitGroup
	var cmu sync.Mutex
	for _, p := range procs {
		for range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					err := p.Wait(t.Context(), key, lim, ratelimit.PriorityLow)
					var pe *ratelimit.PausedError
					cmu.Lock()
					switch {
					case err == nil:
						granted++
						cmu.Unlock()
						continue
					case errors.As(err, &pe):
						paused++
						assert.WithinDuration(t, dayEnd, pe.Until, time.Millisecond, "paused until the day ends")
					default:
						t.Errorf("wait: %v", err)
					}
					cmu.Unlock()
					return
				}
			}()
		}
	}
	wg.Wait()
	require.Equal(t, 250, granted, "exactly the quota, across three processes")
	require.Equal(t, 60, paused)

	// Another account's bucket is not paused.
	require.NoError(t, procs[0].Wait(t.Context(), key+"-other", lim, ratelimit.PriorityLow))

	// The next day starts from zero.
	mu.Lock()
	dayEnd = dayEnd.Add(24 * time.Hour)
	mu.Unlock()
	waitFor(t, "the new day's grant", func() bool {
		return procs[1].Wait(t.Context(), key, lim, ratelimit.PriorityLow) == nil
	})
}
