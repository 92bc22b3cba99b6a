//go:build reliability

package reliability

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestLongOutage: WeChat goes away for a time-scaled 30 minutes in the
// middle of a 3,000-recipient run on three worker processes, once as HTTP
// 503 to every call (the fake down, its token and probe APIs included) and
// once as a network cut (the fake's listener and connections closed:
// connection refused, then reopened on the same address).
//
// The scale: the breaker's probe interval is 250 ms where the default is
// 10 s, and its longest 1.5 s where the default is 1 min (1/40), so the
// 45 s outage stands for 30 minutes of probes (10 s doubling to 1 min).
// The retry delays are not scaled, and the outage outlasts them where it
// matters: a refused connection's retries (certainly not sent) cover 20 to
// 30 s, so without the breaker the cut would fail recipients; HTTP 503's 8
// attempts cover about 2 minutes, so there the proof is the count of calls.
//
// Checked: nobody fails; the account's circuit breaker opens (Redis, as the
// status API reads it) and closes after the outage; during the 503 outage
// the fake sees at most, per worker, its sends in flight at the start plus
// the breaker's threshold on the send API, and probes (getcallbackip) of
// one prober for the fleet at the backed-off interval; the run completes
// after recovery with every recipient's truth checked. (During the cut no
// call reaches the fake, so there the count is the clients': the worker
// package's TestOutageParksSends counts them.)
func TestLongOutage(t *testing.T) {
	for _, kind := range []string{"http_503", "connection_refused"} {
		t.Run(kind, func(t *testing.T) { longOutage(t, kind == "connection_refused") })
	}
}

func longOutage(t *testing.T, cut bool) {
	const (
		n           = 3000
		workers     = 3
		rate        = 200
		concurrency = 50
		threshold   = 5
		probe       = 250 * time.Millisecond
		probeMax    = 1500 * time.Millisecond
		outage      = 45 * time.Second
	)
	begin := time.Now()
	rs := StartRedis(t, redistest.ServerConfig{})
	var fake *Fake
	if cut {
		fake = StartCuttableFake(t, wechattest.Config{})
	} else {
		fake = StartFake(t, wechattest.Config{})
	}
	f := StartFleet(t, FleetConfig{RedisURL: rs.URL(), Fake: fake, Workers: workers, Rate: rate, Burst: rate / 10, Concurrency: concurrency,
		Env: []string{
			fmt.Sprintf("WXMASS_BREAKER_THRESHOLD=%d", threshold),
			"WXMASS_BREAKER_PROBE_INTERVAL=" + probe.String(),
			"WXMASS_BREAKER_PROBE_MAX=" + probeMax.String(),
		}})
	run := f.Launch(t, campaigns.KindTemplate, OpenIDs("LONGOUT", n))
	api := run.Kind.API()
	breaker := func() rdb.BreakerState {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := f.RDB().Breaker(ctx, run.Account.AppID)
		require.NoError(t, err)
		return st
	}

	var (
		from, to    time.Time
		openedAt    time.Time
		sendsBefore int64
		probesFrom  int64
		sendsDuring int64
		probesDur   int64
		closedAfter time.Duration
	)
	rec := run.Wait(t, 6*time.Minute,
		Hook{At: 0.25, Do: func(rec rdb.RunRecord) {
			st := fake.Stats().APIs
			sendsBefore, probesFrom = st[api].Calls, st[wechat.APICallbackIP].Calls
			if cut {
				fake.Cut()
			} else {
				require.NoError(t, fake.SetDown(http.StatusServiceUnavailable))
			}
			from = time.Now()
			t.Logf("wechat away at %d/%d settled", rec.Settled(), rec.Size)
		}},
		Hook{Every: 250 * time.Millisecond, Do: func(rdb.RunRecord) {
			if from.IsZero() {
				return
			}
			if to.IsZero() {
				if st := breaker(); st.Open && openedAt.IsZero() {
					openedAt = st.Since
					t.Logf("breaker open %v after the outage began", st.Since.Sub(from).Round(time.Millisecond))
				}
				if time.Since(from) < outage {
					return
				}
				st := fake.Stats().APIs
				sendsDuring, probesDur = st[api].Calls-sendsBefore, st[wechat.APICallbackIP].Calls-probesFrom
				require.True(t, breaker().Open, "the breaker is open at the outage's end")
				if cut {
					require.NoError(t, fake.Restore(context.Background()))
				} else {
					require.NoError(t, fake.SetDown(0))
				}
				to = time.Now()
				return
			}
			if closedAfter == 0 && !breaker().Open {
				closedAfter = time.Since(to)
				t.Logf("breaker closed %v after wechat came back", closedAfter.Round(time.Millisecond))
			}
		}},
	)
	require.False(t, to.IsZero(), "the run completed before the outage ended")
	require.False(t, openedAt.IsZero(), "the breaker never opened")
	require.False(t, breaker().Open, "the breaker closed after the outage")

	s := Check(t, run)
	assert.EqualValues(t, n, rec.Counters[rdb.OutcomeSent], "nobody failed because of the outage")
	assert.Zero(t, rec.Counters[rdb.OutcomeFailed])

	// Probes: 250 ms, 500 ms, 1 s, then every 1.5 s.
	wantProbes := int64(3 + (outage-1750*time.Millisecond)/probeMax)
	if cut {
		assert.Zero(t, sendsDuring+probesDur, "nothing reaches the fake through a cut")
	} else {
		bound := int64(workers * (concurrency + threshold))
		t.Logf("during the %v outage: %d send calls (bound %d), %d probes (about %d expected)", outage, sendsDuring, bound, probesDur, wantProbes)
		assert.LessOrEqual(t, sendsDuring, bound, "send calls during the outage")
		assert.GreaterOrEqual(t, probesDur, wantProbes/2, "probes during the outage")
		assert.LessOrEqual(t, probesDur, wantProbes*2, "probes during the outage: one prober for the fleet")
	}
	opens := f.CountLog("wechat unreachable: circuit breaker open")
	kind := "503"
	if cut {
		kind = "cut (refused)"
	}
	s.Note("%s for %s: breaker open after %s, closed %s after; %d send calls and %d probes reached the fake; opened %d times (warn logs)",
		kind, outage, openedAt.Sub(from).Round(time.Millisecond), closedAfter.Round(time.Millisecond), sendsDuring, probesDur, opens)
	s.Elapsed = time.Since(begin)
	Report(t, s)
}
