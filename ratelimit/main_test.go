package ratelimit_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/ratelimit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const key = "wx00000000000test1:message/template/send"

// testBundle is one test's key prefix; each process() is a Limiter on its
// own Redis connection, as a separate worker process would have.
type testBundle struct {
	prefix string
}

func setup(tb testing.TB) *testBundle {
	tb.Helper()
	c := redistest.Client(tb, redistest.DBDefault)
	return &testBundle{prefix: redistest.Prefix(tb, c)}
}

// proc is what one worker process holds.
type proc struct {
	lim  *ratelimit.Limiter
	rdb  *rdb.RDB
	hook *scriptHook
}

func (b *testBundle) process(tb testing.TB, cfg ratelimit.Config) *proc {
	tb.Helper()
	c := redistest.Client(tb, redistest.DBDefault)
	h := &scriptHook{}
	c.AddHook(h)
	r := rdb.New(c, b.prefix)
	l, err := ratelimit.New(r, cfg)
	require.NoError(tb, err)
	// Registered after the client's cleanup, so it runs before it.
	tb.Cleanup(func() { require.NoError(tb, l.Close()) })
	return &proc{lim: l, rdb: r, hook: h}
}

// scriptHook counts the scripts a client runs (EVALSHA, and EVAL after
// NOSCRIPT: each is a round trip), and records the grants in the raw
// answers of the take script, with the Redis server's time of each, so
// that tests can check the fleet's grants independently of the Limiter.
type scriptHook struct {
	calls atomic.Int64

	mu     sync.Mutex
	grants []serverGrant
	rtts   []time.Duration // of the take script
}

type serverGrant struct {
	at time.Time // by the Redis server's clock
	n  int
}

func (h *scriptHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *scriptHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		name := cmd.Name()
		if name != "evalsha" && name != "eval" {
			return next(ctx, cmd)
		}
		h.calls.Add(1)
		start := time.Now()
		err := next(ctx, cmd)
		rtt := time.Since(start)
		// The take script is the one called with 1 key and 5 arguments
		// (rate, burst, n, daily quota, end of the quota's day); it answers
		// {granted, ..., now_us, pause_kind}.
		if c, ok := cmd.(*redis.Cmd); ok && err == nil && len(cmd.Args()) == 9 {
			if v, ok := c.Val().([]any); ok && len(v) == 8 {
				n, _ := v[0].(int64)
				us, _ := v[6].(int64)
				h.mu.Lock()
				h.grants = append(h.grants, serverGrant{at: time.UnixMicro(us), n: int(n)})
				h.rtts = append(h.rtts, rtt)
				h.mu.Unlock()
			}
		}
		return err
	}
}

func (h *scriptHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// serverGrants returns the time of every token granted to procs, by the
// Redis server's clock, sorted.
func serverGrants(procs []*proc) []time.Time {
	var times []time.Time
	for _, p := range procs {
		p.hook.mu.Lock()
		for _, g := range p.hook.grants {
			for range g.n {
				times = append(times, g.at)
			}
		}
		p.hook.mu.Unlock()
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	return times
}

// hammer runs perProc goroutines calling Wait in a loop on each process
// for d, and returns the time of every grant and the number of *Errors.
func hammer(t *testing.T, procs []*proc, perProc int, k string, lim ratelimit.Limit, d time.Duration) ([]time.Time, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	var (
		mu        sync.Mutex
		grants    []time.Time
		throttled int
		wg        sync.WaitGroup
	)
	for _, p := range procs {
		for range perProc {
			wg.Go(func() {
				var mine []time.Time
				n := 0
				defer func() {
					mu.Lock()
					grants = append(grants, mine...)
					throttled += n
					mu.Unlock()
				}()
				for {
					err := p.lim.Wait(ctx, k, lim, ratelimit.PriorityLow)
					var te *ratelimit.Error
					switch {
					case err == nil:
						mine = append(mine, time.Now())
					case errors.As(err, &te):
						n++
					case ctx.Err() != nil:
						return
					default:
						t.Errorf("wait: %v", err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	slices.SortFunc(grants, func(a, b time.Time) int { return a.Compare(b) })
	return grants, throttled
}

// stallMeter measures how long the test process was kept from running by a
// loaded machine: a goroutine ticks every 5 ms, and a gap between two ticks
// longer than threshold counts as a stall of the excess. A throughput
// assertion cannot hold when the processes under test get no CPU; tests use
// the meter to tell that from a slow limiter.
type stallMeter struct {
	threshold time.Duration
	stop      chan struct{}
	done      chan struct{}
	total     time.Duration // sum of the excesses
	longest   time.Duration // longest gap
}

func startStallMeter(threshold time.Duration) *stallMeter {
	m := &stallMeter{threshold: threshold, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		last := time.Now()
		for {
			select {
			case <-m.stop:
				return
			case now := <-tick.C:
				now = time.Now() // when this goroutine got to run
				gap := now.Sub(last)
				m.longest = max(m.longest, gap)
				if gap > m.threshold {
					m.total += gap - m.threshold
				}
				last = now
			}
		}
	}()
	return m
}

// Stop stops the meter and returns the total stall and the longest gap.
func (m *stallMeter) Stop() (total, longest time.Duration) {
	close(m.stop)
	<-m.done
	return m.total, m.longest
}

// starvation measures, while hammer runs, how long a loaded machine kept
// the processes from asking Redis: this process's stalls (stallMeter) plus
// the slowest process's Redis round trips beyond threshold (Redis is a
// process too, and a busy one answers late).
type starvation struct {
	meter     *stallMeter
	procs     []*proc
	threshold time.Duration
	from      []int // per proc, the round trips before the start
}

func startStarvation(procs []*proc, threshold time.Duration) *starvation {
	s := &starvation{meter: startStallMeter(threshold), procs: procs, threshold: threshold}
	for _, p := range procs {
		p.hook.mu.Lock()
		s.from = append(s.from, len(p.hook.rtts))
		p.hook.mu.Unlock()
	}
	return s
}

// Stop returns the total starvation and the longest gap of this process.
func (s *starvation) Stop() (total, longest time.Duration) {
	total, longest = s.meter.Stop()
	var worst time.Duration
	for i, p := range s.procs {
		var excess time.Duration
		p.hook.mu.Lock()
		for _, rtt := range p.hook.rtts[s.from[i]:] {
			excess += max(0, rtt-s.threshold)
		}
		p.hook.mu.Unlock()
		worst = max(worst, excess)
	}
	return total + worst, longest
}

// peak returns the most grants in any window [t, t+w).
func peak(sorted []time.Time, w time.Duration) int {
	best, lo := 0, 0
	for hi := range sorted {
		for sorted[hi].Sub(sorted[lo]) >= w {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// waitFor calls cond on the test's goroutine every few milliseconds until
// it holds, and fails the test after a generous deadline. (require.Eventually
// runs cond on another goroutine, where require must not be used.)
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		<-tick.C
	}
}
