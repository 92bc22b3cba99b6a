package api

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
)

// TestQuietWait: a running run waits for the account's quiet hours and the
// campaign's own, as one wait when they overlap or follow one another
// (since: the earliest start; until: the last end); a transactional run
// only for hours that apply to transactional sends; a mass run, or a run
// that is not running, never.
func TestQuietWait(t *testing.T) {
	t.Parallel()
	zone := "Asia/Shanghai"
	loc, err := time.LoadLocation(zone)
	require.NoError(t, err)
	quiet := func(from, to string, tx bool) *account.QuietHours {
		q, err := account.ParseQuietHours(from, to, zone)
		require.NoError(t, err)
		q.Transactional = tx
		return q
	}
	at := func(d, h, m int) time.Time { return time.Date(2026, 12, d, h, m, 0, 0, loc) }
	acct := &account.Account{AppID: "wx00000000000api01", Protection: account.Protection{Quiet: quiet("22:00", "08:00", false)}}
	custom := &campaigns.Campaign{Kind: campaigns.KindCustom}
	own := &campaigns.Campaign{Kind: campaigns.KindCustom, Protection: &campaigns.ProtectionSpec{
		QuietHours: &campaigns.QuietHoursSpec{From: "07:00", To: "09:30", TimeZone: zone}}}
	running := campaigns.RunRecord{State: string(campaigns.StateRunning)}

	for _, tc := range []struct {
		name         string
		acct         *account.Account
		c            *campaigns.Campaign
		rec          campaigns.RunRecord
		now          time.Time
		since, until time.Time
	}{
		{"in the account's hours", acct, custom, running, at(7, 23, 0), at(7, 22, 0), at(8, 8, 0)},
		{"after midnight", acct, custom, running, at(8, 3, 0), at(7, 22, 0), at(8, 8, 0)},
		{"outside", acct, custom, running, at(8, 12, 0), time.Time{}, time.Time{}},
		{"the campaign's follow", acct, own, running, at(7, 23, 0), at(7, 22, 0), at(8, 9, 30)},
		{"the campaign's alone", acct, own, running, at(8, 9, 0), at(8, 7, 0), at(8, 9, 30)},
		{"transactional: spared", acct, custom, campaigns.RunRecord{State: "running", Transactional: true}, at(7, 23, 0), time.Time{}, time.Time{}},
		{"transactional: held", &account.Account{Protection: account.Protection{Quiet: quiet("22:00", "08:00", true)}}, custom,
			campaigns.RunRecord{State: "running", Transactional: true}, at(7, 23, 0), at(7, 22, 0), at(8, 8, 0)},
		{"paused", acct, custom, campaigns.RunRecord{State: "paused"}, at(7, 23, 0), time.Time{}, time.Time{}},
		{"mass", acct, &campaigns.Campaign{Kind: campaigns.KindMass}, running, at(7, 23, 0), time.Time{}, time.Time{}},
	} {
		since, until, ok := quietWait(tc.acct, tc.c, tc.rec, tc.now)
		require.Equal(t, !tc.until.IsZero(), ok, tc.name)
		require.True(t, tc.since.Equal(since), "%s: since %v, want %v", tc.name, since, tc.since)
		require.True(t, tc.until.Equal(until), "%s: until %v, want %v", tc.name, until, tc.until)
	}
}
