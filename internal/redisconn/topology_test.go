package redisconn_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/redisconn"
	"github.com/wxmass/wxmass/internal/redistest"
)

// eventually calls op every 20 ms until it succeeds, and fails the test
// with op's last error after 30 s.
func eventually(t *testing.T, what string, op func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		err := op(ctx)
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after 30 s: %v", what, err)
		}
		<-tick.C
	}
}

// TestSingleServer: both clients of a redis:// URL reach the server, with
// the URL's database.
func TestSingleServer(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := redistest.StartServer(t, redistest.ServerConfig{})
	o, err := redisconn.Parse("redis://" + s.Addr() + "/3?dial_timeout=2s&pool_size=4")
	require.NoError(t, err)
	require.Equal(t, redisconn.TopologySingle, o.Topology())
	c := o.NewClient()
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())

	aq := asynq.NewClient(o.AsynqOpt())
	t.Cleanup(func() { _ = aq.Close() })
	_, err = aq.EnqueueContext(ctx, asynq.NewTask("t", nil), asynq.Queue("q"))
	require.NoError(t, err)

	db3 := redis.NewClient(&redis.Options{Addr: s.Addr(), DB: 3})
	t.Cleanup(func() { _ = db3.Close() })
	require.Equal(t, "v", db3.Get(ctx, "k").Val())
	require.EqualValues(t, 1, db3.LLen(ctx, "asynq:{q}:pending").Val(), "asynq uses the same database")
}

// TestSentinelFailover: the clients of a redis-sentinel:// URL follow the
// primary. After a failover (SENTINEL FAILOVER) and after the primary is
// killed, writes go on, to the new primary, and what was written before is
// still there.
func TestSentinelFailover(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := redistest.StartSentinel(t)
	o, err := redisconn.Parse(s.URL())
	require.NoError(t, err)
	require.Equal(t, redisconn.TopologySentinel, o.Topology())
	c := o.NewClient()
	t.Cleanup(func() { _ = c.Close() })
	aq := asynq.NewClient(o.AsynqOpt())
	t.Cleanup(func() { _ = aq.Close() })
	ins := asynq.NewInspector(o.AsynqOpt())
	t.Cleanup(func() { _ = ins.Close() })

	first := s.Primary(t)
	for i := range 50 {
		require.NoError(t, c.Set(ctx, fmt.Sprint("before:", i), i, 0).Err())
	}
	_, err = aq.EnqueueContext(ctx, asynq.NewTask("t", nil), asynq.Queue("q"), asynq.TaskID("before"))
	require.NoError(t, err)
	// Replication is asynchronous: make sure the replica has it all
	// before the failover, as the assertions below rely on it.
	n, err := c.Do(ctx, "WAIT", 1, 5000).Int()
	require.NoError(t, err)
	require.Equal(t, 1, n)

	// A planned failover.
	second := s.Failover(t)
	require.NotEqual(t, first, second)
	eventually(t, "write after failover", func(ctx context.Context) error {
		return c.Set(ctx, "after:failover", "1", 0).Err()
	})
	eventually(t, "enqueue after failover", func(ctx context.Context) error {
		_, err := aq.EnqueueContext(ctx, asynq.NewTask("t", nil), asynq.Queue("q"), asynq.TaskID("after-failover"))
		return err
	})
	direct := redis.NewClient(&redis.Options{Addr: second, MaxRetries: -1})
	t.Cleanup(func() { _ = direct.Close() })
	require.Equal(t, "1", direct.Get(ctx, "after:failover").Val(), "the write went to the new primary")
	for i := range 50 {
		v, err := c.Get(ctx, fmt.Sprint("before:", i)).Int()
		require.NoError(t, err)
		require.Equal(t, i, v)
	}
	info, err := ins.GetQueueInfo("q")
	require.NoError(t, err)
	require.Equal(t, 2, info.Pending)

	// The new primary dies; the sentinels promote the old one back.
	eventually(t, "replica in sync", func(ctx context.Context) error {
		n, err := c.Do(ctx, "WAIT", 1, 1000).Int()
		if err == nil && n != 1 {
			err = fmt.Errorf("%d replicas acknowledged", n)
		}
		return err
	})
	s.KillPrimary(t)
	eventually(t, "write after the primary died", func(ctx context.Context) error {
		return c.Set(ctx, "after:kill", "1", 0).Err()
	})
	third := s.WaitPrimaryChange(t, second)
	require.Equal(t, first, third)
	direct3 := redis.NewClient(&redis.Options{Addr: third, MaxRetries: -1})
	t.Cleanup(func() { _ = direct3.Close() })
	require.Equal(t, "1", direct3.Get(ctx, "after:kill").Val())
	require.Equal(t, "1", c.Get(ctx, "after:failover").Val())
	require.Equal(t, "49", c.Get(ctx, "before:49").Val())
}
