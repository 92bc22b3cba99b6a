package campaigns

import (
	"strings"
	"time"

	// The schedule's time zones must load the same in every process,
	// including containers without /usr/share/zoneinfo: tzdata is the
	// fallback when the system has none.
	_ "time/tzdata"

	"github.com/robfig/cron/v3"
)

// Defaults of Schedule.
const (
	// TimeZoneDefault is the time zone of a cron schedule that names none.
	TimeZoneDefault = "Asia/Shanghai"
	// MissedDefault is the policy for missed fires of a schedule that names
	// none.
	MissedDefault = MissedSkip
	// NextFiresDefault is how many fire times the API and CLI show.
	NextFiresDefault = 5
)

// Missed is what a schedule does about fires that were missed because no
// scheduler was running at their time (all serve processes down): see
// Schedule.Missed.
type Missed string

// The missed-fire policies.
const (
	// MissedSkip fires nothing for the missed fires and waits for the next
	// fire time in the future. A one-off schedule that was missed goes back
	// to draft.
	MissedSkip Missed = "skip"
	// MissedOnce fires one run, late, for all the missed fires together,
	// then waits for the next fire time in the future.
	MissedOnce Missed = "once"
)

// Schedule says when a campaign runs by itself: once at At, or at every
// fire time of the cron expression Cron in TimeZone. Exactly one of At and
// Cron is set. Each fire is a run of its own.
//
// A Schedule is plain data; Next and NextN compute fire times from it and
// are safe for concurrent use.
type Schedule struct {
	// At is the time of a one-off schedule (RFC 3339 in JSON, with its
	// offset).
	At time.Time `json:"at,omitzero"`
	// Cron is the expression of a recurring schedule: the five standard
	// fields (minute hour day-of-month month day-of-week, as in
	// "0 9 * * 1") or a descriptor (@yearly, @monthly, @weekly, @daily,
	// @hourly). A seconds field, @every and a TZ= prefix are refused.
	Cron string `json:"cron,omitempty"`
	// TimeZone is the IANA time zone Cron is read in, such as
	// "Asia/Shanghai" (TimeZoneDefault when empty). Only a cron schedule
	// has one; At carries its own offset.
	TimeZone string `json:"time_zone,omitempty"`
	// Missed is the policy for fires missed while no scheduler ran
	// (MissedDefault when empty).
	Missed Missed `json:"missed,omitempty"`
}

// Recurring reports whether s is a cron schedule.
func (s *Schedule) Recurring() bool { return s != nil && s.Cron != "" }

// Policy returns s.Missed, or MissedDefault when it is empty.
func (s *Schedule) Policy() Missed {
	if s.Missed == "" {
		return MissedDefault
	}
	return s.Missed
}

// Next returns the first fire time of s strictly after after, and false
// when there is none: a one-off schedule whose time is not after after, a
// cron expression with no fire time in the five years after after, or an
// invalid schedule.
func (s *Schedule) Next(after time.Time) (time.Time, bool) {
	if s == nil {
		return time.Time{}, false
	}
	if !s.Recurring() {
		if !s.At.IsZero() && s.At.After(after) {
			return s.At, true
		}
		return time.Time{}, false
	}
	sched, msg := s.parse()
	if msg.bad() {
		return time.Time{}, false
	}
	t := sched.Next(after)
	if t.IsZero() {
		return time.Time{}, false
	}
	return t, true
}

// NextN returns at most n fire times of s after after, in order.
func (s *Schedule) NextN(after time.Time, n int) []time.Time {
	var out []time.Time
	for len(out) < n {
		t, ok := s.Next(after)
		if !ok {
			break
		}
		out = append(out, t)
		after = t
	}
	return out
}

// location returns the time zone of a cron schedule, or a message saying
// why it cannot be used.
func (s *Schedule) location() (*time.Location, reason) {
	name := s.TimeZone
	if name == "" {
		name = TimeZoneDefault
	}
	// "Local" is whatever each process's TZ says: serve processes would
	// disagree about the fire times.
	if name == "Local" || strings.HasPrefix(name, "/") {
		return nil, reasonf("unknown time zone %s: name an IANA time zone such as %s", quoteValue(name), TimeZoneDefault)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, reasonf("unknown time zone %s", quoteValue(name))
	}
	return loc, reason{}
}

// cronParser reads the five standard fields and the descriptors.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// parse returns the cron schedule in its time zone, or a message for the
// first problem: the time zone's if it is the only one, else the
// expression's.
func (s *Schedule) parse() (cron.Schedule, reason) {
	loc, locMsg := s.location()
	sched, msg := parseCron(s.Cron)
	switch {
	case msg.bad():
		return nil, msg
	case locMsg.bad():
		return nil, locMsg
	}
	if spec, ok := sched.(*cron.SpecSchedule); ok {
		spec.Location = loc
	}
	return sched, reason{}
}

// parseCron parses expr, or says what is wrong with it.
func parseCron(expr string) (cron.Schedule, reason) {
	e := strings.TrimSpace(expr)
	switch {
	case e == "":
		return nil, reasonf("empty: a cron expression such as \"0 9 * * 1\" (minute hour day-of-month month day-of-week)")
	case strings.HasPrefix(e, "TZ=") || strings.HasPrefix(e, "CRON_TZ="):
		return nil, reasonf("set the time zone in schedule.time_zone, not in the expression")
	case strings.HasPrefix(e, "@every"):
		// @every counts from whenever it is asked, so processes would not
		// agree on the fire times.
		return nil, reasonf("@every is not supported: use a cron expression such as \"*/30 * * * *\"")
	case !strings.HasPrefix(e, "@") && len(strings.Fields(e)) == 6:
		return nil, reasonf("6 fields: a seconds (or year) field is not supported; use 5 fields: minute hour day-of-month month day-of-week")
	}
	sched, err := cronParser.Parse(e)
	if err != nil {
		return nil, reasonf("invalid cron expression %s: %s", quoteValue(expr), err.Error())
	}
	return sched, reason{}
}

// cronReference is the time from which a cron expression's first fire is
// looked for at validation, so that validation does not read the clock. An
// expression fires in every five-year span or never (such as "0 0 30 2 *").
var cronReference = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// validate adds the problems of a schedule to v, under "schedule". A
// non-zero now also refuses a one-off time that is not after it.
func (s *Schedule) validate(v *validator, now time.Time) {
	if s == nil {
		return
	}
	const p = "schedule"
	switch {
	case !s.At.IsZero() && s.Cron != "":
		v.addf(p, "set at or cron, not both")
		return
	case s.At.IsZero() && s.Cron == "":
		v.addf(p, "set at (an RFC 3339 time) for a one-off schedule or cron (a cron expression) for a recurring one")
		return
	}
	switch s.Missed {
	case "", MissedSkip, MissedOnce:
	default:
		v.addf(p+".missed", "unknown policy %s: skip or once", quoteValue(string(s.Missed)))
	}
	if !s.Recurring() {
		if s.TimeZone != "" {
			v.addf(p+".time_zone", "only a cron schedule has a time zone: at carries its own offset")
		}
		if !now.IsZero() && !s.At.After(now) {
			v.addf(p+".at", "in the past: %s is not after %s", s.At.Format(time.RFC3339), now.In(s.At.Location()).Format(time.RFC3339))
		}
		return
	}
	sched, msg := parseCron(s.Cron)
	if msg.bad() {
		v.addReason(p+".cron", msg)
	} else if sched.Next(cronReference).IsZero() {
		v.addf(p+".cron", "%s never fires: no date matches its day-of-month and month", quoteValue(s.Cron))
	}
	if _, msg := s.location(); msg.bad() {
		v.addReason(p+".time_zone", msg)
	}
}

// withDefaults returns a copy of s with the defaults written out, so that
// the stored campaign shows the time zone and policy it runs with.
func (s *Schedule) withDefaults() *Schedule {
	if s == nil {
		return nil
	}
	c := *s
	if c.Missed == "" {
		c.Missed = MissedDefault
	}
	if c.Recurring() && c.TimeZone == "" {
		c.TimeZone = TimeZoneDefault
	}
	return &c
}

// Fire is what one due fire of a schedule does, as Plan decides it.
type Fire struct {
	// At is the fire time: the campaign's next fire time, now due.
	At time.Time
	// Next is the fire time that follows it; zero when there is none (a
	// one-off schedule).
	Next time.Time
	// Start says whether the fire starts a run. It is false only for a
	// missed fire under MissedSkip.
	Start bool
	// Late says that At was missed: it was due more than the grace period
	// before the scheduler saw it.
	Late bool
}

// Plan decides the fire of s due at at, seen by a scheduler at now: a fire
// seen within grace of its time starts a run and is followed by the next
// fire time after at. A fire seen later was missed (no scheduler ran at
// its time): s.Policy() decides whether it starts one late run
// (MissedOnce) or none (MissedSkip), and the fire times missed meanwhile
// are passed over: the next fire time is the first after now. A one-off
// schedule has no next fire time.
func (s *Schedule) Plan(at, now time.Time, grace time.Duration) Fire {
	f := Fire{At: at, Late: now.Sub(at) > grace}
	f.Start = !f.Late || s.Policy() == MissedOnce
	switch {
	case !s.Recurring():
	case f.Late:
		f.Next, _ = s.Next(now)
	default:
		f.Next, _ = s.Next(at)
	}
	return f
}

// Zone returns t in the time zone s is written in: TimeZone for a cron
// schedule, the offset of At for a one-off one, so that fire times read as
// the operator wrote them.
func (s *Schedule) Zone(t time.Time) time.Time {
	switch {
	case s == nil:
		return t
	case s.Recurring():
		if loc, msg := s.location(); !msg.bad() {
			return t.In(loc)
		}
		return t
	case !s.At.IsZero():
		return t.In(s.At.Location())
	}
	return t
}
