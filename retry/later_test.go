package retry_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/retry"
)

func TestWait(t *testing.T) {
	t.Parallel()
	cause := errors.New("errcode -1")
	var later retry.Later
	err := fmt.Errorf("send: %w", &retry.Wait{After: time.Second, Failed: true, Err: cause})
	require.True(t, errors.As(err, &later))
	require.Equal(t, time.Second, later.RetryIn(time.Now()))
	require.True(t, later.Failure())
	require.ErrorIs(t, err, cause)
	require.Equal(t, "send: retry in 1s: errcode -1", err.Error())

	throttled := &retry.Wait{After: 250 * time.Millisecond, Reason: "send window full"}
	require.False(t, throttled.Failure())
	require.Equal(t, "throttled for 250ms: send window full", throttled.Error())
	require.NoError(t, throttled.Unwrap())
}
