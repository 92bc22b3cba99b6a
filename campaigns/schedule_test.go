package campaigns

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// shanghai is UTC+8 all year (no daylight saving time).
var shanghai = time.FixedZone("CST", 8*3600)

func TestScheduleValidate(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 3, 2, 8, 0, 0, 0, shanghai)
	for _, tc := range []struct {
		name  string
		s     Schedule
		field string // "" when valid
		msg   string // the whole "field: message", or a part of it
	}{
		{name: "weekly", s: Schedule{Cron: "0 9 * * 1"}},
		{name: "every five minutes in UTC", s: Schedule{Cron: "*/5 * * * *", TimeZone: "UTC", Missed: MissedOnce}},
		{name: "descriptor", s: Schedule{Cron: "@daily", Missed: MissedSkip}},
		{name: "names", s: Schedule{Cron: "30 8 1-7 * mon", TimeZone: "America/New_York"}},
		{name: "one-off", s: Schedule{At: now.Add(time.Hour)}},
		{name: "one-off run late if missed", s: Schedule{At: now.Add(time.Hour), Missed: MissedOnce}},

		{name: "both", s: Schedule{At: now.Add(time.Hour), Cron: "0 9 * * 1"}, field: "schedule", msg: "schedule: set at or cron, not both"},
		{name: "neither", s: Schedule{TimeZone: "UTC"}, field: "schedule", msg: "schedule: set at"},
		{name: "seconds", s: Schedule{Cron: "0 0 9 * * 1"}, field: "schedule.cron", msg: "schedule.cron: 6 fields: a seconds"},
		{name: "too few fields", s: Schedule{Cron: "0 9 * *"}, field: "schedule.cron", msg: "expected exactly 5 fields, found 4"},
		{name: "minute out of range", s: Schedule{Cron: "61 9 * * *"}, field: "schedule.cron", msg: `invalid cron expression "61 9 * * *"`},
		{name: "blank", s: Schedule{Cron: "   "}, field: "schedule.cron", msg: "schedule.cron: empty"},
		{name: "every", s: Schedule{Cron: "@every 1h"}, field: "schedule.cron", msg: "@every is not supported"},
		{name: "unknown descriptor", s: Schedule{Cron: "@fortnightly"}, field: "schedule.cron", msg: "schedule.cron: invalid cron expression"},
		{name: "zone in the expression", s: Schedule{Cron: "CRON_TZ=UTC 0 9 * * *"}, field: "schedule.cron", msg: "schedule.time_zone, not in the expression"},
		{name: "never fires", s: Schedule{Cron: "0 0 30 2 *"}, field: "schedule.cron", msg: `"0 0 30 2 *" never fires`},
		{name: "unknown zone", s: Schedule{Cron: "0 9 * * 1", TimeZone: "Mars/Base"}, field: "schedule.time_zone", msg: `schedule.time_zone: unknown time zone "Mars/Base"`},
		{name: "process zone", s: Schedule{Cron: "0 9 * * 1", TimeZone: "Local"}, field: "schedule.time_zone", msg: `unknown time zone "Local"`},
		{name: "zone of a one-off", s: Schedule{At: now.Add(time.Hour), TimeZone: "UTC"}, field: "schedule.time_zone", msg: "only a cron schedule has a time zone"},
		{name: "policy", s: Schedule{Cron: "0 9 * * 1", Missed: "twice"}, field: "schedule.missed", msg: `schedule.missed: unknown policy "twice": skip or once`},
		{name: "past", s: Schedule{At: now.Add(-time.Minute)}, field: "schedule.at", msg: "schedule.at: in the past: 2026-03-02T07:59:00+08:00"},
		{name: "now", s: Schedule{At: now}, field: "schedule.at", msg: "schedule.at: in the past"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := templateCampaign()
			c.Schedule = &tc.s
			err := c.ValidateAt(now)
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var ve *ValidationError
			require.True(t, errors.As(err, &ve), "%v", err)
			require.Len(t, ve.Errors, 1, "%v", err)
			require.Equal(t, tc.field, ve.Errors[0].Field)
			require.Contains(t, ve.Errors[0].Error(), tc.msg)
		})
	}

	// Without a time, Validate leaves the past alone: it does not read the
	// clock.
	c := templateCampaign()
	c.Schedule = &Schedule{At: now.Add(-time.Hour)}
	require.NoError(t, c.Validate())
}

func TestScheduleNext(t *testing.T) {
	t.Parallel()

	// Monday 2026-03-02, 08:00 in Shanghai (00:00 UTC).
	mon8 := time.Date(2026, 3, 2, 8, 0, 0, 0, shanghai)

	weekly := &Schedule{Cron: "0 9 * * 1"}
	next, ok := weekly.Next(mon8)
	require.True(t, ok)
	require.True(t, next.Equal(time.Date(2026, 3, 2, 9, 0, 0, 0, shanghai)), "Asia/Shanghai by default: %s", next)
	next, ok = weekly.Next(next)
	require.True(t, ok)
	require.True(t, next.Equal(time.Date(2026, 3, 9, 9, 0, 0, 0, shanghai)), "strictly after: %s", next)

	utc := &Schedule{Cron: "0 9 * * 1", TimeZone: "UTC"}
	next, ok = utc.Next(mon8)
	require.True(t, ok)
	require.True(t, next.Equal(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)), "the time zone says where 09:00 is: %s", next)

	every5 := &Schedule{Cron: "*/5 * * * *"}
	fires := every5.NextN(mon8.Add(time.Second), 3)
	require.Len(t, fires, 3)
	for i, f := range fires {
		require.True(t, f.Equal(mon8.Add(time.Duration(i+1)*5*time.Minute)), "fire %d: %s", i, f)
	}

	at := mon8.Add(90 * time.Minute)
	once := &Schedule{At: at}
	next, ok = once.Next(mon8)
	require.True(t, ok)
	require.True(t, next.Equal(at))
	_, ok = once.Next(at)
	require.False(t, ok, "a one-off fires once")
	require.Equal(t, []time.Time{at}, once.NextN(mon8, 5))

	_, ok = (&Schedule{Cron: "0 9 * * 1", TimeZone: "Mars/Base"}).Next(mon8)
	require.False(t, ok, "an invalid schedule never fires")
	_, ok = (*Schedule)(nil).Next(mon8)
	require.False(t, ok)

	require.Equal(t, "+08:00", (&Schedule{Cron: "@daily"}).Zone(mon8.UTC()).Format("-07:00"))
	require.Equal(t, "+08:00", once.Zone(mon8.UTC()).Format("-07:00"))
}

func TestSchedulePlan(t *testing.T) {
	t.Parallel()

	at := time.Date(2026, 3, 2, 9, 0, 0, 0, shanghai)
	const grace = time.Minute
	hourly := func(m Missed) *Schedule { return &Schedule{Cron: "0 * * * *", Missed: m} }

	// On time (within the grace period): a run, then the next fire time
	// after this one, even if the scheduler is a little late.
	f := hourly("").Plan(at, at.Add(30*time.Second), grace)
	require.Equal(t, Fire{At: at, Next: at.Add(time.Hour), Start: true}, f)

	// Missed (seen 3h10m late): the fires missed meanwhile are passed over.
	now := at.Add(3*time.Hour + 10*time.Minute)
	f = hourly(MissedSkip).Plan(at, now, grace)
	require.Equal(t, Fire{At: at, Next: at.Add(4 * time.Hour), Start: false, Late: true}, f)
	require.Equal(t, f, hourly("").Plan(at, now, grace), "skip is the default")
	f = hourly(MissedOnce).Plan(at, now, grace)
	require.Equal(t, Fire{At: at, Next: at.Add(4 * time.Hour), Start: true, Late: true}, f, "one late run for all the missed fires")

	// One-off: no next fire time.
	require.Equal(t, Fire{At: at, Start: true}, (&Schedule{At: at}).Plan(at, at, grace))
	require.Equal(t, Fire{At: at, Late: true}, (&Schedule{At: at}).Plan(at, now, grace))
	require.Equal(t, Fire{At: at, Start: true, Late: true}, (&Schedule{At: at, Missed: MissedOnce}).Plan(at, now, grace))
}

func TestScheduleJSON(t *testing.T) {
	t.Parallel()

	var s Schedule
	require.NoError(t, json.Unmarshal([]byte(`{"at":"2026-03-02T09:00:00+08:00"}`), &s))
	require.True(t, s.At.Equal(time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)))
	require.False(t, s.Recurring())
	b, err := json.Marshal(s)
	require.NoError(t, err)
	require.JSONEq(t, `{"at":"2026-03-02T09:00:00+08:00"}`, string(b), "the offset is kept")

	b, err = json.Marshal((&Schedule{Cron: "0 9 * * 1"}).withDefaults())
	require.NoError(t, err)
	require.JSONEq(t, `{"cron":"0 9 * * 1","time_zone":"Asia/Shanghai","missed":"skip"}`, string(b), "no zero at; defaults written out")
	require.Nil(t, (*Schedule)(nil).withDefaults())
}
