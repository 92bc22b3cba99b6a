package console_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/redistest"
)

// counter counts the Redis commands and round trips of a client.
type counter struct{ cmds, trips atomic.Int64 }

func (c *counter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.cmds.Add(1)
		c.trips.Add(1)
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.cmds.Add(int64(len(cmds)))
		c.trips.Add(1)
		return next(ctx, cmds)
	}
}

// listEnv is the console and the API on a private redis-server holding
// many campaigns, with a count of the Redis commands they send.
type listEnv struct {
	url     string
	store   *campaigns.Store
	browser *http.Client // signed in through /login
	count   *counter
}

// newListEnv seeds n campaigns (a tenth of them named "会员日 …", the rest
// "promo …") through the store, eight at a time.
func newListEnv(tb testing.TB, n int) *listEnv {
	tb.Helper()
	rs := redistest.StartServer(tb, redistest.ServerConfig{})
	c := redis.NewClient(&redis.Options{Addr: rs.Addr(), PoolSize: 32})
	tb.Cleanup(func() { _ = c.Close() })
	cnt := &counter{}
	c.AddHook(cnt)
	b := serveOn(tb, c, nil)
	store := b.store
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				name := fmt.Sprintf("promo %06d", i)
				if i%10 == 0 {
					name = fmt.Sprintf("会员日 %06d", i)
				}
				err := store.Create(context.Background(), &campaigns.Campaign{Name: name, Account: "shop", Kind: campaigns.KindTemplate,
					Template: &campaigns.TemplateSpec{TemplateID: "TPL_ORDER_SHIPPED", Data: map[string]string{"thing1": "订单已发货"}},
					Audience: campaigns.AudienceSpec{Source: campaigns.SourceInline, OpenIDs: []string{"oCON000000000000000000000001"}}})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	require.NoError(tb, <-errs)
	tb.Logf("seeded %d campaigns in %s", n, time.Since(start).Round(time.Millisecond))

	e := &listEnv{url: b.url, store: store, browser: b.browser, count: cnt}
	return e
}

// get fetches path, through the console's session (path under /console/)
// or with the API key, and returns the status and body.
func (e *listEnv) get(tb testing.TB, path string) (int, string) {
	req, err := http.NewRequest("GET", e.url+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	cl := e.browser
	if strings.HasPrefix(path, "/v1/") {
		req.Header.Set("Authorization", "Bearer "+testKey)
		cl = http.DefaultClient
	} else {
		req.Header.Set("Accept", "text/html")
		req.Header.Set("Accept-Language", "zh-CN")
	}
	res, err := cl.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return res.StatusCode, string(raw)
}

// measure returns the Redis commands and round trips of one GET of path.
func (e *listEnv) measure(tb testing.TB, path string) (cmds, trips int64) {
	c0, t0 := e.count.cmds.Load(), e.count.trips.Load()
	status, body := e.get(tb, path)
	require.Equal(tb, http.StatusOK, status, "%.300s", body)
	return e.count.cmds.Load() - c0, e.count.trips.Load() - t0
}

// listPages are the pages the benchmarks read: the first, a deep one and
// a name search (a tenth of the campaigns match).
var listPages = []struct{ name, query string }{
	{"first", ""},
	{"offset=90000", "?offset=90000"},
	{"q=会员日", "?q=" + url.QueryEscape("会员日")},
}

const benchCampaigns = 100_000

func benchList(b *testing.B, path string) {
	e := newListEnv(b, benchCampaigns)
	for _, pg := range listPages {
		b.Run(pg.name, func(b *testing.B) {
			b.ReportAllocs()
			c0, t0 := e.count.cmds.Load(), e.count.trips.Load()
			b.ResetTimer()
			for range b.N {
				if status, body := e.get(b, path+pg.query); status != http.StatusOK {
					b.Fatalf("%d: %.300s", status, body)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(e.count.cmds.Load()-c0)/float64(b.N), "rediscmds/op")
			b.ReportMetric(float64(e.count.trips.Load()-t0)/float64(b.N), "roundtrips/op")
		})
	}
}

// BenchmarkConsoleCampaignList reads the console's campaign list (HTML,
// through the session) with 100,000 campaigns: the first page, a page at
// offset 90,000 and a name search. Compare BenchmarkAPICampaignList.
func BenchmarkConsoleCampaignList(b *testing.B) { benchList(b, "/console/campaigns") }

// BenchmarkAPICampaignList reads the same pages of GET /v1/campaigns (JSON,
// with the key), as the bound the console's list keeps to.
func BenchmarkAPICampaignList(b *testing.B) { benchList(b, "/v1/campaigns") }

// TestConsoleListPages: the console's campaign list reads one page through
// the API, never the whole list: a page costs at most two Redis commands a
// campaign on it plus a few (the session, the list's range and count),
// whether it is the first or a deep one, and a name search looks at no
// more than the API's ListScanMax campaigns. It costs what the API's own
// list costs, plus the console's session check.
func TestConsoleListPages(t *testing.T) {
	t.Parallel()
	const n, page = 3000, 50 // page: the console's page size
	e := newListEnv(t, n)
	for _, pg := range []struct {
		name, query string
		rows        int
		bound       int64
	}{
		{"first", "", page, 2*page + 10},
		{"deep", "?offset=2950", page, 2*page + 10},
		{"last", "?offset=2990", 10, 2*page + 10},
		{"search", "?q=" + url.QueryEscape("会员日"), page, api.ListScanMax + 2*api.ListScanMax/200 + 10},
		{"search that finds nothing", "?q=nothing", 0, api.ListScanMax + 2*api.ListScanMax/200 + 10},
	} {
		cmds, trips := e.measure(t, "/console/campaigns"+pg.query)
		apiCmds, apiTrips := e.measure(t, "/v1/campaigns?limit=50&"+strings.TrimPrefix(pg.query, "?"))
		t.Logf("%s: console %d commands in %d round trips, API %d in %d", pg.name, cmds, trips, apiCmds, apiTrips)
		require.LessOrEqual(t, cmds, pg.bound, "%s: the console's list reads more than a page", pg.name)
		require.Less(t, cmds, int64(n), "%s: the console's list reads every campaign", pg.name)
		require.LessOrEqual(t, cmds, apiCmds+5, "%s: the console costs more than the API's list and a session check", pg.name)
		_, body := e.get(t, "/console/campaigns"+pg.query)
		require.Equal(t, pg.rows, strings.Count(body, `<tr><td><a href="/console/campaigns/`), pg.name)
	}
}
