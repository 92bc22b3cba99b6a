package console_test

import (
	"bytes"
	"context"
	"html"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/i18n"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
	"github.com/wxmass/wxmass/worker"
)

// Recipients of the operations' tests.
const (
	userA    = "oOPS000000000000000000000001"
	userB    = "oOPS000000000000000000000002"
	userC    = "oOPS000000000000000000000003"
	userGone = "oOPS000000000000000000000043"
)

// setupWeChat is setup with the API's WeChat client, token cache, rate
// limiter and retry policy pointed at a fake WeChat, which refuses
// userGone with 46004 (user does not exist: a failure that does not
// suppress the user). With work, a worker sends the runs' messages.
func setupWeChat(t *testing.T, work bool) (*bundle, *wechattest.Server) {
	t.Helper()
	fake := wechattest.Start(t, wechattest.Config{
		Accounts: []wechattest.Account{{AppID: appID, Secret: wechattest.SecretDefault}},
		Terminal: map[string]int{userGone: 46004},
	})
	b := setup(t, func(t *testing.T, rc *redis.Client, cfg *api.Config) {
		r := rdb.New(rc, "wxmass")
		wc := wechat.New(wechat.WithBaseURLs(fake.URL()))
		t.Cleanup(wc.CloseIdleConnections)
		tokens, err := wechat.NewTokenCache(r, wechat.TokenCacheConfig{
			AppID: appID,
			Fetch: func(ctx context.Context) (wechat.AccessToken, error) {
				return wc.StableToken(ctx, appID, secret.New(wechattest.SecretDefault), false)
			},
		})
		require.NoError(t, err)
		acct, err := cfg.Accounts.Get("shop")
		require.NoError(t, err)
		acct.Tokens = tokens
		lim, err := ratelimit.New(r, ratelimit.Config{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = lim.Close() })
		policy, err := retry.New(retry.Config{})
		require.NoError(t, err)
		cfg.WeChat, cfg.Limiter, cfg.Policy = wc, lim, policy
		if !work {
			return
		}
		w := worker.New(cfg.Store, cfg.Accounts, wc, lim, policy, cfg.Producer, worker.Config{Logger: zap.NewNop()})
		srv := worker.NewServer(asynq.RedisClientOpt{Addr: rc.Options().Addr}, w, worker.ServerConfig{Concurrency: 4, ShutdownTimeout: 10 * time.Second})
		require.NoError(t, srv.Start(t.Context()))
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			require.NoError(t, srv.Stop(ctx))
		})
	})
	return b, fake
}

// fileCampaign creates a template campaign with a file audience whose
// thing1 is "{{.name}}的会员日", and returns its id.
func (b *bundle) fileCampaign(t *testing.T) string {
	t.Helper()
	status, out := b.apiJSON(t, "POST", "/v1/campaigns", map[string]any{
		"name": "会员日", "account": "shop", "kind": "template",
		"template": map[string]any{"template_id": "TPL_ORDER_SHIPPED", "data": map[string]any{"thing1": "{{.name}}的会员日"}},
		"audience": map[string]any{"source": "file", "variables": []string{"name"}},
	})
	require.Equal(t, http.StatusCreated, status, "%v", out)
	return out["id"].(string)
}

// upload sends the audience form with file, as a browser does: the
// fields in the form's order, the token first.
func (b *bundle) upload(t *testing.T, id, tok, lang, format, name, file string) page {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	require.NoError(t, mw.WriteField("csrf", tok))
	require.NoError(t, mw.WriteField("format", format))
	fw, err := mw.CreateFormFile("file", name)
	require.NoError(t, err)
	_, err = fw.Write([]byte(file))
	require.NoError(t, err)
	require.NoError(t, mw.Close())
	req, err := http.NewRequest("POST", b.url+"/console/campaigns/"+id+"/audience", &body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", b.url)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Accept-Language", lang)
	return b.do(t, req)
}

// audienceLen is how many recipients the campaign's audience has.
func (b *bundle) audienceLen(t *testing.T, id string) int64 {
	t.Helper()
	n, err := b.store.AudienceLen(t.Context(), id)
	require.NoError(t, err)
	return n
}

// TestAudienceUploadReport: an upload with a bad line stores the good
// ones and reports the bad one by its line; a file with no good line is
// refused and the audience stays as it was; a forged token stores nothing.
func TestAudienceUploadReport(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.fileCampaign(t)
	form := b.get(t, "/console/campaigns/"+id+"/audience", "en")
	require.Equal(t, http.StatusOK, form.status, form.body)
	require.Contains(t, form.body, `id="f-audience-file"`)
	require.Contains(t, form.body, "The audience has 0 recipients now.")
	tok := token(t, form)

	forged := b.upload(t, id, "forged", "en", "", "a.csv", "openid,name\n"+userA+",张三\n")
	require.Equal(t, http.StatusForbidden, forged.status)
	require.Zero(t, b.audienceLen(t, id), "a forged form stores nothing")

	p := b.upload(t, id, tok, "en", "", "members.csv", "openid,name\n"+userA+",张三\nnot-an-openid,李四\n"+userB+",王五\n")
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.Contains(t, p.body, `id="upload-report"`)
	require.Contains(t, p.body, `<td id="report-accepted">2</td>`)
	require.Contains(t, p.body, `<td id="report-invalid-openids">1</td>`)
	require.Contains(t, p.body, `id="upload-bad"`)
	require.Contains(t, p.body, `<td class="bad-line">3</td>`, "the bad line is named by its number (the header is line 1)")
	require.Contains(t, p.body, "not-an-openid")
	require.Contains(t, p.body, "Stored: the audience now has 2 recipients.")
	require.EqualValues(t, 2, b.audienceLen(t, id))
	require.Contains(t, b.get(t, "/console/campaigns/"+id+"/audience", "en").body, "The audience has 2 recipients now.")

	// A JSON Lines file whose every line is bad: refused, as the report
	// says, in Chinese.
	bad := b.upload(t, id, tok, "zh-CN", "", "bad.jsonl", `{"openid":"x1","name":"a"}`+"\n"+`{"openid":"x2","name":"b"}`+"\n")
	require.Equal(t, http.StatusOK, bad.status, bad.body)
	require.Contains(t, bad.body, `id="upload-refused"`)
	require.Contains(t, bad.body, "文件被拒绝：没有保存任何内容，受众保持原样。")
	require.Contains(t, bad.body, `id="op-error"`)
	require.Contains(t, bad.body, `<td class="bad-line">1</td>`)
	require.Contains(t, bad.body, `<td class="bad-line">2</td>`)
	require.EqualValues(t, 2, b.audienceLen(t, id), "the refused file kept the audience")

	// The format chosen in the form wins over the file's name.
	jl := b.upload(t, id, tok, "en", "jsonl", "members.txt", `{"openid":"`+userC+`","name":"赵六"}`+"\n")
	require.Contains(t, jl.body, "Stored: the audience now has 1 recipients.", jl.body)
	require.EqualValues(t, 1, b.audienceLen(t, id))

	// No file chosen: the form says so and nothing changes.
	none := b.upload(t, id, tok, "en", "", "", "")
	require.Equal(t, http.StatusOK, none.status, none.body)
	require.Contains(t, none.body, `<p class="field-error" id="err-file">Choose a file to upload.</p>`)
	require.EqualValues(t, 1, b.audienceLen(t, id))

	// An inline audience takes no upload: the page says so.
	inline := b.get(t, "/console/campaigns/"+b.newCampaign(t, "inline")+"/audience", "zh-CN")
	require.Equal(t, http.StatusOK, inline.status, inline.body)
	require.Contains(t, inline.body, `id="audience-not-file"`)
	require.NotContains(t, inline.body, `id="upload"`)
}

var (
	checkedRE = regexp.MustCompile(`name="checked" value="([^"]*)"`)
	firesRE   = regexp.MustCompile(`(?s)<ol id="next-fires">(.*?)</ol>`)
	liRE      = regexp.MustCompile(`<li>([^<]*)</li>`)
)

// checked reads the key of the previewed form.
func checked(t *testing.T, p page) string {
	t.Helper()
	m := checkedRE.FindStringSubmatch(p.body)
	require.NotNil(t, m, "the page offers a confirmation: %s", p.body)
	return html.UnescapeString(m[1])
}

// TestScheduleFromTheConsole: the preview shows the cron schedule's next
// fire times; a confirmation of other values than those previewed only
// previews them; the confirmation puts the campaign on its schedule, with
// the fire times the preview showed.
func TestScheduleFromTheConsole(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.newCampaign(t, "周一早报")
	form := b.get(t, "/console/campaigns/"+id+"/schedule", "en")
	require.Equal(t, http.StatusOK, form.status, form.body)
	require.Contains(t, form.body, `id="f-tz" name="tz" value="Asia/Shanghai"`)
	require.NotContains(t, form.body, `id="schedule-confirm"`, "nothing to confirm before a preview")
	tok := token(t, form)
	post := func(v url.Values) page {
		v.Set("csrf", tok)
		return b.post(t, "/console/campaigns/"+id+"/schedule", v)
	}

	bad := post(url.Values{"cron": {"0 9 * *"}, "tz": {"Asia/Shanghai"}, "missed": {"skip"}, "op": {"preview"}})
	require.Equal(t, http.StatusOK, bad.status, bad.body)
	require.Contains(t, bad.body, `id="err-cron"`)
	require.NotContains(t, bad.body, `id="schedule-confirm"`)

	prev := post(url.Values{"cron": {"0 9 * * 1"}, "tz": {"Asia/Shanghai"}, "missed": {"skip"}, "op": {"preview"}})
	require.Equal(t, http.StatusOK, prev.status, prev.body)
	require.Contains(t, prev.body, `id="schedule-confirm"`)
	require.Contains(t, prev.body, "starts a new run by itself at each of these times")
	m := firesRE.FindStringSubmatch(prev.body)
	require.NotNil(t, m, prev.body)
	var shown []string
	for _, li := range liRE.FindAllStringSubmatch(m[1], -1) {
		shown = append(shown, html.UnescapeString(li[1]))
	}
	require.Len(t, shown, campaigns.NextFiresDefault)
	for _, s := range shown {
		require.Contains(t, s, "09:00 CST (+08:00)")
	}
	key := checked(t, prev)

	// The values changed after the preview: previewed again, not stored.
	other := post(url.Values{"cron": {"30 8 * * *"}, "tz": {"Asia/Shanghai"}, "missed": {"skip"}, "op": {"confirm"}, "checked": {key}})
	require.Equal(t, http.StatusOK, other.status, other.body)
	require.Contains(t, other.body, "08:30 CST")
	_, c := b.apiJSON(t, "GET", "/v1/campaigns/"+id, nil)
	require.Equal(t, "draft", c["state"])

	done := post(url.Values{"cron": {"0 9 * * 1"}, "tz": {"Asia/Shanghai"}, "missed": {"skip"}, "op": {"confirm"}, "checked": {key}})
	require.Equal(t, http.StatusOK, done.status, done.body)
	require.Equal(t, "/console/campaigns/"+id, done.url.Path)
	require.Contains(t, done.body, `id="flash"`)
	require.Contains(t, done.body, "Put on its schedule.")
	_, c = b.apiJSON(t, "GET", "/v1/campaigns/"+id, nil)
	require.Equal(t, "scheduled", c["state"])
	require.Equal(t, "0 9 * * 1", c["schedule"].(map[string]any)["cron"])
	fires := c["next_fires"].([]any)
	require.Len(t, fires, len(shown))
	sh, err := time.LoadLocation("Asia/Shanghai")
	require.NoError(t, err)
	for i, f := range fires {
		at, err := time.Parse(time.RFC3339, f.(string))
		require.NoError(t, err)
		require.Equal(t, at.In(sh).Format("2006-01-02 15:04 MST (-07:00)"), shown[i], "the API fires when the preview said")
	}
	_, ev := b.apiJSON(t, "GET", "/v1/campaigns/"+id+"/events", nil)
	var actions []string
	for _, e := range ev["events"].([]any) {
		actions = append(actions, e.(map[string]any)["action"].(string))
	}
	require.Contains(t, actions, "schedule")
}

// TestScheduleOnceFromTheConsole: a one-off time, read in the form's time
// zone.
func TestScheduleOnceFromTheConsole(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.newCampaign(t, "once")
	tok := token(t, b.get(t, "/console/campaigns/"+id+"/schedule", "zh-CN"))
	at := time.Now().In(time.FixedZone("UTC+8", 8*3600)).Add(48 * time.Hour).Truncate(time.Minute)
	form := url.Values{"csrf": {tok}, "at": {at.Format("2006-01-02T15:04")}, "tz": {"Asia/Shanghai"}, "missed": {"once"}, "op": {"preview"}}
	prev := b.post(t, "/console/campaigns/"+id+"/schedule", form)
	require.Equal(t, http.StatusOK, prev.status, prev.body)
	require.Contains(t, prev.body, "starts one run by itself at this time")
	require.Contains(t, prev.body, at.Format("2006-01-02 15:04")+" CST")
	form.Set("op", "confirm")
	form.Set("checked", checked(t, prev))
	done := b.post(t, "/console/campaigns/"+id+"/schedule", form)
	require.Equal(t, "/console/campaigns/"+id, done.url.Path, done.body)
	_, c := b.apiJSON(t, "GET", "/v1/campaigns/"+id, nil)
	require.Equal(t, "scheduled", c["state"])
	got, err := time.Parse(time.RFC3339, c["schedule"].(map[string]any)["at"].(string))
	require.NoError(t, err)
	require.True(t, got.Equal(at), "%s, not %s", got, at)
}

// TestRetryRefusesARunningRun: the retry page of a run still sending says
// so, and its confirmation shows the API's refusal, translated.
func TestRetryRefusesARunningRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.newCampaign(t, "running")
	status, out := b.apiJSON(t, "POST", "/v1/campaigns/"+id+"/start", nil)
	require.Equal(t, http.StatusAccepted, status, "%v", out)

	p := b.get(t, "/console/campaigns/"+id+"/runs/1/retry", "zh-CN")
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.Contains(t, p.body, `id="retry-not-settled"`)
	notSettled, ok := i18n.Default().Text(i18n.Chinese, "apierr.run_not_settled")
	require.True(t, ok)
	require.Contains(t, p.body, notSettled)
	done := b.post(t, "/console/campaigns/"+id+"/runs/1/retry", url.Values{"csrf": {token(t, p)}, "status": {"failed"},
		"op": {"confirm"}, "checked": {checked(t, p)}})
	require.Equal(t, http.StatusOK, done.status, done.body)
	require.Contains(t, done.body, `id="op-error"`)
	notSettledEn, _ := i18n.Default().Text(i18n.English, "apierr.run_not_settled")
	require.Contains(t, done.body, notSettledEn, "the API's refusal, translated")
	_, c := b.apiJSON(t, "GET", "/v1/campaigns/"+id, nil)
	require.EqualValues(t, 1, c["latest_run"], "no retry run")
}

// TestRetryFailedFromTheConsole: the filters are the run's classes and
// errcodes; a filter that matches nobody is refused, translated; the
// confirmed one starts a retry run of the matching recipients.
func TestRetryFailedFromTheConsole(t *testing.T) {
	t.Parallel()
	b := setup(t)
	status, out := b.apiJSON(t, "POST", "/v1/campaigns", map[string]any{
		"name": "retry me", "account": "shop", "kind": "template",
		"template": map[string]any{"template_id": "TPL_ORDER_SHIPPED", "data": map[string]any{"thing1": "订单已发货"}},
		"audience": map[string]any{"source": "inline", "openids": []string{userA, userB, userC}},
	})
	require.Equal(t, http.StatusCreated, status, "%v", out)
	id := out["id"].(string)
	status, out = b.apiJSON(t, "POST", "/v1/campaigns/"+id+"/start", nil)
	require.Equal(t, http.StatusAccepted, status, "%v", out)
	c, err := b.store.Get(t.Context(), id)
	require.NoError(t, err)
	_, err = b.store.RecordAll(t.Context(), c, 1,
		campaigns.Settle{OpenID: userA, Outcome: campaigns.Outcome{Status: campaigns.OutcomeSent}},
		campaigns.Settle{OpenID: userB, Outcome: campaigns.Outcome{Status: campaigns.OutcomeFailed, Code: 43004, Class: "recipient"}},
		campaigns.Settle{OpenID: userC, Outcome: campaigns.Outcome{Status: campaigns.OutcomeFailed, Code: 45009, Class: "quota"}})
	require.NoError(t, err)

	p := b.get(t, "/console/campaigns/"+id+"/runs/1/retry", "en")
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.NotContains(t, p.body, `id="retry-not-settled"`)
	for _, el := range []string{`id="f-retry-status-failed" name="status" value="failed" checked`, `id="f-retry-class-recipient"`,
		`id="f-retry-class-quota"`, `id="f-retry-code-43004"`, `id="f-retry-code-45009"`, `id="retry-confirm"`} {
		require.Contains(t, p.body, el)
	}
	require.Contains(t, p.body, "sends the message again to the 2 recipients these filters choose")
	tok := token(t, p)
	post := func(v url.Values) page {
		v.Set("csrf", tok)
		return b.post(t, "/console/campaigns/"+id+"/runs/1/retry", v)
	}

	// Cancelled recipients: the run has none.
	none := post(url.Values{"status": {"cancelled"}, "op": {"preview"}})
	require.Contains(t, none.body, "to the 0 recipients")
	refused := post(url.Values{"status": {"cancelled"}, "op": {"confirm"}, "checked": {checked(t, none)}})
	require.Equal(t, http.StatusOK, refused.status, refused.body)
	require.Contains(t, refused.body, "There is nothing to retry with these filters.")

	// Unknown recipients: the page says what sending them again risks.
	unknown := post(url.Values{"status": {"failed", "unknown"}, "op": {"preview"}})
	require.Contains(t, unknown.body, `id="retry-unknown"`)
	require.NotContains(t, p.body, `id="retry-unknown"`)

	quota := post(url.Values{"status": {"failed"}, "class": {"quota"}, "op": {"preview"}})
	require.Contains(t, quota.body, `id="f-retry-class-quota" name="class" value="quota" checked`)
	require.Contains(t, quota.body, "(at most 1)")
	done := post(url.Values{"status": {"failed"}, "class": {"quota"}, "op": {"confirm"}, "checked": {checked(t, quota)}})
	require.Equal(t, http.StatusOK, done.status, done.body)
	require.Equal(t, "/console/campaigns/"+id, done.url.Path)
	require.Contains(t, done.body, "Retry run started")
	require.Contains(t, done.body, `id="h-run">Run 2<`)
	status, run := b.apiJSON(t, "GET", "/v1/campaigns/"+id+"/runs/2", nil)
	require.Equal(t, http.StatusOK, status, "%v", run)
	require.EqualValues(t, 1, run["size"], "the quota failure only")
}

// TestTestSendFromTheConsole: the page says the test really sends; the
// send shows WeChat's answer for each openid, which the fake recorded;
// a malformed openid is named by its line.
func TestTestSendFromTheConsole(t *testing.T) {
	t.Parallel()
	b, fake := setupWeChat(t, false)
	id := b.newCampaign(t, "测试")
	p := b.get(t, "/console/campaigns/"+id+"/test", "en")
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.Contains(t, p.body, "This really sends")
	tok := token(t, p)

	bad := b.post(t, "/console/campaigns/"+id+"/test", url.Values{"csrf": {tok}, "to": {userA + "\nnot an openid\n"}})
	require.Equal(t, http.StatusOK, bad.status, bad.body)
	require.Contains(t, bad.body, `id="err-to"`)
	require.Contains(t, bad.body, "Line 2: ")
	require.Empty(t, fake.DeliveriesTo(userA), "nothing is sent when a target is malformed")

	sent := b.post(t, "/console/campaigns/"+id+"/test", url.Values{"csrf": {tok}, "to": {userA + "\r\n" + userGone + "\r\n"}})
	require.Equal(t, http.StatusOK, sent.status, sent.body)
	require.Contains(t, sent.body, `id="test-results"`)
	require.Contains(t, sent.body, `id="test-failed"`)
	rows := regexp.MustCompile(`(?s)<table class="list" id="test-results">.*?<tbody>(.*?)</tbody>`).FindStringSubmatch(sent.body)
	require.NotNil(t, rows)
	require.Regexp(t, userA+`</code></td><td><span class="state state-completed">Sent</span></td><td>0</td>`, rows[1])
	require.Regexp(t, userGone+`</code></td><td><span class="state state-failed">Refused</span></td><td>46004</td>`, rows[1])
	require.Len(t, fake.DeliveriesTo(userA), 1, "the fake has the test the console shows as sent")
	require.Empty(t, fake.DeliveriesTo(userGone))
}

// finishedRun polls the API until run of campaign id has finished, and
// returns it.
func (b *bundle) finishedRun(t *testing.T, id string, run int) map[string]any {
	t.Helper()
	var out map[string]any
	require.Eventually(t, func() bool {
		var status int
		status, out = b.apiJSON(t, "GET", "/v1/campaigns/"+id+"/runs/"+strconv.Itoa(run), nil)
		return status == http.StatusOK && out["finished"] != nil
	}, 20*time.Second, 20*time.Millisecond, "run %d of %s finishes", run, id)
	return out
}

// TestRetrySendsAgainFromTheConsole: from the console, an audience with a
// user WeChat refuses, a run whose failure the retry page offers by its
// errcode, and a retry run that sends to that user once WeChat takes it;
// the fake's record agrees.
func TestRetrySendsAgainFromTheConsole(t *testing.T) {
	t.Parallel()
	b, fake := setupWeChat(t, true)
	id := b.fileCampaign(t)
	form := b.get(t, "/console/campaigns/"+id+"/audience", "en")
	tok := token(t, form)
	up := b.upload(t, id, tok, "en", "", "members.csv", "openid,name\n"+userA+",张三\n"+userGone+",李四\n")
	require.Contains(t, up.body, "Stored: the audience now has 2 recipients.", up.body)
	start := b.post(t, "/console/campaigns/"+id+"/start", url.Values{"csrf": {tok}})
	require.Equal(t, "/console/campaigns/"+id, start.url.Path, start.body)
	run1 := b.finishedRun(t, id, 1)
	counters := run1["counters"].(map[string]any)
	require.EqualValues(t, 1, counters["failed"], "%v", counters)
	require.Len(t, fake.DeliveriesTo(userA), 1)
	require.Empty(t, fake.DeliveriesTo(userGone))

	p := b.get(t, "/console/campaigns/"+id+"/runs/1/retry", "en")
	require.Contains(t, p.body, `id="f-retry-code-46004"`)
	require.Contains(t, p.body, `id="f-retry-class-recipient"`)
	require.NoError(t, fake.SetTerminal(userGone, 0))
	prev := b.post(t, "/console/campaigns/"+id+"/runs/1/retry", url.Values{"csrf": {tok}, "code": {"46004"}, "op": {"preview"}})
	require.Contains(t, prev.body, "(at most 1)")
	done := b.post(t, "/console/campaigns/"+id+"/runs/1/retry", url.Values{"csrf": {tok}, "code": {"46004"}, "op": {"confirm"},
		"checked": {checked(t, prev)}})
	require.Equal(t, "/console/campaigns/"+id, done.url.Path, done.body)
	run2 := b.finishedRun(t, id, 2)
	require.EqualValues(t, 1, run2["size"])
	require.EqualValues(t, 1, run2["counters"].(map[string]any)["sent"], "%v", run2)
	require.Len(t, fake.DeliveriesTo(userGone), 1, "the retry sent to the user WeChat refused before")
	require.Len(t, fake.DeliveriesTo(userA), 1, "and to no one else")
}
