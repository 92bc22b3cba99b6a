package retry

import (
	"strings"
	"time"
)

// Later is the contract of an error that asks for its task to run again
// later, between the code that returns it (a send, an expand task, the
// rate limiter) and the queue that schedules the task again (the worker's
// asynq RetryDelayFunc and IsFailure): how long to wait, and whether the
// try counts against the task's retries. Throttling and pauses do not
// count; a failed call does. *Wait, *ratelimit.Error and
// *ratelimit.PausedError implement it.
type Later interface {
	error
	// RetryIn is how long after now the task should run again.
	RetryIn(now time.Time) time.Duration
	// Failure reports whether the try counts against the task's retries.
	Failure() bool
}

// Wait is a Later of a fixed wait: the window of a run is full, the run is
// paused, WeChat asked to slow down (not failures), or a call failed and is
// retried after the policy's delay (Failed).
type Wait struct {
	// After is the wait.
	After time.Duration
	// Failed makes the try count against the task's retries.
	Failed bool
	// Reason says why, for logs and asynqmon.
	Reason string
	// Err is the failure, if any.
	Err error
}

// Error says why and how long.
func (w *Wait) Error() string {
	var b strings.Builder
	if w.Failed {
		b.WriteString("retry in ")
	} else {
		b.WriteString("throttled for ")
	}
	b.WriteString(w.After.String())
	if w.Reason != "" {
		b.WriteString(": ")
		b.WriteString(w.Reason)
	}
	if w.Err != nil {
		b.WriteString(": ")
		b.WriteString(w.Err.Error())
	}
	return b.String()
}

// Unwrap returns the failure.
func (w *Wait) Unwrap() error { return w.Err }

// RetryIn returns After.
func (w *Wait) RetryIn(time.Time) time.Duration { return w.After }

// Failure returns Failed.
func (w *Wait) Failure() bool { return w.Failed }
