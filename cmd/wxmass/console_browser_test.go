package main

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/css"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"golang.org/x/text/language"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/i18n"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/truth"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// testerID is the tester the walkthrough's test sends go to.
const testerID = "oTESTER000000000000000000001"

// sel are the console's elements the browser tests use, in one place: the
// ids of the console's templates (api/console/templates).
var sel = struct {
	// The login page.
	LoginKey, LoginButton string
	// Every page.
	LangSwitch, Logout, NavCampaigns, NavNew, Flash, Heading string
	// The campaign list.
	Search, SearchButton, List, NextPage string
	// A campaign's page.
	CampaignID, CampaignState, RunProgress, RunState, CountSent, CountFailed, ReportLink, CSVLink, RetryLink string
	// Confirmation pages.
	Confirm, Back string
	// The campaign form.
	FormName, FormSource, FormVariables, FormTemplateID, FormDataKey0, FormDataValue0, FormSave, FormErrors, ErrThing1 string
	// The audience upload page.
	UploadFile, UploadButton, UploadStored, UploadAccepted, UploadBad string
	// The test send page.
	TestTo, TestSend, TestOK string
	// The retry page.
	RetryConfirm string
}{
	LoginKey: "#key", LoginButton: "#login",
	LangSwitch: "#lang-switch", Logout: "#logout", NavCampaigns: `header nav a[href="/console/campaigns"]`, NavNew: "#nav-new",
	Flash: "#flash", Heading: "main h1",
	Search: "#f-q", SearchButton: "#filter", List: "#campaigns", NextPage: "#next-page",
	CampaignID: "#campaign-id", CampaignState: "#campaign-state", RunProgress: "#run-progress", RunState: "#run-state",
	CountSent: "#count-sent", CountFailed: "#count-failed", ReportLink: "#report-link", CSVLink: "#csv-link", RetryLink: "#retry-link",
	Confirm: "#confirm", Back: "#back",
	FormName: "#f-name", FormSource: "#f-audience-source", FormVariables: "#f-variables", FormTemplateID: "#f-template-id",
	FormDataKey0: "#f-data-key-0", FormDataValue0: "#f-data-value-0", FormSave: "#save", FormErrors: "#form-errors",
	ErrThing1:  "#err-template-data-thing1",
	UploadFile: "#f-audience-file", UploadButton: "#upload", UploadStored: "#upload-stored", UploadAccepted: "#report-accepted",
	UploadBad: "#upload-bad",
	TestTo:    "#f-test-to", TestSend: "#send-test", TestOK: "#test-ok",
	RetryConfirm: "#retry-confirm",
}

// selAction is the button of a campaign's action on its page.
func selAction(action string) string { return "#action-" + action }

// selListed is a campaign's link in the campaign list.
func selListed(id string) string { return sel.List + ` a[href="/console/campaigns/` + id + `"]` }

// consoleBrowser returns chromium's path and the CJK font families
// (fc-list :lang=zh) the Chinese pages are drawn with. When either is
// missing the test is skipped with the reason, unless WXMASS_NEED_CHROMIUM
// is set (make test sets it, after scripts/ensure-chromium.sh installed
// both): then it fails.
func consoleBrowser(t *testing.T) (string, map[string]bool) {
	t.Helper()
	missing := func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...) + ": scripts/ensure-chromium.sh installs it (make test runs it)"
		if os.Getenv("WXMASS_NEED_CHROMIUM") == "" {
			t.Skip(msg + "; set WXMASS_NEED_CHROMIUM=1 to fail instead")
		}
		t.Fatal(msg)
	}
	bin, err := exec.LookPath("chromium")
	if err != nil {
		missing("chromium is not installed (%v)", err)
	}
	out, err := exec.Command("fc-list", ":lang=zh", "family").Output()
	fams := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Split(line, ",") {
			if f = strings.TrimSpace(f); f != "" {
				fams[f] = true
			}
		}
	}
	if err != nil || len(fams) == 0 {
		missing("no font with Chinese glyphs (fc-list :lang=zh finds none: %v), so the Chinese screenshots would show boxes; fonts-wqy-zenhei is one", err)
	}
	return bin, fams
}

// consoleEnv is a `wxmass all` on a redis-server of its own, sending to
// the fake at five messages a second (a run of 60 takes 12 s, long enough
// to watch its progress bar move), with the campaigns' store read
// directly.
type consoleEnv struct {
	base, addr string
	key        string
	fake       *wechattest.Server
	store      *campaigns.Store
	proc       *allProcess
}

func startConsoleEnv(t *testing.T) *consoleEnv {
	t.Helper()
	// A redis-server of its own: every DB of the shared one is some other
	// test's, and asynq's queues are per DB.
	rs := redistest.StartServer(t, redistest.ServerConfig{})
	const prefix = "wxmass"
	c := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	t.Cleanup(func() { _ = c.Close() })
	e := &consoleEnv{addr: freeAddr(t), key: "console-browser-key-0123456789", fake: wechattest.Start(t, wechattest.Config{}),
		store: campaigns.NewStore(rdb.New(c, prefix))}
	e.base = "http://" + e.addr
	e.proc = startAll(t, e.addr, []string{
		"WXMASS_REDIS_URL=" + rs.URL(),
		"WXMASS_REDIS_PREFIX=" + prefix,
		"WXMASS_WECHAT_BASE_URL=" + e.fake.URL(),
		"WXMASS_APPID=" + wechattest.AppIDDefault,
		"WXMASS_APPSECRET=" + wechattest.SecretDefault,
		"WXMASS_API_KEYS=" + e.key,
		"WXMASS_RATE=5",
	})
	return e
}

// newCampaign creates a template campaign with a file audience and uploads
// n recipients to it (and a bad line, which the upload's report names),
// through the API, for the campaigns a test does not create in the form.
func (e *consoleEnv) newCampaign(t *testing.T, name, tag string, n int) string {
	t.Helper()
	status, created, raw := apiCall(t, e.addr, e.key, "POST", "/v1/campaigns", `{"name":"`+name+`","account":"`+wechattest.AppIDDefault+`",
		"kind":"template","template":{"template_id":"`+wechattest.TemplateIDDefault+`","data":{"thing1":"{{.name}}的会员日"}},
		"audience":{"source":"file","variables":["name"]}}`)
	require.Equal(t, http.StatusCreated, status, "%s", raw)
	id := created["id"].(string)
	req, err := http.NewRequestWithContext(t.Context(), "PUT", e.base+"/v1/campaigns/"+id+"/audience", strings.NewReader(audienceCSV(tag, n)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.key)
	req.Header.Set("Content-Type", "text/csv")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	var up struct {
		Stored int `json:"stored"`
		Report struct {
			InvalidOpenIDs int `json:"invalid_openids"`
			Errors         []struct {
				Line int `json:"line"`
			} `json:"errors"`
		} `json:"report"`
	}
	require.NoError(t, json.Unmarshal(body, &up), "%s", body)
	require.Equal(t, n, up.Stored, "the upload stored every good line: %s", body)
	require.Equal(t, 1, up.Report.InvalidOpenIDs, "%s", body)
	require.Equal(t, n+2, up.Report.Errors[0].Line, "the upload's report names the bad line: %s", body)
	return id
}

// audienceCSV is an audience file of n recipients with a name each, and a
// bad line last (line n+2).
func audienceCSV(tag string, n int) string {
	var csv strings.Builder
	csv.WriteString("openid,name\n")
	for i := range n {
		fmt.Fprintf(&csv, "%s,客户%d\n", audienceID(tag, i), i)
	}
	csv.WriteString("not-an-openid,x\n")
	return csv.String()
}

// audienceID is the openid of an audience's recipient i: 28 characters,
// as WeChat's.
func audienceID(tag string, i int) string { return fmt.Sprintf("o%s%0*d", tag, 27-len(tag), i) }

// state is the campaign's state as the API shows it.
func (e *consoleEnv) state(t *testing.T, id string) string {
	t.Helper()
	status, m, raw := apiCall(t, e.addr, e.key, "GET", "/v1/campaigns/"+id, "")
	require.Equal(t, http.StatusOK, status, "%s", raw)
	return m["state"].(string)
}

// waitState waits until the API shows the campaign in one of states.
func (e *consoleEnv) waitState(t *testing.T, id string, timeout time.Duration, states ...string) {
	t.Helper()
	var last string
	pollUntil(t, timeout, 50*time.Millisecond, func() bool {
		last = e.state(t, id)
		for _, s := range states {
			if last == s {
				return true
			}
		}
		return false
	}, "campaign %s is not %v", id, states)
}

// checkTruth checks each recipient of the campaign's runs against the
// fake's own record (test sends left out).
func (e *consoleEnv) checkTruth(t *testing.T, id string, runs ...int) truth.Report {
	t.Helper()
	cp, err := e.store.Get(t.Context(), id)
	require.NoError(t, err)
	var rs []truth.Run
	for _, run := range runs {
		r, err := truth.Load(t.Context(), e.store, id, run)
		require.NoError(t, err)
		rs = append(rs, r)
	}
	notTest := func(clientMsgID string) bool { return !strings.HasPrefix(clientMsgID, "wxtest") }
	rep := truth.Check(e.fake, truth.Options{API: cp.Kind.API(), AppID: wechattest.AppIDDefault, Keep: notTest}, rs...)
	t.Logf("%s runs %v: %s", id, runs, rep)
	truth.Require(t, rep)
	return rep
}

// login signs the browser in as a person does: the console sends it to the
// login page, where the key is typed and the button clicked.
func (e *consoleEnv) login(t *testing.T, b *browser) {
	t.Helper()
	b.do(chromedp.Navigate(e.base + "/console/campaigns"))
	b.waitFor(func(s pageState) bool { return strings.HasPrefix(s.URL, e.base+"/login?") }, "the console sends the browser to the login page")
	b.do(chromedp.WaitVisible(chromedp.CSS(sel.LoginKey)), chromedp.SendKeys(chromedp.CSS(sel.LoginKey), e.key),
		chromedp.Click(chromedp.CSS(sel.LoginButton)))
	b.waitFor(func(s pageState) bool { return s.URL == e.base+"/console/campaigns" && s.Ready },
		"the login goes on to the campaign list")
}

// consoleTab is the browser in the console, in one language, saving a
// numbered screenshot of each step.
type consoleTab struct {
	*browser
	t    *testing.T
	base string
	lang string
	l    *i18n.Localizer
	n    int
}

// step saves the page, whole, as console-<lang>-<nn>-<name>.png.
func (c *consoleTab) step(name string) {
	c.t.Helper()
	c.n++
	png, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
	require.NoError(c.t, err)
	path := filepath.Join(c.dir, fmt.Sprintf("console-%s-%02d-%s.png", c.lang, c.n, name))
	require.NoError(c.t, os.WriteFile(path, png, 0o644))
	c.t.Logf("screenshot: %s", path)
}

// eval runs a JavaScript expression in the page.
func evalIn[T any](c *consoleTab, js string) T {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	require.NoError(c.t, err, js)
	return v
}

// text is an element's text, "" when there is none.
func (c *consoleTab) text(selector string) string {
	c.t.Helper()
	return evalIn[string](c, `(e => e ? e.innerText.trim() : "")(document.querySelector(`+strconv.Quote(selector)+`))`)
}

// waitPage waits for a console page in the tab's language at a path
// (with its query) that starts with path, its heading shown.
func (c *consoleTab) waitPage(path, what string) {
	c.t.Helper()
	var lang string
	pollUntil(c.t, 30*time.Second, 50*time.Millisecond, func() bool {
		s := c.state()
		if !s.Ready || !strings.HasPrefix(s.URL, c.base+path) {
			return false
		}
		// The page may be replaced while it is read: an error is a "not yet".
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		defer cancel()
		got, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`(() => {
  const h = document.querySelector(`+strconv.Quote(sel.Heading)+`);
  return [document.documentElement ? document.documentElement.lang : "", h ? h.innerText.trim() : ""];
})()`))
		if err != nil || len(got) != 2 {
			return false
		}
		lang = got[0]
		return lang == c.lang && got[1] != ""
	}, "%s: the tab shows %s in %q", what, c.state().URL, lang)
	c.noCSPViolation(what)
}

// typeText types text into the field: Latin text key by key, other text
// as an input method commits it (Chromium's keys cannot spell Chinese).
func (c *consoleTab) typeText(selector, text string) {
	c.t.Helper()
	c.click(selector)
	ascii := true
	for _, r := range text {
		ascii = ascii && r < 0x80
	}
	if ascii {
		c.do(chromedp.SendKeys(chromedp.CSS(selector), text))
		return
	}
	_, err := chromedp.Call(c.ctx, input.InsertText, input.InsertTextParams{Text: text})
	require.NoError(c.t, err)
	require.Equal(c.t, text, evalIn[string](c, `document.querySelector(`+strconv.Quote(selector)+`).value`))
}

func (c *consoleTab) click(selector string) {
	c.t.Helper()
	c.do(chromedp.WaitVisible(chromedp.CSS(selector)), chromedp.Click(chromedp.CSS(selector)))
}

// progress reads the run's progress bar: value and max.
func (c *consoleTab) progress() (int64, int64) {
	c.t.Helper()
	v := evalIn[[]string](c, `(e => e ? [e.getAttribute("value"), e.getAttribute("max")] : ["", ""])(document.querySelector(`+strconv.Quote(sel.RunProgress)+`))`)
	val, _ := strconv.ParseInt(v[0], 10, 64)
	max, _ := strconv.ParseInt(v[1], 10, 64)
	return val, max
}

// cjkFont checks that an element's text, in Chinese, is drawn with a font
// that has Chinese glyphs (not boxes of a fallback font).
func (c *consoleTab) cjkFont(selector string, fams map[string]bool) {
	c.t.Helper()
	// The node as chromedp knows it (a DOM.getDocument of our own would
	// renumber the nodes under chromedp's feet).
	nodes, err := chromedp.Run(c.ctx, chromedp.Nodes(chromedp.CSS(selector)))
	require.NoError(c.t, err)
	require.NotEmpty(c.t, nodes, selector)
	_, err = chromedp.Call(c.ctx, css.Enable, struct{}{})
	require.NoError(c.t, err)
	fonts, err := chromedp.Call(c.ctx, css.GetPlatformFontsForNode, css.GetPlatformFontsForNodeParams{NodeID: nodes[0].NodeID})
	require.NoError(c.t, err)
	var used []string
	for _, f := range fonts.Fonts {
		used = append(used, fmt.Sprintf("%s (%v glyphs)", f.FamilyName, f.GlyphCount))
		if fams[f.FamilyName] && f.GlyphCount > 0 {
			return
		}
	}
	c.t.Fatalf("the Chinese text %q is drawn with %v, none of them a font with Chinese glyphs (%v)", c.text(selector), used, fams)
}

// TestConsoleWalkthrough goes through the console in headless Chromium,
// in English and then in Chinese, by clicks and typing only: sign in with
// the key, create a template campaign in the form (a value WeChat's rule
// refuses shown next to its field, then fixed), upload its audience file
// with a bad line (the report shown), send a test, find it in the list by
// its name, start it (its confirmation), watch its progress bar move to
// the end (WeChat refusing three recipients), open its report, retry the
// failed;
// start a second one and pause, resume and cancel it, each reflected in
// the API. Every recipient's outcome agrees with the fake WeChat's own
// record. A full-page screenshot of each step goes to
// $WXMASS_ARTIFACTS (else .artifacts/) as console-<lang>-<nn>-<step>.png;
// the Chinese pages are drawn with a CJK font.
func TestConsoleWalkthrough(t *testing.T) {
	t.Parallel()
	bin, fams := consoleBrowser(t)
	e := startConsoleEnv(t)
	b := newBrowser(t, bin)
	e.login(t, b)

	for li, tag := range []language.Tag{i18n.English, i18n.Chinese} {
		lang := tag.String()
		c := &consoleTab{browser: b, t: t, base: e.base, lang: lang, l: i18n.Default().Localizer(tag)}
		name := map[string]string{"en": "Member day", "zh-CN": "会员日"}[lang]
		// The second campaign, for pause, resume and cancel, is created
		// beforehand through the API.
		ctlID := e.newCampaign(t, name+" B", fmt.Sprintf("W%dB", li), 300)

		if li == 0 {
			c.waitPage("/console/campaigns", "the campaign list after the login")
		} else {
			// The language switch: the same page comes back in Chinese.
			c.click(sel.LangSwitch)
			c.waitPage("/console/", "the page after the language switch")
		}

		// The first campaign, through the form: a value WeChat's rule
		// refuses (a thing keyword takes 20 characters) is shown next to
		// its field, then fixed.
		c.click(sel.NavNew)
		c.waitPage("/console/campaigns/new", "the campaign form")
		c.typeText(sel.FormName, name+" A")
		require.Equal(t, "file", evalIn[string](c, `document.querySelector(`+strconv.Quote(sel.FormSource)+`).value`), "a new campaign's audience is a file")
		c.typeText(sel.FormVariables, "name")
		c.typeText(sel.FormTemplateID, wechattest.TemplateIDDefault)
		c.typeText(sel.FormDataKey0, "thing1")
		c.typeText(sel.FormDataValue0, strings.Repeat("订", 25))
		c.step("form")
		c.click(sel.FormSave)
		c.do(chromedp.WaitVisible(chromedp.CSS(sel.FormErrors)))
		c.waitPage("/console/campaigns/new", "the form with its field error")
		require.Contains(t, c.text(sel.ErrThing1), "20", "the field's error names the rule")
		require.Contains(t, strings.Fields(evalIn[string](c, `document.querySelector(`+strconv.Quote(sel.FormDataValue0)+`).getAttribute("aria-describedby")`)),
			strings.TrimPrefix(sel.ErrThing1, "#"), "the field names its error")
		c.step("form-error")
		c.do(chromedp.SendKeys(chromedp.CSS(sel.FormDataValue0), kb.End+strings.Repeat(kb.Backspace, 25)))
		c.typeText(sel.FormDataValue0, "{{.name}}的会员日")
		c.click(sel.FormSave)
		b.waitFor(func(s pageState) bool { return strings.HasSuffix(s.URL, "?done=created") && s.Ready }, "the created campaign")
		c.waitPage("/console/campaigns/", "the created campaign")
		runID := c.text(sel.CampaignID)
		require.NotEmpty(t, runID)
		require.NotEmpty(t, c.text(sel.Flash))
		c.step("created")
		status, cp, raw := apiCall(t, e.addr, e.key, "GET", "/v1/campaigns/"+runID, "")
		require.Equal(t, http.StatusOK, status, "%s", raw)
		require.Equal(t, name+" A", cp["name"])
		require.Equal(t, map[string]any{"thing1": "{{.name}}的会员日"}, cp["template"].(map[string]any)["data"])

		// Its audience, uploaded on its page: the good lines stored, the
		// bad one reported.
		tagA := fmt.Sprintf("W%dA", li)
		file := filepath.Join(t.TempDir(), "audience.csv")
		require.NoError(t, os.WriteFile(file, []byte(audienceCSV(tagA, 60)), 0o600))
		c.click(selAction("audience"))
		c.waitPage("/console/campaigns/"+runID+"/audience", "the audience page")
		c.do(chromedp.SetUploadFiles(chromedp.CSS(sel.UploadFile), []string{file}))
		c.click(sel.UploadButton)
		c.waitPage("/console/campaigns/"+runID+"/audience", "the upload's report")
		c.do(chromedp.WaitVisible(chromedp.CSS(sel.UploadStored)))
		require.Contains(t, c.text(sel.UploadStored), "60")
		require.Equal(t, "60", c.text(sel.UploadAccepted))
		require.Contains(t, c.text(sel.UploadBad), "62", "the report names the bad line")
		c.step("uploaded")

		// A test send to a tester, from the campaign's test page.
		c.click(sel.Back)
		c.waitPage("/console/campaigns/"+runID, "the campaign after the upload")
		c.click(selAction("test"))
		c.waitPage("/console/campaigns/"+runID+"/test", "the test send page")
		c.typeText(sel.TestTo, testerID)
		c.click(sel.TestSend)
		c.do(chromedp.WaitVisible(chromedp.CSS(sel.TestOK)))
		c.waitPage("/console/campaigns/"+runID+"/test", "the test send's result")
		c.step("test-sent")
		tested := 0
		for _, d := range e.fake.Deliveries() {
			if d.OpenID == testerID && strings.HasPrefix(d.ClientMsgID, "wxtest") {
				tested++
			}
		}
		require.Equal(t, li+1, tested, "the fake has the test message")
		c.click(sel.NavCampaigns)
		c.waitPage("/console/campaigns", "the campaign list")
		c.do(chromedp.WaitVisible(chromedp.CSS(selListed(runID))))
		if lang == "zh-CN" {
			require.Equal(t, c.l.T("nav.campaigns"), c.text(sel.Heading))
			c.cjkFont(sel.Heading, fams)
		}
		c.step("list")

		// Find the first campaign by its name, open it.
		c.typeText(sel.Search, name+" A")
		c.click(sel.SearchButton)
		c.waitPage("/console/campaigns?", "the search")
		require.Equal(t, 1, evalIn[int](c, `document.querySelectorAll(`+strconv.Quote(sel.List+" tbody tr")+`).length`), "the search finds one")
		c.step("search")
		c.click(selListed(runID))
		c.waitPage("/console/campaigns/"+runID, "the campaign's page")
		require.Equal(t, runID, c.text(sel.CampaignID))
		require.Equal(t, c.l.T("state.draft"), c.text(sel.CampaignState))
		c.step("campaign")
		if lang == "zh-CN" {
			c.cjkFont(sel.CampaignState, fams)
		}

		// Start it: the confirmation, then the run's progress bar moves.
		// WeChat refuses three of its recipients (46004, user does not
		// exist), for the retry below.
		for i := range 3 {
			require.NoError(t, e.fake.SetTerminal(audienceID(tagA, i), 46004))
		}
		c.click(selAction("start"))
		c.waitPage("/console/campaigns/"+runID+"/confirm/start", "the confirmation of start")
		require.Contains(t, c.text("#confirm-what"), name+" A")
		c.step("confirm-start")
		c.click(sel.Confirm)
		c.waitPage("/console/campaigns/"+runID+"?done=start", "the campaign after start")
		require.Equal(t, c.l.T("done.start"), c.text(sel.Flash))
		require.Equal(t, "running", e.state(t, runID), "the API shows the campaign running")
		var seen []int64
		var size int64
		shotMid := false
		pollUntil(t, 60*time.Second, 100*time.Millisecond, func() bool {
			v, m := c.progress()
			size = m
			if len(seen) == 0 || v != seen[len(seen)-1] {
				seen = append(seen, v)
			}
			if v*3 >= m && v < m && !shotMid {
				c.step("progress")
				shotMid = true
			}
			return m > 0 && v == m
		}, "the progress bar reaches its end: it showed %v", seen)
		t.Logf("%s: the progress bar showed %v of %d", lang, seen, size)
		require.EqualValues(t, 60, size)
		between := 0
		for i, v := range seen {
			require.True(t, i == 0 || v > seen[i-1], "the progress bar only moves forward: %v", seen)
			if v > 0 && v < size {
				between++
			}
		}
		require.GreaterOrEqual(t, between, 2, "the progress bar was seen moving, not just at its start and end: %v", seen)
		e.waitState(t, runID, 30*time.Second, "completed")
		pollUntil(t, 30*time.Second, 100*time.Millisecond, func() bool { return c.text(sel.RunState) == c.l.T("state.completed") },
			"the page shows the run completed: %q", c.text(sel.RunState))
		pollUntil(t, 10*time.Second, 100*time.Millisecond, func() bool { return c.text(sel.CampaignState) == c.l.T("state.completed") },
			"the run's end swaps in the campaign's state: %q", c.text(sel.CampaignState))
		require.Equal(t, 1, evalIn[int](c, `document.querySelectorAll('#action-pause, #action-cancel').length + document.querySelectorAll('#action-start').length`),
			"and its actions: start again, no pause or cancel")
		require.Equal(t, "3", c.text(sel.CountFailed), "WeChat refused three")
		require.Equal(t, "57", c.text(sel.CountSent))
		c.step("completed")
		c.click(sel.ReportLink)
		b.waitFor(func(s pageState) bool {
			return strings.HasPrefix(s.URL, e.base+"/v1/campaigns/"+runID+"/runs/1/report.html") && s.Ready && strings.Contains(s.Text, runID)
		}, "the report page")
		c.step("report")

		// The second campaign: start, pause, resume, cancel, each seen in
		// the API.
		c.do(chromedp.NavigateBack())
		c.waitPage("/console/campaigns/"+runID, "back on the campaign")

		// Retry the failed, once WeChat takes them: a second run of the
		// three.
		for i := range 3 {
			require.NoError(t, e.fake.SetTerminal(audienceID(tagA, i), 0))
		}
		c.click(sel.RetryLink)
		c.waitPage("/console/campaigns/"+runID+"/runs/1/retry", "the retry page")
		c.step("retry")
		c.click(sel.RetryConfirm)
		b.waitFor(func(s pageState) bool { return strings.HasSuffix(s.URL, "?done=retry") && s.Ready }, "the campaign after the retry")
		c.waitPage("/console/campaigns/"+runID, "the campaign after the retry")
		pollUntil(t, 30*time.Second, 100*time.Millisecond, func() bool {
			_, m, _ := apiCall(t, e.addr, e.key, "GET", "/v1/campaigns/"+runID, "")
			return toInt(m["latest_run"]) == 2 && m["state"] == "completed"
		}, "the retry run completes")
		pollUntil(t, 30*time.Second, 100*time.Millisecond, func() bool { return c.text(sel.CountSent) == "3" },
			"the page shows the retry run's three sent: %q", c.text(sel.CountSent))
		c.step("retried")
		c.click(sel.NavCampaigns)
		c.waitPage("/console/campaigns", "the campaign list")
		c.click(selListed(ctlID))
		c.waitPage("/console/campaigns/"+ctlID, "the second campaign's page")
		for _, st := range []struct{ action, want string }{
			{"start", "running"}, {"pause", "paused"}, {"resume", "running"}, {"cancel", "stopping|cancelled"},
		} {
			c.click(selAction(st.action))
			c.waitPage("/console/campaigns/"+ctlID+"/confirm/"+st.action, "the confirmation of "+st.action)
			require.Contains(t, c.text("#confirm-what"), name+" B")
			c.step("confirm-" + st.action)
			c.click(sel.Confirm)
			c.waitPage("/console/campaigns/"+ctlID+"?done="+st.action, "the campaign after "+st.action)
			require.Equal(t, c.l.T("done."+st.action), c.text(sel.Flash))
			e.waitState(t, ctlID, 10*time.Second, strings.Split(st.want, "|")...)
			c.step(st.action + "-done")
		}
		e.waitState(t, ctlID, 60*time.Second, "cancelled")
		c.do(chromedp.Reload())
		c.waitPage("/console/campaigns/"+ctlID, "the cancelled campaign")
		require.Equal(t, c.l.T("state.cancelled"), c.text(sel.CampaignState))
		c.step("cancelled")

		// On a phone: the campaign's and the list's pages fit its width
		// (tables scroll in their own box), with the run's links at hand.
		c.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		for _, path := range []string{"/console/campaigns/" + runID, "/console/campaigns"} {
			c.do(chromedp.Navigate(e.base + path))
			c.waitPage(path, "the page on a phone")
			require.LessOrEqual(t, evalIn[int](c, `document.documentElement.scrollWidth`), evalIn[int](c, `window.innerWidth`),
				"%s fits a phone's width", path)
			c.step("phone")
		}
		c.do(chromedp.EmulateReset())

		// Every recipient against the fake's record.
		rep := e.checkTruth(t, runID, 1, 2)
		require.Equal(t, 60, rep.Recipients)
		require.Equal(t, 60, rep.Delivered, "every recipient once, the three refused by the retry")
		rep = e.checkTruth(t, ctlID, 1)
		require.Equal(t, 300, rep.Recipients)
		require.Less(t, rep.Delivered, 300, "the cancel stopped the run before its end")
	}
	for _, s := range []string{e.key, wechattest.SecretDefault} {
		require.NotContains(t, e.proc.out.String(), s, "a secret in the process's output")
	}
}

// TestConsoleBrowserCSRF: pages of another site, and of another port of
// wxmass's host (same-site: the SameSite=Strict session cookie goes
// along), post forms to the console's pause and cancel of a running
// campaign in a browser signed in to the console, without the form token
// and with it (as if it had leaked): each gets 403 and the campaign goes
// on running. The same pause from the console's own page works.
func TestConsoleBrowserCSRF(t *testing.T) {
	t.Parallel()
	bin, _ := consoleBrowser(t)
	e := startConsoleEnv(t)
	id := e.newCampaign(t, "target", "CSRF", 300)
	status, _, raw := apiCall(t, e.addr, e.key, "POST", "/v1/campaigns/"+id+"/start", "")
	require.Equal(t, http.StatusAccepted, status, "%s", raw)
	b := newBrowser(t, bin)
	e.login(t, b)
	c := &consoleTab{browser: b, t: t, base: e.base, lang: "en", l: i18n.Default().Localizer(i18n.English)}
	b.do(chromedp.Navigate(e.base + "/console/campaigns/" + id))
	c.waitPage("/console/campaigns/"+id, "the campaign's page")
	token := evalIn[string](c, `(document.querySelector('input[name="csrf"]') || {value: ""}).value`)
	require.NotEmpty(t, token)

	evil := httptest.NewServer(http.HandlerFunc(consoleAttackPage))
	t.Cleanup(evil.Close)
	_, evilPort, err := net.SplitHostPort(evil.Listener.Addr().String())
	require.NoError(t, err)
	refused := 0
	for site, origin := range map[string]string{"cross-site": "http://localhost:" + evilPort, "same-site": "http://127.0.0.1:" + evilPort} {
		for _, action := range []string{"pause", "cancel"} {
			for _, tok := range []string{"", token} {
				target := e.base + "/console/campaigns/" + id + "/" + action
				what := fmt.Sprintf("a %s form to %s (token %t)", site, action, tok != "")
				b.do(chromedp.Navigate(origin + "/form?" + url.Values{"action": {target}, "csrf": {tok}}.Encode()))
				b.waitFor(func(s pageState) bool { return s.URL == target && s.Ready }, "%s: the form is posted", what)
				require.Equal(t, http.StatusForbidden, b.net.statusOf("POST", target), what)
				require.Equal(t, "running", e.state(t, id), "%s: the campaign goes on running", what)
				refused++
				if site == "same-site" && action == "cancel" && tok != "" {
					b.shot("console-csrf-refused.png")
				}
			}
		}
	}
	t.Logf("%d cross-origin posts to the console refused with 403", refused)

	// From the console's own page, the pause works.
	b.do(chromedp.Navigate(e.base + "/console/campaigns/" + id))
	c.waitPage("/console/campaigns/"+id, "the campaign's page")
	c.click(selAction("pause"))
	c.waitPage("/console/campaigns/"+id+"/confirm/pause", "the confirmation")
	c.click(sel.Confirm)
	c.waitPage("/console/campaigns/"+id+"?done=pause", "the paused campaign")
	require.Equal(t, "paused", e.state(t, id))
}

// consoleAttackPage is another site's page that posts a form to action as
// soon as it has loaded, with a csrf field when given one.
func consoleAttackPage(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	q := r.URL.Query()
	_ = consoleAttackForm.Execute(w, map[string]string{"Action": q.Get("action"), "CSRF": q.Get("csrf")})
}

var consoleAttackForm = template.Must(template.New("attack").Parse(`<!doctype html>
<title>win a prize</title>
<form method="post" action="{{.Action}}">
{{if .CSRF}}<input type="hidden" name="csrf" value="{{.CSRF}}">{{end}}
<input type="hidden" name="note" value="hello">
</form>
<script>window.addEventListener("load", function () { setTimeout(function () { document.forms[0].submit(); }, 0); });</script>
`))
