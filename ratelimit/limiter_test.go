package ratelimit_test

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/ratelimit"
)

func TestWaitGrants(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.process(t, ratelimit.Config{})
	// Ten tokens from the burst; at 1/s the bucket stays short of full for
	// seconds after.
	lim := ratelimit.Limit{Rate: 1, Burst: 10}

	for range 10 {
		require.NoError(t, p.lim.Wait(t.Context(), key, lim, ratelimit.PriorityLow))
	}
	st := p.lim.Stats()
	require.Equal(t, int64(10), st.Granted)
	require.Zero(t, st.Waiting)
	require.Equal(t, 1, st.Leasers)

	state, err := p.lim.State(t.Context(), key)
	require.NoError(t, err)
	require.Equal(t, ratelimit.Limit{Rate: 1, Burst: 9}, state.Limit, "the bucket holds the burst less the headroom and prefetch (ceil(1/s × 60 ms) = 1)")
	require.Equal(t, 1.0, state.Rate)
	require.Equal(t, 1.0, state.Factor)
	require.Less(t, state.Tokens, 10.0)
	require.False(t, state.Paused())
}

func TestWaitInvalid(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.process(t, ratelimit.Config{})
	for _, tt := range []struct {
		name string
		key  string
		lim  ratelimit.Limit
	}{
		{"zero rate", key, ratelimit.Limit{Rate: 0, Burst: 1}},
		{"negative rate", key, ratelimit.Limit{Rate: -1, Burst: 1}},
		{"NaN rate", key, ratelimit.Limit{Rate: math.NaN(), Burst: 1}},
		{"infinite rate", key, ratelimit.Limit{Rate: math.Inf(1), Burst: 1}},
		{"zero burst", key, ratelimit.Limit{Rate: 1, Burst: 0}},
		{"empty key", "", ratelimit.Limit{Rate: 1, Burst: 1}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := p.lim.Wait(t.Context(), tt.key, tt.lim, ratelimit.PriorityLow)
			require.ErrorIs(t, err, ratelimit.ErrInvalidLimit)
		})
	}
}

// TestWaitPriority saturates a bucket with low-priority callers, then adds
// high-priority ones: while any high one waits, no low one is served.
// Stats counts each queue under the bucket's lock, so the check does not
// depend on when the callers' goroutines get to run.
func TestWaitPriority(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.process(t, ratelimit.Config{})
	// One token per Redis answer, 200 ms apart: time enough for the high
	// callers to queue between two grants.
	lim := ratelimit.Limit{Rate: 5, Burst: 1}
	const lows, highs = 10, 3

	var (
		wg          sync.WaitGroup
		highsServed atomic.Int64
	)
	start := func(n int, prio ratelimit.Priority) {
		for range n {
			wg.Go(func() {
				if err := p.lim.Wait(t.Context(), key, lim, prio); err != nil {
					t.Errorf("wait: %v", err)
				}
				if prio == ratelimit.PriorityHigh {
					highsServed.Add(1)
				}
			})
		}
	}

	start(lows, ratelimit.PriorityLow)
	waitFor(t, "low callers queued", func() bool {
		st := p.lim.Stats()
		return st.Waiting+int(st.Granted) == lows
	})
	start(highs, ratelimit.PriorityHigh)
	var lowsWaiting int
	waitFor(t, "high callers queued", func() bool {
		// Each high caller is queued or served (a grant may come before
		// the last one queues).
		st := p.lim.Stats()
		lowsWaiting = st.Waiting - st.WaitingHigh
		return st.WaitingHigh+int(highsServed.Load()) == highs
	})
	require.Greater(t, lowsWaiting, 1, "low callers still waiting")

	// At 5/s the highs are through in about 600 ms; the lows after them.
	waitFor(t, "high callers served", func() bool {
		st := p.lim.Stats()
		if st.WaitingHigh > 0 {
			require.Equal(t, lowsWaiting, st.Waiting-st.WaitingHigh, "a low caller was served while a high one waited")
			return false
		}
		return true
	})
	st := p.lim.Stats()
	require.Positive(t, st.Waiting, "low callers remain after the high ones")
	wg.Wait()
	require.Equal(t, int64(lows+highs), p.lim.Stats().Granted)
}

// TestWaitMaxWait checks that callers whose turn would come after MaxWait
// are turned away with an *Error saying when to come back, most of them at
// once.
func TestWaitMaxWait(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const maxWait = time.Second
	p := b.process(t, ratelimit.Config{MaxWait: maxWait})
	// One token now, then one every 200 ms: of 10 callers, about 5 can be
	// served within a second.
	lim := ratelimit.Limit{Rate: 5, Burst: 1}
	const n = 10

	type result struct {
		err     error
		elapsed time.Duration
	}
	results := make(chan result, n)
	start := time.Now()
	for range n {
		go func() {
			err := p.lim.Wait(t.Context(), key, lim, ratelimit.PriorityLow)
			results <- result{err, time.Since(start)}
		}()
	}
	granted, first := 0, time.Duration(math.MaxInt64)
	var throttled []*ratelimit.Error
	for range n {
		r := <-results
		require.Less(t, r.elapsed, maxWait+2*time.Second, "no caller waits much beyond MaxWait")
		if r.err == nil {
			granted++
			continue
		}
		var te *ratelimit.Error
		require.ErrorAs(t, r.err, &te)
		require.Equal(t, key, te.Key)
		throttled = append(throttled, te)
		first = min(first, r.elapsed)
	}
	t.Logf("%d granted, %d throttled, first after %s", granted, len(throttled), first)
	require.GreaterOrEqual(t, granted, 1)
	require.LessOrEqual(t, granted, 7)
	require.GreaterOrEqual(t, len(throttled), 3)
	require.Less(t, first, maxWait/2, "hopeless callers are turned away at once")
	for _, te := range throttled {
		// Their turn: 5 to 10 tokens at 5/s, or later if this process got
		// fewer tokens lately (a loaded machine).
		require.Positive(t, te.RetryAfter)
		require.LessOrEqual(t, te.RetryAfter, 5*time.Second)
	}
	require.Zero(t, p.lim.Stats().Waiting)
}

// TestWaitCancel cancels callers waiting on a saturated bucket: they
// return at once, and the callers after them are not delayed.
func TestWaitCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.process(t, ratelimit.Config{MaxWait: time.Minute})
	lim := ratelimit.Limit{Rate: 10, Burst: 1}
	require.NoError(t, p.lim.Wait(t.Context(), key, lim, ratelimit.PriorityLow))

	// An already cancelled ctx returns at once.
	done, cancelDone := context.WithCancel(t.Context())
	cancelDone()
	require.ErrorIs(t, p.lim.Wait(done, key, lim, ratelimit.PriorityLow), context.Canceled)

	const n = 50
	ctx, cancel := context.WithCancel(t.Context())
	errs := make(chan error, n)
	for range n {
		go func() { errs <- p.lim.Wait(ctx, key, lim, ratelimit.PriorityLow) }()
	}
	waitFor(t, "callers queued", func() bool { return p.lim.Stats().Waiting == n })
	cancelled := time.Now()
	cancel()
	for range n {
		select {
		case err := <-errs:
			require.ErrorIs(t, err, context.Canceled)
		case <-time.After(5 * time.Second):
			t.Fatal("a cancelled caller did not return")
		}
	}
	// Their tokens would take 5 s at 10/s.
	require.Less(t, time.Since(cancelled), 2*time.Second, "cancelled callers return promptly")
	require.Zero(t, p.lim.Stats().Waiting)

	// The next callers get the tokens at the rate: nothing was taken for
	// the cancelled ones beyond, at most, the one in flight.
	next := time.Now()
	for range 3 {
		require.NoError(t, p.lim.Wait(t.Context(), key, lim, ratelimit.PriorityLow))
	}
	require.Less(t, time.Since(next), 2*time.Second)
	require.LessOrEqual(t, p.lim.Stats().Dropped, int64(1))
}

func TestWaitDeadline(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.process(t, ratelimit.Config{MaxWait: time.Minute})
	lim := ratelimit.Limit{Rate: 0.1, Burst: 1}
	require.NoError(t, p.lim.Wait(t.Context(), key, lim, ratelimit.PriorityLow))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, p.lim.Wait(ctx, key, lim, ratelimit.PriorityLow), context.DeadlineExceeded)
}

// TestWaitRedisDown checks that a Redis failure reaches the callers as an
// error of its own, not as throttling.
func TestWaitRedisDown(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { _ = c.Close() })
	l, err := ratelimit.New(rdb.New(c, "wxmasstest:down"), ratelimit.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, l.Close()) })

	err = l.Wait(t.Context(), key, ratelimit.Limit{Rate: 1, Burst: 1}, ratelimit.PriorityLow)
	require.Error(t, err)
	var te *ratelimit.Error
	require.False(t, errors.As(err, &te))
	require.Contains(t, err.Error(), key)
}

func TestClose(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.process(t, ratelimit.Config{MaxWait: time.Minute})
	lim := ratelimit.Limit{Rate: 0.1, Burst: 1}
	require.NoError(t, p.lim.Wait(t.Context(), key, lim, ratelimit.PriorityLow))

	const n = 5
	errs := make(chan error, n)
	for range n {
		go func() { errs <- p.lim.Wait(t.Context(), key, lim, ratelimit.PriorityHigh) }()
	}
	waitFor(t, "callers queued", func() bool { return p.lim.Stats().Waiting == n })
	require.NoError(t, p.lim.Close())
	for range n {
		require.ErrorIs(t, <-errs, ratelimit.ErrClosed)
	}
	require.ErrorIs(t, p.lim.Wait(t.Context(), key, lim, ratelimit.PriorityLow), ratelimit.ErrClosed)
	require.NoError(t, p.lim.Close(), "Close is idempotent")
	require.Zero(t, p.lim.Stats().Leasers)
}

func TestCloseUnused(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	l, err := ratelimit.New(rdb.New(c, ""), ratelimit.Config{})
	require.NoError(t, err)
	require.NoError(t, l.Close())
	require.NoError(t, l.Close())
}

// TestLeaserIdleExit checks that a leaser exits when it has had no
// callers for IdleTimeout, and that the next caller starts a new one.
func TestLeaserIdleExit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.process(t, ratelimit.Config{IdleTimeout: 20 * time.Millisecond})
	lim := ratelimit.Limit{Rate: 1000, Burst: 10}
	require.NoError(t, p.lim.Wait(t.Context(), key, lim, ratelimit.PriorityLow))
	waitFor(t, "leaser exits", func() bool { return p.lim.Stats().Leasers == 0 })
	require.NoError(t, p.lim.Wait(t.Context(), key, lim, ratelimit.PriorityLow))
	require.Equal(t, int64(2), p.lim.Stats().Granted)
}

func TestNewConfig(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	r := rdb.New(c, "")
	_, err := ratelimit.New(nil, ratelimit.Config{})
	require.Error(t, err)
	for _, tt := range []struct {
		name string
		cfg  ratelimit.Config
		want string
	}{
		{"max batch", ratelimit.Config{MaxBatch: -1}, "max batch -1 is negative"},
		{"max wait", ratelimit.Config{MaxWait: -time.Second}, "max wait -1s is negative"},
		{"cut", ratelimit.Config{SlowdownCut: 1}, "slowdown cut 1 is not in (0, 1)"},
		{"floor", ratelimit.Config{SlowdownFloor: 1.5}, "slowdown floor 1.5 is not in (0, 1]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ratelimit.New(r, tt.cfg)
			require.ErrorContains(t, err, "ratelimit: config: "+tt.want)
		})
	}

	cfg := ratelimit.Config{}.WithDefaults()
	require.Equal(t, ratelimit.MaxBatchDefault, cfg.MaxBatch)
	require.Equal(t, ratelimit.MaxPauseDefault, cfg.MaxPause)
	require.Equal(t, ratelimit.BatchWindowDefault, cfg.BatchWindow)
	require.Equal(t, ratelimit.MaxWaitDefault, cfg.MaxWait)
	require.Equal(t, ratelimit.SlowdownCutDefault, cfg.SlowdownCut)
	require.Equal(t, ratelimit.SlowdownRecoveryDefault, cfg.SlowdownRecovery)
	require.Equal(t, ratelimit.PrefetchDefault, cfg.Prefetch)
	require.Equal(t, 5*time.Millisecond, ratelimit.Config{Headroom: 10 * time.Millisecond}.WithDefaults().Prefetch, "at most half the headroom")
	require.Negative(t, ratelimit.Config{Headroom: -1}.WithDefaults().Prefetch, "no headroom, no prefetch")
	require.NotNil(t, cfg.NowFunc)
	require.NotNil(t, cfg.Logger)
}

// TestWaitPrefetch: while the bucket has plenty, a busy process takes
// tokens ahead and most callers get one without waiting for a Redis call;
// tokens nobody came for expire after Prefetch; and every token Redis
// granted is either handed to a caller or counted as dropped, never kept.
func TestWaitPrefetch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.process(t, ratelimit.Config{})
	lim := ratelimit.Limit{Rate: 50000, Burst: 5000}
	const callers, each = 20, 200
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range each {
				if err := p.lim.Wait(t.Context(), key, lim, ratelimit.PriorityLow); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	st := p.lim.Stats()
	t.Logf("%d tokens, %d of them taken ahead, %d Redis calls, %d spare, %d dropped", st.Granted, st.Prefetched, st.Calls, st.Spare, st.Dropped)
	require.EqualValues(t, callers*each, st.Granted)
	require.Greater(t, st.Prefetched, st.Granted/2, "most callers took a token taken ahead")
	require.Less(t, st.Calls, st.Granted/10, "Redis calls")

	// Tokens left over expire within Prefetch.
	waitFor(t, "spare tokens expire", func() bool { return p.lim.Stats().Spare == 0 })
	require.NoError(t, p.lim.Close())
	st = p.lim.Stats()
	granted := 0
	for _, g := range p.hook.grants {
		granted += g.n
	}
	require.EqualValues(t, granted, st.Granted+st.Dropped, "every token Redis granted was handed out or dropped")
}
