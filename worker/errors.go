package worker

import (
	"errors"
	"time"

	"github.com/hibiken/asynq"

	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
)

// retryError asks asynq to retry the task after after, counting a failure.
type retryError struct {
	after time.Duration
	err   error
}

func (e *retryError) Error() string { return "retry in " + e.after.String() + ": " + e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

// leaseExpiredDelay is the retry delay of a task whose worker died.
const leaseExpiredDelay = time.Second

// pauseRecheckDefault bounds how long a paused task stays away before it
// looks again.
const pauseRecheckDefault = 5 * time.Second

// RetryDelay is the asynq RetryDelayFunc of the worker server: throttles
// and pauses say when to come back; classified failures carry the delay
// retry.Policy chose; anything else backs off exponentially.
func RetryDelay(pauseRecheck time.Duration) asynq.RetryDelayFunc {
	return func(n int, err error, t *asynq.Task) time.Duration {
		var (
			te *producer.ThrottleError
			re *retryError
			rl *ratelimit.Error
			pe *ratelimit.PausedError
		)
		switch {
		case errors.As(err, &te):
			return te.RetryAfter
		case errors.As(err, &re):
			return re.after
		case errors.As(err, &rl):
			return rl.RetryAfter
		case errors.As(err, &pe):
			return max(0, min(time.Until(pe.Until), pauseRecheck))
		case errors.Is(err, asynq.ErrLeaseExpired):
			// Its worker died (asynq's recoverer found the lease expired
			// 30 s to a minute later): nothing was wrong with the task, so
			// it goes back at once rather than after asynq's backoff.
			return leaseExpiredDelay
		}
		return asynq.DefaultRetryDelayFunc(n, err, t)
	}
}

// IsFailure is the asynq IsFailure of the worker server: throttling and
// pauses are not failures, so they never use up a task's retries. (A run's
// deadline bounds how long a task can keep coming back.)
func IsFailure(err error) bool {
	var (
		te *producer.ThrottleError
		rl *ratelimit.Error
		pe *ratelimit.PausedError
	)
	return !errors.As(err, &te) && !errors.As(err, &rl) && !errors.As(err, &pe)
}
