package campaigns_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
)

func TestAuditTrail(t *testing.T) {
	t.Parallel()
	s, r := newStore(t)
	ctx := t.Context()
	now := time.Date(2025, 11, 25, 9, 30, 0, 123_000_000, time.UTC)
	s = s.WithClock(func() time.Time { return now })
	c := fileCampaign()
	require.NoError(t, s.Create(ctx, c))

	// Nothing is stored for ids that name no campaign.
	for _, id := range []string{"", "cnothere00000", "c}bad{", c.ID + "x"} {
		ok, err := s.RecordAudit(ctx, campaigns.AuditEvent{Campaign: id, Action: "pause"})
		require.NoError(t, err, id)
		require.False(t, ok, id)
		_, _, err = s.AuditTrail(ctx, id, "", 10)
		require.ErrorIs(t, err, campaigns.ErrNotFound, id)
	}
	n, err := r.Client().Exists(ctx, r.Keys().Audit("cnothere00000")).Result()
	require.NoError(t, err)
	require.Zero(t, n)

	// The store's clock stamps an event without a time.
	ok, err := s.RecordAudit(ctx, campaigns.AuditEvent{Campaign: c.ID, Action: "create", Key: "alice", Via: "bearer", Status: 201})
	require.NoError(t, err)
	require.True(t, ok)
	events, next, err := s.AuditTrail(ctx, c.ID, "", 10)
	require.NoError(t, err)
	require.Empty(t, next, "one page")
	require.Len(t, events, 1)
	require.Equal(t, now, events[0].At)
	require.Equal(t, "alice", events[0].Key)

	// Capped at AuditKeep; paged newest first.
	for i := range campaigns.AuditKeep + 4 {
		_, err := s.RecordAudit(ctx, campaigns.AuditEvent{Campaign: c.ID, Action: fmt.Sprint("a", i), Status: 200})
		require.NoError(t, err)
	}
	var all []campaigns.AuditEvent
	before := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		events, next, err := s.AuditTrail(ctx, c.ID, before, 200)
		require.NoError(t, err)
		all = append(all, events...)
		if next == "" {
			require.Len(t, events, 200, "the last page is full: the trail is a multiple of 200")
			break
		}
		require.Equal(t, events[len(events)-1].ID, next)
		before = next
	}
	require.Len(t, all, campaigns.AuditKeep, "only the newest AuditKeep stay")
	require.Equal(t, fmt.Sprint("a", campaigns.AuditKeep+3), all[0].Action)
	require.Equal(t, "a4", all[len(all)-1].Action, "the oldest were dropped, the create among them")

	_, _, err = s.AuditTrail(ctx, c.ID, "nope", 10)
	require.ErrorIs(t, err, campaigns.ErrAuditCursor)
	_, _, err = s.AuditTrail(ctx, c.ID, "", 0)
	require.Error(t, err)
}

// TestAccountAuditTrail: an account's trail keeps its events under the
// appid, stamped by the store's clock, with the openid masked and the
// counts in order; it is capped at AuditKeep and paged as a campaign's
// trail, and an account without events has an empty one.
func TestAccountAuditTrail(t *testing.T) {
	t.Parallel()
	s, r := newStore(t)
	ctx := t.Context()
	now := time.Date(2025, 11, 25, 9, 30, 0, 123_000_000, time.UTC)
	s = s.WithClock(func() time.Time { return now })
	const appID, raw = "wx00000000000acct1", "oSUP000000000000000000000001"

	events, next, err := s.AccountAuditTrail(ctx, appID, "", 10)
	require.NoError(t, err)
	require.Empty(t, events)
	require.Empty(t, next)

	require.NoError(t, s.RecordAccountAudit(ctx, appID, campaigns.AuditEvent{Action: "suppress_remove", Key: "alice", Via: "bearer",
		Account: "shop", Campaign: "c0123456789ab", Status: 204, OpenID: raw, Counts: []campaigns.AuditCount{{Name: "removed", N: 1}}}))
	events, next, err = s.AccountAuditTrail(ctx, appID, "", 10)
	require.NoError(t, err)
	require.Empty(t, next, "one page")
	require.Len(t, events, 1)
	e := events[0]
	require.Equal(t, now, e.At, "the store's clock stamps an event without a time")
	require.Equal(t, "shop", e.Account)
	require.Empty(t, e.Campaign, "an account's event names no campaign")
	require.Equal(t, "oSUP…0001", e.OpenID, "masked as the log masks it")
	require.Equal(t, []campaigns.AuditCount{{Name: "removed", N: 1}}, e.Counts)
	xs, err := r.Client().XRange(ctx, r.Keys().AccountAudit(appID), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, xs, 1)
	require.NotContains(t, fmt.Sprint(xs[0].Values), raw, "the raw openid is never stored")

	// Capped at AuditKeep; paged newest first.
	for i := range campaigns.AuditKeep + 2 {
		require.NoError(t, s.RecordAccountAudit(ctx, appID, campaigns.AuditEvent{Action: fmt.Sprint("a", i), Status: 200}))
	}
	var all []campaigns.AuditEvent
	before := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		events, next, err := s.AccountAuditTrail(ctx, appID, before, 300)
		require.NoError(t, err)
		all = append(all, events...)
		if next == "" {
			break
		}
		require.Equal(t, events[len(events)-1].ID, next)
		before = next
	}
	require.Len(t, all, campaigns.AuditKeep, "only the newest AuditKeep stay")
	require.Equal(t, fmt.Sprint("a", campaigns.AuditKeep+1), all[0].Action)
	require.Equal(t, "a2", all[len(all)-1].Action, "the oldest were dropped, the remove among them")

	_, _, err = s.AccountAuditTrail(ctx, appID, "nope", 10)
	require.ErrorIs(t, err, campaigns.ErrAuditCursor)
	_, _, err = s.AccountAuditTrail(ctx, appID, "", 0)
	require.Error(t, err)
	_, _, err = s.AccountAuditTrail(ctx, "", "", 10)
	require.Error(t, err)
	require.Error(t, s.RecordAccountAudit(ctx, "", campaigns.AuditEvent{Action: "x"}))
}
