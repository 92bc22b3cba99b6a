package rdb_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
)

func setup(t testing.TB) *rdb.RDB {
	t.Helper()
	c := redistest.Client(t, redistest.DBDefault)
	return rdb.New(c, redistest.Prefix(t, c))
}

const app = "wx00000000000test1"

func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()

	// Empty: the first caller takes the lease, the second waits.
	st, err := r.GetToken(ctx, app, "a", time.Minute, time.Second)
	require.NoError(t, err)
	require.Equal(t, rdb.TokenLeased, st.Status)
	st, err = r.GetToken(ctx, app, "b", time.Minute, time.Second)
	require.NoError(t, err)
	require.Equal(t, rdb.TokenWait, st.Status)

	// Only the lease holder's token is stored.
	stored, err := r.StoreToken(ctx, app, "b", "T-b", time.Hour, 5*time.Minute, 30*time.Second)
	require.NoError(t, err)
	require.False(t, stored.Stored)
	stored, err = r.StoreToken(ctx, app, "a", "T-a", time.Hour, 5*time.Minute, 30*time.Second)
	require.NoError(t, err)
	require.True(t, stored.Stored)
	require.InDelta(t, time.Hour.Seconds(), stored.ExpiresIn.Seconds(), 1)
	require.InDelta(t, (55 * time.Minute).Seconds(), stored.RefreshIn.Seconds(), 1)

	st, err = r.GetToken(ctx, app, "b", time.Minute, time.Second)
	require.NoError(t, err)
	require.Equal(t, rdb.TokenOK, st.Status)
	require.Equal(t, "T-a", st.Token)

	info, err := r.TokenInfo(ctx, app)
	require.NoError(t, err)
	require.True(t, info.Present)
	require.WithinDuration(t, time.Now().Add(time.Hour), info.ExpiresAt, 5*time.Second)

	// Compare-and-refresh: only the current token is deleted.
	ok, err := r.InvalidateToken(ctx, app, "T-old")
	require.NoError(t, err)
	require.False(t, ok)
	ok, err = r.InvalidateToken(ctx, app, "T-a")
	require.NoError(t, err)
	require.True(t, ok)
	info, err = r.TokenInfo(ctx, app)
	require.NoError(t, err)
	require.False(t, info.Present)
}

func TestTokenDueForRefresh(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	_, err := r.GetToken(ctx, app, "a", time.Minute, time.Second)
	require.NoError(t, err)
	// A token with 10 minutes left and a 15-minute refresh-ahead is due at
	// once; the next refresh is then at most retryMax away.
	stored, err := r.StoreToken(ctx, app, "a", "T", 10*time.Minute, 15*time.Minute, 2*time.Second)
	require.NoError(t, err)
	require.True(t, stored.Stored)
	require.LessOrEqual(t, stored.RefreshIn, 2*time.Second)
	require.Positive(t, stored.RefreshIn)

	require.Eventually(t, func() bool {
		st, err := r.GetToken(ctx, app, "b", time.Minute, time.Second)
		require.NoError(t, err)
		return st.Status == rdb.TokenRefresh
	}, 10*time.Second, 50*time.Millisecond)
	// b holds the lease: others keep the current token.
	st, err := r.GetToken(ctx, app, "c", time.Minute, time.Second)
	require.NoError(t, err)
	require.Equal(t, rdb.TokenOK, st.Status)
	require.Equal(t, "T", st.Token)
	require.LessOrEqual(t, st.RefreshIn, time.Duration(0))
}

func TestTokenNearExpiryCountsAsMissing(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	_, err := r.GetToken(ctx, app, "a", time.Minute, time.Second)
	require.NoError(t, err)
	_, err = r.StoreToken(ctx, app, "a", "T", 3*time.Second, time.Second, time.Second)
	require.NoError(t, err)
	st, err := r.GetToken(ctx, app, "b", time.Minute, 5*time.Second)
	require.NoError(t, err)
	require.Equal(t, rdb.TokenLeased, st.Status, "3 s left is less than the 5 s minimum")
}

func TestTokenError(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	_, err := r.GetToken(ctx, app, "a", time.Minute, time.Second)
	require.NoError(t, err)
	// Not the lease holder: nothing cached.
	require.NoError(t, r.StoreTokenError(ctx, app, "b", 40164, "stable_token|invalid ip", time.Minute))
	st, err := r.GetToken(ctx, app, "b", time.Minute, time.Second)
	require.NoError(t, err)
	require.Equal(t, rdb.TokenWait, st.Status)

	require.NoError(t, r.StoreTokenError(ctx, app, "a", 40164, "stable_token|invalid ip 1.2.3.4|x", time.Minute))
	st, err = r.GetToken(ctx, app, "b", time.Minute, time.Second)
	require.NoError(t, err)
	require.Equal(t, rdb.TokenFailed, st.Status)
	require.Equal(t, 40164, st.ErrCode)
	require.Equal(t, "stable_token|invalid ip 1.2.3.4|x", st.ErrMsg)

	// A stored token clears the error.
	require.NoError(t, r.DeleteAccount(ctx, app))
	_, err = r.GetToken(ctx, app, "a", time.Minute, time.Second)
	require.NoError(t, err)
	require.NoError(t, r.ReleaseTokenLease(ctx, app, "a"))
	st, err = r.GetToken(ctx, app, "c", time.Minute, time.Second)
	require.NoError(t, err)
	require.Equal(t, rdb.TokenLeased, st.Status, "a released its lease")
}

func TestKeysShareHashTag(t *testing.T) {
	t.Parallel()
	k := rdb.Keys{}
	for _, key := range []string{k.Token(app), k.TokenLease(app), k.TokenError(app)} {
		require.Contains(t, key, "wxmass:{acct:"+app+"}:")
	}
}

func timeNow() time.Time { return time.Now() }
