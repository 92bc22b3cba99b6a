package console_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/api/console"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
)

const (
	appID   = "wx00000000000con01"
	testKey = "console-key-0123456789abcdef"
)

// bundle is a console in front of a real API on a private redis-server:
// the console's tests start runs, whose tasks stay in asynq's queues
// (no worker drains them), so they keep to a server of their own.
type bundle struct {
	url   string
	store *campaigns.Store
	srv   *api.Server
	// browser is a client with the session cookie of a login.
	browser *http.Client
}

// option configures a setup's API before it is made, with the setup's
// Redis client (see setupWeChat).
type option func(t *testing.T, rc *redis.Client, cfg *api.Config)

func setup(t *testing.T, opts ...option) *bundle {
	t.Helper()
	rs := redistest.StartServer(t, redistest.ServerConfig{})
	c := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	return serveOn(t, c, func(cfg *api.Config) {
		for _, o := range opts {
			o(t, c, cfg)
		}
	})
}

// serveOn serves the API, with the console mounted, on c's Redis (after
// configure changes its config), and signs a browser in.
func serveOn(tb testing.TB, c *redis.Client, configure func(*api.Config)) *bundle {
	tb.Helper()
	store := campaigns.NewStore(rdb.New(c, "wxmass"))
	client, err := producer.NewClient(c)
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = client.Close() })
	reg, err := account.NewRegistry(&account.Account{ID: "shop", AppID: appID, Default: ratelimit.Limit{Rate: 10, Burst: 1}})
	require.NoError(tb, err)
	keys := &api.KeySet{}
	require.NoError(tb, keys.AddNamed("alice", testKey))
	cfg := api.Config{Store: store, Producer: producer.New(client.Client, store, reg, nil, producer.Config{}), Keys: keys,
		Accounts: reg}
	if configure != nil {
		configure(&cfg)
	}
	srv, err := api.New(cfg)
	require.NoError(tb, err)
	con, err := console.New(console.Config{API: srv, Store: store, Accounts: reg, MonitorPath: "/monitoring"})
	require.NoError(tb, err)
	srv.MountPages(console.Prefix, con)
	hs := httptest.NewServer(srv)
	tb.Cleanup(hs.Close)
	b := &bundle{url: hs.URL, store: store, srv: srv}
	b.browser = b.login(tb)
	return b
}

// login signs in through the login form, as a person does, and returns
// the browser.
func (b *bundle) login(tb testing.TB) *http.Client {
	tb.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(tb, err)
	cl := &http.Client{Jar: jar}
	req, err := http.NewRequest("POST", b.url+"/login", strings.NewReader(url.Values{"key": {testKey}, "next": {"/console/"}}.Encode()))
	require.NoError(tb, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.url)
	res, err := cl.Do(req)
	require.NoError(tb, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	require.Equal(tb, http.StatusOK, res.StatusCode, "%s", raw)
	require.Equal(tb, "/console/", res.Request.URL.Path, "the login goes on to the console")
	return cl
}

// page is an answer of the console.
type page struct {
	status int
	header http.Header
	body   string
	// url is where the answer came from, after redirects.
	url *url.URL
}

// get opens path in the browser, in lang ("" for none).
func (b *bundle) get(t *testing.T, path, lang string) page {
	t.Helper()
	req, err := http.NewRequest("GET", b.url+path, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/html")
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	return b.do(t, req)
}

// post sends a form from the console's own pages.
func (b *bundle) post(t *testing.T, path string, form url.Values) page {
	t.Helper()
	req, err := http.NewRequest("POST", b.url+path, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.url)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	return b.do(t, req)
}

func (b *bundle) do(t *testing.T, req *http.Request) page {
	t.Helper()
	res, err := b.browser.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return page{status: res.StatusCode, header: res.Header, body: string(raw), url: res.Request.URL}
}

var tokenRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// token reads a page's form token.
func token(t *testing.T, p page) string {
	t.Helper()
	m := tokenRE.FindStringSubmatch(p.body)
	require.NotNil(t, m, "the page has a form token")
	return m[1]
}

// apiJSON calls the API with the key.
func (b *bundle) apiJSON(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, b.url+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(res.Body)
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out), "%s", raw)
	}
	return res.StatusCode, out
}

// newCampaign creates a template campaign with an inline audience through
// the API and returns its id.
func (b *bundle) newCampaign(t *testing.T, name string) string {
	t.Helper()
	status, out := b.apiJSON(t, "POST", "/v1/campaigns", map[string]any{
		"name": name, "account": "shop", "kind": "template",
		"template": map[string]any{"template_id": "TPL_ORDER_SHIPPED", "data": map[string]any{"thing1": "订单已发货"}},
		"audience": map[string]any{"source": "inline", "openids": []string{"oCON000000000000000000000001", "oCON000000000000000000000002"}},
	})
	require.Equal(t, http.StatusCreated, status, "%v", out)
	return out["id"].(string)
}
