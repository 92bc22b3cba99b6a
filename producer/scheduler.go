package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/campaigns"
)

// Defaults of SchedulerConfig.
const (
	SchedulerTickDefault = time.Second
	MissedGraceDefault   = time.Minute
	DueBatchDefault      = 100
	// schedulerErrorLogEvery is how often a scheduler that keeps failing
	// (Redis down) logs it.
	schedulerErrorLogEvery = time.Minute
)

// SchedulerConfig configures a Scheduler. Zero values take the defaults.
type SchedulerConfig struct {
	// NowFunc is the clock the fire times are compared with (time.Now).
	NowFunc func() time.Time
	// Tick is how often Run looks for due fires (SchedulerTickDefault).
	// A fire starts at most about Tick after its time.
	Tick time.Duration
	// MissedGrace is how late a fire may be seen and still count as on
	// time (MissedGraceDefault). A fire seen later was missed while no
	// scheduler ran, and its schedule's Missed policy decides what it does.
	MissedGrace time.Duration
	// DueBatch is the most fires one tick handles (DueBatchDefault); the
	// rest wait for the next tick.
	DueBatch int
	Logger   *zap.Logger
}

func (c *SchedulerConfig) withDefaults() {
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	if c.Tick <= 0 {
		c.Tick = SchedulerTickDefault
	}
	if c.MissedGrace <= 0 {
		c.MissedGrace = MissedGraceDefault
	}
	if c.DueBatch <= 0 {
		c.DueBatch = DueBatchDefault
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Scheduler fires the schedules of scheduled campaigns (campaigns.Schedule):
// each fire time of each campaign starts one run, queued as Start queues
// one, with the launch task id launch:{campaign}:{run}.
//
// Every serve process runs a Scheduler; they need no leader. Each reads the
// due entries of the schedule index and claims each fire
// (campaigns.Store.Fire): one atomic step in the campaign's hash tag that
// checks the campaign is still on its schedule, claims the fire time (a key
// per campaign and fire time, kept for campaigns.FireKeep), starts the run
// and advances the campaign's next fire time. Exactly one claim of each
// fire time wins, so each fire happens once whatever the number of
// schedulers. The winner then queues the launch and moves the index entry
// to the next fire time.
//
// A scheduler that dies between its claim and the queueing of the launch
// leaves the index entry due: the next scheduler's claim of it loses, learns
// the run the fire started, queues its launch (deduplicated by the task id)
// and moves the entry. So a fire's run is created exactly once and its
// launch queued at least once.
type Scheduler struct {
	cfg   SchedulerConfig
	p     *Producer
	store *campaigns.Store
	log   *zap.Logger

	lastErrLog time.Time // Run's goroutine only
	dropped    int
}

// NewScheduler returns a Scheduler that starts runs with p.
func NewScheduler(p *Producer, cfg SchedulerConfig) *Scheduler {
	cfg.withDefaults()
	return &Scheduler{cfg: cfg, p: p, store: p.store, log: cfg.Logger}
}

// Schedule puts a draft campaign on its schedule (campaigns.Store.Schedule),
// after checking that its account is configured, as Start does.
func (p *Producer) Schedule(ctx context.Context, id string) error {
	c, err := p.store.Get(ctx, id)
	if err != nil {
		return err
	}
	if _, err := p.accounts.Get(c.Account); err != nil {
		return fmt.Errorf("schedule campaign %s: %w", id, err)
	}
	return p.store.Schedule(ctx, id)
}

// Run fires due schedules every Tick, starting at once, until ctx ends;
// then it returns nil. A failing tick (Redis unreachable) is logged, at
// most once a minute, and the next tick tries again. Run must not be called
// twice at once on one Scheduler.
func (s *Scheduler) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		if err := s.tick(ctx); err != nil && ctx.Err() == nil {
			s.logError(err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// logError logs err unless an error was logged less than a minute ago, in
// which case it is counted and reported with the next one logged.
func (s *Scheduler) logError(err error) {
	now := s.cfg.NowFunc()
	if !s.lastErrLog.IsZero() && now.Sub(s.lastErrLog) < schedulerErrorLogEvery {
		s.dropped++
		return
	}
	s.log.Error("schedule tick failed", zap.Error(err), zap.Int("errors_not_logged", s.dropped))
	s.lastErrLog, s.dropped = now, 0
}

// tick handles the fires due now. It returns the errors of those it could
// not handle; they stay due for the next tick.
func (s *Scheduler) tick(ctx context.Context) error {
	now := s.cfg.NowFunc()
	due, err := s.store.DueFires(ctx, now, int64(s.cfg.DueBatch))
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range due {
		if err := s.fire(ctx, d, now); err != nil {
			errs = append(errs, fmt.Errorf("fire %s at %s: %w", d.ID, d.At.UTC().Format(time.RFC3339), err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// fire claims and does one due fire.
func (s *Scheduler) fire(ctx context.Context, d campaigns.DueFire, now time.Time) error {
	log := s.log.With(zap.String("campaign_id", d.ID), zap.Time("fire_at", d.At))
	c, err := s.store.Get(ctx, d.ID)
	if errors.Is(err, campaigns.ErrNotFound) {
		_, err := s.store.MoveFire(ctx, d.ID, d.At, time.Time{})
		return err
	}
	if err != nil {
		return err
	}
	f := campaigns.Fire{At: d.At}
	if c.Schedule != nil {
		f = c.Schedule.Plan(d.At, now, s.cfg.MissedGrace)
	}
	if f.Start {
		if _, err := s.p.accounts.Get(c.Account); err != nil {
			// Every tick would fail the same way: the fire passes, with no
			// run, and the schedule goes on.
			log.Error("scheduled fire starts no run: its account is not configured in this process", zap.String("app_id", c.Account))
			f.Start = false
		}
	}
	res, err := s.store.Fire(ctx, c, f)
	if err != nil {
		return err
	}
	switch res.Status {
	case campaigns.FireStarted:
		if err := s.p.enqueueLaunch(ctx, c.ID, res.Run); err != nil {
			// The index entry stays due: the next claim of this fire finds
			// the run and queues its launch.
			return err
		}
		if f.Late {
			log.Warn("missed fire: one late run started", zap.Int("run", res.Run), zap.Duration("late", now.Sub(d.At)))
		} else {
			log.Info("scheduled run started", zap.Int("run", res.Run))
		}
	case campaigns.FireStale:
		if res.Run > 0 {
			if err := s.ensureLaunch(ctx, c.ID, res.Run); err != nil {
				return err
			}
		}
	case campaigns.FireSkipped:
		log.Warn("missed fire skipped (missed: skip)", zap.Duration("late", now.Sub(d.At)))
	case campaigns.FireBusy:
		log.Warn("scheduled fire skipped: the previous run is still running, paused or stopping")
	case campaigns.FireEmpty:
		log.Warn("scheduled fire skipped: the audience is empty")
	case campaigns.FireUnscheduled:
		log.Debug("index entry of a campaign off its schedule dropped", zap.String("state", string(res.State)))
	}
	if res.Won() && res.Next.IsZero() {
		log.Info("schedule done: no more fire times")
	}
	_, err = s.store.MoveFire(ctx, c.ID, d.At, res.Next)
	return err
}

// ensureLaunch queues the launch of a run a fire started, unless it has
// begun expanding (its launch ran) or ended. The task id deduplicates it
// against a launch still queued.
func (s *Scheduler) ensureLaunch(ctx context.Context, id string, run int) error {
	rec, err := s.store.Run(ctx, id, run)
	if err != nil {
		return err
	}
	if rec.Expanded > 0 || !live(rec.State) {
		return nil
	}
	return s.p.enqueueLaunch(ctx, id, run)
}
