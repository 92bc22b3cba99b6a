package campaigns_test

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
)

// TestStoreSession: a session is stored under its token's digest only,
// with Redis's TTL at its expiry, read back whole, and gone once deleted.
func TestStoreSession(t *testing.T) {
	t.Parallel()
	s, r := newStore(t)
	ctx := t.Context()
	const token = "sessiontoken-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	now := time.Now().UTC().Truncate(time.Second)
	sess := campaigns.Session{KeyName: "alice", KeyDigest: hex.EncodeToString(make([]byte, 32)), Created: now, Expires: now.Add(2 * time.Hour)}
	require.NoError(t, s.CreateSession(ctx, token, sess))

	got, err := s.Session(ctx, token)
	require.NoError(t, err)
	require.Equal(t, sess, got)
	_, err = s.Session(ctx, token+"x")
	require.ErrorIs(t, err, campaigns.ErrSessionNotFound)

	// Only the token's SHA-256 is in Redis: not in a key, not in a value.
	keys, err := r.Client().Keys(ctx, r.Keys().Prefix+":*").Result()
	require.NoError(t, err)
	require.Len(t, keys, 1)
	sum := sha256.Sum256([]byte(token))
	require.Equal(t, r.Keys().Prefix+":session:"+hex.EncodeToString(sum[:]), keys[0])
	val, err := r.Client().Get(ctx, keys[0]).Result()
	require.NoError(t, err)
	require.NotContains(t, val, token)
	// Redis ends it at its expiry.
	ttl, err := r.Client().PTTL(ctx, keys[0]).Result()
	require.NoError(t, err)
	require.InDelta(t, (2 * time.Hour).Seconds(), ttl.Seconds(), 5)

	require.Error(t, s.CreateSession(ctx, token, sess), "a token is stored once")
	require.NoError(t, s.DeleteSession(ctx, token))
	_, err = s.Session(ctx, token)
	require.ErrorIs(t, err, campaigns.ErrSessionNotFound)
	require.NoError(t, s.DeleteSession(ctx, token), "deleting twice is no error")

	bad := sess
	bad.Expires = bad.Created
	require.ErrorContains(t, s.CreateSession(ctx, token, bad), "must expire after")
}
