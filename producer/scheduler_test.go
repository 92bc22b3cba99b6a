package producer_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
)

// These tests share asynq's queues in redistest.DBProducer with the other
// producer tests, so they do not run in parallel either.

const schedOpenID = "oP00000000000000000000000001"

// fakeClock is a clock the test sets; it is safe for concurrent use.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// schedBundle is a producer bundle with a fake clock and a scheduler.
type schedBundle struct {
	*bundle
	clock *fakeClock
	sched *producer.Scheduler
}

// t0 is Monday 2026-03-02 09:00:30 in Shanghai.
var t0 = time.Date(2026, 3, 2, 1, 0, 30, 0, time.UTC)

func setupScheduler(t *testing.T) *schedBundle {
	t.Helper()
	b := setup(t, producer.Config{})
	clk := &fakeClock{t: t0}
	return &schedBundle{bundle: b, clock: clk, sched: producer.NewScheduler(b.prod, producer.SchedulerConfig{NowFunc: clk.Now})}
}

// twin returns another scheduler on its own connection, RDB, store and
// producer, on the same Redis keys: a second serve process.
func (b *schedBundle) twin(t *testing.T) *producer.Scheduler {
	t.Helper()
	c := redistest.Client(t, redistest.DBProducer)
	r := rdb.New(c, b.rdb.Keys().Prefix)
	client, err := producer.NewClient(c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	reg, err := account.NewRegistry(&account.Account{AppID: "wx00000000000fake1", Default: ratelimit.Limit{Rate: 1, Burst: 1}})
	require.NoError(t, err)
	store := campaigns.NewStore(r)
	p := producer.New(client.Client, store, reg, nil, producer.Config{})
	return producer.NewScheduler(p, producer.SchedulerConfig{NowFunc: b.clock.Now})
}

// scheduled creates a campaign of one recipient with schedule s and
// schedules it at the clock's time.
func (b *schedBundle) scheduled(t *testing.T, s *campaigns.Schedule) *campaigns.Campaign {
	t.Helper()
	store := b.store.WithClock(b.clock.Now)
	c := &campaigns.Campaign{
		Name: "scheduled", Account: "wx00000000000fake1", Kind: campaigns.KindTemplate,
		Template: &campaigns.TemplateSpec{TemplateID: "TPL", Data: map[string]string{"thing1": "hi"}},
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceInline, OpenIDs: []string{schedOpenID}},
		Schedule: s,
	}
	require.NoError(t, store.Create(t.Context(), c))
	require.NoError(t, store.Schedule(t.Context(), c.ID))
	return c
}

// tickAll runs one tick of every scheduler at once.
func tickAll(t *testing.T, scheds ...*producer.Scheduler) {
	t.Helper()
	errs := make([]error, len(scheds))
	var wg sync.WaitGroup
	for i, s := range scheds {
		wg.Go(func() { errs[i] = s.RunOnce(t.Context()) })
	}
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
}

// latest returns the campaign's state and latest run.
func (b *schedBundle) latest(t *testing.T, id string) (campaigns.State, int) {
	t.Helper()
	c, run, err := b.store.Latest(t.Context(), id)
	require.NoError(t, err)
	return c.State, run
}

// finish settles the recipient of a run, which completes it.
func (b *schedBundle) finish(t *testing.T, id string, run int) {
	t.Helper()
	rec, err := b.rdb.RecordOutcomes(t.Context(), id, run, campaigns.DoneState(nil),
		rdb.Settle{OpenID: schedOpenID, Outcome: rdb.Outcome{Status: rdb.OutcomeSent}})
	require.NoError(t, err)
	require.Equal(t, "completed", rec.Finished)
}

// launches returns the ids of the queued launch tasks, sorted.
func (b *schedBundle) launches(t *testing.T) []string {
	t.Helper()
	tasks, err := b.ins.ListPendingTasks(task.QueueControl)
	if err != nil {
		return nil
	}
	var ids []string
	for _, ti := range tasks {
		require.Equal(t, task.TypeLaunch, ti.Type)
		ids = append(ids, ti.ID)
	}
	slices.Sort(ids)
	return ids
}

// nextFire returns the campaign's next fire time, zero when it has none,
// and checks that the index agrees.
func (b *schedBundle) nextFire(t *testing.T, id string) time.Time {
	t.Helper()
	nf, ok, err := b.rdb.NextFire(t.Context(), id)
	require.NoError(t, err)
	due, err := b.rdb.DueSchedules(t.Context(), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), 100)
	require.NoError(t, err)
	if !ok {
		require.Empty(t, due, "a campaign off its schedule leaves the index")
		return time.Time{}
	}
	require.Equal(t, []rdb.DueSchedule{{ID: id, At: nf}}, due, "the index holds the campaign's next fire time")
	return nf.UTC()
}

func TestSchedulerFiresEachFireOnceAcrossProcesses(t *testing.T) {
	b := setupScheduler(t)
	other := b.twin(t)
	c := b.scheduled(t, &campaigns.Schedule{Cron: "*/5 * * * *"})
	require.Equal(t, t0.Add(4*time.Minute+30*time.Second), b.nextFire(t, c.ID), "09:05 Shanghai time")

	// Twenty minutes of fake time, a tick of both schedulers every 15 s.
	// Each run is finished before the next fire, as workers would.
	var starts []time.Time
	runs := 0
	for now := t0; !now.After(t0.Add(20 * time.Minute)); now = now.Add(15 * time.Second) {
		b.clock.Set(now)
		tickAll(t, b.sched, other)
		if _, run := b.latest(t, c.ID); run > runs {
			require.Equal(t, runs+1, run, "one run per fire")
			runs = run
			starts = append(starts, now)
			b.finish(t, c.ID, run)
		}
	}
	require.Equal(t, 4, runs, "09:05, 09:10, 09:15 and 09:20: 4 runs, not 8")
	for i, s := range starts {
		fire := t0.Add(time.Duration(i+1)*5*time.Minute - 30*time.Second)
		require.False(t, s.Before(fire), "run %d not before its fire time", i+1)
		require.Less(t, s.Sub(fire), 15*time.Second, "run %d within a tick of its fire time", i+1)
	}
	require.Equal(t, []string{
		task.LaunchID(c.ID, 1), task.LaunchID(c.ID, 2), task.LaunchID(c.ID, 3), task.LaunchID(c.ID, 4),
	}, b.launches(t), "one launch per run")
	state, _ := b.latest(t, c.ID)
	require.Equal(t, campaigns.StateCompleted, state, "a recurring campaign is completed between runs")
	require.Equal(t, t0.Add(24*time.Minute+30*time.Second), b.nextFire(t, c.ID), "09:25 next")
}

func TestSchedulerSlowReaderDoesNotFireTwice(t *testing.T) {
	b := setupScheduler(t)
	slow := b.twin(t)
	c := b.scheduled(t, &campaigns.Schedule{Cron: "*/5 * * * *"})
	fire1 := b.nextFire(t, c.ID)
	b.clock.Set(fire1)
	require.NoError(t, b.sched.RunOnce(t.Context()))
	b.finish(t, c.ID, 1)

	// The other scheduler read the index before the first moved its entry,
	// and claims fire 1 only now, after its run has ended: it loses.
	require.NoError(t, b.rdb.IndexSchedule(t.Context(), c.ID, fire1))
	require.NoError(t, slow.RunOnce(t.Context()))
	state, run := b.latest(t, c.ID)
	require.Equal(t, campaigns.StateCompleted, state)
	require.Equal(t, 1, run, "fire 1 started one run")
	require.Equal(t, fire1.Add(5*time.Minute), b.nextFire(t, c.ID), "and the entry is where the winner put it")
	require.Equal(t, []string{task.LaunchID(c.ID, 1)}, b.launches(t))
}

func TestSchedulerSkipsAFireWhileTheRunIsLive(t *testing.T) {
	b := setupScheduler(t)
	c := b.scheduled(t, &campaigns.Schedule{Cron: "*/5 * * * *"})
	fire1 := b.nextFire(t, c.ID)
	b.clock.Set(fire1)
	require.NoError(t, b.sched.RunOnce(t.Context()))
	state, run := b.latest(t, c.ID)
	require.Equal(t, campaigns.StateRunning, state)
	require.Equal(t, 1, run)

	// Run 1 is still running at the next fire: nothing starts, the
	// schedule moves on.
	b.clock.Set(fire1.Add(5 * time.Minute))
	require.NoError(t, b.sched.RunOnce(t.Context()))
	_, run = b.latest(t, c.ID)
	require.Equal(t, 1, run)
	require.Equal(t, fire1.Add(10*time.Minute), b.nextFire(t, c.ID))

	b.finish(t, c.ID, 1)
	b.clock.Set(fire1.Add(10 * time.Minute))
	require.NoError(t, b.sched.RunOnce(t.Context()))
	_, run = b.latest(t, c.ID)
	require.Equal(t, 2, run)
	require.Equal(t, []string{task.LaunchID(c.ID, 1), task.LaunchID(c.ID, 2)}, b.launches(t))
}

func TestSchedulerMissedFires(t *testing.T) {
	// Scheduled at 09:00:30 for every hour on the hour; then every
	// scheduler is down from before 10:00 to 13:10.
	outageEnd := t0.Add(4*time.Hour + 9*time.Minute + 30*time.Second)
	next := t0.Add(4*time.Hour + 59*time.Minute + 30*time.Second) // 14:00

	t.Run("skip", func(t *testing.T) {
		b := setupScheduler(t)
		c := b.scheduled(t, &campaigns.Schedule{Cron: "0 * * * *", Missed: campaigns.MissedSkip})
		b.clock.Set(outageEnd)
		require.NoError(t, b.sched.RunOnce(t.Context()))
		state, run := b.latest(t, c.ID)
		require.Equal(t, campaigns.StateScheduled, state)
		require.Equal(t, 0, run, "no run for the missed fires")
		require.Equal(t, next, b.nextFire(t, c.ID), "the next fire in the future")
		require.Empty(t, b.launches(t))

		// The schedule goes on as usual.
		b.clock.Set(next.Add(2 * time.Second))
		require.NoError(t, b.sched.RunOnce(t.Context()))
		_, run = b.latest(t, c.ID)
		require.Equal(t, 1, run)
	})
	t.Run("once", func(t *testing.T) {
		b := setupScheduler(t)
		c := b.scheduled(t, &campaigns.Schedule{Cron: "0 * * * *", Missed: campaigns.MissedOnce})
		b.clock.Set(outageEnd)
		require.NoError(t, b.sched.RunOnce(t.Context()))
		require.NoError(t, b.sched.RunOnce(t.Context()))
		state, run := b.latest(t, c.ID)
		require.Equal(t, campaigns.StateRunning, state)
		require.Equal(t, 1, run, "one run for the four missed fires")
		require.Equal(t, next, b.nextFire(t, c.ID))
		require.Equal(t, []string{task.LaunchID(c.ID, 1)}, b.launches(t))
	})
	t.Run("within the grace period", func(t *testing.T) {
		b := setupScheduler(t)
		c := b.scheduled(t, &campaigns.Schedule{Cron: "0 * * * *", Missed: campaigns.MissedSkip})
		b.clock.Set(t0.Add(59*time.Minute + 50*time.Second)) // 10:00:20
		require.NoError(t, b.sched.RunOnce(t.Context()))
		_, run := b.latest(t, c.ID)
		require.Equal(t, 1, run, "20 s late is on time")
	})
}

func TestSchedulerOneOff(t *testing.T) {
	b := setupScheduler(t)
	other := b.twin(t)
	at := t0.Add(10 * time.Minute)
	c := b.scheduled(t, &campaigns.Schedule{At: at})
	require.Equal(t, at, b.nextFire(t, c.ID))

	b.clock.Set(at.Add(-time.Second))
	tickAll(t, b.sched, other)
	state, run := b.latest(t, c.ID)
	require.Equal(t, campaigns.StateScheduled, state)
	require.Equal(t, 0, run)

	for _, now := range []time.Time{at, at.Add(time.Second), at.Add(time.Hour), at.Add(48 * time.Hour)} {
		b.clock.Set(now)
		tickAll(t, b.sched, other)
	}
	state, run = b.latest(t, c.ID)
	require.Equal(t, campaigns.StateRunning, state)
	require.Equal(t, 1, run, "a one-off fires once")
	require.Zero(t, b.nextFire(t, c.ID), "and leaves the index")
	require.Equal(t, []string{task.LaunchID(c.ID, 1)}, b.launches(t))
	fires, err := b.store.NextFires(t.Context(), c, 5)
	require.NoError(t, err)
	require.Empty(t, fires)

	// A one-off missed by more than the grace period, under skip: back to
	// draft, without a run.
	late := b.scheduled(t, &campaigns.Schedule{At: at.Add(72 * time.Hour)})
	b.clock.Set(at.Add(73 * time.Hour))
	tickAll(t, b.sched, other)
	state, run = b.latest(t, late.ID)
	require.Equal(t, campaigns.StateDraft, state)
	require.Equal(t, 0, run)
}

func TestSchedulerCancelledStopsFiring(t *testing.T) {
	b := setupScheduler(t)
	c := b.scheduled(t, &campaigns.Schedule{Cron: "*/5 * * * *"})
	fire1 := b.nextFire(t, c.ID)
	b.clock.Set(fire1)
	require.NoError(t, b.sched.RunOnce(t.Context()))
	b.finish(t, c.ID, 1)
	fire2 := b.nextFire(t, c.ID)

	stopped, _, err := b.store.Cancel(t.Context(), c.ID)
	require.NoError(t, err)
	require.False(t, stopped, "between runs: nothing to stop")
	require.Zero(t, b.nextFire(t, c.ID))
	// Even an index entry left behind (a crash after the cancel's state
	// change) fires nothing, and is dropped.
	require.NoError(t, b.rdb.IndexSchedule(t.Context(), c.ID, fire2))
	for _, now := range []time.Time{fire2, fire2.Add(5 * time.Minute), fire2.Add(time.Hour)} {
		b.clock.Set(now)
		require.NoError(t, b.sched.RunOnce(t.Context()))
	}
	state, run := b.latest(t, c.ID)
	require.Equal(t, campaigns.StateCancelled, state)
	require.Equal(t, 1, run)
	due, err := b.rdb.DueSchedules(t.Context(), fire2.Add(time.Hour), 10)
	require.NoError(t, err)
	require.Empty(t, due)
	require.Equal(t, []string{task.LaunchID(c.ID, 1)}, b.launches(t))

	// Unscheduled: the same.
	u := b.scheduled(t, &campaigns.Schedule{Cron: "*/5 * * * *"})
	require.NoError(t, b.store.Unschedule(t.Context(), u.ID))
	b.clock.Set(fire2.Add(2 * time.Hour))
	require.NoError(t, b.sched.RunOnce(t.Context()))
	state, run = b.latest(t, u.ID)
	require.Equal(t, campaigns.StateDraft, state)
	require.Equal(t, 0, run)
}

func TestSchedulerRecoversAClaimWithoutLaunch(t *testing.T) {
	b := setupScheduler(t)
	c := b.scheduled(t, &campaigns.Schedule{Cron: "*/5 * * * *"})
	fire1 := b.nextFire(t, c.ID)
	b.clock.Set(fire1)

	// A scheduler claims the fire and dies before queueing the launch or
	// moving the index entry.
	res, err := b.store.Fire(t.Context(), c, c.Schedule.Plan(fire1, fire1, time.Minute))
	require.NoError(t, err)
	require.Equal(t, campaigns.FireStarted, res.Status)
	require.Empty(t, b.launches(t))

	// The next tick finds the entry due, loses the claim, and finishes the
	// job: the run's launch is queued and the entry moves on.
	require.NoError(t, b.sched.RunOnce(t.Context()))
	_, run := b.latest(t, c.ID)
	require.Equal(t, 1, run, "no second run")
	require.Equal(t, []string{task.LaunchID(c.ID, 1)}, b.launches(t))
	require.Equal(t, fire1.Add(5*time.Minute), b.nextFire(t, c.ID))
}

func TestSchedulerRun(t *testing.T) {
	b := setupScheduler(t)
	c := b.scheduled(t, &campaigns.Schedule{Cron: "*/5 * * * *"})
	b.clock.Set(b.nextFire(t, c.ID))
	sched := producer.NewScheduler(b.prod, producer.SchedulerConfig{NowFunc: b.clock.Now, Tick: 10 * time.Millisecond})

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- sched.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(b.launches(t)) == 0 {
		require.True(t, time.Now().Before(deadline), "Run fires the due schedule")
		select {
		case err := <-done:
			t.Fatalf("Run returned early: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	require.NoError(t, <-done, "Run returns nil when its context ends")
	require.Equal(t, []string{task.LaunchID(c.ID, 1)}, b.launches(t))
}
