package producer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redisconn"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
)

// TestClusterRunEndToEnd runs a campaign through a real Redis Cluster: the
// producer enqueues through go-redis's autopipeline on a *redis.ClusterClient
// (producer.NewClient), an asynq server reads the queues through
// asynq.RedisClusterClientOpt, both built by redisconn from one URL, and a
// stand-in send handler records each outcome. The launch, expand and send
// tasks make the round trip, every recipient settles exactly once, and the
// run completes. It runs on a cluster of its own, so in parallel with the
// tests that share DBProducer.
func TestClusterRunEndToEnd(t *testing.T) {
	t.Parallel()
	const n = 95
	ctx := t.Context()
	cl := redistest.StartCluster(t, 3)
	opt, err := redisconn.Parse(cl.URL())
	require.NoError(t, err)
	rc := opt.NewClient()
	require.IsType(t, &redis.ClusterClient{}, rc)
	t.Cleanup(func() { _ = rc.Close() })
	_, ok := opt.AsynqOpt().(asynq.RedisClusterClientOpt)
	require.True(t, ok)

	r := rdb.New(rc, "")
	client, err := producer.NewClient(rc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	// A rate high enough that the bucket's admission window (rate times
	// Horizon) never binds: these tests are about Window and chunks.
	reg, err := account.NewRegistry(&account.Account{AppID: "wx00000000000fake1", Default: ratelimit.Limit{Rate: 100000, Burst: 100}})
	require.NoError(t, err)
	store := campaigns.NewStore(r)
	prod := producer.New(client.Client, store, reg, nil, producer.Config{ChunkSize: 10, Window: 1000})

	c := &campaigns.Campaign{
		Name: "cluster", Account: "wx00000000000fake1", Kind: campaigns.KindTemplate,
		Template: &campaigns.TemplateSpec{TemplateID: "TPL", Data: map[string]string{"thing1": "hi"}},
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceFile},
	}
	require.NoError(t, store.Create(ctx, c))
	entries := make([]rdb.AudienceEntry, n)
	for i := range entries {
		entries[i] = rdb.AudienceEntry{OpenID: fmt.Sprintf("oC%026d", i)}
	}
	_, _, err = r.AppendAudience(ctx, c.ID, entries, string(campaigns.StateDraft))
	require.NoError(t, err)
	run, err := prod.Start(ctx, c.ID)
	require.NoError(t, err)

	var (
		mu    sync.Mutex
		sends = map[string]int{}
	)
	mux := asynq.NewServeMux()
	mux.HandleFunc(task.TypeLaunch, prod.HandleLaunch)
	mux.HandleFunc(task.TypeExpand, prod.HandleExpand)
	mux.HandleFunc(task.TypeSendTemplate, func(ctx context.Context, at *asynq.Task) error {
		s, err := task.DecodeSend(at.Payload())
		if err != nil {
			return err
		}
		mu.Lock()
		sends[s.OpenID]++
		mu.Unlock()
		_, err = r.RecordOutcome(ctx, s.Campaign, s.Run.Run, campaigns.DoneState(c),
			rdb.Settle{OpenID: s.OpenID, Outcome: rdb.Outcome{Status: rdb.OutcomeSent, MsgID: 1 << 40}})
		return err
	})
	srv := asynq.NewServer(opt.AsynqOpt(), asynq.Config{
		Concurrency: 8,
		Queues:      map[string]int{task.QueueTransactional: 3, task.QueueControl: 2, task.QueueBulk: 1},
		LogLevel:    asynq.ErrorLevel,
		// Tasks are ready at once; poll the (empty) queues often so the
		// test does not wait out asynq's 1 s default.
		TaskCheckInterval: 10 * time.Millisecond,
	})
	require.NoError(t, srv.Start(mux))
	t.Cleanup(srv.Shutdown)

	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		rec, err := r.GetRun(ctx, c.ID, run)
		require.NoError(t, err)
		if rec.State == "completed" {
			require.EqualValues(t, n, rec.Counters["total"])
			require.EqualValues(t, n, rec.Counters["sent"])
			break
		}
		require.False(t, time.Now().After(deadline), "run not completed in 30 s: %+v", rec)
		<-tick.C
	}
	mu.Lock()
	require.Len(t, sends, n)
	for openid, k := range sends {
		require.Equal(t, 1, k, "%s sent once", openid)
	}
	mu.Unlock()

	// The inspector (asynqmon, metrics) reads the queues through the same
	// option.
	ins := asynq.NewInspector(opt.AsynqOpt())
	t.Cleanup(func() { _ = ins.Close() })
	info, err := ins.GetQueueInfo(task.QueueBulk)
	require.NoError(t, err)
	require.Equal(t, n, info.Processed)
	require.Zero(t, info.Failed)
}
