package ratelimit

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/internal/rdb"
)

const (
	// shareTau is the time constant of a bucket's share estimate.
	shareTau = time.Second
	// shareMinFraction bounds the share estimate from below, as a fraction
	// of the bucket's rate, so that a few starved rounds cannot make
	// RetryAfter absurd.
	shareMinFraction = 1.0 / 1024
)

// bucket is one key's state in this process: the callers waiting for it,
// and what its leaser has learnt from Redis.
type bucket struct {
	key    string
	cancel context.CancelFunc // stops the leaser
	wake   chan struct{}      // a caller arrived (capacity 1)

	mu     sync.Mutex
	dead   bool // the leaser has exited; callers must look again
	lim    Limit
	queues [priorities]queue
	n      int // callers waiting, all priorities

	// A pause learnt from Redis: callers are answered from memory until
	// pauseCheck (local clock); pausedUntil is the server's end of it.
	pausedUntil  time.Time
	pauseCheck   time.Time
	pausedReason PauseReason

	// rate is the bucket's effective rate at the last answer. share is
	// the rate at which this process has lately been getting tokens while
	// short of them (an EWMA), for estimating waits; saturated says that
	// the last answer was short.
	rate      float64
	share     float64
	saturated bool
	lastReply time.Time

	// Tokens taken ahead of callers (Config.Prefetch), oldest first, each
	// lot usable until its time (local clock); spare counts them all.
	// served counts the tokens handed out since the last Redis call
	// (lastCall), the demand the next call prefetches for; refill is set
	// when a caller took spares below half of what the last call aimed
	// for (target).
	lots     []lot
	spare    int
	served   int
	lastCall time.Time
	target   int
	refill   bool
}

// lot is a batch of tokens taken ahead, usable until until.
type lot struct {
	n     int
	until time.Time
}

// takeSpare hands one token taken ahead to a caller that arrived while no
// one was waiting, and reports whether there was one, whether the leaser
// should take more (half of the last prefetch is gone), and how many
// expired tokens it dropped. b.mu is held.
func (b *bucket) takeSpare(now time.Time) (ok, wake bool, dropped int) {
	dropped = b.dropExpired(now)
	if b.spare == 0 {
		return false, false, dropped
	}
	b.lots[0].n--
	if b.lots[0].n == 0 {
		b.lots = b.lots[1:]
	}
	b.spare--
	b.served++
	if !b.refill && b.spare*2 <= b.target {
		b.refill = true
		return true, true, dropped
	}
	return true, false, dropped
}

// addSpare keeps n tokens granted at the earliest at start for later
// callers, until start+ttl. b.mu is held.
func (b *bucket) addSpare(n int, start time.Time, ttl time.Duration) {
	if n <= 0 {
		return
	}
	b.lots = append(b.lots, lot{n: n, until: start.Add(ttl)})
	b.spare += n
}

// dropExpired drops the lots whose time has passed and returns how many
// tokens it dropped. b.mu is held.
func (b *bucket) dropExpired(now time.Time) int {
	dropped := 0
	for len(b.lots) > 0 && !now.Before(b.lots[0].until) {
		dropped += b.lots[0].n
		b.spare -= b.lots[0].n
		b.lots = b.lots[1:]
	}
	return dropped
}

// dropSpare drops every token taken ahead and returns how many. b.mu is
// held.
func (b *bucket) dropSpare() int {
	n := b.spare
	b.lots, b.spare, b.target, b.refill = nil, 0, 0, false
	return n
}

// waiter is one caller of Wait, linked into its priority's queue while
// queued. Its channel receives exactly one answer: nil for a token, or an
// error.
type waiter struct {
	prev, next *waiter
	ch         chan error
	deadline   time.Time
	prio       int
	queued     bool
}

// queue is a FIFO of waiters of one priority.
type queue struct {
	head, tail *waiter
	n          int
}

func (b *bucket) push(w *waiter) {
	q := &b.queues[w.prio]
	w.prev, w.next = q.tail, nil
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	q.n++
	b.n++
	w.queued = true
}

func (b *bucket) remove(w *waiter) {
	q := &b.queues[w.prio]
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next = nil, nil
	q.n--
	b.n--
	w.queued = false
}

// answer takes w out of its queue and gives it err (nil: a token). b.mu is
// held.
func (b *bucket) answer(w *waiter, err error) {
	b.remove(w)
	if err == nil {
		b.served++
	}
	w.ch <- err
}

// deliver gives up to k tokens to the waiters, highest priority first, and
// returns how many it gave. b.mu is held.
func (b *bucket) deliver(k int) int {
	given := 0
	for p := priorities - 1; p >= 0 && given < k; p-- {
		for q := &b.queues[p]; q.head != nil && given < k; given++ {
			b.answer(q.head, nil)
		}
	}
	return given
}

// failAll answers every waiter with err. b.mu is held.
func (b *bucket) failAll(err error) {
	for p := range b.queues {
		for q := &b.queues[p]; q.head != nil; {
			b.answer(q.head, err)
		}
	}
}

// estimate is how long the waiter with pos callers ahead of it should
// expect to wait. b.mu is held.
func (b *bucket) estimate(pos int) time.Duration {
	s := b.share
	if s <= 0 {
		s = b.lim.Rate
	}
	return time.Duration(math.Ceil(float64(pos+1) / s * float64(time.Second)))
}

// expire answers the waiters whose MaxWait has passed with an *Error. b.mu
// is held.
func (b *bucket) expire(now time.Time) {
	pos := 0
	for p := priorities - 1; p >= 0; p-- {
		q := &b.queues[p]
		// Deadlines grow along a queue.
		for q.head != nil && !q.head.deadline.After(now) {
			b.answer(q.head, &Error{Key: b.key, RetryAfter: b.estimate(pos)})
		}
		pos += q.n
	}
}

// rejectHopeless answers with an *Error every waiter whose estimated wait
// already exceeds what is left of its MaxWait. b.mu is held.
func (b *bucket) rejectHopeless(now time.Time) {
	pos := 0
	for p := priorities - 1; p >= 0; p-- {
		for w := b.queues[p].head; w != nil; {
			next := w.next
			if est := b.estimate(pos); est > w.deadline.Sub(now) {
				b.answer(w, &Error{Key: b.key, RetryAfter: est})
			} else {
				pos++
			}
			w = next
		}
	}
}

// earliestDeadline returns the soonest deadline of a waiting caller. b.mu is
// held and b.n > 0.
func (b *bucket) earliestDeadline() time.Time {
	var t time.Time
	for p := range b.queues {
		if h := b.queues[p].head; h != nil && (t.IsZero() || h.deadline.Before(t)) {
			t = h.deadline
		}
	}
	return t
}

// observe updates the share estimate after a short answer. b.mu is held.
func (b *bucket) observe(now time.Time, g rdb.RateGrant) {
	b.rate = g.Rate
	if b.saturated {
		if dt := now.Sub(b.lastReply); dt > 0 {
			inst := float64(g.Granted) / dt.Seconds()
			a := 1 - math.Exp(-float64(dt)/float64(shareTau))
			b.share += a * (inst - b.share)
		}
	} else {
		// The first short answer after plenty: start from the whole
		// rate, so that nobody is turned away on a guess.
		b.share = g.Rate
		b.saturated = true
	}
	b.share = min(max(b.share, g.Rate*shareMinFraction), g.Rate)
}

// run is key's leaser: it takes tokens from Redis for the waiting callers
// until ctx is done (Close) or it has been idle for Config.IdleTimeout.
func (l *Limiter) run(ctx context.Context, b *bucket) {
	defer l.wg.Done()
	defer b.cancel()
	l.log.Debug("leaser started", zap.String("key", b.key))
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()

	var next time.Time // no Redis call before this
	for {
		b.mu.Lock()
		if ctx.Err() != nil {
			b.dead = true
			b.failAll(ErrClosed)
			l.dropped.Add(int64(b.dropSpare()))
			b.mu.Unlock()
			l.log.Debug("leaser stopped", zap.String("key", b.key))
			return
		}
		now := l.cfg.NowFunc()
		b.expire(now)
		if n := b.dropExpired(now); n > 0 {
			l.dropped.Add(int64(n))
		}

		if b.n == 0 && !b.refill {
			b.mu.Unlock()
			timer.Reset(l.cfg.IdleTimeout)
			select {
			case <-ctx.Done():
			case <-b.wake:
				timer.Stop()
			case <-timer.C:
				if l.retire(b) {
					l.log.Debug("leaser idle; exiting", zap.String("key", b.key))
					return
				}
			}
			continue
		}

		if now.Before(b.pauseCheck) {
			b.failAll(&PausedError{Key: b.key, Until: b.pausedUntil, Reason: b.pausedReason})
			l.dropped.Add(int64(b.dropSpare()))
			b.mu.Unlock()
			continue
		}

		if now.Before(next) {
			d := next.Sub(now)
			if b.n > 0 {
				d = min(d, b.earliestDeadline().Sub(now))
			}
			b.mu.Unlock()
			timer.Reset(d)
			select {
			case <-ctx.Done():
			case <-timer.C:
			}
			continue
		}

		want := min(b.n, l.cfg.MaxBatch)
		lim := b.lim
		ask := want
		if lim.Daily == 0 {
			// Tokens leased ahead would count against a daily quota.
			ask += l.prefetch(b, now, lim)
		}
		b.refill = false
		if ask == 0 {
			b.mu.Unlock()
			continue
		}
		b.served = 0
		b.lastCall = now
		b.mu.Unlock()

		start := now
		var dayEnd time.Time
		if lim.Daily > 0 {
			dayEnd = l.cfg.DayEnd(start)
		}
		g, err := l.rdb.TakeRateTokensDaily(ctx, b.key, lim.Rate, l.capacity(lim), ask, lim.Daily, dayEnd)
		l.calls.Add(1)
		now = l.cfg.NowFunc()

		b.mu.Lock()
		switch {
		case err != nil && ctx.Err() != nil:
			// Close cut the call short; the top of the loop answers
			// everyone.
		case err != nil:
			b.failAll(fmt.Errorf("ratelimit: %s: %w", b.key, err))
			b.saturated = false
			next = now.Add(l.cfg.MaxPause)
		case g.PausedFor > 0:
			b.pausedUntil = g.PausedUntil
			b.pausedReason = PauseQuota
			if g.PausedForOutage {
				b.pausedReason = PauseOutage
			}
			b.pauseCheck = now.Add(min(g.PausedFor, l.cfg.PauseRecheck))
			b.saturated = false
		default:
			if left := g.Granted - b.deliver(g.Granted); left > 0 {
				// Prefetched, or for callers who gave up during the
				// call.
				if l.cfg.Prefetch > 0 {
					b.addSpare(left, start, l.cfg.Prefetch)
				} else {
					l.dropped.Add(int64(left))
				}
			}
			switch {
			case g.Granted < ask:
				// Short: call again when the missing tokens (as many as
				// the bucket can hold) are due, or after MaxPause, but not
				// before one is. Those are times at the server, where the
				// next call lands a round trip after this one's answer
				// left: sleeping the round trip less keeps a slow Redis
				// (or a busy process) from letting the bucket overflow.
				b.observe(now, g)
				rtt := now.Sub(start)
				next = now.Add(max(min(g.AllIn, l.cfg.MaxPause), g.NextIn) - rtt)
				b.rejectHopeless(now)
			case ask >= l.cfg.MaxBatch:
				// Plenty, and maybe more callers than one batch.
				b.rate, b.share, b.saturated = g.Rate, g.Rate, false
				next = now
			default:
				// Plenty: let the next callers gather for BatchWindow.
				b.rate, b.share, b.saturated = g.Rate, g.Rate, false
				next = start.Add(l.cfg.BatchWindow)
			}
			b.lastReply = now
		}
		b.mu.Unlock()
	}
}

// prefetch is how many tokens the next call of b should take ahead of
// callers: about as many as this process's callers took over the last
// Prefetch, less those still spare, while the bucket has plenty (at most
// half of what it holds, and within MaxBatch). b.mu is held.
func (l *Limiter) prefetch(b *bucket, now time.Time, lim Limit) int {
	if l.cfg.Prefetch <= 0 || b.saturated || b.lastCall.IsZero() {
		b.target = 0
		return 0
	}
	since := now.Sub(b.lastCall)
	if since <= 0 {
		return 0
	}
	demand := float64(b.served) * float64(l.cfg.Prefetch) / float64(since)
	b.target = min(int(math.Ceil(demand)), l.capacity(lim)/2, l.cfg.MaxBatch)
	return max(0, min(b.target-b.spare, l.cfg.MaxBatch-min(b.n, l.cfg.MaxBatch)))
}

// retire removes an idle bucket so that its leaser can exit, unless a
// caller arrived meanwhile.
func (l *Limiter) retire(b *bucket) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.n > 0 {
		return false
	}
	b.dead = true
	l.dropped.Add(int64(b.dropSpare()))
	if l.buckets[b.key] == b {
		delete(l.buckets, b.key)
	}
	return true
}

// capacity is the bucket size the script uses: the burst less what the
// rate brings in the headroom (for jitter between a grant and WeChat's
// count of the call) and in Prefetch (how long a token taken ahead may
// wait for its caller). A token used d after its grant moves into a later
// second; keeping rate × d out of the bucket keeps every second at WeChat
// within rate + burst.
func (l *Limiter) capacity(lim Limit) int {
	hold := max(l.cfg.Headroom, 0) + max(l.cfg.Prefetch, 0)
	if hold == 0 {
		return lim.Burst
	}
	return max(1, lim.Burst-int(math.Ceil(lim.Rate*hold.Seconds())))
}
