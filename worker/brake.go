package worker

import (
	"sync"
	"time"

	"github.com/wxmass/wxmass/retry"
)

// The outage brake's thresholds.
const (
	// brakeWindow is the span over which a process counts the answers of
	// one (account, API).
	brakeWindow = time.Second
	// brakeMinFailures is the least number of failed calls in a window
	// that can trip the brake, so that a few unlucky calls of a quiet
	// account do not.
	brakeMinFailures = 10
	// brakeFailurePercent is the share of failed calls in a window, in
	// percent, that trips it. WeChat's usual noise (a few percent of -1,
	// 5xx or dropped connections) stays far below.
	brakeFailurePercent = 80
)

// brake notices when WeChat is down for an (account, API) (most calls end in
// HTTP 5xx, a dropped, refused or timed-out connection, or errcode -1) so
// that the worker slows the account's shared rate down (ratelimit's
// Slowdown, as for 45011). Each recipient's retries back off on their own,
// but a run has thousands of recipients in flight: without the brake the
// fleet would keep calling a WeChat that is down at the full rate, with
// each recipient's first try and then with the retries that fall due.
// Slowdown halves the rate at most every SlowdownHold across the fleet,
// down to its floor, and lets it climb back once the cuts stop.
//
// It counts per process, in fixed windows of brakeWindow. It is safe for
// concurrent use.
//
// A whole outage (no call answered) is the circuit breaker's (breaker.go):
// it parks the account's sends until a probe gets an answer. The brake is
// kept for partial failure, where answers between the failures keep the
// breaker closed but most calls still fail.
type brake struct {
	mu   sync.Mutex
	keys map[string]*brakeCount
}

type brakeCount struct {
	start      time.Time // of the current window
	fails, oks int
	tripped    bool // in the current window
}

// observe counts the answer of one call of key at now, failed if it was an
// outage-like failure, and reports whether the brake trips: at most once a
// window, when the window has brakeMinFailures failures that make
// brakeFailurePercent of its calls.
func (b *brake) observe(key string, failed bool, now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.keys == nil {
		b.keys = make(map[string]*brakeCount)
	}
	c := b.keys[key]
	if c == nil {
		c = &brakeCount{start: now}
		b.keys[key] = c
	}
	if now.Sub(c.start) >= brakeWindow || now.Before(c.start) {
		*c = brakeCount{start: now}
	}
	if !failed {
		c.oks++
		return false
	}
	c.fails++
	if c.tripped || c.fails < brakeMinFailures || 100*c.fails < brakeFailurePercent*(c.fails+c.oks) {
		return false
	}
	c.tripped = true
	return true
}

// outageFailure reports whether d is the decision on a call that looks like
// WeChat being down rather than answering: a transport failure (HTTP 5xx,
// a connection dropped, refused or timed out: class retry without an
// errcode) or errcode -1 (system busy).
func outageFailure(d retry.Decision) bool {
	return d.Class == retry.ClassRetry && (d.Code == 0 || d.Code == -1)
}
