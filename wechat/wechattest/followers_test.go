package wechattest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMixInverse(t *testing.T) {
	t.Parallel()
	for _, v := range []uint64{0, 1, 42, 1 << 63, ^uint64(0), 0x0123456789abcdef} {
		require.Equal(t, v, unmix64(mix64(v)))
	}
	require.Equal(t, uint64(1), mixC1*modInverse(mixC1))
}

func TestFollowerCodec(t *testing.T) {
	t.Parallel()
	c := newFollowerCodec(99, 1000)
	seen := map[string]bool{}
	for i := range uint64(1000) {
		id := c.openID(i)
		require.True(t, validOpenID(id), id)
		require.False(t, seen[id])
		seen[id] = true
		got, ok := c.index(id)
		require.True(t, ok)
		require.Equal(t, i, got)
	}
	// Beyond the count, another seed, a changed character: not followers.
	_, ok := c.index(newFollowerCodec(99, 2000).openID(1500))
	require.False(t, ok)
	_, ok = c.index(newFollowerCodec(98, 1000).openID(5))
	require.False(t, ok)
	id := []byte(c.openID(5))
	id[10] ^= 1
	_, ok = c.index(string(id))
	require.False(t, ok)
	_, ok = c.index(openID("plain"))
	require.False(t, ok)
	// The same seed gives the same followers.
	require.Equal(t, c.openID(7), newFollowerCodec(99, 1000).openID(7))
}

func TestFollowerListDuplicates(t *testing.T) {
	t.Parallel()
	gen := newFollowerCodec(1, 5).openID(3)
	_, err := New(Config{Followers: 5, Seed: 1, FollowerIDs: []string{gen}})
	require.ErrorContains(t, err, "Config.FollowerIDs[0]: openid")
	_, err = New(Config{FollowerIDs: []string{openID("a"), openID("a")}})
	require.ErrorContains(t, err, "Config.FollowerIDs[1]: duplicate openid")
}
