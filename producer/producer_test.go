package producer_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/retry"
)

// The tests share asynq's queues in redistest.DBProducer, so they do not
// run in parallel.

type bundle struct {
	rdb   *rdb.RDB
	store *campaigns.Store
	prod  *producer.Producer
	ins   *asynq.Inspector
}

func setup(t *testing.T, cfg producer.Config) *bundle {
	t.Helper()
	c := redistest.Client(t, redistest.DBProducer)
	ro := redistest.Options(t, redistest.DBProducer)
	opt := asynq.RedisClientOpt{Addr: ro.Addr, Username: ro.Username, Password: ro.Password, DB: ro.DB}
	ins := asynq.NewInspector(opt)
	clear := func() {
		for _, q := range []string{task.QueueBulk, task.QueueControl, task.QueueTransactional} {
			_ = ins.DeleteQueue(q, true)
		}
	}
	clear()
	t.Cleanup(func() { clear(); _ = ins.Close() })
	r := rdb.New(c, redistest.Prefix(t, c))
	client, err := producer.NewClient(c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	// A rate high enough that the bucket's admission window (rate times
	// Horizon) never binds: these tests are about Window and chunks.
	reg, err := account.NewRegistry(&account.Account{AppID: "wx00000000000fake1", Default: ratelimit.Limit{Rate: 100000, Burst: 100}})
	require.NoError(t, err)
	store := campaigns.NewStore(r)
	return &bundle{rdb: r, store: store, ins: ins, prod: producer.New(client.Client, store, reg, nil, cfg)}
}

func (b *bundle) campaign(t *testing.T, n int) *campaigns.Campaign {
	t.Helper()
	c := &campaigns.Campaign{
		Name: "p", Account: "wx00000000000fake1", Kind: campaigns.KindTemplate,
		Template: &campaigns.TemplateSpec{TemplateID: "TPL", Data: map[string]string{"thing1": "hi"}},
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceFile},
	}
	require.NoError(t, b.store.Create(t.Context(), c))
	var entries []rdb.AudienceEntry
	for i := range n {
		entries = append(entries, rdb.AudienceEntry{OpenID: fmt.Sprintf("oP%026d", i)})
	}
	_, _, err := b.rdb.AppendAudience(t.Context(), c.ID, entries, string(campaigns.StateDraft))
	require.NoError(t, err)
	return c
}

func (b *bundle) queued(t *testing.T, q string) int {
	t.Helper()
	info, err := b.ins.GetQueueInfo(q)
	if err != nil {
		return 0
	}
	return info.Pending + info.Scheduled + info.Retry + info.Active
}

func expandTask(id string, run, chunk int) *asynq.Task {
	return asynq.NewTask(task.TypeExpand, task.Encode(task.Expand{Run: task.Run{Campaign: id, Run: run}, Chunk: chunk}))
}

func TestExpandKeepsWindowAndNeverDoubleEnqueues(t *testing.T) {
	const n, chunk, window = 2500, 100, 1000
	b := setup(t, producer.Config{ChunkSize: chunk, Window: window})
	c := b.campaign(t, n)
	run, err := b.prod.Start(t.Context(), c.ID)
	require.NoError(t, err)
	require.Equal(t, 1, b.queued(t, task.QueueControl), "one launch task")
	// Starting again is refused: the campaign is running.
	_, err = b.prod.Start(t.Context(), c.ID)
	require.ErrorIs(t, err, campaigns.ErrBadTransition)

	require.NoError(t, b.prod.HandleLaunch(t.Context(), asynq.NewTask(task.TypeLaunch, task.Encode(task.Run{Campaign: c.ID, Run: run}))))

	// Expand chunk after chunk until the window is full.
	k := 0
	for ; ; k++ {
		err := b.prod.HandleExpand(t.Context(), expandTask(c.ID, run, k))
		var te *retry.Wait
		if errors.As(err, &te) {
			break
		}
		require.NoError(t, err)
	}
	require.Equal(t, window/chunk, k, "the window holds %d chunks", window/chunk)
	require.Equal(t, window, b.queued(t, task.QueueBulk))

	// A crashed expand task runs again: nothing is queued twice.
	require.NoError(t, b.prod.HandleExpand(t.Context(), expandTask(c.ID, run, k-1)))
	require.Equal(t, window, b.queued(t, task.QueueBulk))

	// Settling 300 recipients makes room for three more chunks.
	var settles []rdb.Settle
	for i := range 300 {
		settles = append(settles, rdb.Settle{OpenID: fmt.Sprintf("oP%026d", i), Outcome: rdb.Outcome{Status: rdb.OutcomeSent}})
	}
	_, err = b.rdb.RecordOutcomes(t.Context(), c.ID, run, "completed", settles...)
	require.NoError(t, err)
	for range 3 {
		require.NoError(t, b.prod.HandleExpand(t.Context(), expandTask(c.ID, run, k)))
		k++
	}
	var te *retry.Wait
	require.ErrorAs(t, b.prod.HandleExpand(t.Context(), expandTask(c.ID, run, k)), &te)
	require.Equal(t, window+300, b.queued(t, task.QueueBulk), "settled tasks are still in this queue: no worker ran them")

	// Cancelled: the run stops, nothing more is expanded, and its settle
	// task (queued by Cancel) gives every recipient without an outcome,
	// queued or not (none was attempted), cancelled.
	require.NoError(t, b.prod.Cancel(t.Context(), c.ID))
	for ; k*chunk < n; k++ {
		require.NoError(t, b.prod.HandleExpand(t.Context(), expandTask(c.ID, run, k)))
	}
	require.Equal(t, window+300, b.queued(t, task.QueueBulk))
	rec, err := b.rdb.GetRun(t.Context(), c.ID, run)
	require.NoError(t, err)
	require.Equal(t, "stopping", rec.State)
	require.EqualValues(t, 300, rec.Settled())
	_, err = b.ins.GetTaskInfo(task.QueueControl, task.SettleID(c.ID, run))
	require.NoError(t, err, "the settle task is queued")
	require.NoError(t, b.prod.HandleSettle(t.Context(), asynq.NewTask(task.TypeSettle, task.Encode(task.Run{Campaign: c.ID, Run: run}))))
	rec, err = b.rdb.GetRun(t.Context(), c.ID, run)
	require.NoError(t, err)
	require.Equal(t, "cancelled", rec.State)
	require.EqualValues(t, n-300, rec.Counters["cancelled"])
	require.EqualValues(t, 300, rec.Counters["sent"])
	require.EqualValues(t, n, rec.Settled())
	got, err := b.store.Get(t.Context(), c.ID)
	require.NoError(t, err)
	require.Equal(t, campaigns.StateCancelled, got.State)
}

func TestLaunchOfUnknownRunIsDropped(t *testing.T) {
	b := setup(t, producer.Config{})
	err := b.prod.HandleLaunch(t.Context(), asynq.NewTask(task.TypeLaunch, task.Encode(task.Run{Campaign: "cnotthere0000", Run: 1})))
	require.ErrorIs(t, err, asynq.SkipRetry)
	err = b.prod.HandleExpand(t.Context(), asynq.NewTask(task.TypeExpand, []byte("{")))
	require.ErrorIs(t, err, asynq.SkipRetry)
}

func TestTransactionalNeedsOneRecipient(t *testing.T) {
	b := setup(t, producer.Config{})
	c := &campaigns.Campaign{
		Name: "tx", Account: "wx00000000000fake1", Kind: campaigns.KindTemplate,
		Template: &campaigns.TemplateSpec{TemplateID: "TPL", Data: map[string]string{"thing1": "hi"}},
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceInline, OpenIDs: []string{"oP00000000000000000000000001", "oP00000000000000000000000002"}},
	}
	_, err := b.prod.SendTransactional(t.Context(), c)
	require.Error(t, err)
	c.Audience.OpenIDs = c.Audience.OpenIDs[:1]
	run, err := b.prod.SendTransactional(t.Context(), c)
	require.NoError(t, err)
	require.Equal(t, 1, run)
	require.Equal(t, 1, b.queued(t, task.QueueTransactional))
}

// TestLostTransactionalSendIsQueuedOnItsOwnQueue: the reconciler's queueing
// again of a transactional send whose task was lost puts it back on the
// transactional queue, ahead of bulk campaigns, and a bulk run's lost
// sends on the bulk queue.
func TestLostTransactionalSendIsQueuedOnItsOwnQueue(t *testing.T) {
	b := setup(t, producer.Config{})
	c := &campaigns.Campaign{
		Name: "tx", Account: "wx00000000000fake1", Kind: campaigns.KindTemplate,
		Template: &campaigns.TemplateSpec{TemplateID: "TPL", Data: map[string]string{"thing1": "hi"}},
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceInline, OpenIDs: []string{"oP00000000000000000000000001"}},
	}
	run, err := b.prod.SendTransactional(t.Context(), c)
	require.NoError(t, err)
	rec, err := b.store.Run(t.Context(), c.ID, run)
	require.NoError(t, err)
	require.True(t, rec.Transactional)
	_, err = b.ins.DeleteAllPendingTasks(task.QueueTransactional)
	require.NoError(t, err)
	require.Equal(t, 0, b.queued(t, task.QueueTransactional))

	res, err := b.prod.Reconcile(t.Context(), c, run)
	require.NoError(t, err)
	require.Equal(t, 1, res.Sends)
	require.Equal(t, 1, b.queued(t, task.QueueTransactional), "the lost send is back on the transactional queue")
	require.Equal(t, 0, b.queued(t, task.QueueBulk))

	bulk := b.campaign(t, 3)
	brun, err := b.store.StartRun(t.Context(), bulk)
	require.NoError(t, err)
	require.NoError(t, b.store.MarkExpanded(t.Context(), bulk.ID, brun, 3))
	rec, err = b.store.Run(t.Context(), bulk.ID, brun)
	require.NoError(t, err)
	require.False(t, rec.Transactional)
	res, err = b.prod.Reconcile(t.Context(), bulk, brun)
	require.NoError(t, err)
	require.Equal(t, 3, res.Sends)
	require.Equal(t, 3, b.queued(t, task.QueueBulk))
	require.Equal(t, 1, b.queued(t, task.QueueTransactional))
}
