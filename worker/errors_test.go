package worker

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
)

func TestRetryDelayAndIsFailure(t *testing.T) {
	t.Parallel()
	delay := RetryDelay(5 * time.Second)
	task := asynq.NewTask("x", nil)
	tests := []struct {
		err     error
		delay   time.Duration
		failure bool
	}{
		{&producer.ThrottleError{RetryAfter: 250 * time.Millisecond}, 250 * time.Millisecond, false},
		{fmt.Errorf("wrapped: %w", &ratelimit.Error{RetryAfter: 2 * time.Second}), 2 * time.Second, false},
		{&ratelimit.PausedError{Until: time.Now().Add(time.Hour)}, 5 * time.Second, false},
		{&retryError{after: 3 * time.Second, err: errors.New("-1")}, 3 * time.Second, true},
		// A dead worker's task comes back at once, and counts as a try.
		{asynq.ErrLeaseExpired, time.Second, true},
	}
	for _, tt := range tests {
		require.Equal(t, tt.delay, delay(0, tt.err, task), "%v", tt.err)
		require.Equal(t, tt.failure, IsFailure(tt.err), "%v", tt.err)
	}
	require.True(t, IsFailure(errors.New("boom")))
	require.Positive(t, delay(1, errors.New("boom"), task))
}

func TestClientMsgID(t *testing.T) {
	t.Parallel()
	a := ClientMsgID("c1", 1, "o1")
	require.Equal(t, a, ClientMsgID("c1", 1, "o1"), "the same for every retry")
	require.NotEqual(t, a, ClientMsgID("c1", 2, "o1"), "a new run is a new message")
	require.NotEqual(t, a, ClientMsgID("c1", 1, "o2"))
	require.LessOrEqual(t, len(a), 64)
	require.Regexp(t, `^[A-Za-z0-9_-]+$`, a)
}
