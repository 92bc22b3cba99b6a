package worker_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// pathCounter counts HTTP requests by URL path as a client makes them,
// those that never reach the server (connection refused) included.
type pathCounter struct {
	mu sync.Mutex
	n  map[string]int64
}

type countingTransport struct {
	c    *pathCounter
	next http.RoundTripper
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.c.mu.Lock()
	if t.c.n == nil {
		t.c.n = map[string]int64{}
	}
	t.c.n[r.URL.Path]++
	t.c.mu.Unlock()
	return t.next.RoundTrip(r)
}

func (c *pathCounter) wrap(next http.RoundTripper) http.RoundTripper {
	return countingTransport{c: c, next: next}
}

// get returns the requests made to the API (such as
// "message/template/send").
func (c *pathCounter) get(api string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n["/cgi-bin/"+api]
}

// runWaiting is the waiting object of GET /v1/campaigns/{id}/runs/{run}.
type runWaiting struct {
	Waiting *struct {
		Reason string    `json:"reason"`
		Since  time.Time `json:"since"`
	} `json:"waiting"`
	State string `json:"state"`
}

// statusAPI serves the HTTP API over the test's store and p's accounts and
// breakers, and returns a function reading a run's status.
func statusAPI(t *testing.T, b *bundle, p *proc) func(id string, run int) runWaiting {
	t.Helper()
	keys := &api.KeySet{}
	const key = "test-key-of-the-outage-tests-0123456789"
	require.NoError(t, keys.Add(key))
	h, err := api.New(api.Config{Store: b.store, Producer: p.producer, Keys: keys, Accounts: p.accounts, Breakers: p.limiter.Breakers()})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return func(id string, run int) runWaiting {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v1/campaigns/"+id+"/runs/"+strconv.Itoa(run), nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var v runWaiting
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&v))
		return v
	}
}

// TestOutageParksSends: WeChat goes away in the middle of a run, for a
// time-scaled "30 minutes": the probe interval is 100 ms where the default
// is 10 s backing off to 1 min, so 1 min is scaled to 100 ms and 30 min to
// 3 s, 30 probe intervals. Two kinds: every API answers HTTP 503 (the fake
// is down), and a network cut (the fake's listener and connections closed:
// connection refused) reopened on the same address after the span. Each
// of two worker processes opens the account's circuit breaker after
// threshold failures in a row; the sends park (no retries used), so
// during the outage the send API sees at most, per process, the sends in
// flight at its start plus the threshold; one process of the fleet probes
// getcallbackip once per interval (≈ outage/interval probes); the run's
// status shows "waiting for WeChat since" during the outage and not after;
// once WeChat is back the run completes with nobody failed, every
// recipient's truth checked against the fake's record.
func TestOutageParksSends(t *testing.T) {
	for _, kind := range []string{"http_503", "connection_refused"} {
		t.Run(kind, func(t *testing.T) {
			const (
				n           = 1500
				procs       = 2
				concurrency = 10
				threshold   = 5
				probe       = 100 * time.Millisecond
				outage      = 3 * time.Second
			)
			b := setup(t, wechattest.Config{})
			var link *wechattest.Link
			if kind == "connection_refused" {
				b.fake, link = wechattest.StartLink(t, wechattest.Config{})
			}
			var ps []*proc
			for range procs {
				ps = append(ps, b.process(t, procConfig{rate: 300, concurrency: concurrency, breakerThreshold: threshold, breakerProbe: probe}))
			}
			status := statusAPI(t, b, ps[0])
			c := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, openIDs(n))
			run, err := ps[0].producer.Start(t.Context(), c.ID)
			require.NoError(t, err)
			require.Eventually(t, func() bool { return b.fake.Stats().Deliveries >= n/4 }, 30*time.Second, 10*time.Millisecond)

			sendCalls := func() int64 {
				if link != nil {
					// Refused connections never reach the fake: count
					// what the clients attempted.
					return b.calls.get(wechat.APITemplateSend)
				}
				return b.fake.Stats().APIs[wechat.APITemplateSend].Calls
			}
			probes := func() int64 {
				if link != nil {
					return b.calls.get(wechat.APICallbackIP)
				}
				return b.fake.Stats().APIs[wechat.APICallbackIP].Calls
			}
			sendsBefore, probesBefore := sendCalls(), probes()
			start := time.Now()
			if link != nil {
				link.Cut()
			} else {
				require.NoError(t, b.fake.SetDown(http.StatusServiceUnavailable))
			}
			var since time.Time
			poll := time.NewTicker(50 * time.Millisecond)
			defer poll.Stop()
			for time.Since(start) < outage {
				if v := status(c.ID, run); v.Waiting != nil {
					require.Equal(t, "wechat_unreachable", v.Waiting.Reason)
					since = v.Waiting.Since
				} else {
					require.True(t, since.IsZero(), "the run stopped waiting during the outage")
				}
				<-poll.C
			}
			require.False(t, since.IsZero(), "the status never showed the run waiting for WeChat")
			require.WithinDuration(t, start, since, time.Second)
			sendsDuring, probesDuring := sendCalls()-sendsBefore, probes()-probesBefore
			if link != nil {
				require.NoError(t, link.Restore(t.Context()))
			} else {
				require.NoError(t, b.fake.SetDown(0))
			}
			restored := time.Now()
			t.Logf("during the %v outage: %d send calls (bound %d), %d probes (%v interval)", outage, sendsDuring,
				procs*(concurrency+threshold), probesDuring, probe)
			require.LessOrEqual(t, sendsDuring, int64(procs*(concurrency+threshold)), "send calls during the outage")
			want := int64(outage / probe)
			require.GreaterOrEqual(t, probesDuring, want/3, "probes during the outage (fewer only on a busy machine)")
			require.LessOrEqual(t, probesDuring, want*3/2, "probes during the outage: one prober per fleet")

			require.Eventually(t, func() bool { return status(c.ID, run).Waiting == nil }, 5*time.Second, 20*time.Millisecond,
				"the run still waits after WeChat is back")
			t.Logf("breaker closed %v after WeChat came back", time.Since(restored).Round(time.Millisecond))
			rec := b.waitSettled(t, c.ID, run, time.Minute)
			b.truth(t, c, nil, run)
			require.EqualValues(t, n, rec.Counters["sent"], "the outage fails nobody: %v", rec.Counters)
			require.Zero(t, rec.Counters["failed"])
			require.EqualValues(t, 0, b.fake.Stats().DuplicatesDelivered)
		})
	}
}
