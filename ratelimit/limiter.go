package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/internal/rdb"
)

// Limiter hands out tokens from Redis-backed buckets shared by every
// process, batching its Redis calls per bucket (see the package
// documentation). It is safe for concurrent use. Its goroutines start on
// demand and stop on Close.
type Limiter struct {
	rdb *rdb.RDB
	cfg Config
	log *zap.Logger

	mu      sync.Mutex
	buckets map[string]*bucket
	closed  bool
	wg      sync.WaitGroup

	calls      atomic.Int64
	granted    atomic.Int64
	prefetched atomic.Int64
	dropped    atomic.Int64
}

// New returns a Limiter whose buckets live in r. It returns an error for an
// invalid Config field.
func New(r *rdb.RDB, cfg Config) (*Limiter, error) {
	if r == nil {
		return nil, errors.New("ratelimit: rdb is nil")
	}
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Limiter{
		rdb:     r,
		cfg:     cfg,
		log:     cfg.Logger.Named("ratelimit"),
		buckets: make(map[string]*bucket),
	}, nil
}

// Wait blocks until the bucket key grants the caller one token under lim,
// and returns nil then. Callers of one process are served by priority p,
// then in arrival order.
//
// It returns an *Error (and no token) when the token would come later than
// Config.MaxWait, a *PausedError while the bucket is paused, ErrClosed after
// Close, and an error wrapping ErrInvalidLimit for a bad lim or key. When
// the leaser's Redis call fails, every caller it was serving gets an error
// wrapping the failure. When ctx is done first, Wait returns at once with an
// error wrapping ctx.Err(); a token that reached it at that very moment goes
// to the next caller waiting in this process.
func (l *Limiter) Wait(ctx context.Context, key string, lim Limit, p Priority) error {
	return l.WaitWithin(ctx, key, lim, p, l.cfg.MaxWait)
}

// WaitWithin is Wait with maxWait in place of Config.MaxWait (a maxWait of
// zero or less, or above Config.MaxWait, is Config.MaxWait): a caller that
// would wait longer gets an *Error whose RetryAfter is the limiter's
// estimate of its wait, at once when the estimate already exceeds maxWait.
// Bulk sends use a short maxWait so that they give their worker slot back
// rather than hold it waiting for a token (see worker.Config.BulkRateWait).
// Callers of one priority should use one maxWait: a queue's waiters expire
// in arrival order.
func (l *Limiter) WaitWithin(ctx context.Context, key string, lim Limit, p Priority, maxWait time.Duration) error {
	if maxWait <= 0 || maxWait > l.cfg.MaxWait {
		maxWait = l.cfg.MaxWait
	}
	if err := lim.validate(); err != nil {
		return err
	}
	if key == "" {
		return fmt.Errorf("%w: empty key", ErrInvalidLimit)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ratelimit: wait: %w", err)
	}
	w := waiters.Get().(*waiter)
	defer waiters.Put(w)
	w.prio = p.index()
	b, err := l.enqueue(key, lim, w, maxWait)
	if err != nil {
		return err
	}
	if b == nil {
		// A token taken ahead.
		l.granted.Add(1)
		l.prefetched.Add(1)
		return nil
	}
	select {
	case err := <-w.ch:
		if err == nil {
			l.granted.Add(1)
		}
		return err
	case <-ctx.Done():
		l.abandon(b, w)
		return fmt.Errorf("ratelimit: wait: %w", ctx.Err())
	}
}

// waiters recycles waiters. A waiter is free again when Wait returns: it
// is out of its queue, nothing refers to it, and its channel is empty
// (answered and read, or never answered).
var waiters = sync.Pool{New: func() any { return &waiter{ch: make(chan error, 1)} }}

// enqueue queues w on key's bucket, starting its leaser if need be. It
// answers at once, without queueing, while the bucket is known to be
// paused, and with a nil bucket and no error when it gave the caller a
// token taken ahead.
func (l *Limiter) enqueue(key string, lim Limit, w *waiter, maxWait time.Duration) (*bucket, error) {
	for {
		b, err := l.bucket(key)
		if err != nil {
			return nil, err
		}
		b.mu.Lock()
		if b.dead {
			// The leaser retired (or Close stopped it) after l.bucket:
			// look again.
			b.mu.Unlock()
			continue
		}
		now := l.cfg.NowFunc()
		if now.Before(b.pauseCheck) {
			until, reason := b.pausedUntil, b.pausedReason
			b.mu.Unlock()
			return nil, &PausedError{Key: key, Until: until, Reason: reason}
		}
		b.lim = lim
		if b.n == 0 {
			ok, wake, dropped := b.takeSpare(now)
			if dropped > 0 {
				l.dropped.Add(int64(dropped))
			}
			if ok {
				b.mu.Unlock()
				if wake {
					select {
					case b.wake <- struct{}{}:
					default:
					}
				}
				return nil, nil
			}
		}
		w.deadline = now.Add(maxWait)
		b.push(w)
		b.mu.Unlock()
		select {
		case b.wake <- struct{}{}:
		default:
		}
		return b, nil
	}
}

// abandon takes w out of its queue after its caller gave up. If the leaser
// answered w in the meantime with a token, the token goes to the next
// waiter, or is counted as dropped when there is none.
func (l *Limiter) abandon(b *bucket, w *waiter) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if w.queued {
		b.remove(w)
		return
	}
	// Answered under b.mu, so the answer is in the channel already.
	if err := <-w.ch; err == nil {
		b.served--
		if b.deliver(1) == 0 {
			l.dropped.Add(1)
		}
	}
}

// bucket returns key's bucket, creating it and starting its leaser if
// there is none.
func (l *Limiter) bucket(key string) (*bucket, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if b := l.buckets[key]; b != nil {
		return b, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &bucket{key: key, cancel: cancel, wake: make(chan struct{}, 1)}
	l.buckets[key] = b
	l.wg.Add(1)
	go l.run(ctx, b)
	return b, nil
}

// lookup returns key's bucket if this process has one.
func (l *Limiter) lookup(key string) *bucket {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buckets[key]
}

// Close stops the leaser goroutines and waits for them to exit. Callers
// still waiting get ErrClosed, and so does every later Wait. Close is
// idempotent, safe to call concurrently and on a Limiter never used; it
// always returns nil. Buckets in Redis are unaffected.
func (l *Limiter) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		for _, b := range l.buckets {
			b.cancel()
		}
	}
	l.mu.Unlock()
	l.wg.Wait()
	return nil
}

// Stats are a Limiter's counters since New, for metrics and tests.
type Stats struct {
	// Calls is the number of Redis calls the leasers made to take tokens.
	Calls int64
	// Granted is the number of tokens handed to callers of Wait.
	Granted int64
	// Prefetched is how many of those callers took a token taken ahead
	// (Config.Prefetch), without waiting for a Redis call.
	Prefetched int64
	// Dropped is the number of tokens Redis granted that no caller took:
	// tokens taken ahead (Config.Prefetch) that no caller came for in
	// time, and tokens whose callers gave up as they arrived. A token is
	// never kept beyond Prefetch, so that a process cannot spend a stock
	// of them in a burst.
	Dropped int64
	// Spare is the number of tokens taken ahead and still usable, now.
	Spare int
	// Waiting is the number of callers waiting now, all buckets and
	// priorities.
	Waiting int
	// WaitingHigh is the number of those with PriorityHigh.
	WaitingHigh int
	// Leasers is the number of leaser goroutines running now: one per
	// bucket with callers lately.
	Leasers int
}

// Stats returns the Limiter's counters. It is safe to call at any time;
// each bucket's queues are counted at one instant, under its lock.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.cfg.NowFunc()
	if !l.closed {
		for _, b := range l.buckets {
			b.mu.Lock()
			l.dropped.Add(int64(b.dropExpired(now)))
			b.mu.Unlock()
		}
	}
	st := Stats{
		Calls:      l.calls.Load(),
		Granted:    l.granted.Load(),
		Prefetched: l.prefetched.Load(),
		Dropped:    l.dropped.Load(),
	}
	if l.closed {
		return st
	}
	st.Leasers = len(l.buckets)
	for _, b := range l.buckets {
		b.mu.Lock()
		st.Waiting += b.n
		st.Spare += b.spare
		st.WaitingHigh += b.queues[PriorityHigh].n
		b.mu.Unlock()
	}
	return st
}
