//go:build reliability

package reliability

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestWeChatOutage: WeChat answers nothing useful for 60 s in the middle of
// a 20,000-recipient run: half the calls get HTTP 502/503, the other half
// are accepted and then the connection is dropped without an answer (so the
// workers cannot know the message went out). Then it recovers.
//
// The outage lasts WeChat-like 60 s, not a time-scaled 15-20 s: the retry
// delays of transport failures are real time (1 s doubling, ±20 %, capped
// at 1 min, 8 attempts), and the point is that their budget outlasts a
// minute-long outage: a send first failing at the outage's start makes its
// 7th attempt 50-76 s in and its 8th, its last, at least 98 s in. A 15 s
// outage would only show the first four attempts.
//
// Checked: nobody ends failed (the retries cover the outage, and the
// template sends' client_msg_id makes the retries of dropped deliveries
// safe: 0 duplicates), and the fleet backs off: after the first seconds of
// the outage the calls per second fall well below the rate. Each
// recipient's retries back off exponentially, but that alone does not do
// it: with 18,000 recipients in flight there is always one whose first try
// or next retry is due, and the fleet called the dead WeChat 500 times a
// second for the whole minute (29,498 calls) until the worker got its
// outage brake, which cuts the account's shared rate (ratelimit's
// Slowdown) while most calls fail.
func TestWeChatOutage(t *testing.T) {
	const (
		n       = 20000
		workers = 3
		rate    = 500
		outage  = 60 * time.Second
	)
	begin := time.Now()
	rs := StartRedis(t, redistest.ServerConfig{})
	fake := StartFake(t, wechattest.Config{})
	f := StartFleet(t, FleetConfig{RedisURL: rs.URL(), Fake: fake, Workers: workers, Rate: rate, Burst: rate / 10})
	run := f.Launch(t, campaigns.KindTemplate, OpenIDs("OUTAGE", n))

	var (
		from, to         time.Time
		startRec, endRec rdb.RunRecord
	)
	down := wechattest.Faults{HTTP5xx: 0.5, DropAfterRecord: 1}
	rec := run.Wait(t, 8*time.Minute,
		Hook{At: 0.1, Do: func(rec rdb.RunRecord) {
			require.NoError(t, fake.SetFaults(down))
			from, startRec = time.Now(), rec
			t.Logf("wechat down at %d/%d settled, %d expanded", rec.Settled(), rec.Size, rec.Expanded)
		}},
		Hook{Every: 250 * time.Millisecond, Do: func(rdb.RunRecord) {
			if from.IsZero() || !to.IsZero() || time.Since(from) < outage {
				return
			}
			require.NoError(t, fake.SetFaults(wechattest.Faults{}))
			to = time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var err error
			endRec, err = run.Record(ctx)
			require.NoError(t, err)
			t.Logf("wechat up again at %d/%d settled, %d expanded", endRec.Settled(), endRec.Size, endRec.Expanded)
		}},
	)
	require.False(t, to.IsZero(), "the run completed before the outage ended")

	s := Check(t, run)
	assert.EqualValues(t, n, rec.Counters[rdb.OutcomeSent], "nobody failed because of the outage")

	// The calls per second while WeChat was down: whole seconds only.
	api := run.Kind.API()
	per := fake.CallsPerSecond(run.Account.AppID, api, from.Truncate(time.Second).Add(time.Second), to.Truncate(time.Second))
	total := fake.Calls(run.Account.AppID, api, from.Truncate(time.Second).Add(time.Second), to.Truncate(time.Second))
	inFlight := startRec.Expanded - startRec.Settled()
	touched := endRec.Expanded - startRec.Settled()
	t.Logf("calls per second during the outage: %v", per)
	t.Logf("calls during the outage: %d, recipients in flight at its start %d, expanded by its end %d (%.1f calls each)",
		total, inFlight, touched, float64(total)/float64(touched))
	// Seconds for the brake to bring the rate to its floor (halved at most
	// every 5 s across the fleet: 250, 125, 62, then 50 a second).
	settle := 20
	late := per[min(settle, len(per)):]
	peakLate := slices.Max(late)
	assert.Less(t, peakLate, rate/4, "the retries back off: after the first %d s of the outage the calls per second stay well below the rate %d", settle, rate)

	st := fake.Stats().APIs[api]
	s.Note("outage %s: %d calls (%d 5xx, %d dropped) for %d recipients expanded", to.Sub(from).Round(time.Second), total, st.Faults.HTTP5xx, st.Faults.DropAfterRecord, touched)
	s.Note("calls/s first 5 s %s, max after %d s %d (rate %d)", ints(per[:min(5, len(per))]), settle, peakLate, rate)
	s.Note("%d answered from the client_msg_id window", st.Deduped)
	s.Elapsed = time.Since(begin)
	Report(t, s)
}

func ints(v []int) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprint(x)
	}
	return strings.Join(parts, ",")
}
