package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/internal/truth"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestAllThroughTheAPI runs `wxmass all` against the fake WeChat and sends
// a campaign through its HTTP API only: create, start, watch the run to the
// end. No secret appears in the process's output or in any answer.
func TestAllThroughTheAPI(t *testing.T) {
	t.Parallel()
	const apiKey = "serve-test-key-0123456789"
	const cbToken, aesKey = "callback-token-xyz", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
	addr := freeAddr(t)
	blocked := []string{fmt.Sprintf("oSRV%024d", 7), fmt.Sprintf("oSRV%024d", 8)}
	// The fake pushes encrypted receipts to the process's callback.
	fake := wechattest.Start(t, wechattest.Config{Callback: wechattest.Callback{
		URL: "http://" + addr + "/wechat/callback", Token: cbToken, AESKey: aesKey, AppID: wechattest.AppIDDefault,
		Mode: "safe", Blocked: blocked,
	}})
	c := redistest.Client(t, redistest.DBCmdServe)
	prefix := redistest.Prefix(t, c)
	opt := redistest.Options(t, redistest.DBCmdServe)
	p := startAll(t, addr, []string{
		fmt.Sprintf("WXMASS_REDIS_URL=redis://%s/%d", opt.Addr, opt.DB),
		"WXMASS_REDIS_PREFIX=" + prefix,
		"WXMASS_WECHAT_BASE_URL=" + fake.URL(),
		"WXMASS_APPID=" + wechattest.AppIDDefault,
		"WXMASS_APPSECRET=" + wechattest.SecretDefault,
		"WXMASS_API_KEYS=" + apiKey,
		"WXMASS_RATE=500",
		"WXMASS_CALLBACK_TOKEN=" + cbToken,
		"WXMASS_CALLBACK_AES_KEY=" + aesKey,
	}, "--callback-mode", "safe")
	cmd, out := p.cmd, p.out

	var answers strings.Builder
	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		status, m, raw := apiCall(t, addr, apiKey, method, path, body)
		answers.Write(raw)
		return status, m
	}

	openids := make([]string, 300)
	for i := range openids {
		openids[i] = fmt.Sprintf(`"oSRV%024d"`, i)
	}
	status, created := call("POST", "/v1/campaigns", `{"name":"api","account":"`+wechattest.AppIDDefault+`","kind":"template",
		"template":{"template_id":"`+wechattest.TemplateIDDefault+`","data":{"thing1":"会员日"}},
		"audience":{"source":"inline","openids":[`+strings.Join(openids, ",")+`]}}`)
	require.Equal(t, http.StatusCreated, status, "%v", created)
	id := created["id"].(string)
	status, started := call("POST", "/v1/campaigns/"+id+"/start", "")
	require.Equal(t, http.StatusAccepted, status, "%v", started)

	var rs map[string]any
	pollUntil(t, time.Minute, 50*time.Millisecond, func() bool {
		_, rs = call("GET", "/v1/campaigns/"+id+"/runs/1", "")
		return rs["state"] == "completed"
	}, "the run does not complete: %v\n%s", rs, out)
	require.EqualValues(t, 300, rs["settled"])
	cnt := rs["counters"].(map[string]any)
	require.EqualValues(t, 300, toInt(cnt["sent"])+toInt(cnt["delivered"])+toInt(cnt["failed"]),
		"every recipient sent (receipts move some to delivered or failed as they come)")
	require.EqualValues(t, 300, fake.Stats().APIs["message/template/send"].Accepted)

	// Receipts: 298 delivered, the 2 blocked users failed:user block.
	var rep map[string]any
	pollUntil(t, time.Minute, 50*time.Millisecond, func() bool {
		status, rep = call("GET", "/v1/campaigns/"+id+"/runs/1/report", "")
		require.Equal(t, http.StatusOK, status, "%v", rep)
		classes, _ := rep["classes"].(map[string]any)
		return rep["delivered"] == float64(298) && classes["receipt"] == float64(2)
	}, "receipts do not arrive: %v\n%v\n%s", rep, fake.Stats().Receipts, out)
	require.EqualValues(t, 300, rep["accepted"])
	require.EqualValues(t, 2, rep["outcomes"].(map[string]any)["failed"])
	require.EqualValues(t, 300, rep["settled"], "receipts move outcomes, they add none")
	// Each recipient against the fake's record, as the process stored it.
	tr, err := truth.Load(t.Context(), campaigns.NewStore(rdb.New(c, prefix)), id, 1)
	require.NoError(t, err)
	truth.Require(t, truth.Check(fake, truth.Options{API: wechat.APITemplateSend, AppID: wechattest.AppIDDefault}, tr))

	// The report page in a real browser, through a signed link (no key).
	status, link := call("POST", "/v1/campaigns/"+id+"/runs/1/report-link", "")
	require.Equal(t, http.StatusOK, status, "%v", link)
	pageURL := "http://" + addr + link["url"].(string)
	dom := browse(t, pageURL, "report.png")
	require.Contains(t, dom, `data-rendered="true"`, "the page's script ran")
	require.Regexp(t, `data-card="delivered"><b>298</b>`, dom)
	require.Regexp(t, `data-card="recipients"><b>300</b>`, dom)
	require.Contains(t, dom, `data-kind="delivered"`, "the outcomes-over-time chart has columns")
	require.Contains(t, dom, `data-code="class receipt"`, "the failures chart shows the receipts' class")
	// asynqmon's UI sends a browser to the login page (TestBrowserCSRF logs
	// in there and uses the UI).
	mon := browse(t, "http://"+addr+"/monitoring/", "monitoring-login.png")
	require.Contains(t, mon, `<form method="post" action="/login">`, "the login page")
	require.Contains(t, mon, `value="/monitoring/"`, "which sends the browser back to asynqmon")
	answers.WriteString(dom)

	// Quotas, from WeChat's quota/get.
	status, quota := call("GET", "/v1/accounts/"+wechattest.AppIDDefault+"/quota", "")
	require.Equal(t, http.StatusOK, status, "%v", quota)
	require.Contains(t, quota["apis"], "message/template/send")
	status, _ = call("GET", "/v1/accounts/wx0000000000nothere/quota", "")
	require.Equal(t, http.StatusNotFound, status)

	// The CLI, a client of the same API.
	cliEnv := []string{"WXMASS_API_URL=http://" + addr, "WXMASS_API_KEY=" + apiKey}
	dir := t.TempDir()
	spec := filepath.Join(dir, "campaign.json")
	require.NoError(t, os.WriteFile(spec, []byte(`{"name":"cli","account":"`+wechattest.AppIDDefault+`","kind":"template",
		"template":{"template_id":"`+wechattest.TemplateIDDefault+`","data":{"thing1":"{{.name}}的会员日"}},
		"audience":{"source":"file","variables":["name"]}}`), 0o600))
	csv := "openid,name\n"
	for i := range 50 {
		csv += fmt.Sprintf("oCLI%024d,客户%d\n", i, i)
	}
	csv += "not-an-openid,x\n"
	audience := filepath.Join(dir, "audience.csv")
	require.NoError(t, os.WriteFile(audience, []byte(csv), 0o600))

	stdout, stderr, code := run(t, cliEnv, "campaign", "create", spec)
	require.Equal(t, 0, code, stderr)
	cid := strings.TrimSpace(stdout)
	stdout, stderr, code = run(t, cliEnv, "campaign", "upload", cid, audience)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "stored 50 recipients")
	require.Contains(t, stdout, "line 52: openid:")
	_, stderr, code = run(t, cliEnv, "campaign", "start", cid)
	require.Equal(t, 0, code, stderr)
	stdout, stderr, code = run(t, cliEnv, "campaign", "watch", "--every", "100ms", cid)
	require.Equal(t, 0, code, "watch exits 0 when the run completes: %s", stderr)
	require.Contains(t, stdout, "100.0%")
	stdout, stderr, code = run(t, cliEnv, "campaign", "report", cid)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "recipients 50, settled 50")
	require.Regexp(t, `failed +0 +0\.0%`, stdout)
	// A weekly campaign, scheduled and taken off again.
	weekly := filepath.Join(dir, "weekly.json")
	require.NoError(t, os.WriteFile(weekly, []byte(`{"name":"weekly","account":"`+wechattest.AppIDDefault+`","kind":"template",
		"template":{"template_id":"`+wechattest.TemplateIDDefault+`","data":{"thing1":"周报"}},
		"audience":{"source":"inline","openids":["oWKLY000000000000000000000001"]},
		"schedule":{"cron":"0 9 * * 1","time_zone":"Asia/Shanghai"}}`), 0o600))
	stdout, stderr, code = run(t, cliEnv, "campaign", "create", weekly)
	require.Equal(t, 0, code, stderr)
	wid := strings.TrimSpace(stdout)
	stdout, stderr, code = run(t, cliEnv, "campaign", "schedule", wid)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "scheduled")
	require.Regexp(t, `next fires: \[\S+T09:00:00\+08:00`, stdout)
	stdout, stderr, code = run(t, cliEnv, "campaign", "unschedule", wid)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "draft")

	// The two users who blocked the account get a retry run: their
	// receipts put them on the account's suppression list, so it skips
	// them, with no call.
	calls := len(fake.Calls())
	stdout, stderr, code = run(t, cliEnv, "campaign", "retry-failed", id)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "run 2 started over 2 recipients of run 1")
	_, stderr, code = run(t, cliEnv, "campaign", "watch", "--every", "100ms", id)
	require.Equal(t, 0, code, "the retry run completes: %s", stderr)
	status, rs2 := call("GET", "/v1/campaigns/"+id+"/runs/2", "")
	require.Equal(t, http.StatusOK, status)
	require.EqualValues(t, 2, rs2["counters"].(map[string]any)["class:suppressed"], "%v", rs2)
	require.Equal(t, calls, len(fake.Calls()), "no call for users who blocked the account")
	_, stderr, code = run(t, cliEnv, "campaign", "pause", "cnothere00000")
	require.Equal(t, 2, code, "a refused request exits 2")
	require.Contains(t, stderr, "no such campaign")
	_, stderr, code = run(t, append(cliEnv, "WXMASS_API_KEY=wrong-key-0123456789"), "campaign", "status", cid)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "valid API key")
	answers.WriteString(stdout + stderr)

	// /metrics counts what the reports count, behind the API key.
	res, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	req, err := http.NewRequestWithContext(t.Context(), "GET", "http://"+addr+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	metrics, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, string(metrics), `wxmass_sends_total{account="`+wechattest.AppIDDefault+`",class="",kind="template",outcome="sent"} 350`,
		"300 + 50 sent, as the runs' reports say")
	require.Contains(t, string(metrics), `wxmass_sends_total{account="`+wechattest.AppIDDefault+`",class="suppressed",kind="template",outcome="skipped"} 2`,
		"the retry run's two suppressed users")
	require.Contains(t, string(metrics), `wxmass_runs_finished_total{account="`+wechattest.AppIDDefault+`",state="completed"} 3`)
	require.Contains(t, string(metrics), `wxmass_token_refreshes_total{account="`+wechattest.AppIDDefault+`",result="ok"} 1`)
	require.Contains(t, string(metrics), `wxmass_queue_tasks{queue="wxmass_bulk",state="pending"} 0`)
	require.Contains(t, string(metrics), `wxmass_campaigns{state="completed"} 2`)
	require.Contains(t, string(metrics), `wxmass_send_duration_seconds_count{account="`+wechattest.AppIDDefault+`",kind="template"} 350`)
	answers.Write(metrics)

	// asynqmon at /monitoring, behind the same key (Basic for browsers).
	res, err = http.Get("http://" + addr + "/monitoring/api/queues")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	req, err = http.NewRequestWithContext(t.Context(), "GET", "http://"+addr+"/monitoring/api/queues", nil)
	require.NoError(t, err)
	req.SetBasicAuth("operator", apiKey)
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	queues, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", queues)
	require.Contains(t, string(queues), "wxmass_bulk")
	req, err = http.NewRequestWithContext(t.Context(), "GET", "http://"+addr+"/monitoring/", nil)
	require.NoError(t, err)
	req.SetBasicAuth("operator", apiKey)
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	page, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, string(page), "<html")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "a signal stops it cleanly: %s", out)
	all := out.String() + answers.String()
	require.Contains(t, out.String(), "api listening")
	for _, s := range []string{apiKey, wechattest.SecretDefault, cbToken, aesKey} {
		require.NotContains(t, all, s, "a secret in the output or an answer")
	}
	// stable_token in normal mode answers the token in force: the one the
	// process used.
	tok, err := wechat.New(wechat.WithBaseURLs(fake.URL())).StableToken(t.Context(), wechattest.AppIDDefault, secret.New(wechattest.SecretDefault), false)
	require.NoError(t, err)
	require.NotContains(t, all, tok.Token, "the access token in the output or an answer")
}

func toInt(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// browse loads url in headless Chromium, saves a screenshot as a test
// artifact (in $WXMASS_ARTIFACTS, else .artifacts/ at the repository's
// root) and returns the DOM after the page's scripts ran.
func browse(t *testing.T, url, shot string) string {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		if testing.Short() {
			t.Skip("chromium is not installed (make test installs it)")
		}
		t.Fatalf("chromium is not installed: make test installs Debian's chromium package (%v)", err)
	}
	dir := os.Getenv("WXMASS_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", ".artifacts")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	args := []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,1400",
		"--virtual-time-budget=5000", "--user-data-dir=" + t.TempDir()}
	ctx := t.Context()
	shotCmd := exec.CommandContext(ctx, bin, append(args, "--screenshot="+filepath.Join(dir, shot), url)...)
	if out, err := shotCmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium screenshot of %s: %v\n%s", shot, err, out)
	}
	var stdout, stderr bytes.Buffer
	domCmd := exec.CommandContext(ctx, bin, append(args, "--dump-dom", url)...)
	domCmd.Stdout, domCmd.Stderr = &stdout, &stderr
	if err := domCmd.Run(); err != nil {
		t.Fatalf("chromium --dump-dom: %v\n%s", err, &stderr)
	}
	t.Logf("screenshot: %s", filepath.Join(dir, shot))
	return stdout.String()
}
