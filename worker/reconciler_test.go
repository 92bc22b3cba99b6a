package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/monitoring"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// reconcilerMetrics is a process's metrics, read back by action.
type reconcilerMetrics struct {
	reg *prometheus.Registry
	m   *monitoring.Metrics
}

func newReconcilerMetrics(t *testing.T) reconcilerMetrics {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := monitoring.NewMetrics(reg)
	require.NoError(t, err)
	return reconcilerMetrics{reg: reg, m: m}
}

// actions returns wxmass_reconciler_actions_total by action.
func (rm reconcilerMetrics) actions(t *testing.T) map[string]int {
	t.Helper()
	mfs, err := rm.reg.Gather()
	require.NoError(t, err)
	out := map[string]int{}
	for _, mf := range mfs {
		if mf.GetName() != "wxmass_reconciler_actions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "action" {
					out[l.GetValue()] = int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return out
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// deleteTasks deletes every task of the bulk and control queues that is
// not active, as a failover that loses them would.
func deleteTasks(t *testing.T, ins *asynq.Inspector) {
	t.Helper()
	queues, err := ins.Queues()
	require.NoError(t, err)
	for _, q := range queues {
		if q != task.QueueBulk && q != task.QueueControl {
			continue
		}
		for _, del := range []func(string) (int, error){ins.DeleteAllPendingTasks, ins.DeleteAllScheduledTasks, ins.DeleteAllRetryTasks, ins.DeleteAllArchivedTasks} {
			_, err := del(q)
			require.NoError(t, err)
		}
	}
}

// TestReconcilerFinishesRunsWhoseTasksWereLost: runs whose launch, expand
// and send tasks were deleted (as a failover might lose them) while the
// whole fleet was down never finish by themselves: nothing of theirs is
// queued. Once a new fleet is up, the one process that holds the
// reconciler's lease queues again exactly the recipients expanded without
// an outcome, and the expansion of the rest; both runs complete with every
// recipient's outcome, each recipient messaged once, and only one of the
// two reconcilers ever acted.
func TestReconcilerFinishesRunsWhoseTasksWereLost(t *testing.T) {
	const (
		n      = 150
		window = 40
		chunk  = 20
	)
	all := openIDs(2 * n) // the runs' audiences are distinct: the fake records deliveries by openid
	ids, ids2 := all[:n], all[n:]
	b := setup(t, wechattest.Config{})
	ins := asynq.NewInspector(b.opt)
	defer ins.Close()

	// The old fleet: one slow process, whose reconciler never acts.
	old := b.process(t, procConfig{rate: 40, burst: 4, concurrency: 2, window: window, chunk: chunk, stall: time.Hour})
	c1 := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, ids)
	run1, err := old.producer.Start(t.Context(), c1.ID)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		rec, err := b.store.Run(t.Context(), c1.ID, run1)
		require.NoError(t, err)
		return rec.Settled() >= 20
	}, 30*time.Second, 20*time.Millisecond, "the run sends")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, old.srv.Stop(ctx))
	// A second run starts with the fleet down: its launch task is lost too.
	c2 := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, ids2)
	run2, err := old.producer.Start(t.Context(), c2.ID)
	require.NoError(t, err)
	deleteTasks(t, ins)
	before, err := b.store.Run(t.Context(), c1.ID, run1)
	require.NoError(t, err)
	lost := int(before.Expanded - before.Settled())
	require.Positive(t, lost, "recipients expanded without an outcome: %+v", before)
	require.Less(t, before.Expanded, int64(n), "the window kept part of the run unexpanded")

	// The new fleet: two processes, each with a reconciler.
	ms := []reconcilerMetrics{newReconcilerMetrics(t), newReconcilerMetrics(t)}
	for _, m := range ms {
		b.process(t, procConfig{window: window, chunk: chunk, stall: 300 * time.Millisecond, reconcile: 200 * time.Millisecond, metrics: m.m})
	}
	for _, r := range []struct {
		c   *campaigns.Campaign
		run int
	}{{c1, run1}, {c2, run2}} {
		rec := b.waitSettled(t, r.c.ID, r.run, time.Minute)
		require.Equal(t, string(campaigns.StateCompleted), rec.State)
		require.EqualValues(t, n, rec.Counters["sent"], "%v", rec.Counters)
		b.truth(t, r.c, nil, r.run)
	}
	require.EqualValues(t, 0, b.fake.Stats().DuplicatesDelivered, "nobody was messaged twice")
	require.Len(t, b.fake.Deliveries(), 2*n)

	a0, a1 := ms[0].actions(t), ms[1].actions(t)
	t.Logf("reconciler actions: %v, %v", a0, a1)
	require.True(t, (total(a0) == 0) != (total(a1) == 0), "exactly one reconciler acted: %v, %v", a0, a1)
	acted := a0
	if total(a1) > 0 {
		acted = a1
	}
	require.Positive(t, acted["reconcile"])
	require.Equal(t, lost, acted["send"], "the recipients expanded without an outcome were queued again, each once")
	require.GreaterOrEqual(t, acted["expand"], 2, "each run's next chunk was queued again")
}

// TestReconcilerFinishesARunWhoseRecipientsAllHaveOutcomes: a run left
// running although every recipient has an outcome (its finish lost with a
// failover) is finished by the reconciler, by the ledger's rule: it
// completes, and so does its campaign.
func TestReconcilerFinishesARunWhoseRecipientsAllHaveOutcomes(t *testing.T) {
	const n = 5
	b := setup(t, wechattest.Config{})
	m := newReconcilerMetrics(t)
	p := b.process(t, procConfig{stall: time.Hour, reconcile: 100 * time.Millisecond, metrics: m.m})
	c := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, openIDs(n))
	run, err := p.producer.Start(t.Context(), c.ID)
	require.NoError(t, err)
	b.waitSettled(t, c.ID, run, 30*time.Second)
	require.Zero(t, m.actions(t)["finish"], "a run that finishes by itself is not the reconciler's")
	// The finish is lost: the run and its campaign are running again.
	keys := b.rdb.Keys()
	require.NoError(t, b.redis.HSet(t.Context(), keys.Run(c.ID, run), "state", string(campaigns.StateRunning)).Err())
	require.NoError(t, b.redis.HSet(t.Context(), keys.Campaign(c.ID), "state", string(campaigns.StateRunning)).Err())

	require.Eventually(t, func() bool {
		rec, err := b.store.Run(t.Context(), c.ID, run)
		require.NoError(t, err)
		return rec.State == string(campaigns.StateCompleted)
	}, 10*time.Second, 20*time.Millisecond, "the reconciler finishes the run")
	got, err := b.store.Get(t.Context(), c.ID)
	require.NoError(t, err)
	require.Equal(t, campaigns.StateCompleted, got.State)
	require.Equal(t, 1, m.actions(t)["finish"])
	require.Len(t, b.fake.Deliveries(), n, "nobody was messaged again")
}

// TestReconcilerRequeuesLostLaunchAndSettle: with the fleet down, a run of
// all followers is started (its audience is fetched by its launch task)
// and a run of a file audience is started and cancelled (its recipients
// get their outcomes from its settle task); both tasks are lost. The new
// fleet's reconciler queues them again: the first run fetches its
// audience and completes, the second ends cancelled with nobody messaged.
func TestReconcilerRequeuesLostLaunchAndSettle(t *testing.T) {
	const followers, n = 60, 30
	b := setup(t, wechattest.Config{Followers: followers})
	ins := asynq.NewInspector(b.opt)
	defer ins.Close()
	old := b.process(t, procConfig{stall: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, old.srv.Stop(ctx))

	fol := &campaigns.Campaign{
		Name: "followers", Account: wechattest.AppIDDefault, Kind: campaigns.KindTemplate,
		Template: &campaigns.TemplateSpec{TemplateID: wechattest.TemplateIDDefault, Data: map[string]string{"thing1": "会员日"}},
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceFollowers},
	}
	require.NoError(t, b.store.Create(t.Context(), fol))
	folRun, err := old.producer.Start(t.Context(), fol.ID)
	require.NoError(t, err)
	file := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, openIDs(n))
	fileRun, err := old.producer.Start(t.Context(), file.ID)
	require.NoError(t, err)
	require.NoError(t, old.producer.Cancel(t.Context(), file.ID))
	deleteTasks(t, ins)
	rec, err := b.store.Run(t.Context(), fol.ID, folRun)
	require.NoError(t, err)
	require.EqualValues(t, -1, rec.Size, "the audience is not fetched yet")
	rec, err = b.store.Run(t.Context(), file.ID, fileRun)
	require.NoError(t, err)
	require.Equal(t, string(campaigns.StateStopping), rec.State)

	m := newReconcilerMetrics(t)
	b.process(t, procConfig{stall: 300 * time.Millisecond, reconcile: 100 * time.Millisecond, metrics: m.m})
	rec = b.waitSettled(t, fol.ID, folRun, time.Minute)
	require.Equal(t, string(campaigns.StateCompleted), rec.State)
	require.EqualValues(t, followers, rec.Counters["sent"], "%v", rec.Counters)
	b.truth(t, fol, nil, folRun)
	rec = b.waitSettled(t, file.ID, fileRun, time.Minute)
	require.Eventually(t, func() bool {
		rec, err = b.store.Run(t.Context(), file.ID, fileRun)
		require.NoError(t, err)
		return rec.State == string(campaigns.StateCancelled)
	}, 10*time.Second, 20*time.Millisecond, "the cancelled run ends: %+v", &rec)
	require.EqualValues(t, n, rec.Counters["cancelled"], "%v", rec.Counters)
	b.truth(t, file, nil, fileRun)
	require.Len(t, b.fake.Deliveries(), followers, "the cancelled run's recipients were not messaged")

	got := m.actions(t)
	require.Equal(t, 1, got["launch"], "%v", got)
	require.Equal(t, 1, got["settle"], "%v", got)
}
