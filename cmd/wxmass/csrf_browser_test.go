package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestBrowserCSRF replays issue 12's attack in headless Chromium against a
// real `wxmass all --monitoring-writable`: a browser logged in to wxmass
// (a session from the login page, and Basic credentials it keeps too) opens
// pages of another origin (another host, and another port of the same
// host: same-site, so the SameSite=Strict cookie goes along) that post
// forms (urlencoded, multipart, text/plain) and fetch() with credentials to
// cancel and pause a running campaign, create one, and pause the bulk queue
// through asynqmon. Every such request gets 403 cross_origin and nothing
// changes. The same actions from wxmass's own pages, and from the CLI,
// work. wxmass's pages run under their CSPs with no violation.
// Screenshots go to $WXMASS_ARTIFACTS (else .artifacts/).
func TestBrowserCSRF(t *testing.T) {
	t.Parallel()
	bin := chromiumPath(t)
	const apiKey = "browser-test-key-0123456789"
	addr := freeAddr(t)
	base := "http://" + addr
	fake := wechattest.Start(t, wechattest.Config{})
	c := redistest.Client(t, redistest.DBCmdBrowser)
	prefix := redistest.Prefix(t, c)
	opt := redistest.Options(t, redistest.DBCmdBrowser)
	ins := asynq.NewInspector(asynq.RedisClientOpt{Addr: opt.Addr, DB: opt.DB, Password: opt.Password})
	// The DB is this test's: asynq's keys go with it (after the process is
	// killed, a later cleanup), and those a killed run left. (asynq's
	// DeleteQueue keeps a queue with active tasks.)
	dropQueues := func() {
		ctx := context.Background()
		it := c.Scan(ctx, 0, "asynq:*", 500).Iterator()
		for it.Next(ctx) {
			_ = c.Del(ctx, it.Val()).Err()
		}
	}
	dropQueues()
	t.Cleanup(func() {
		dropQueues()
		_ = ins.Close()
	})
	p := startAll(t, addr, []string{
		fmt.Sprintf("WXMASS_REDIS_URL=redis://%s/%d", opt.Addr, opt.DB),
		"WXMASS_REDIS_PREFIX=" + prefix,
		"WXMASS_WECHAT_BASE_URL=" + fake.URL(),
		"WXMASS_APPID=" + wechattest.AppIDDefault,
		"WXMASS_APPSECRET=" + wechattest.SecretDefault,
		"WXMASS_API_KEYS=" + apiKey,
		// One send a second: the campaign stays running through the test.
		"WXMASS_RATE=1",
	}, "--monitoring-writable")

	// A running campaign, the target.
	openids := make([]string, 200)
	for i := range openids {
		openids[i] = fmt.Sprintf(`"oBRW%024d"`, i)
	}
	campaign := `{"name":"browser","account":"` + wechattest.AppIDDefault + `","kind":"template",
		"template":{"template_id":"` + wechattest.TemplateIDDefault + `","data":{"thing1":"会员日"}},
		"audience":{"source":"inline","openids":[` + strings.Join(openids, ",") + `]}}`
	status, created, raw := apiCall(t, addr, apiKey, "POST", "/v1/campaigns", campaign)
	require.Equal(t, http.StatusCreated, status, "%s", raw)
	id := created["id"].(string)
	status, _, raw = apiCall(t, addr, apiKey, "POST", "/v1/campaigns/"+id+"/start", "")
	require.Equal(t, http.StatusAccepted, status, "%s", raw)
	stateOf := func() string {
		t.Helper()
		status, m, raw := apiCall(t, addr, apiKey, "GET", "/v1/campaigns/"+id, "")
		require.Equal(t, http.StatusOK, status, "%s", raw)
		return m["state"].(string)
	}
	campaignsCount := func() int64 {
		t.Helper()
		_, m, _ := apiCall(t, addr, apiKey, "GET", "/v1/campaigns", "")
		return toInt(m["total"])
	}
	bulkPaused := func() bool {
		t.Helper()
		qi, err := ins.GetQueueInfo(task.QueueBulk)
		require.NoError(t, err)
		return qi.Paused
	}
	pollUntil(t, 30*time.Second, 50*time.Millisecond, func() bool {
		_, err := ins.GetQueueInfo(task.QueueBulk)
		return err == nil
	}, "the bulk queue has no task: %s", p.out)
	require.Equal(t, "running", stateOf())
	require.False(t, bulkPaused())

	b := newBrowser(t, bin)

	// 1. A person logs in: the page asks for the key; typed and clicked.
	b.do(chromedp.Navigate(base + "/monitoring/"))
	b.waitFor(func(s pageState) bool { return strings.HasPrefix(s.URL, base+"/login?") }, "the browser is sent to the login page")
	require.Equal(t, base+"/login?next=%2Fmonitoring%2F", b.state().URL)
	b.do(chromedp.WaitVisible(chromedp.CSS("#key")), chromedp.SendKeys(chromedp.CSS("#key"), apiKey))
	b.shot("browser-login.png")
	b.noCSPViolation("the login page")
	b.do(chromedp.Click(chromedp.CSS("#login")))
	b.waitFor(func(s pageState) bool {
		return s.URL == base+"/monitoring/" && strings.Contains(s.Text, task.QueueBulk)
	}, "asynqmon shows the queues after the login")
	b.shot("browser-monitoring.png")
	b.noCSPViolation("asynqmon")
	for _, pg := range []struct{ path, shows string }{
		{"/monitoring/queues/" + task.QueueBulk, "Pending"},
		{"/monitoring/servers", "Servers"},
		{"/monitoring/redis", "Redis"},
		{"/monitoring/schedulers", "Scheduler"},
	} {
		b.do(chromedp.Navigate(base + pg.path))
		b.waitFor(func(s pageState) bool { return strings.Contains(s.Text, pg.shows) }, "asynqmon's %s", pg.path)
		b.noCSPViolation("asynqmon's " + pg.path)
	}
	// The browser keeps Basic credentials too, as in the attack: a tool's
	// URL with the key as the password.
	b.do(chromedp.Navigate("http://operator:" + apiKey + "@" + addr + "/v1/campaigns/" + id))
	b.waitFor(func(s pageState) bool { return strings.Contains(s.Text, `"state":"running"`) }, "Basic reads the campaign")

	// 2. Other origins attack.
	evil := httptest.NewServer(http.HandlerFunc(attackPage))
	t.Cleanup(evil.Close)
	_, evilPort, err := net.SplitHostPort(evil.Listener.Addr().String())
	require.NoError(t, err)
	targets := []struct{ name, url, jsonBody string }{
		{"cancel", base + "/v1/campaigns/" + id + "/cancel", ""},
		{"pause", base + "/v1/campaigns/" + id + "/pause", ""},
		{"create", base + "/v1/campaigns", strings.ReplaceAll(campaign, "\n", " ")},
		{"asynqmon pause", base + "/monitoring/api/queues/" + task.QueueBulk + ":pause", ""},
	}
	mark := b.net.count("POST", base) // the login's
	for site, origin := range map[string]string{"cross-site": "http://localhost:" + evilPort, "same-site": "http://127.0.0.1:" + evilPort} {
		for _, tg := range targets {
			for _, enc := range []string{"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"} {
				what := fmt.Sprintf("%s form (%s) from %s to %s", enc, site, origin, tg.name)
				q := url.Values{"action": {tg.url}, "enctype": {enc}, "json": {tg.jsonBody}}
				b.do(chromedp.Navigate(origin + "/form?" + q.Encode()))
				s := b.waitFor(func(s pageState) bool { return s.URL == tg.url && s.Ready }, "%s: the form is posted", what)
				e := jsonError(t, s.Text)
				require.Equal(t, "cross_origin", e.Code, "%s: %s", what, s.Text)
				require.Contains(t, e.Message, `Sec-Fetch-Site: "`+site+`"`, what)
				require.Equal(t, http.StatusForbidden, b.net.statusOf("POST", tg.url), what)
				if site == "same-site" && tg.name == "cancel" && enc == "text/plain" {
					b.shot("browser-csrf-refused.png")
				}
			}
		}
		// fetch() with the browser's credentials, in both modes and with
		// every body a page can send.
		b.do(chromedp.Navigate(origin + "/"))
		before := b.net.count("POST", base)
		results, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](fetchAttack(targets[0].url, targets[1].url, targets[2].url, targets[3].url), chromedp.EvalAwaitPromise))
		require.NoError(t, err)
		t.Logf("fetch() from %s: %v", origin, results)
		for _, r := range results {
			require.NotContains(t, r, " ok ", "no fetch() from another origin succeeds")
		}
		pollUntil(t, 30*time.Second, 50*time.Millisecond, func() bool { return b.net.answered("POST", base) },
			"every fetch() is answered: %v", b.net.all("POST", base))
		require.Len(t, b.net.all("POST", base)[before:], 4*2*5, "a request for each fetch()")
	}
	// Every state change a page of another origin sent was refused with
	// 403, and nothing changed.
	refused := 0
	for _, r := range b.net.all("POST", base)[mark:] {
		if r.status == http.StatusForbidden {
			refused++
			continue
		}
		// A cors-mode fetch(): its answer is hidden from the page, and
		// not always reported to the test; a preflighted one is never sent.
		require.True(t, r.status == 0 && r.corsFailed(), "%s %s: %d %s", r.method, r.url, r.status, r.failed)
	}
	require.GreaterOrEqual(t, refused, 2*4*3+2*4*5, "at least every form and every no-cors fetch() got 403")
	t.Logf("%d cross-origin state changes seen refused with 403", refused)
	require.Equal(t, "running", stateOf(), "the campaign was neither cancelled nor paused")
	require.EqualValues(t, 1, campaignsCount(), "no campaign was created")
	require.False(t, bulkPaused(), "the bulk queue was not paused")

	// 3. The same actions from wxmass's own pages work: on the asynqmon
	// page (same origin, the session cookie), pause and resume the queue
	// as its UI does, and pause the campaign.
	b.do(chromedp.Navigate(base + "/monitoring/"))
	b.waitFor(func(s pageState) bool { return strings.Contains(s.Text, task.QueueBulk) }, "asynqmon loads")
	// Its UI: the queue's action icons, then Pause.
	pollUntil(t, 10*time.Second, 50*time.Millisecond, func() bool {
		ok, _ := chromedp.Run(b.ctx, chromedp.Evaluate[bool](`(() => {
  const row = [...document.querySelectorAll("tr")].find(r => r.querySelector('a[href$="/`+task.QueueBulk+`"]'));
  const cell = row && row.querySelector("button") && row.querySelector("button").closest("td");
  if (cell) cell.id = "bulk-actions";
  return !!cell;
})()`))
		return ok
	}, "asynqmon lists the bulk queue with its actions")
	// The mouse over the actions shows them; Pause is the primary one.
	b.do(chromedp.Click(chromedp.CSS("#bulk-actions button")),
		chromedp.WaitVisible(chromedp.CSS("#bulk-actions button.MuiIconButton-colorPrimary")))
	b.shot("browser-monitoring-pause-button.png")
	b.do(chromedp.Click(chromedp.CSS("#bulk-actions button.MuiIconButton-colorPrimary")))
	pollUntil(t, 10*time.Second, 50*time.Millisecond, bulkPaused, "asynqmon's Pause, with the session, pauses the queue")
	b.waitFor(func(s pageState) bool { return strings.Contains(s.Text, "paused") }, "asynqmon shows the queue paused")
	require.Equal(t, http.StatusNoContent, b.net.statusOf("POST", base+"/monitoring/api/queues/"+task.QueueBulk+":pause"))
	b.shot("browser-monitoring-paused.png")
	b.noCSPViolation("asynqmon after a pause")
	status = b.fetchStatus(`fetch("/monitoring/api/queues/` + task.QueueBulk + `:resume", {method: "POST"})`)
	require.Equal(t, http.StatusNoContent, status)
	require.False(t, bulkPaused())
	status = b.fetchStatus(`fetch("/v1/campaigns/` + id + `/pause", {method: "POST", headers: {"Content-Type": "application/json"}})`)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "paused", stateOf(), "a same-origin pause of the campaign with the session works")
	// The report page, in the session, renders under its CSP.
	b.do(chromedp.Navigate(base + "/v1/campaigns/" + id + "/runs/1/report.html"))
	b.waitFor(func(s pageState) bool { return strings.Contains(s.Text, "Outcomes over time") }, "the report page loads")
	rendered, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`document.body.getAttribute("data-rendered") || ""`))
	require.NoError(t, err)
	require.Equal(t, "true", rendered, "the report's script ran under its CSP")
	b.shot("browser-report-session.png")
	b.noCSPViolation("the report page")

	// And from the CLI (Bearer).
	cliEnv := []string{"WXMASS_API_URL=" + base, "WXMASS_API_KEY=" + apiKey}
	stdout, stderr, code := run(t, cliEnv, "campaign", "resume", id)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "running")
	stdout, stderr, code = run(t, cliEnv, "campaign", "pause", id)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "paused")
	stdout, stderr, code = run(t, cliEnv, "campaign", "cancel", id)
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, "stopping|cancelled", stdout)

	// 4. Logout ends the session: asynqmon asks for a login again.
	b.do(chromedp.Navigate(base + "/login"))
	b.waitFor(func(s pageState) bool { return strings.Contains(s.Text, "This browser is logged in") }, "the login page shows the session")
	b.do(chromedp.Click(chromedp.CSS("#logout")))
	b.waitFor(func(s pageState) bool {
		return s.URL == base+"/login" && strings.Contains(s.Text, "Log in with an API key")
	}, "logged out")
	b.do(chromedp.Navigate(base + "/monitoring/"))
	b.waitFor(func(s pageState) bool { return strings.HasPrefix(s.URL, base+"/login?") }, "after the logout, the login page again")

	for _, s := range []string{apiKey, wechattest.SecretDefault} {
		require.NotContains(t, p.out.String(), s, "a secret in the process's output")
	}
}

// attackPage is another site's page: "/form" posts a form to action with
// enctype as soon as it has loaded; a text/plain form carries json, when
// given, as a JSON body (the field's name is `{"name":"evil`, its value
// `",` and the rest of json: "NAME=VALUE" is JSON). Other paths are an
// empty page to run fetch() from.
func attackPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if r.URL.Path != "/form" {
		fmt.Fprint(w, "<!doctype html><title>elsewhere</title><p>another site</p>")
		return
	}
	q := r.URL.Query()
	type field struct{ Name, Value string }
	fields := []field{{"name", "evil"}, {"note", "hello"}}
	if js := q.Get("json"); js != "" && q.Get("enctype") == "text/plain" {
		fields = []field{{`{"name":"evil`, `",` + strings.TrimPrefix(strings.TrimSpace(js), "{")}}
	}
	_ = attackForm.Execute(w, map[string]any{"Action": q.Get("action"), "Enctype": q.Get("enctype"), "Fields": fields})
}

var attackForm = template.Must(template.New("attack").Parse(`<!doctype html>
<title>win a prize</title>
<form method="post" action="{{.Action}}" enctype="{{.Enctype}}">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}</form>
<script>window.addEventListener("load", function () { setTimeout(function () { document.forms[0].submit(); }, 0); });</script>
`))

// fetchAttack is a script that sends every fetch() another origin can
// make with the browser's credentials to each url, and returns one line per
// request: "URL MODE BODY ok|opaque|error".
func fetchAttack(urls ...string) string {
	u, _ := json.Marshal(urls)
	return `(async () => {
  const urls = ` + string(u) + `;
  const bodies = {
    "text/plain": () => '{"name":"evil"}',
    "urlencoded": () => new URLSearchParams({name: "evil"}),
    "multipart": () => { const f = new FormData(); f.append("name", "evil"); return f; },
    "blob": () => new Blob(['{"name":"evil"}']),
    "json": () => '{"name":"evil"}',
  };
  const out = [];
  for (const url of urls) for (const mode of ["cors", "no-cors"]) for (const [kind, body] of Object.entries(bodies)) {
    const init = {method: "POST", mode, credentials: "include", body: body()};
    if (kind === "json") init.headers = {"Content-Type": "application/json"};
    try {
      const r = await fetch(url, init);
      out.push(url + " " + mode + " " + kind + (r.type === "opaque" ? " opaque " : (r.ok ? " ok " : " refused ")) + r.status);
    } catch (e) {
      out.push(url + " " + mode + " " + kind + " error " + e.message);
    }
  }
  return out;
})()`
}

type apiErr struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// jsonError decodes the API's error shape from a page's text.
func jsonError(t *testing.T, text string) apiErr {
	t.Helper()
	i, j := strings.Index(text, "{"), strings.LastIndex(text, "}")
	require.True(t, i >= 0 && j > i, "no JSON in %q", text)
	var e struct {
		Error apiErr `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(text[i:j+1]), &e), text)
	return e.Error
}

// chromiumPath finds Debian's chromium, or skips under -short.
func chromiumPath(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if testing.Short() {
			t.Skip("chromium is not installed (make test installs it)")
		}
		t.Fatalf("chromium is not installed: make test installs Debian's chromium package (%v)", err)
	}
	return bin
}

// browser is a headless Chromium tab driven by chromedp, with a record of
// its network requests and of the CSP violations of its pages.
type browser struct {
	t   *testing.T
	ctx context.Context
	net *netLog
	dir string

	mu  sync.Mutex
	csp []string // CSP violations from the browser's log
}

func newBrowser(t *testing.T, bin string) *browser {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(t.Context(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancelTime := context.WithTimeout(ctx, 4*time.Minute)
	t.Cleanup(cancelTime)
	b := &browser{t: t, ctx: ctx, net: &netLog{byID: map[network.RequestID]*netEntry{}}}
	b.dir = os.Getenv("WXMASS_ARTIFACTS")
	if b.dir == "" {
		b.dir = filepath.Join("..", "..", ".artifacts")
	}
	require.NoError(t, os.MkdirAll(b.dir, 0o755))
	require.NoError(t, chromedp.Do(ctx)) // opens the tab
	require.NoError(t, chromedp.Listen(ctx, func(ev any) {
		b.net.record(ev)
		if e, ok := ev.(*log.EventEntryAdded); ok && strings.Contains(e.Entry.Text, "Content Security Policy") {
			b.mu.Lock()
			b.csp = append(b.csp, e.Entry.URL+": "+e.Entry.Text)
			b.mu.Unlock()
		}
	}))
	// Every page reports its CSP violations, from before its own scripts.
	_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI + " " + e.sourceFile + ":" + e.lineNumber);
});`})
	require.NoError(t, err)
	return b
}

// do runs actions, each step within 30 s (an element that never shows
// fails the test rather than waiting for ever).
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	for _, a := range actions {
		ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
		err := chromedp.Do(ctx, a)
		cancel()
		require.NoError(b.t, err)
	}
}

// pageState is what the tab shows.
type pageState struct {
	URL   string
	Ready bool
	Text  string
}

// state reads the tab; during a navigation it may fail, and says so.
func (b *browser) state() pageState {
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[pageState](
		`({URL: location.href, Ready: document.readyState === "complete", Text: document.body ? document.body.innerText : ""})`))
	if err != nil {
		return pageState{}
	}
	return s
}

// waitFor polls the tab until cond holds, and returns what it showed.
func (b *browser) waitFor(cond func(pageState) bool, format string, args ...any) pageState {
	b.t.Helper()
	var s pageState
	pollUntil(b.t, 30*time.Second, 50*time.Millisecond, func() bool {
		s = b.state()
		return cond(s)
	}, "%s; the tab shows %s: %.300q", fmt.Sprintf(format, args...), s.URL, s.Text)
	return s
}

// fetchStatus runs a fetch() expression in the page and returns its
// status.
func (b *browser) fetchStatus(fetch string) int {
	b.t.Helper()
	status, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](fetch+`.then(r => r.status)`, chromedp.EvalAwaitPromise))
	require.NoError(b.t, err)
	return status
}

// shot saves a screenshot of the tab.
func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	require.NoError(b.t, err)
	path := filepath.Join(b.dir, name)
	require.NoError(b.t, os.WriteFile(path, png, 0o644))
	b.t.Logf("screenshot: %s", path)
}

// noCSPViolation checks that the page has reported no CSP violation, in
// the page and in the browser's log.
func (b *browser) noCSPViolation(page string) {
	b.t.Helper()
	got, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]string](`window.__csp || []`))
	require.NoError(b.t, err)
	require.Empty(b.t, got, "%s: CSP violations", page)
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Empty(b.t, b.csp, "%s: CSP violations in the browser's log", page)
}

// netLog records the tab's requests and their answers.
type netLog struct {
	mu    sync.Mutex
	byID  map[network.RequestID]*netEntry
	order []*netEntry
}

type netEntry struct {
	method, url string
	// status is the answer's, as it came over the wire (also when CORS
	// keeps it from the page); 0 if none came.
	status int64
	// failed says why the request failed in the browser, if it did
	// (a CORS error, a preflight refused).
	failed string
}

func (n *netLog) record(ev any) {
	n.mu.Lock()
	defer n.mu.Unlock()
	switch e := ev.(type) {
	case *network.EventRequestWillBeSent:
		if r := n.byID[e.RequestID]; r != nil && e.RedirectResponse != nil {
			r.status = e.RedirectResponse.Status
		}
		r := &netEntry{method: e.Request.Method, url: e.Request.URL}
		n.byID[e.RequestID] = r
		n.order = append(n.order, r)
	case *network.EventResponseReceived:
		if r := n.byID[e.RequestID]; r != nil {
			r.status = e.Response.Status
		}
	case *network.EventResponseReceivedExtraInfo:
		if r := n.byID[e.RequestID]; r != nil && r.status == 0 {
			r.status = e.StatusCode
		}
	case *network.EventLoadingFailed:
		if r := n.byID[e.RequestID]; r != nil {
			r.failed = e.ErrorText
			if e.CorsErrorStatus != nil {
				r.failed += " " + string(e.CorsErrorStatus.CorsError)
			}
		}
	}
}

// corsFailed reports whether CORS kept the answer from the page (then
// the browser may not report its status), or kept the request from being
// sent at all (a refused preflight).
func (r netEntry) corsFailed() bool { return strings.Contains(r.failed, "AllowOriginHeader") }

// all returns the requests with method to URLs starting with prefix.
func (n *netLog) all(method, prefix string) []netEntry {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []netEntry
	for _, r := range n.order {
		if r.method == method && strings.HasPrefix(r.url, prefix) {
			out = append(out, *r)
		}
	}
	return out
}

func (n *netLog) count(method, prefix string) int { return len(n.all(method, prefix)) }

// answered reports whether every such request has its answer.
func (n *netLog) answered(method, prefix string) bool {
	for _, r := range n.all(method, prefix) {
		if r.status == 0 && r.failed == "" {
			return false
		}
	}
	return true
}

// statusOf returns the status of the last request with method to url.
func (n *netLog) statusOf(method, url string) int {
	rs := n.all(method, url)
	if len(rs) == 0 {
		return 0
	}
	return int(rs[len(rs)-1].status)
}
