package worker

import (
	"errors"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/retry"
)

// leaseExpiredDelay is the retry delay of a task whose worker died.
const leaseExpiredDelay = time.Second

// pauseRecheckDefault bounds how long a paused task stays away before it
// looks again.
const pauseRecheckDefault = 5 * time.Second

// RetryDelay is the asynq RetryDelayFunc of the worker server: an error
// that is a retry.Later says when to come back (a paused bucket's sends
// look again at least every pauseRecheck, as another process may resume
// it); anything else backs off exponentially.
func RetryDelay(pauseRecheck time.Duration) asynq.RetryDelayFunc {
	return func(n int, err error, t *asynq.Task) time.Duration {
		var later retry.Later
		if errors.As(err, &later) {
			d := later.RetryIn(time.Now())
			if pe := (*ratelimit.PausedError)(nil); errors.As(err, &pe) {
				d = min(d, pauseRecheck)
			}
			return max(0, d)
		}
		if errors.Is(err, asynq.ErrLeaseExpired) {
			// Its worker died (asynq's recoverer found the lease expired
			// 30 s to a minute later): nothing was wrong with the task, so
			// it goes back at once rather than after asynq's backoff.
			return leaseExpiredDelay
		}
		return asynq.DefaultRetryDelayFunc(n, err, t)
	}
}

// IsFailure is the asynq IsFailure of the worker server: a retry.Later
// says whether it is one (throttling and pauses are not, so they never use
// up a task's retries; a run's deadline bounds how long a task can keep
// coming back); any other error is.
func IsFailure(err error) bool {
	var later retry.Later
	if errors.As(err, &later) {
		return later.Failure()
	}
	return true
}
