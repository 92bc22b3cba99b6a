package worker

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/retry"
)

// The four ways to come back later share one contract.
var (
	_ retry.Later = (*retry.Wait)(nil)
	_ retry.Later = (*ratelimit.Error)(nil)
	_ retry.Later = (*ratelimit.PausedError)(nil)
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
		{&retry.Wait{After: 250 * time.Millisecond, Reason: "send window full"}, 250 * time.Millisecond, false},
		{fmt.Errorf("wrapped: %w", &ratelimit.Error{RetryAfter: 2 * time.Second}), 2 * time.Second, false},
		// A pause looks again at least every pauseRecheck.
		{&ratelimit.PausedError{Until: time.Now().Add(time.Hour)}, 5 * time.Second, false},
		{&ratelimit.PausedError{Until: time.Now().Add(-time.Hour)}, 0, false},
		{&retry.Wait{After: 3 * time.Second, Failed: true, Err: errors.New("-1")}, 3 * time.Second, true},
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
