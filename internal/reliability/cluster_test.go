//go:build reliability

package reliability

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestRedisCluster: a 20,000-recipient run on a Redis Cluster of three
// primaries (redis-cluster:// URL), three worker processes sharing one
// account at 500/s, burst 50. Every key wxmass writes carries a hash tag, so
// each multi-key script stays in one slot: the run completes end to end,
// the fake never sees more than rate + burst in one second, and the shared
// bucket (one key, on one node) still delivers the rate: at least 90 % of
// 500 a second on average over the run's steady part, counted by the fake.
// The note shows how the keys and the commands spread over the nodes.
func TestRedisCluster(t *testing.T) {
	const (
		n       = 20000
		workers = 3
		rate    = 500
		burst   = 50
		// Seconds of ramp-up (launch, first expansion) and of tail left out
		// of the steady part.
		trim = 2
	)
	begin := time.Now()
	cl := redistest.StartCluster(t, 3)
	fake := StartFake(t, wechattest.Config{})
	f := StartFleet(t, FleetConfig{RedisURL: cl.URL(), Fake: fake, Workers: workers, Rate: rate, Burst: burst})
	cc, ok := f.RDB().Client().(*redis.ClusterClient)
	require.True(t, ok, "the test's client is a cluster client, got %T", f.RDB().Client())

	nodes := cl.Nodes()
	cmds := func() []int64 {
		out := make([]int64, len(nodes))
		for i, nd := range nodes {
			out[i] = nodeInfoInt(t, nd.Addr(), "stats", "total_commands_processed")
		}
		return out
	}
	dbsize := func() []int64 {
		out := make([]int64, len(nodes))
		for i, nd := range nodes {
			c := redis.NewClient(&redis.Options{Addr: nd.Addr()})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			var err error
			out[i], err = c.DBSize(ctx).Result()
			cancel()
			_ = c.Close()
			require.NoError(t, err)
		}
		return out
	}
	before := cmds()
	run := f.Launch(t, campaigns.KindTemplate, OpenIDs("CLUSTER", n))
	var mid []int64
	rec := run.Wait(t, 5*time.Minute, Hook{At: 0.5, Do: func(rdb.RunRecord) { mid = dbsize() }})
	after := cmds()
	end := dbsize()

	s := Check(t, run)
	assert.EqualValues(t, n, rec.Counters[rdb.OutcomeSent], "every recipient was sent")

	api := run.Kind.API()
	per := fake.CallsPerSecond(run.Account.AppID, api, run.Started, run.Finished.Add(time.Second))
	require.Greater(t, len(per), 2*trim+5, "the run lasted long enough to have a steady part: %v", per)
	steady := per[trim : len(per)-trim]
	mean := float64(sum(steady)) / float64(len(steady))
	t.Logf("calls per second: %v", per)
	assert.GreaterOrEqual(t, mean, 0.9*rate, "the fleet achieved at least 90%% of the rate over the steady part %v", steady)

	// Where things live: each node's keys, and the node of the keys that
	// matter (the slot of their hash tag).
	ctx := context.Background()
	owner := map[string][]string{}
	k := f.RDB().Keys()
	for name, key := range map[string]string{
		"bulk queue": "asynq:{" + task.QueueBulk + "}:pending",
		"run":        k.Run(run.Campaign, run.Number),
		"bucket":     k.RateBucket(run.Account.AppID + ":" + api),
		"token":      k.Token(run.Account.AppID),
	} {
		m, err := cc.MasterForKey(ctx, key)
		require.NoError(t, err)
		owner[m.Options().Addr] = append(owner[m.Options().Addr], name)
	}
	var spread []string
	for i, nd := range nodes {
		slices.Sort(owner[nd.Addr()])
		spread = append(spread, fmt.Sprintf(":%s %d keys mid-run, %d at the end, %d commands [%s]",
			port(nd.Addr()), mid[i], end[i], after[i]-before[i], strings.Join(owner[nd.Addr()], ", ")))
	}
	t.Logf("nodes: %s", strings.Join(spread, "; "))

	s.Note("achieved %.0f/s over the steady %d s (min %d, max %d; rate %d)", mean, len(steady), slices.Min(steady), slices.Max(steady), rate)
	s.Note("nodes: %s", strings.Join(spread, "; "))
	s.Elapsed = time.Since(begin)
	Report(t, s)
}

// nodeInfoInt reads one integer field of a section of INFO from the server
// at addr.
func nodeInfoInt(tb testing.TB, addr, section, field string) int64 {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := c.Info(ctx, section).Result()
	require.NoError(tb, err)
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(tb, err)
			return n
		}
	}
	tb.Fatalf("INFO %s of %s has no %s", section, addr, field)
	return 0
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}

func sum(v []int) int {
	n := 0
	for _, x := range v {
		n += x
	}
	return n
}
