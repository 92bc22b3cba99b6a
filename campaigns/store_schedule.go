package campaigns

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wxmass/wxmass/internal/rdb"
)

// ErrNoSchedule is returned when a campaign without a Schedule is
// scheduled.
var ErrNoSchedule = errors.New("campaigns: the campaign has no schedule")

// FireKeep is how long the claim of a fire is remembered, so that the same
// fire time of a campaign never fires twice, even if the campaign is
// unscheduled and scheduled again or the processes' clocks disagree.
const FireKeep = 7 * 24 * time.Hour

// States in which a campaign on a schedule may be: waiting for its first
// fire (scheduled), or, for a recurring schedule, during a run and between
// runs.
var onSchedule = []string{string(StateScheduled), string(StateRunning), string(StatePaused), string(StateStopping), string(StateCompleted)}

// Schedule puts a draft campaign on its Schedule: it moves to scheduled
// and its first fire time after now is indexed for the schedulers. It
// returns ErrNoSchedule for a campaign without one, a *ValidationError
// naming schedule.at for a time that is past, ErrEmptyAudience for an
// inline or file audience with no recipients, ErrTestRequired for a
// campaign that requires a test and has no current one, and a *StateError
// for a campaign that is not a draft. A campaign on its schedule already is
// left as it is, so a retried request succeeds (and repairs its index
// entry).
//
// The life of a scheduled campaign (see Scheduler in package producer):
//   - one-off: scheduled → running at its fire, then as any run.
//   - recurring: scheduled → running at its first fire, → completed when
//     the run ends (or paused, cancelled, failed as any run), and
//     completed → running again at each next fire. It stays on its
//     schedule, with a next fire time, until it is unscheduled, cancelled
//     or failed. A fire due while its previous run is still running or
//     paused starts nothing.
func (s *Store) Schedule(ctx context.Context, id string) error {
	c, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	if c.Schedule == nil {
		return fmt.Errorf("%w: create it with schedule.at or schedule.cron", ErrNoSchedule)
	}
	now := s.now()
	next, ok := c.Schedule.Next(now)
	if c.State == StateDraft {
		if err := c.ValidateAt(now); err != nil {
			return err
		}
		if err := c.checkTested(); err != nil {
			return err
		}
		if !ok {
			return &ValidationError{Errors: []FieldError{{Field: "schedule.cron", Message: "no fire time after " + now.Format(time.RFC3339)}}}
		}
		if c.Audience.Source == SourceInline || c.Audience.Source == SourceFile {
			n, err := s.r.AudienceLen(ctx, id)
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("%w: upload an audience file first", ErrEmptyAudience)
			}
		}
	}
	_, _, err = s.r.ScheduleCampaign(ctx, id, next, string(StateScheduled), []string{string(StateDraft)}, onSchedule)
	return s.stateErr("schedule", id, err)
}

// Unschedule takes a campaign off its schedule: no fire starts a run after
// it returns. A campaign waiting for its first fire goes back to draft; a
// recurring campaign that has fired keeps its state (its current run, if
// any, goes on). It returns a *StateError for a campaign that is not on a
// schedule.
func (s *Store) Unschedule(ctx context.Context, id string) error {
	err := s.r.UnscheduleCampaign(ctx, id, string(StateScheduled), string(StateDraft),
		[]string{string(StateRunning), string(StatePaused), string(StateCompleted)})
	return s.stateErr("unschedule", id, err)
}

// NextFires returns at most n fire times of the campaign, starting with its
// next one, in its schedule's time zone; none when it is not on a schedule.
// The next fire time may be past: it is due and the schedulers have not
// fired it yet.
func (s *Store) NextFires(ctx context.Context, c *Campaign, n int) ([]time.Time, error) {
	if c.Schedule == nil || n <= 0 || !c.Schedule.Recurring() && c.State != StateScheduled {
		// A one-off schedule has fired (or its campaign was started by
		// hand): its fire time, if still stored, will not fire.
		return nil, nil
	}
	first, ok, err := s.r.NextFire(ctx, c.ID)
	if err != nil || !ok {
		return nil, err
	}
	first = c.Schedule.Zone(first)
	return append([]time.Time{first}, c.Schedule.NextN(first, n-1)...), nil
}

// FireStatus is what claiming a fire did; see the FireStatus constants.
type FireStatus string

// The fire statuses. The first four mean this caller won the fire.
const (
	// FireStarted: the fire started run FireResult.Run.
	FireStarted FireStatus = rdb.FireStarted
	// FireSkipped: the fire started nothing, as asked (a missed fire under
	// MissedSkip).
	FireSkipped FireStatus = rdb.FireSkipped
	// FireBusy: the fire started nothing because the campaign's previous
	// run is still running or paused.
	FireBusy FireStatus = rdb.FireBusy
	// FireEmpty: the fire started nothing because the audience is empty.
	FireEmpty FireStatus = rdb.FireEmpty
	// FireStale: another caller claimed this fire first (or it fired before
	// the campaign was scheduled again). FireResult.Next is the campaign's
	// next fire time and FireResult.Run the run this fire started, if any.
	FireStale FireStatus = rdb.FireStale
	// FireUnscheduled: the campaign is not on a schedule any more, or is in
	// a state that cannot fire (cancelled, failed, a one-off started by
	// hand). Nothing was done.
	FireUnscheduled FireStatus = rdb.FireUnscheduled
)

// FireResult is the answer of Store.Fire.
type FireResult struct {
	Status FireStatus
	// State is the campaign's state before the fire.
	State State
	// Next is the campaign's next fire time after the fire; zero when it is
	// off its schedule.
	Next time.Time
	// Run is the run the fire started (FireStarted, or FireStale when
	// another caller's claim of this fire started one), else 0.
	Run int
}

// Won reports whether this caller won the fire.
func (r FireResult) Won() bool {
	switch r.Status {
	case FireStarted, FireSkipped, FireBusy, FireEmpty:
		return true
	}
	return false
}

// Fire claims the fire f of campaign c's schedule (f.At must be its next
// fire time) and, if this caller wins, does it in one atomic step: starts
// the run (the campaign and the run are running) when f.Start, and sets
// the campaign's next fire time to f.Next (none takes it off its schedule:
// a campaign that never fired goes back to draft). Of any number of
// callers, in any number of processes, exactly one wins each fire time.
//
// Fire does not queue the run's launch and does not move the index entry:
// the caller queues the launch, then moves the entry to FireResult.Next.
func (s *Store) Fire(ctx context.Context, c *Campaign, f Fire) (FireResult, error) {
	claim := rdb.FireClaim{
		ID: c.ID, At: f.At, Next: f.Next, Start: f.Start,
		Sized:     c.Audience.Source == SourceInline || c.Audience.Source == SourceFile,
		Running:   string(StateRunning),
		Scheduled: string(StateScheduled), Unscheduled: string(StateDraft),
		Keep: FireKeep,
	}
	switch {
	case c.Schedule.Recurring():
		claim.StartFrom = []string{string(StateScheduled), string(StateCompleted)}
		claim.Busy = []string{string(StateRunning), string(StatePaused), string(StateStopping)}
	case c.Schedule != nil:
		claim.StartFrom = []string{string(StateScheduled)}
	}
	rep, err := s.r.ClaimFire(ctx, claim)
	if errors.Is(err, rdb.ErrCampaignNotFound) {
		return FireResult{}, fmt.Errorf("%w: %s", ErrNotFound, c.ID)
	}
	if err != nil {
		return FireResult{}, err
	}
	return FireResult{Status: FireStatus(rep.Status), State: State(rep.State), Next: rep.Next, Run: rep.Run}, nil
}

// DueFire is one index entry of a campaign on its schedule: its id and its
// next fire time.
type DueFire = rdb.DueSchedule

// DueFires returns at most limit schedule index entries due at now (fire
// time ≤ now), earliest first.
func (s *Store) DueFires(ctx context.Context, now time.Time, limit int64) ([]DueFire, error) {
	return s.r.DueSchedules(ctx, now, limit)
}

// MoveFire moves campaign id's schedule index entry from fire time from to
// fire time to (the zero time drops it), if it is still at from. It
// reports whether it moved it.
func (s *Store) MoveFire(ctx context.Context, id string, from, to time.Time) (bool, error) {
	return s.r.MoveSchedule(ctx, id, from, to)
}
