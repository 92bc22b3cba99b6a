package rdb_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestLease: a free lease is taken by the first token; another token is
// refused while it is held; the holder renews it; a release by another
// token leaves it held; the holder's release frees it for the other; a
// lease not renewed lapses.
func TestLease(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	take := func(token string, ttl time.Duration) bool {
		t.Helper()
		ok, err := r.TakeLease(ctx, "reconciler", token, ttl)
		require.NoError(t, err)
		return ok
	}
	require.True(t, take("a", time.Minute))
	require.False(t, take("b", time.Minute), "held by a")
	require.True(t, take("a", time.Minute), "renewed by its holder")
	require.NoError(t, r.ReleaseLease(ctx, "reconciler", "b"))
	require.False(t, take("b", time.Minute), "b's release does not free a's lease")
	require.NoError(t, r.ReleaseLease(ctx, "reconciler", "a"))
	require.True(t, take("b", 50*time.Millisecond), "free once released")
	require.Eventually(t, func() bool { return take("a", time.Minute) }, 5*time.Second, 10*time.Millisecond, "b's lease lapses")
	_, err := r.TakeLease(ctx, "reconciler", "", time.Minute)
	require.Error(t, err, "an empty token")
}
