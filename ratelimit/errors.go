package ratelimit

import (
	"errors"
	"time"
)

// ErrClosed is returned by Wait after Close, and to callers still waiting
// when Close is called.
var ErrClosed = errors.New("ratelimit: limiter closed")

// ErrInvalidLimit is wrapped by the error Wait returns for a Limit with a
// rate that is not positive and finite or a burst below 1, or an empty key.
var ErrInvalidLimit = errors.New("ratelimit: invalid limit")

// Error says that a caller was throttled: its token would have come later
// than Config.MaxWait allows. The caller should give up its work and come
// back after RetryAfter, for example by returning the error from an asynq
// handler: it is a retry.Later that is no failure.
type Error struct {
	// Key names the bucket.
	Key string
	// RetryAfter estimates when the caller's token would have come: its
	// place among the callers waiting in this process, divided by the rate
	// at which this process has lately been getting tokens.
	RetryAfter time.Duration
}

// Error returns a message such as "ratelimit: wx…:message/template/send:
// throttled; retry after 1.5s".
func (e *Error) Error() string {
	return "ratelimit: " + e.Key + ": throttled; retry after " + e.RetryAfter.String()
}

// RetryIn returns RetryAfter (retry.Later).
func (e *Error) RetryIn(time.Time) time.Duration { return e.RetryAfter }

// Failure returns false: being throttled is no failure (retry.Later).
func (e *Error) Failure() bool { return false }

// PauseReason says why a bucket is paused. The pauses of different reasons
// are kept apart in Redis: each is extended and resumed on its own, and the
// bucket grants nothing while any lasts.
type PauseReason string

// The reasons of a pause.
const (
	// PauseQuota is a pause for WeChat's daily quota (errcode 45009):
	// Limiter.Pause and Limiter.Resume.
	PauseQuota PauseReason = "quota"
	// PauseOutage is a pause while WeChat is unreachable for the account
	// (its circuit breaker is open): Limiter.PauseOutage and
	// Limiter.ResumeOutage.
	PauseOutage PauseReason = "outage"
)

// PausedError says that a bucket is paused (Limiter.Pause, after WeChat's
// daily quota ran out, or Limiter.PauseOutage) and grants nothing until
// Until or a Resume. It is a retry.Later that is no failure.
type PausedError struct {
	// Key names the bucket.
	Key string
	// Until is when the pause ends, by the Redis server's clock.
	Until time.Time
	// Reason says which pause it is; empty reads as PauseQuota.
	Reason PauseReason
}

// Error returns a message such as "ratelimit: wx…:message/template/send:
// paused until 2026-03-11T00:00:00+08:00" (with " (outage)" for an outage
// pause).
func (e *PausedError) Error() string {
	msg := "ratelimit: " + e.Key + ": paused until " + e.Until.Format(time.RFC3339)
	if e.Reason == PauseOutage {
		msg += " (outage)"
	}
	return msg
}

// RetryIn is the time left until Until (retry.Later).
func (e *PausedError) RetryIn(now time.Time) time.Duration { return max(0, e.Until.Sub(now)) }

// Failure returns false: a pause is no failure (retry.Later).
func (e *PausedError) Failure() bool { return false }
