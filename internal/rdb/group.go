package rdb

import (
	"context"
	"sync"
	"time"
)

// Limits of the grouped calls (RecordOutcome, SendState).
const (
	// groupFlushes is how many grouped round trips of one kind may be in
	// flight at once. Requests that arrive meanwhile wait and go together
	// in the next one.
	groupFlushes = 1
	// groupSize is the most requests one grouped round trip carries.
	groupSize = 256
	// groupTimeout bounds one grouped round trip, whatever the callers'
	// contexts say (a caller that gives up does not cancel the others).
	groupTimeout = 10 * time.Second
)

// group batches concurrent requests into few round trips, in the manner of
// a database's group commit: a request that finds fewer than groupFlushes
// round trips in flight starts one at once (so an idle process adds no
// latency), and requests that arrive while they run go together in the next
// one. No goroutine lives while there is nothing to do.
type group[T any] struct {
	flush func(ctx context.Context, batch []*T)

	mu      sync.Mutex
	pending []*T
	running int
}

// add queues r for the next round trip. flush must close r's done channel
// (or signal it some other way) once r's result is set.
func (g *group[T]) add(r *T) {
	g.mu.Lock()
	g.pending = append(g.pending, r)
	if g.running >= groupFlushes {
		g.mu.Unlock()
		return
	}
	g.running++
	g.mu.Unlock()
	go g.loop()
}

func (g *group[T]) loop() {
	for {
		g.mu.Lock()
		n := min(len(g.pending), groupSize)
		if n == 0 {
			g.running--
			g.mu.Unlock()
			return
		}
		batch := make([]*T, n)
		copy(batch, g.pending)
		rest := copy(g.pending, g.pending[n:])
		clear(g.pending[rest:])
		g.pending = g.pending[:rest]
		g.mu.Unlock()

		ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
		g.flush(ctx, batch)
		cancel()
	}
}

// wait waits for done or ctx, whichever comes first. A request whose
// caller gave up may still be carried out.
func wait(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
