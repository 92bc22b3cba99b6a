//go:build reliability

package reliability

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/fairness"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestFairSharing: two accounts a and b at 300 sends/s per API, two worker
// processes. A 30,000-recipient template campaign on a sends alone for
// 5 s; then, one after the other, each started once the one before has
// settled: a 3,000-recipient template campaign on b (another bucket), a
// 3,000-recipient custom campaign on a (the same account, another API: its
// own bucket) and a 3,000-recipient template campaign on a (the same
// bucket as the big one). Each one's first send comes within 1 s of its
// start; while it sends, on another bucket both it and the big campaign
// send at >= 95 % of their bucket's rate, and in the same bucket each gets
// 35 % to 65 % of the bucket's sends. Every run is checked recipient by
// recipient (Check).
func TestFairSharing(t *testing.T) {
	const (
		rate, burst = 300, 30
		nBig, n     = 30000, 3000
	)
	begin := time.Now()
	a := FleetAccount{ID: "a", AppID: "wx0000000000000fa1", Secret: "secret-fair-a", Rate: rate, Burst: burst}
	b := FleetAccount{ID: "b", AppID: "wx0000000000000fb2", Secret: "secret-fair-b", Rate: rate, Burst: burst}
	rs := StartRedis(t, redistest.ServerConfig{})
	fake := StartFake(t, wechattest.Config{
		Accounts: []wechattest.Account{{AppID: a.AppID, Secret: a.Secret}, {AppID: b.AppID, Secret: b.Secret}},
		Faults:   wechattest.Faults{Latency: 10 * time.Millisecond},
	})
	// Rate and Burst are the custom API's limit (the accounts file lists
	// template's). The fleet has the slots for both buckets: a bulk send
	// holds its slot up to 250 ms waiting for its token
	// (worker.BulkRateWaitDefault), so 600 sends/s need more than the
	// default 2 x 50.
	f := StartFleet(t, FleetConfig{RedisURL: rs.URL(), Fake: fake, Workers: 2, Accounts: []FleetAccount{a, b}, Rate: rate, Burst: burst,
		Concurrency: 100})

	big := f.LaunchFor(t, f.Account(t, "a"), campaigns.KindTemplate, OpenIDs("FBIG", nBig))
	bigAt := func() int { return fake.Calls(a.AppID, wechat.APITemplateSend, big.Started, time.Now()) }
	require.Eventually(t, func() bool { return bigAt() >= 5*rate }, time.Minute, 50*time.Millisecond, "the big campaign sends")

	s := Summary{}
	var runs []*Run
	for _, tc := range []struct {
		name, acct, tag string
		kind            campaigns.Kind
		sameBucket      bool
	}{
		{"account b", "b", "FACB", campaigns.KindTemplate, false},
		{"custom on a", "a", "FCUS", campaigns.KindCustom, false},
		{"template on a", "a", "FSAM", campaigns.KindTemplate, true},
	} {
		r := f.LaunchFor(t, f.Account(t, tc.acct), tc.kind, OpenIDs(tc.tag, n))
		r.Wait(t, 2*time.Minute)
		runs = append(runs, r)
		groupRate := float64(rate)
		if tc.sameBucket {
			groupRate = rate / 2
		}
		rep := fairness.Measure(fake.Deliveries(),
			fairness.Group{Name: "big", AppID: a.AppID, API: wechat.APITemplateSend, Has: fairness.Prefixed("oFBIG"), Start: big.Started, Rate: groupRate},
			fairness.Group{Name: tc.name, AppID: r.Account.AppID, API: tc.kind.API(), Has: fairness.Prefixed("o" + tc.tag), Start: r.Started, Rate: groupRate},
		)
		t.Logf("%s: %s", tc.name, rep)
		s.Note("%s: first send %s after its start; while both sent (%.0f s) big %.0f/s, %s %.0f/s (%.0f%% of the sends)",
			tc.name, rep.Groups[1].First.Round(time.Millisecond), rep.Seconds(), rep.Groups[0].Rate, tc.name, rep.Groups[1].Rate, 100*rep.Groups[1].Share)
		assert.Less(t, rep.Groups[1].First, time.Second, "%s: first send within 1 s of its start", tc.name)
		assert.GreaterOrEqual(t, rep.Seconds(), 5.0, "%s: both sent together", tc.name)
		if tc.sameBucket {
			for _, g := range rep.Groups {
				assert.InDelta(t, 0.5, g.Share, 0.15, "%s: %s's share of the bucket", tc.name, g.Name)
			}
		} else {
			for _, g := range rep.Groups {
				assert.GreaterOrEqual(t, g.OfRate, 0.95, "%s: %s at its bucket's rate", tc.name, g.Name)
			}
		}
	}
	big.Wait(t, 3*time.Minute)
	sum := Check(t, big)
	for _, r := range runs {
		Check(t, r)
	}
	sum.Notes = append(sum.Notes, s.Notes...)
	sum.Elapsed = time.Since(begin)
	Report(t, sum)
}
