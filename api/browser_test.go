package api_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/campaigns"
)

// browserBundle is an API server with a mounted tool at /tool/ that
// answers with the request's principal and counts the requests that reach
// it, and a clock the test moves.
type browserBundle struct {
	*testBundle
	cfg   api.Config
	tool  atomic.Int64
	clock *fakeClock
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func browserSetup(t *testing.T, mutate ...func(*api.Config)) *browserBundle {
	t.Helper()
	// The clock starts at the real time: Redis expires sessions by its own.
	b := &browserBundle{clock: &fakeClock{t: time.Now()}}
	tool := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.tool.Add(1)
		p, _ := api.PrincipalFrom(r.Context())
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p)
	})
	all := append([]func(*api.Config){func(c *api.Config) {
		c.Mount = map[string]http.Handler{"/tool/": tool}
		c.Now = b.clock.Now
	}}, mutate...)
	all = append(all, func(c *api.Config) { b.cfg = *c })
	b.testBundle = setup(t, all...)
	return b
}

// serveAgain starts another server on the same Redis, as another process
// of a fleet would be, with cfg changed by mutate.
func (b *browserBundle) serveAgain(t *testing.T, mutate func(*api.Config)) string {
	t.Helper()
	cfg := b.cfg
	mutate(&cfg)
	srv, err := api.New(cfg)
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs.URL
}

// reply is an answer to send.
type reply struct {
	status int
	header http.Header
	body   string
}

func (r reply) errCode() string {
	var m struct {
		Error struct{ Code, Message, Field string }
	}
	_ = json.Unmarshal([]byte(r.body), &m)
	return m.Error.Code
}

func (r reply) errMessage() string {
	var m struct {
		Error struct{ Code, Message, Field string }
	}
	_ = json.Unmarshal([]byte(r.body), &m)
	return m.Error.Message
}

func (r reply) errField() string {
	var m struct {
		Error struct{ Code, Message, Field string }
	}
	_ = json.Unmarshal([]byte(r.body), &m)
	return m.Error.Field
}

// cookie returns the session cookie the answer sets, or nil.
func (r reply) cookie() *http.Cookie {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == api.SessionCookie {
			return c
		}
	}
	return nil
}

// send makes a request with exactly the headers given (pairs of name and
// value), follows no redirect, and returns the answer.
func send(t *testing.T, method, u, body string, header ...string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, rd)
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Add(header[i], header[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return reply{status: res.StatusCode, header: res.Header, body: string(raw)}
}

const bearer = "Bearer " + testKey

func (b *browserBundle) state(t *testing.T, id string) string {
	t.Helper()
	c, err := b.store.Get(t.Context(), id)
	require.NoError(t, err)
	return string(c.State)
}

// TestCrossOriginRefused: a state change from another origin (by
// Sec-Fetch-Site, else Origin against Host), another port of the same host
// included, gets 403 cross_origin naming the header, changes nothing and
// never reaches a mounted tool, whatever credentials it carries; the same
// request from the same origin, or from a tool that sends neither header,
// passes; reading is never refused.
func TestCrossOriginRefused(t *testing.T) {
	t.Parallel()
	b := browserSetup(t)
	a := b.json(t, "POST", "/v1/campaigns", inlineCampaign)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	u, err := url.Parse(b.url)
	require.NoError(t, err)
	otherPort := "http://" + u.Hostname() + ":1"

	requests := []struct{ method, path, body string }{
		{"POST", "/v1/campaigns", inlineCampaign},
		{"POST", "/v1/campaigns/" + id + "/cancel", ""},
		{"POST", "/v1/campaigns/" + id + "/start", ""},
		{"PUT", "/v1/campaigns/" + id, inlineCampaign},
		{"POST", "/v1/session", `{"key":"` + testKey + `"}`},
		{"DELETE", "/v1/session", ""},
		{"POST", "/tool/queues/q:pause", ""},
		{"POST", "/login", "key=" + testKey},
		{"POST", "/logout", ""},
	}
	for _, tt := range []struct {
		name, header, value, field, shown string
	}{
		{"cross-site", "Sec-Fetch-Site", "cross-site", "Sec-Fetch-Site", `"cross-site"`},
		{"same-site, another port", "Sec-Fetch-Site", "same-site", "Sec-Fetch-Site", `"same-site"`},
		{"old browser, another host", "Origin", "http://evil.example", "Origin", `"http://evil.example"`},
		{"old browser, another port", "Origin", otherPort, "Origin", otherPort},
		{"old browser, opaque origin", "Origin", "null", "Origin", `"null"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, rq := range requests {
				for _, auth := range []string{bearer, "Basic " + base64.StdEncoding.EncodeToString([]byte("op:"+testKey))} {
					r := send(t, rq.method, b.url+rq.path, rq.body, tt.header, tt.value, "Authorization", auth,
						"Content-Type", "application/json")
					require.Equal(t, http.StatusForbidden, r.status, "%s %s: %s", rq.method, rq.path, r.body)
					require.Equal(t, api.CodeCrossOrigin, r.errCode(), r.body)
					require.Equal(t, tt.field, r.errField())
					require.Contains(t, r.errMessage(), tt.shown, "the message names the header's value")
					require.Nil(t, r.cookie(), "no session from a refused request")
				}
			}
		})
	}
	require.EqualValues(t, 1, b.total(t), "no campaign was created")
	require.Equal(t, "draft", b.state(t, id), "the campaign was not cancelled or started")
	require.Zero(t, b.tool.Load(), "a refused request never reaches a mounted tool")

	// Reading from another origin is not refused (nothing changes).
	r := send(t, "GET", b.url+"/v1/campaigns/"+id, "", "Sec-Fetch-Site", "cross-site", "Authorization", bearer)
	require.Equal(t, http.StatusOK, r.status, r.body)
	// The same origin, a typed URL, and tools without either header pass.
	for _, h := range [][]string{
		{"Sec-Fetch-Site", "same-origin"},
		{"Sec-Fetch-Site", "none"},
		{"Origin", b.url},
		{},
	} {
		r := send(t, "POST", b.url+"/tool/queues/q:pause", "", append(h, "Authorization", bearer)...)
		require.Equal(t, http.StatusOK, r.status, "%v: %s", h, r.body)
	}
	require.EqualValues(t, 4, b.tool.Load())
	r = send(t, "POST", b.url+"/v1/campaigns/"+id+"/cancel", "", "Origin", b.url, "Sec-Fetch-Site", "same-origin", "Authorization", bearer)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.Equal(t, "cancelled", b.state(t, id))
}

// TestFormBodiesRefused: a state change behind the key takes no body or an
// application/json one; the types a cross-site form can send, and a body
// without a type, get 415 naming Content-Type, on endpoints that read a
// body and on those that take none, and change nothing. The audience upload
// keeps its own types.
func TestFormBodiesRefused(t *testing.T) {
	t.Parallel()
	b := browserSetup(t)
	a := b.json(t, "POST", "/v1/campaigns", inlineCampaign)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	a = b.json(t, "POST", "/v1/campaigns", templateCampaign)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	fileID := a.body["id"].(string)

	paths := []struct{ method, path string }{
		{"POST", "/v1/campaigns"},
		{"PUT", "/v1/campaigns/" + id},
		{"POST", "/v1/messages"},
		{"POST", "/v1/campaigns/" + id + "/start"},
		{"POST", "/v1/campaigns/" + id + "/pause"},
		{"POST", "/v1/campaigns/" + id + "/resume"},
		{"POST", "/v1/campaigns/" + id + "/cancel"},
		{"POST", "/v1/campaigns/" + id + "/schedule"},
		{"POST", "/v1/campaigns/" + id + "/unschedule"},
		{"POST", "/v1/campaigns/" + id + "/runs/1/report-link"},
		{"POST", "/v1/campaigns/" + id + "/runs/1/retry"},
		{"POST", "/v1/session"},
		{"DELETE", "/v1/session"},
		{"POST", "/tool/queues/q:pause"},
	}
	for _, ct := range []string{
		"application/x-www-form-urlencoded",
		"multipart/form-data; boundary=xyz",
		"text/plain",
		"text/plain;charset=UTF-8",
		"application/jsonp",
		"",
	} {
		body := `{"name":"x","padding":"="}`
		if strings.HasPrefix(ct, "multipart") {
			body = "--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nb\r\n--xyz--\r\n"
		}
		for _, p := range paths {
			h := []string{"Authorization", bearer}
			if ct != "" {
				h = append(h, "Content-Type", ct)
			}
			r := send(t, p.method, b.url+p.path, body, h...)
			require.Equal(t, http.StatusUnsupportedMediaType, r.status, "%s %s as %q: %s", p.method, p.path, ct, r.body)
			require.Equal(t, api.CodeUnsupportedMedia, r.errCode())
			require.Equal(t, "Content-Type", r.errField())
			if ct != "" {
				require.Contains(t, r.body, ct, "the message names the type")
			}
		}
	}
	require.Zero(t, b.tool.Load())
	require.Equal(t, "draft", b.state(t, id))
	require.EqualValues(t, 2, b.total(t))

	// No body, with or without application/json, is how the control
	// endpoints are called.
	for _, h := range [][]string{{}, {"Content-Type", "application/json"}, {"Content-Type", "application/json; charset=utf-8"}} {
		r := send(t, "POST", b.url+"/tool/queues/q:pause", "", append(h, "Authorization", bearer)...)
		require.Equal(t, http.StatusOK, r.status, r.body)
	}
	r := send(t, "POST", b.url+"/v1/campaigns/"+id+"/start", "", "Authorization", bearer)
	require.Equal(t, http.StatusAccepted, r.status, r.body)
	// The upload takes CSV and NDJSON, and still refuses a form.
	up := "/v1/campaigns/" + fileID + "/audience"
	r = send(t, "PUT", b.url+up, "openid,name\noTX0000000000000000000000001,Ann\n", "Authorization", bearer, "Content-Type", "text/csv")
	require.Equal(t, http.StatusOK, r.status, r.body)
	r = send(t, "PUT", b.url+up, "openid=x", "Authorization", bearer, "Content-Type", "application/x-www-form-urlencoded")
	require.Equal(t, http.StatusUnsupportedMediaType, r.status, r.body)
}

// TestBasicOnlyReads: Basic auth (which browsers send by themselves) reads
// but changes nothing: a state change with it gets 401 pointing at /login
// and Bearer, without a Basic challenge that would ask again.
func TestBasicOnlyReads(t *testing.T) {
	t.Parallel()
	b := browserSetup(t)
	a := b.json(t, "POST", "/v1/campaigns", inlineCampaign)
	id := a.body["id"].(string)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("operator:"+testKey))

	r := send(t, "GET", b.url+"/v1/campaigns/"+id, "", "Authorization", basic)
	require.Equal(t, http.StatusOK, r.status, r.body)
	r = send(t, "GET", b.url+"/tool/x", "", "Authorization", basic)
	require.Equal(t, http.StatusOK, r.status)
	require.JSONEq(t, `{"key":"key-`+keyDigest8(testKey)+`","via":"basic"}`, r.body)
	for _, rq := range []struct{ method, path, body string }{
		{"POST", "/v1/campaigns", inlineCampaign},
		{"POST", "/v1/campaigns/" + id + "/cancel", ""},
		{"PUT", "/v1/campaigns/" + id, inlineCampaign},
		{"POST", "/tool/queues/q:pause", ""},
		{"DELETE", "/tool/queues/q", ""},
	} {
		r := send(t, rq.method, b.url+rq.path, rq.body, "Authorization", basic, "Content-Type", "application/json")
		require.Equal(t, http.StatusUnauthorized, r.status, "%s %s: %s", rq.method, rq.path, r.body)
		require.Equal(t, api.CodeUnauthorized, r.errCode())
		require.Contains(t, r.body, "log in at /login")
		require.Contains(t, r.body, "Authorization: Bearer")
		require.Equal(t, []string{`Bearer realm="wxmass"`}, r.header.Values("WWW-Authenticate"))
		require.NotContains(t, r.body, testKey)
	}
	require.EqualValues(t, 1, b.tool.Load(), "only the read reached the tool")
	require.EqualValues(t, 1, b.total(t))
	require.Equal(t, "draft", b.state(t, id))
}

func keyDigest8(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:4])
}

// login logs in through POST /v1/session and returns the cookie header.
func (b *browserBundle) login(t *testing.T) string {
	t.Helper()
	r := send(t, "POST", b.url+"/v1/session", `{"key":"`+testKey+`"}`, "Content-Type", "application/json")
	require.Equal(t, http.StatusCreated, r.status, r.body)
	c := r.cookie()
	require.NotNil(t, c)
	return api.SessionCookie + "=" + c.Value
}

// TestSessionLoginLogout: POST /v1/session with the key (in the body, or
// as Bearer) answers the key's name and expiry and sets an HttpOnly,
// SameSite=Strict cookie for the session's TTL; the cookie then reads and
// writes as Principal{Via: session}, on every server of the fleet; DELETE
// /v1/session ends it there and everywhere.
func TestSessionLoginLogout(t *testing.T) {
	t.Parallel()
	b := browserSetup(t, func(c *api.Config) { c.SessionTTL = 90 * time.Minute })
	start := b.clock.Now()

	r := send(t, "POST", b.url+"/v1/session", `{"key":"`+testKey+`"}`, "Content-Type", "application/json", "Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusCreated, r.status, r.body)
	var ans struct {
		Key       string `json:"key"`
		ExpiresAt string `json:"expires_at"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.body), &ans))
	require.Equal(t, "key-"+keyDigest8(testKey), ans.Key)
	exp, err := time.Parse(time.RFC3339, ans.ExpiresAt)
	require.NoError(t, err)
	require.WithinDuration(t, start.Add(90*time.Minute), exp, 2*time.Second)
	c := r.cookie()
	require.NotNil(t, c)
	require.Len(t, c.Value, 43, "32 random bytes, base64url")
	require.True(t, c.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, c.SameSite)
	require.Equal(t, "/", c.Path)
	require.Equal(t, 90*60, c.MaxAge)
	require.False(t, c.Secure, "plain HTTP: a Secure cookie would never come back")
	require.NotContains(t, r.body, testKey)
	require.NotContains(t, r.body, c.Value, "the token is only in the cookie")
	cookie := api.SessionCookie + "=" + c.Value

	// The cookie alone reads and writes, as the session.
	r = send(t, "GET", b.url+"/tool/x", "", "Cookie", cookie)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.JSONEq(t, `{"key":"`+ans.Key+`","via":"session"}`, r.body)
	r = send(t, "POST", b.url+"/v1/campaigns", inlineCampaign, "Cookie", cookie, "Content-Type", "application/json", "Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusCreated, r.status, r.body)
	// It wins over the Basic credentials the same browser may hold, which
	// could not write.
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("op:"+testKey))
	r = send(t, "POST", b.url+"/tool/queues/q:pause", "", "Cookie", cookie, "Authorization", basic)
	require.Equal(t, http.StatusOK, r.status, r.body)
	require.JSONEq(t, `{"key":"`+ans.Key+`","via":"session"}`, r.body)
	// Another process of the fleet accepts it.
	other := b.serveAgain(t, func(*api.Config) {})
	r = send(t, "GET", other+"/tool/x", "", "Cookie", cookie)
	require.Equal(t, http.StatusOK, r.status, r.body)

	// A Bearer key and no body log in too.
	r = send(t, "POST", b.url+"/v1/session", "", "Authorization", bearer)
	require.Equal(t, http.StatusCreated, r.status, r.body)
	require.NotNil(t, r.cookie())
	require.NotEqual(t, c.Value, r.cookie().Value, "every login has its own token")

	// Wrong keys, Basic, forms: no session.
	for _, tt := range []struct {
		body   string
		header []string
		status int
		field  string
	}{
		{`{"key":"wrong-key-0123456789abcdef"}`, []string{"Content-Type", "application/json"}, 401, "key"},
		{`{"key":""}`, []string{"Content-Type", "application/json"}, 400, "key"},
		{`{"key":"x","extra":1}`, []string{"Content-Type", "application/json"}, 400, "extra"},
		{"", []string{"Authorization", "Bearer wrong-key-0123456789abcdef"}, 401, "Authorization"},
		{"", []string{"Authorization", basic}, 401, "Authorization"},
		{"", nil, 401, "Authorization"},
		{"key=" + testKey, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "Content-Type"},
		{`{"key":"` + testKey + `"}`, []string{"Content-Type", "text/plain"}, 415, "Content-Type"},
	} {
		r := send(t, "POST", b.url+"/v1/session", tt.body, tt.header...)
		require.Equal(t, tt.status, r.status, "%s %v: %s", tt.body, tt.header, r.body)
		require.Equal(t, tt.field, r.errField(), r.body)
		require.Nil(t, r.cookie())
		require.NotContains(t, r.body, "wrong-key")
	}
	r = send(t, "GET", b.url+"/v1/session", "", "Authorization", bearer)
	require.Equal(t, http.StatusMethodNotAllowed, r.status)
	require.Equal(t, "POST, DELETE", r.header.Get("Allow"))

	// Logout: 204, the cookie cleared, the session gone on every process.
	r = send(t, "DELETE", b.url+"/v1/session", "", "Cookie", cookie, "Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusNoContent, r.status, r.body)
	require.NotNil(t, r.cookie())
	require.Empty(t, r.cookie().Value)
	require.Negative(t, r.cookie().MaxAge, "Max-Age=0: the browser drops it")
	_, err = b.store.Session(t.Context(), c.Value)
	require.ErrorIs(t, err, campaigns.ErrSessionNotFound)
	for _, u := range []string{b.url, other} {
		r = send(t, "GET", u+"/tool/x", "", "Cookie", cookie)
		require.Equal(t, http.StatusUnauthorized, r.status, r.body)
		require.Contains(t, r.body, "session has ended")
		require.NotNil(t, r.cookie(), "a stale cookie is cleared")
		require.Empty(t, r.cookie().Value)
	}
	r = send(t, "DELETE", b.url+"/v1/session", "", "Cookie", cookie)
	require.Equal(t, http.StatusNoContent, r.status, "logging out twice is fine")
}

// TestSessionExpiry: a session ends at its TTL, by the server's clock even
// before Redis drops it, and is then deleted; Redis's own TTL is the
// session's.
func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	b := browserSetup(t, func(c *api.Config) { c.SessionTTL = time.Hour })
	cookie := b.login(t)
	token := strings.TrimPrefix(cookie, api.SessionCookie+"=")
	ttl, err := b.rdb.Client().PTTL(t.Context(), b.rdb.Keys().Session(token)).Result()
	require.NoError(t, err)
	require.InDelta(t, time.Hour.Seconds(), ttl.Seconds(), 5, "Redis drops it at its expiry")

	b.clock.Add(59 * time.Minute)
	require.Equal(t, http.StatusOK, send(t, "GET", b.url+"/tool/x", "", "Cookie", cookie).status)
	b.clock.Add(time.Minute)
	r := send(t, "GET", b.url+"/tool/x", "", "Cookie", cookie)
	require.Equal(t, http.StatusUnauthorized, r.status, r.body)
	require.Contains(t, r.body, "session has ended")
	_, err = b.store.Session(t.Context(), token)
	require.ErrorIs(t, err, campaigns.ErrSessionNotFound, "an expired session is deleted")
	// Tokens that are not ours never reach Redis, and are cleared too.
	r = send(t, "GET", b.url+"/tool/x", "", "Cookie", api.SessionCookie+"=forged")
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.NotNil(t, r.cookie())
}

// TestSessionEndsWithItsKey: a session is valid only while its key is
// accepted: a process whose keys no longer hold it (the key removed from
// the keys file) refuses the session and deletes it.
func TestSessionEndsWithItsKey(t *testing.T) {
	t.Parallel()
	const bobKey = "bob-key-0123456789abcdef"
	b := browserSetup(t, func(c *api.Config) {
		ks := &api.KeySet{}
		require.NoError(t, ks.AddNamed("alice", testKey))
		require.NoError(t, ks.AddNamed("bob", bobKey))
		c.Keys = ks
	})
	r := send(t, "POST", b.url+"/v1/session", `{"key":"`+bobKey+`"}`, "Content-Type", "application/json")
	require.Equal(t, http.StatusCreated, r.status, r.body)
	require.JSONEq(t, `"bob"`, mustField(t, r.body, "key"))
	cookie := api.SessionCookie + "=" + r.cookie().Value
	r = send(t, "GET", b.url+"/tool/x", "", "Cookie", cookie)
	require.JSONEq(t, `{"key":"bob","via":"session"}`, r.body)

	// bob's key removed: the restarted process knows only alice's.
	restarted := b.serveAgain(t, func(c *api.Config) {
		ks := &api.KeySet{}
		require.NoError(t, ks.AddNamed("alice", testKey))
		c.Keys = ks
	})
	r = send(t, "GET", restarted+"/tool/x", "", "Cookie", cookie)
	require.Equal(t, http.StatusUnauthorized, r.status, r.body)
	_, err := b.store.Session(t.Context(), strings.TrimPrefix(cookie, api.SessionCookie+"="))
	require.ErrorIs(t, err, campaigns.ErrSessionNotFound, "the session is deleted")
}

func mustField(t *testing.T, body, field string) string {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(body), &m))
	return string(m[field])
}

// TestSessionCookieSecureOverTLS: over TLS (or behind a proxy that says
// it terminated TLS) the cookie is Secure.
func TestSessionCookieSecureOverTLS(t *testing.T) {
	t.Parallel()
	b := browserSetup(t)
	srv, err := api.New(b.cfg)
	require.NoError(t, err)
	hs := httptest.NewTLSServer(srv)
	t.Cleanup(hs.Close)
	req, err := http.NewRequestWithContext(t.Context(), "POST", hs.URL+"/v1/session", strings.NewReader(`{"key":"`+testKey+`"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	res, err := hs.Client().Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)
	require.Len(t, res.Cookies(), 1)
	require.True(t, res.Cookies()[0].Secure)

	r := send(t, "POST", b.url+"/v1/session", `{"key":"`+testKey+`"}`, "Content-Type", "application/json", "X-Forwarded-Proto", "https")
	require.Equal(t, http.StatusCreated, r.status)
	require.True(t, r.cookie().Secure)
}

// TestLoginPage: GET /login is a labelled form; POST /login with the right
// key sets the session and sends the browser on to next (a local path
// only), with a wrong key shows the form again with 401; POST /logout ends
// the session. Login is cross-origin protected.
func TestLoginPage(t *testing.T) {
	t.Parallel()
	b := browserSetup(t)
	r := send(t, "GET", b.url+"/login", "")
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "text/html; charset=utf-8", r.header.Get("Content-Type"))
	require.Contains(t, r.body, `<label for="key">API key</label>`)
	require.Contains(t, r.body, `<input id="key" name="key" type="password"`)
	require.Contains(t, r.body, `<form method="post" action="/login">`)
	require.Contains(t, r.body, `name="next" value="/console/"`)
	require.NotRegexp(t, `(?i)<(script|link|img|iframe)`, r.body, "no script, no external resource")

	// next: local paths only.
	for next, want := range map[string]string{
		"/v1/campaigns/c1/runs/1/report.html": "/v1/campaigns/c1/runs/1/report.html",
		"/monitoring/queues?x=1":              "/monitoring/queues?x=1",
		"//evil.example/":                     "/console/",
		"https://evil.example/":               "/console/",
		`/\evil.example/`:                     "/console/",
		"/\t/evil.example/":                   "/console/",
		"javascript:alert(1)":                 "/console/",
		"monitoring/":                         "/console/",
	} {
		r := send(t, "GET", b.url+"/login?"+url.Values{"next": {next}}.Encode(), "")
		require.Equal(t, http.StatusOK, r.status)
		require.Contains(t, r.body, `name="next" value="`+strings.ReplaceAll(want, "&", "&amp;")+`"`, next)
		form := url.Values{"key": {testKey}, "next": {next}}.Encode()
		r = send(t, "POST", b.url+"/login", form, "Content-Type", "application/x-www-form-urlencoded", "Origin", b.url, "Sec-Fetch-Site", "same-origin")
		require.Equal(t, http.StatusSeeOther, r.status, r.body)
		require.Equal(t, want, r.header.Get("Location"), next)
	}

	// A wrong key: the form again, 401, a message, no cookie.
	form := url.Values{"key": {"wrong-key-0123456789abcdef"}, "next": {"/tool/x"}}.Encode()
	r = send(t, "POST", b.url+"/login", form, "Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Contains(t, r.body, "That is not an API key of this server")
	require.Contains(t, r.body, `name="next" value="/tool/x"`)
	require.NotContains(t, r.body, "wrong-key")
	require.Nil(t, r.cookie())
	r = send(t, "POST", b.url+"/login", "key=", "Content-Type", "application/x-www-form-urlencoded")
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Contains(t, r.body, "Enter an API key")
	// Login CSRF: another site cannot log the browser in.
	r = send(t, "POST", b.url+"/login", "key="+testKey, "Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "cross-site")
	require.Equal(t, http.StatusForbidden, r.status)
	require.Nil(t, r.cookie())
	r = send(t, "POST", b.url+"/login", `{"key":"`+testKey+`"}`, "Content-Type", "application/json")
	require.Equal(t, http.StatusUnsupportedMediaType, r.status)

	// The right key: a session, and on to next.
	form = url.Values{"key": {testKey}, "next": {"/tool/x"}}.Encode()
	r = send(t, "POST", b.url+"/login", form, "Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusSeeOther, r.status)
	require.Equal(t, "/tool/x", r.header.Get("Location"))
	c := r.cookie()
	require.NotNil(t, c)
	require.True(t, c.HttpOnly)
	require.Equal(t, http.SameSiteStrictMode, c.SameSite)
	cookie := api.SessionCookie + "=" + c.Value
	r = send(t, "GET", b.url+"/tool/x", "", "Cookie", cookie)
	require.JSONEq(t, `{"key":"key-`+keyDigest8(testKey)+`","via":"session"}`, r.body)
	// The login page shows the session and a logout button.
	r = send(t, "GET", b.url+"/login", "", "Cookie", cookie)
	require.Contains(t, r.body, `<b id="session-key">key-`+keyDigest8(testKey)+`</b>`)
	require.Contains(t, r.body, `action="/logout"`)

	r = send(t, "POST", b.url+"/logout", "", "Cookie", cookie, "Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin")
	require.Equal(t, http.StatusSeeOther, r.status)
	require.Equal(t, "/login", r.header.Get("Location"))
	require.Empty(t, r.cookie().Value)
	require.Equal(t, http.StatusUnauthorized, send(t, "GET", b.url+"/tool/x", "", "Cookie", cookie).status)
	r = send(t, "POST", b.url+"/logout", "", "Cookie", cookie, "Sec-Fetch-Site", "cross-site")
	require.Equal(t, http.StatusForbidden, r.status, "another site cannot log the browser out either")
}

// TestPagesSendBrowsersToLogin: a browser opening a page behind the key
// without credentials is sent to /login with the page as next; JSON
// endpoints and tools keep the 401 and its Basic challenge.
func TestPagesSendBrowsersToLogin(t *testing.T) {
	t.Parallel()
	b := browserSetup(t)
	const html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
	for path, next := range map[string]string{
		"/tool/queues?x=1":                         "/tool/queues?x=1",
		"/v1/campaigns/c1/runs/1/report.html":      "/v1/campaigns/c1/runs/1/report.html",
		"/tool/archived?q=" + url.QueryEscape("&"): "/tool/archived?q=%26",
	} {
		r := send(t, "GET", b.url+path, "", "Accept", html)
		require.Equal(t, http.StatusSeeOther, r.status, path)
		require.Equal(t, "/login?"+url.Values{"next": {next}}.Encode(), r.header.Get("Location"))
	}
	for _, tt := range []struct{ path, accept, auth string }{
		{"/v1/campaigns", html, ""},
		{"/tool/queues", "*/*", ""},
		{"/tool/queues", html, "Bearer wrong-key-0123456789abcdef"},
	} {
		h := []string{"Accept", tt.accept}
		if tt.auth != "" {
			h = append(h, "Authorization", tt.auth)
		}
		r := send(t, "GET", b.url+tt.path, "", h...)
		require.Equal(t, http.StatusUnauthorized, r.status, tt.path)
		require.Contains(t, r.header.Values("WWW-Authenticate"), `Basic realm="wxmass", charset="UTF-8"`)
		require.Equal(t, api.CodeUnauthorized, r.errCode())
	}
	require.Zero(t, b.tool.Load())
}

// TestSecurityHeaders: every answer carries nosniff, X-Frame-Options DENY,
// Referrer-Policy no-referrer and a Content-Security-Policy with
// frame-ancestors 'none'; JSON loads nothing; pages allow exactly their
// own inline script and style, by hash, and nothing inline besides.
func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	b := browserSetup(t)
	a := b.json(t, "POST", "/v1/campaigns", inlineCampaign)
	id := a.body["id"].(string)
	require.Equal(t, http.StatusAccepted, b.json(t, "POST", "/v1/campaigns/"+id+"/start", "").status)
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/runs/1/report-link", "")
	link := a.body["url"].(string)

	common := func(t *testing.T, r reply) string {
		t.Helper()
		require.Equal(t, "nosniff", r.header.Get("X-Content-Type-Options"))
		require.Equal(t, "DENY", r.header.Get("X-Frame-Options"))
		require.Equal(t, "no-referrer", r.header.Get("Referrer-Policy"))
		csp := r.header.Get("Content-Security-Policy")
		require.Contains(t, csp, "frame-ancestors 'none'")
		require.Contains(t, csp, "base-uri 'none'")
		require.NotContains(t, csp, "unsafe", "no unsafe-inline or unsafe-eval")
		return csp
	}
	for _, r := range []reply{
		send(t, "GET", b.url+"/v1/campaigns", "", "Authorization", bearer),
		send(t, "GET", b.url+"/v1/campaigns", ""),
		send(t, "GET", b.url+"/healthz", ""),
		send(t, "GET", b.url+"/tool/x", "", "Authorization", bearer),
		send(t, "POST", b.url+"/v1/campaigns", "", "Sec-Fetch-Site", "cross-site"),
	} {
		require.Contains(t, common(t, r), "default-src 'none'", "an answer that is not a page loads nothing")
	}
	pages := map[string]reply{
		"report":      send(t, "GET", b.url+"/v1/campaigns/"+id+"/runs/1/report.html", "", "Authorization", bearer),
		"signed link": send(t, "GET", b.url+link, ""),
		"login":       send(t, "GET", b.url+"/login", ""),
		"login error": send(t, "POST", b.url+"/login", "key=x", "Content-Type", "application/x-www-form-urlencoded"),
	}
	for name, r := range pages {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, "text/html; charset=utf-8", r.header.Get("Content-Type"))
			csp := common(t, r)
			for _, d := range []string{"default-src 'self'", "form-action 'self'", "object-src 'none'"} {
				require.Contains(t, csp, d)
			}
			// What the page sends inline is what its policy allows.
			for _, kind := range []string{"script", "style"} {
				blocks := regexp.MustCompile(`(?s)<`+kind+`>(.*?)</`+kind+`>`).FindAllStringSubmatch(r.body, -1)
				directive := regexp.MustCompile(kind + `-src ([^;]*)`).FindStringSubmatch(csp)
				require.NotNil(t, directive, "%s-src in %s", kind, csp)
				if len(blocks) == 0 {
					require.Equal(t, "'none'", directive[1])
				}
				for _, m := range blocks {
					sum := sha256.Sum256([]byte(m[1]))
					require.Contains(t, directive[1], "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
				}
				require.Len(t, strings.Fields(directive[1]), max(1, len(blocks)), "nothing else is allowed")
			}
			require.NotRegexp(t, `<(script|style) [^>]*>`, r.body, "no inline element with attributes escapes the hashes")
			require.NotRegexp(t, ` on[a-z]+=`, r.body, "no inline event handler")
		})
	}
	require.Contains(t, pages["report"].body, "<script>", "the report page has its script")
}
