package redistest_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/redistest"
)

func TestStartSentinel(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := redistest.StartSentinel(t)
	require.Len(t, s.Addrs(), 3)
	require.Equal(t, "redis-sentinel://"+strings.Join(s.Addrs(), ",")+"/0?master=wxmass", s.URL())

	first := s.Primary(t)
	c := redis.NewClient(&redis.Options{Addr: first, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())

	second := s.Failover(t)
	require.NotEqual(t, first, second)
	require.Equal(t, second, s.Primary(t))
	c2 := redis.NewClient(&redis.Options{Addr: second, MaxRetries: -1})
	t.Cleanup(func() { _ = c2.Close() })
	require.Equal(t, "v", c2.Get(ctx, "k").Val(), "the replica was in sync")
	require.NoError(t, c2.Set(ctx, "k2", "v2", 0).Err())
	require.Equal(t, "slave", c.Do(ctx, "ROLE").Val().([]any)[0], "the old primary replicates the new one")
	require.EqualValues(t, 1, c2.Do(ctx, "WAIT", 1, 5000).Val())

	// The old primary is now the replica; kill the new primary and the
	// sentinels promote the old one back.
	s.KillPrimary(t)
	third := s.WaitPrimaryChange(t, second)
	require.Equal(t, first, third)
	require.Equal(t, "v2", c.Get(ctx, "k2").Val(), "what the second primary took is there")

	// The killed node comes back as a replica, and a planned failover can
	// move the primary to it again.
	require.Equal(t, first, s.Rejoin(t, second))
	require.Equal(t, "slave", c2.Do(ctx, "ROLE").Val().([]any)[0], "the killed node replicates the primary")
	require.Equal(t, "v2", c2.Get(ctx, "k2").Val(), "and has its data")
	require.Equal(t, second, s.Failover(t))
}

func TestStartCluster(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c := redistest.StartCluster(t, 3)
	require.Len(t, c.Addrs(), 3)
	require.Equal(t, "redis-cluster://"+strings.Join(c.Addrs(), ","), c.URL())

	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = cc.Close() })
	var (
		mu      sync.Mutex
		masters = map[string]bool{}
	)
	require.NoError(t, cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		mu.Lock()
		defer mu.Unlock()
		masters[m.Options().Addr] = true
		return nil
	}))
	require.Len(t, masters, 3)
	for _, k := range []string{"a", "b", "c", "d", "e"} {
		require.NoError(t, cc.Set(ctx, k, k, 0).Err())
		require.Equal(t, k, cc.Get(ctx, k).Val())
	}
	// Keys in different slots cannot share a command; the cluster is real.
	require.ErrorContains(t, cc.Do(ctx, "MSET", "a", "1", "b", "2").Err(), "CROSSSLOT")
}
