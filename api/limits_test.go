package api_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/httpserve"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/producer"
)

// twoKeys makes alice and bob the API's keys.
func twoKeys(t *testing.T) func(*api.Config) {
	t.Helper()
	ks := &api.KeySet{}
	require.NoError(t, ks.AddNamed("alice", aliceKey))
	require.NoError(t, ks.AddNamed("bob", bobKey))
	return func(c *api.Config) { c.Keys = ks }
}

// clientFrom is an HTTP client whose connections come from the loopback
// address local, one per request.
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// closingAnswer is an answer, and whether it closed the connection
// (net/http's client takes Connection: close out of the header).
type closingAnswer struct {
	answer
	close bool
}

// call sends GET /v1/campaigns with Authorization: Bearer key (none when
// empty).
func call(t *testing.T, c *http.Client, url, key string) closingAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url+"/v1/campaigns", nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	a := closingAnswer{answer{status: res.StatusCode, header: res.Header, raw: string(raw)}, res.Close}
	require.NoError(t, json.Unmarshal(raw, &a.body), string(raw))
	return a
}

// requireRateLimited checks a 429 with its Retry-After and its message.
func requireRateLimited(t *testing.T, a closingAnswer, retryAfter, message string) {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, a.status, a.raw)
	require.Equal(t, api.CodeRateLimited, a.errCode())
	require.Equal(t, retryAfter, a.header.Get("Retry-After"))
	require.Contains(t, a.raw, message)
	require.Contains(t, a.raw, "retry in "+retryAfter+" s")
	require.True(t, a.close, "the body is not read: the connection closes")
}

// A key over its limit gets 429 with Retry-After; another key is served
// meanwhile.
func TestKeyOverItsLimit(t *testing.T) {
	t.Parallel()
	// Three at once, then one every 100 s.
	b := setup(t, twoKeys(t), func(c *api.Config) { c.Limits.PerKey = api.Rate{Rate: 0.01, Burst: 3} })
	c := clientFrom("127.0.0.1")
	for i := range 3 {
		require.Equal(t, http.StatusOK, call(t, c, b.url, aliceKey).status, "alice's request %d", i+1)
	}
	a := call(t, c, b.url, aliceKey)
	requireRateLimited(t, a, "100", "too many requests with this key")
	for i := range 3 {
		require.Equal(t, http.StatusOK, call(t, c, b.url, bobKey).status, "bob's request %d, from the same address", i+1)
	}
	requireRateLimited(t, call(t, c, b.url, bobKey), "100", "too many requests with this key")
	requireRateLimited(t, call(t, c, b.url, aliceKey), "100", "too many requests with this key")
	require.NotContains(t, a.raw, aliceKey)
}

// Past a burst of failed authentications from an address, its requests get
// 429, even with a right key, while other addresses are served; requests
// without credentials (a browser's first) are no failures.
func TestFailedAuthenticationSlowedPerAddress(t *testing.T) {
	t.Parallel()
	b := setup(t, twoKeys(t), func(c *api.Config) { c.Limits.AuthFailures = api.Rate{Rate: 0.01, Burst: 3} })
	c := clientFrom("127.0.0.1")
	for range 5 {
		a := call(t, c, b.url, "")
		require.Equal(t, http.StatusUnauthorized, a.status, "no credentials: %s", a.raw)
	}
	for i := range 3 {
		a := call(t, c, b.url, "wrong-key-0123456789abcdef")
		require.Equal(t, http.StatusUnauthorized, a.status, "failure %d: %s", i+1, a.raw)
		require.True(t, a.close, "a 401 closes the connection without reading the body")
	}
	requireRateLimited(t, call(t, c, b.url, "wrong-key-0123456789abcdef"), "100", "too many failed authentications from this address")
	requireRateLimited(t, call(t, c, b.url, aliceKey), "100", "too many failed authentications from this address")
	requireRateLimited(t, call(t, c, b.url, ""), "100", "too many failed authentications from this address")

	require.Equal(t, http.StatusOK, call(t, clientFrom("127.0.0.2"), b.url, aliceKey).status, "another address is served")
}

// An address over its request limit gets 429 before its key is looked at.
func TestAddressOverItsLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, twoKeys(t), func(c *api.Config) { c.Limits.PerAddress = api.Rate{Rate: 0.5, Burst: 2} })
	c := clientFrom("127.0.0.1")
	require.Equal(t, http.StatusOK, call(t, c, b.url, aliceKey).status)
	require.Equal(t, http.StatusUnauthorized, call(t, c, b.url, "").status)
	requireRateLimited(t, call(t, c, b.url, bobKey), "2", "too many requests from this address")
	requireRateLimited(t, call(t, c, b.url, ""), "2", "too many requests from this address")
	require.Equal(t, http.StatusOK, call(t, clientFrom("127.0.0.2"), b.url, bobKey).status, "another address is served")
}

// Negative limits are refused, naming the limit.
func TestLimitsAreChecked(t *testing.T) {
	t.Parallel()
	for name, l := range map[string]api.Limits{
		"Limits.PerKey":       {PerKey: api.Rate{Rate: -1}},
		"Limits.PerAddress":   {PerAddress: api.Rate{Rate: 1, Burst: -1}},
		"Limits.AuthFailures": {AuthFailures: api.Rate{Rate: math.NaN()}},
	} {
		_, err := api.New(api.Config{Store: campaigns.NewStore(nil), Producer: &producer.Producer{}, Keys: &api.KeySet{}, Limits: l})
		require.ErrorContains(t, err, name)
	}
}

// slowClient is a client that sends its request a byte at a time from
// 127.0.0.1, and how its connection ended.
type slowClient struct {
	headers bool   // it sends its headers slowly, not its body
	line    string // the answer's status line; "" when cut without one
	took    time.Duration
	err     error
}

// Two hundred unauthenticated clients sending a large body a byte at a
// time, and fifty sending their headers so, are each answered (401,
// Connection: close, the body unread) or cut within the configured
// timeouts, the connections of 127.0.0.1 past the per-address limit at
// once; meanwhile a request with a key from another address is served.
func TestSlowClientsDoNotKeepTheAPIFromServing(t *testing.T) {
	t.Parallel()
	// A long body timeout: the slow bodies end sooner, being refused.
	const headerTimeout, bodyTimeout = time.Second, 10 * time.Second
	b := setup(t)
	addr := serveHTTP(t, httpserve.Config{Addr: "127.0.0.1:0", HeaderTimeout: headerTimeout, BodyTimeout: bodyTimeout}, b.srv)

	const bodies, headers = 200, 50
	stop := make(chan struct{})
	defer close(stop)
	results := make(chan slowClient, bodies+headers)
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	for i := range bodies + headers {
		c, err := d.DialContext(t.Context(), "tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		req := "POST /v1/campaigns HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200000\r\n\r\n"
		// One in five sends its headers slowly.
		headers := i%5 == 4
		slow := req
		if !headers {
			_, _ = io.WriteString(c, req) // a write to a connection cut at once may fail
			slow = strings.Repeat("{", 200000)
		}
		go func() {
			r := endOf(c, slow, stop)
			r.headers = headers
			results <- r
		}()
	}
	// The slow clients are all connected: a client with a key, from
	// another address, is served at once.
	start := time.Now()
	require.Equal(t, http.StatusOK, call(t, clientFrom("127.0.0.2"), "http://"+addr, testKey).status)
	require.Less(t, time.Since(start), 2*time.Second)
	t.Logf("the request with a key was served in %s", time.Since(start))

	answered, cut, headersTimedOut := 0, 0, 0
	for range bodies + headers {
		r := <-results
		require.NoError(t, r.err)
		if r.headers && r.took >= headerTimeout-100*time.Millisecond {
			headersTimedOut++
		}
		switch {
		case r.line == "":
			cut++
		case strings.HasPrefix(r.line, "HTTP/1.1 401 "):
			answered++
			require.Less(t, r.took, httpserve.RefusalDrain+2*time.Second, "a 401 closes within the drain")
		case strings.HasPrefix(r.line, "HTTP/1.1 400 "):
			// net/http's answer to headers cut by the timeout.
			cut++
			require.Less(t, r.took, headerTimeout+2*time.Second)
		default:
			t.Fatalf("unexpected answer %q", r.line)
		}
		require.Less(t, r.took, headerTimeout+2*time.Second, "every slow client ends within the header timeout or the refusal's drain")
	}
	require.Positive(t, answered, "slow bodies are answered 401 without being read")
	require.Positive(t, cut, "connections past the per-address limit are cut")
	require.Positive(t, headersTimedOut, "slow headers are cut by the header timeout")
	t.Logf("%d answered 401, %d cut (%d of them slow headers at the header timeout)", answered, cut, headersTimedOut)
}

// endOf drips slow into c, a byte every 100 ms, and returns how the
// connection ended: answered (and then closed) or cut; an error if it is
// still open 5 s after the start.
func endOf(c net.Conn, slow string, stop <-chan struct{}) slowClient {
	start := time.Now()
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := range len(slow) {
			if _, err := io.WriteString(c, slow[i:i+1]); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
	if err := c.SetReadDeadline(start.Add(5 * time.Second)); err != nil {
		return slowClient{err: err}
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err == nil {
		var res *http.Response
		if strings.Contains(line, " 401 ") {
			res, err = http.ReadResponse(bufio.NewReader(io.MultiReader(strings.NewReader(line), br)), nil)
			if err != nil {
				return slowClient{err: err}
			}
			if !res.Close {
				return slowClient{err: errors.New("a 401 without Connection: close")}
			}
		}
		if _, err = io.Copy(io.Discard, br); isTimeout(err) {
			return slowClient{err: fmt.Errorf("answered %q, still open after 5 s", line)}
		}
		return slowClient{line: strings.TrimSpace(line), took: time.Since(start)}
	}
	if isTimeout(err) {
		return slowClient{err: errors.New("neither answered nor closed after 5 s")}
	}
	return slowClient{took: time.Since(start)}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// slowScan makes HSCAN slow, as a slow network would, while on.
type slowScan struct {
	delay time.Duration
	on    atomic.Bool
}

func (h *slowScan) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *slowScan) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.on.Load() && cmd.Name() == "hscan" {
			t := time.NewTimer(h.delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return next(ctx, cmd)
	}
}

func (h *slowScan) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// The CSV export of a large run takes longer than the handler timeout and
// is not cut: it progresses row by row.
func TestExportIsNotCutWhileItProgresses(t *testing.T) {
	t.Parallel()
	const handlerTimeout, scanDelay, n = 200 * time.Millisecond, 80 * time.Millisecond, 6000
	b := setup(t)
	quoted := make([]string, n)
	settles := make([]rdb.Settle, n)
	for i := range quoted {
		openid := fmt.Sprintf("oEXP%024d", i)
		quoted[i] = `"` + openid + `"`
		settles[i] = rdb.Settle{OpenID: openid, Outcome: rdb.Outcome{Status: rdb.OutcomeSent, MsgID: int64(1<<41) + int64(i)}}
	}
	a := b.json(t, "POST", "/v1/campaigns", strings.Replace(inlineCampaign,
		`["oTX0000000000000000000000001","oTX0000000000000000000000002"]`, "["+strings.Join(quoted, ",")+"]", 1))
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	require.Equal(t, http.StatusAccepted, b.json(t, "POST", "/v1/campaigns/"+id+"/start", "").status)
	_, err := b.rdb.RecordOutcomes(t.Context(), id, 1, "completed", settles...)
	require.NoError(t, err)

	// The same data through a client whose scans are slow: about 6 scans
	// of 1,000 outcomes, 80 ms each, 2.4 times the handler timeout.
	slow := &slowScan{delay: scanDelay}
	c := redistest.Client(t, redistest.DBAPI)
	c.AddHook(slow)
	keys := &api.KeySet{}
	require.NoError(t, keys.Add(testKey))
	srv, err := api.New(api.Config{Store: campaigns.NewStore(rdb.New(c, b.prefix)), Producer: &producer.Producer{}, Keys: keys})
	require.NoError(t, err)
	addr := serveHTTP(t, httpserve.Config{Addr: "127.0.0.1:0", HandlerTimeout: handlerTimeout}, srv)

	slow.on.Store(true)
	req, err := http.NewRequestWithContext(t.Context(), "GET", "http://"+addr+"/v1/campaigns/"+id+"/runs/1/outcomes.csv", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testKey)
	start := time.Now()
	res, err := clientFrom("127.0.0.1").Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	rows, err := csv.NewReader(res.Body).ReadAll()
	require.NoError(t, err, "the export is whole")
	require.Len(t, rows, n+1)
	require.Greater(t, time.Since(start), 2*handlerTimeout, "it took longer than the handler timeout")
}

// An audience upload that arrives slowly but steadily takes longer than
// the body timeout, and is stored whole.
func TestUploadMayOutlastTheBodyTimeout(t *testing.T) {
	t.Parallel()
	// The handler's timeout is longer than the body's, so that storing
	// the audience after its last byte has time on a loaded machine, and
	// shorter than the upload, which shows that the upload's progress
	// keeps it from running out too.
	const bodyTimeout, handlerTimeout = 300 * time.Millisecond, time.Second
	b := setup(t)
	a := b.json(t, "POST", "/v1/campaigns", templateCampaign)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	addr := serveHTTP(t, httpserve.Config{Addr: "127.0.0.1:0", BodyTimeout: bodyTimeout, HandlerTimeout: handlerTimeout,
		UploadMinRate: 1000}, b.srv)

	// About 2,500 bytes a second for 2.4 s.
	pr, pw := io.Pipe()
	go func() {
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		_, _ = io.WriteString(pw, "openid,name\n")
		for i := range 60 {
			<-tick.C
			for j := range 3 {
				if _, err := fmt.Fprintf(pw, "oUPL%024d,客户%d\n", 3*i+j, 3*i+j); err != nil {
					return
				}
			}
		}
		_ = pw.Close()
	}()
	req, err := http.NewRequestWithContext(t.Context(), "PUT", "http://"+addr+"/v1/campaigns/"+id+"/audience", pr)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "text/csv")
	start := time.Now()
	res, err := clientFrom("127.0.0.1").Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", raw)
	require.Greater(t, time.Since(start), 2*handlerTimeout)
	var up map[string]any
	require.NoError(t, json.Unmarshal(raw, &up))
	require.EqualValues(t, 180, up["stored"])
}

// Logins with a wrong key (the login form, POST /v1/session) count as
// failed authentications of their address: past the burst, guessing keys
// there is slowed like guessing them in Authorization.
func TestWrongLoginsSlowedPerAddress(t *testing.T) {
	t.Parallel()
	b := setup(t, twoKeys(t), func(c *api.Config) { c.Limits.AuthFailures = api.Rate{Rate: 0.01, Burst: 3} })
	c := clientFrom("127.0.0.1")
	post := func(path, contentType, body string) closingAnswer {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), "POST", b.url+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", contentType)
		res, err := c.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		a := closingAnswer{answer{status: res.StatusCode, header: res.Header, raw: string(raw)}, res.Close}
		if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
			require.NoError(t, json.Unmarshal(raw, &a.body), string(raw))
		}
		return a
	}
	form := func(key string) string { return url.Values{"key": {key}, "next": {"/monitoring/"}}.Encode() }
	require.Equal(t, http.StatusUnauthorized, post("/login", "application/x-www-form-urlencoded", form("wrong-key-0123456789abcdef")).status)
	require.Equal(t, http.StatusUnauthorized, post("/v1/session", "application/json", `{"key":"wrong-key-0123456789abcdef"}`).status)
	require.Equal(t, http.StatusUnauthorized, post("/login", "application/x-www-form-urlencoded", form("wrong-key-0123456789abcdeg")).status)
	requireRateLimited(t, post("/login", "application/x-www-form-urlencoded", form(aliceKey)), "100", "too many failed authentications from this address")
	requireRateLimited(t, post("/v1/session", "application/json", `{"key":"`+aliceKey+`"}`), "100", "too many failed authentications from this address")
	a := post("/v1/session", "application/json", `{"key":"`+aliceKey+`"}`)
	require.Equal(t, http.StatusTooManyRequests, a.status)

	// Another address logs in.
	req, err := http.NewRequestWithContext(t.Context(), "POST", b.url+"/v1/session", strings.NewReader(`{"key":"`+aliceKey+`"}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	res, err := clientFrom("127.0.0.2").Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusCreated, res.StatusCode)
}

// serveHTTP serves h on a real listener through httpserve, as `wxmass
// serve` does, and returns its address; the test's cleanup shuts it down.
func serveHTTP(t *testing.T, cfg httpserve.Config, h http.Handler) string {
	t.Helper()
	s, err := httpserve.Listen(cfg, h)
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, s.Shutdown(ctx))
		require.ErrorIs(t, <-served, http.ErrServerClosed)
	})
	return s.Addr().String()
}
