package campaigns_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
)

// scheduleNow is the tests' fake now: Monday 2026-03-02 08:00:30 in
// Shanghai.
var scheduleNow = time.Date(2026, 3, 2, 0, 0, 30, 0, time.UTC)

func inlineCampaign(s *campaigns.Schedule) *campaigns.Campaign {
	return &campaigns.Campaign{
		Name: "weekly", Account: "wx00000000000fake1", Kind: campaigns.KindTemplate,
		Template: &campaigns.TemplateSpec{TemplateID: "TPL", Data: map[string]string{"thing1": "hi"}},
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceInline, OpenIDs: []string{"oAAAAAAAAAAAAAAAAAAAAAAA0001"}},
		Schedule: s,
	}
}

func indexed(t *testing.T, r *rdb.RDB) []rdb.DueSchedule {
	t.Helper()
	due, err := r.DueSchedules(t.Context(), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), 100)
	require.NoError(t, err)
	return due
}

func TestStoreScheduleUnschedule(t *testing.T) {
	t.Parallel()
	st, r := newStore(t)
	s := st.WithClock(func() time.Time { return scheduleNow })
	ctx := t.Context()

	c := inlineCampaign(&campaigns.Schedule{Cron: "0 9 * * 1"})
	require.NoError(t, s.Create(ctx, c))
	require.Equal(t, &campaigns.Schedule{Cron: "0 9 * * 1", TimeZone: "Asia/Shanghai", Missed: campaigns.MissedSkip}, c.Schedule,
		"the defaults are stored, so the campaign shows what it runs with")
	fires, err := s.NextFires(ctx, c, 5)
	require.NoError(t, err)
	require.Empty(t, fires, "a draft is on no schedule")

	require.NoError(t, s.Schedule(ctx, c.ID))
	got, err := s.Get(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, campaigns.StateScheduled, got.State)
	fires, err = s.NextFires(ctx, got, 5)
	require.NoError(t, err)
	require.Len(t, fires, 5)
	for i, f := range fires {
		require.Equal(t, time.Date(2026, 3, 2+7*i, 9, 0, 0, 0, time.UTC).Format("2006-01-02 15:04"), f.Format("2006-01-02 15:04"), "fire %d in Shanghai time", i)
		require.Equal(t, "+08:00", f.Format("-07:00"))
	}
	require.Equal(t, []rdb.DueSchedule{{ID: c.ID, At: fires[0].UTC()}}, normalize(indexed(t, r)))

	// Scheduling again is a retry: it succeeds and changes nothing.
	require.NoError(t, s.Schedule(ctx, c.ID))
	require.Len(t, indexed(t, r), 1)

	require.NoError(t, s.Unschedule(ctx, c.ID))
	got, err = s.Get(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, campaigns.StateDraft, got.State)
	require.Empty(t, indexed(t, r))
	fires, err = s.NextFires(ctx, got, 5)
	require.NoError(t, err)
	require.Empty(t, fires)
	var se *campaigns.StateError
	require.ErrorAs(t, s.Unschedule(ctx, c.ID), &se, "a draft is on no schedule")
	require.Equal(t, campaigns.StateDraft, se.State)

	// Cancel takes a scheduled campaign off the index too.
	require.NoError(t, s.Schedule(ctx, c.ID))
	require.Len(t, indexed(t, r), 1)
	stopped, _, err := s.Cancel(ctx, c.ID)
	require.NoError(t, err)
	require.False(t, stopped, "a scheduled campaign has no run to stop")
	require.Empty(t, indexed(t, r))
	require.ErrorAs(t, s.Schedule(ctx, c.ID), &se)
	require.Equal(t, campaigns.StateCancelled, se.State)
}

func TestStoreScheduleRefuses(t *testing.T) {
	t.Parallel()
	st, r := newStore(t)
	s := st.WithClock(func() time.Time { return scheduleNow })
	ctx := t.Context()

	plain := inlineCampaign(nil)
	require.NoError(t, s.Create(ctx, plain))
	require.ErrorIs(t, s.Schedule(ctx, plain.ID), campaigns.ErrNoSchedule)

	var ve *campaigns.ValidationError
	require.ErrorAs(t, s.Create(ctx, inlineCampaign(&campaigns.Schedule{At: scheduleNow.Add(-time.Second)})), &ve)
	require.Equal(t, "schedule.at", ve.Errors[0].Field)

	// A one-off whose time passed while it was a draft.
	c := inlineCampaign(&campaigns.Schedule{At: scheduleNow.Add(time.Minute)})
	require.NoError(t, s.Create(ctx, c))
	later := st.WithClock(func() time.Time { return scheduleNow.Add(time.Hour) })
	require.ErrorAs(t, later.Schedule(ctx, c.ID), &ve)
	require.Equal(t, "schedule.at", ve.Errors[0].Field)

	file := fileCampaign()
	file.Schedule = &campaigns.Schedule{Cron: "@daily"}
	require.NoError(t, s.Create(ctx, file))
	require.ErrorIs(t, s.Schedule(ctx, file.ID), campaigns.ErrEmptyAudience)

	require.ErrorIs(t, s.Schedule(ctx, "cnotthere0000"), campaigns.ErrNotFound)
	require.Empty(t, indexed(t, r), "nothing refused was indexed")
}

func TestStoreFireExactlyOnce(t *testing.T) {
	t.Parallel()
	st, _ := newStore(t)
	s := st.WithClock(func() time.Time { return scheduleNow })
	ctx := t.Context()

	c := inlineCampaign(&campaigns.Schedule{Cron: "*/5 * * * *"})
	require.NoError(t, s.Create(ctx, c))
	require.NoError(t, s.Schedule(ctx, c.ID))
	fires, err := s.NextFires(ctx, c, 2)
	require.NoError(t, err)
	plan := c.Schedule.Plan(fires[0], fires[0], time.Minute)
	require.Equal(t, fires[1], plan.Next.In(fires[1].Location()))

	const callers = 8
	results := make([]campaigns.FireResult, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { results[i], errs[i] = s.Fire(ctx, c, plan) })
	}
	wg.Wait()
	won := 0
	for i, res := range results {
		require.NoError(t, errs[i])
		require.True(t, res.Next.Equal(plan.Next), "every caller learns the next fire time")
		require.Equal(t, 1, res.Run, "every caller learns the run the fire started")
		if res.Won() {
			won++
			require.Equal(t, campaigns.FireStarted, res.Status)
		} else {
			require.Equal(t, campaigns.FireStale, res.Status)
		}
	}
	require.Equal(t, 1, won)
	got, run, err := s.Latest(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, 1, run)
	require.Equal(t, campaigns.StateRunning, got.State)
	rec, err := s.Run(ctx, c.ID, 1)
	require.NoError(t, err)
	require.Equal(t, "running", rec.State)
	require.EqualValues(t, 1, rec.Size)

	// The next fire, due while run 1 still runs, is won but starts nothing.
	res, err := s.Fire(ctx, c, c.Schedule.Plan(plan.Next, plan.Next, time.Minute))
	require.NoError(t, err)
	require.Equal(t, campaigns.FireBusy, res.Status)
	_, run, err = s.Latest(ctx, c.ID)
	require.NoError(t, err)
	require.Equal(t, 1, run)
}

// normalize drops the location of the index's times, for comparing.
func normalize(d []rdb.DueSchedule) []rdb.DueSchedule {
	for i := range d {
		d[i].At = d[i].At.UTC()
	}
	return d
}
