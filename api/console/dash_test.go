package console_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat"
)

// startWithProgress starts a campaign of two recipients through the API
// and records one failed outcome, as a worker would: a live run half done.
func (b *bundle) startWithProgress(t *testing.T, name string) string {
	t.Helper()
	id := b.newCampaign(t, name)
	status, out := b.apiJSON(t, "POST", "/v1/campaigns/"+id+"/start", nil)
	require.Equal(t, http.StatusAccepted, status, "%v", out)
	ctx := t.Context()
	c, err := b.store.Get(ctx, id)
	require.NoError(t, err)
	_, err = b.store.SetRunSize(ctx, c, 1, 2)
	require.NoError(t, err)
	_, err = b.store.RecordAll(ctx, c, 1, campaigns.Settle{OpenID: "oCON000000000000000000000001",
		Outcome: campaigns.Outcome{Status: campaigns.OutcomeFailed, Code: 43004, Class: "recipient", Detail: "user unfollowed"}})
	require.NoError(t, err)
	return id
}

// TestDashboard: the dashboard shows the account (its rate; its quota
// unavailable, as this server has no WeChat client, without failing the
// page), a live run with its progress bar, rate and ETA, and the run's
// failure by errcode, in both languages, with dates in the account's time
// zone (Asia/Shanghai by default); its live section refreshes alone.
func TestDashboard(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.startWithProgress(t, "会员日")

	en := b.get(t, "/console/", "en")
	require.Equal(t, http.StatusOK, en.status, en.body)
	require.Contains(t, en.body, `<tr id="account-shop">`)
	require.Contains(t, en.body, "Template messages: 10/s, burst 1")
	require.Contains(t, en.body, `id="quota-unavailable-shop"`)
	require.Contains(t, en.body, "Unavailable (WeChat")
	require.Contains(t, en.body, "Not paused")
	require.Contains(t, en.body, `<li class="live-run" id="live-`+id+`">`)
	require.Regexp(t, `<progress id="live-progress-`+id+`" max="2" value="1"`, en.body)
	require.Contains(t, en.body, "1 of 2 recipients have an outcome (50%)")
	require.Regexp(t, `id="live-rate-`+id+`">[0-9.]+ sends/s<`, en.body)
	require.Regexp(t, `id="live-eta-`+id+`">about [0-9]+:[0-9]{2}:[0-9]{2} left \(done about [0-9-]+ [0-9:]+ CST\)<`, en.body)
	require.Regexp(t, `started [0-9-]+ [0-9:]+ CST`, en.body, "dates in Asia/Shanghai")
	require.Contains(t, en.body, `<tr id="failure-`+id+`">`)
	require.Contains(t, en.body, "43004 × 1")

	zh := b.get(t, "/console/", "zh-CN")
	require.Equal(t, http.StatusOK, zh.status, zh.body)
	require.Contains(t, zh.body, `<html lang="zh-CN">`)
	require.Contains(t, zh.body, "模板消息：每秒 10 条，突发 1")
	require.Contains(t, zh.body, "暂不可用")
	require.Contains(t, zh.body, "最近的失败")
	require.Regexp(t, `<progress id="live-progress-`+id+`" max="2" value="1"`, zh.body)
	require.Regexp(t, `每秒 [0-9.]+ 条`, zh.body)

	live := b.get(t, "/console/dashboard/live", "en")
	require.Equal(t, http.StatusOK, live.status, live.body)
	require.True(t, strings.HasPrefix(strings.TrimSpace(live.body), `<section class="card" aria-labelledby="h-live" id="live"`), live.body)
	require.Contains(t, live.body, `id="live-progress-`+id+`"`)
	require.Contains(t, live.header.Get("Content-Security-Policy"), "script-src 'self'")

	// A paused run stays on the dashboard, without an ETA.
	status, _ := b.apiJSON(t, "POST", "/v1/campaigns/"+id+"/pause", nil)
	require.Equal(t, http.StatusOK, status)
	p := b.get(t, "/console/", "en")
	require.Contains(t, p.body, `<li class="live-run" id="live-`+id+`">`)
	require.NotContains(t, p.body, `id="live-eta-`+id+`"`)

	list := b.get(t, "/console/campaigns", "en")
	require.Regexp(t, `<td>[0-9-]+ [0-9:]+ CST</td>`, list.body, "the list's dates in the account's zone")
}

// TestAccountsPage lists each account's protection with links to its
// suppression list and audit trail.
func TestAccountsPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, lang := range []string{"en", "zh-CN"} {
		p := b.get(t, "/console/accounts", lang)
		require.Equal(t, http.StatusOK, p.status, p.body)
		require.Contains(t, p.body, `<section class="card" id="account-shop"`)
		require.Contains(t, p.body, `href="/console/accounts/shop/suppressions" id="sup-link-shop"`)
		require.Contains(t, p.body, `href="/console/accounts/shop/events" id="events-link-shop"`)
		require.Contains(t, p.body, "Asia/Shanghai")
	}
	require.Contains(t, b.get(t, "/console/accounts", "en").body, "wait until the cap allows")
	require.Contains(t, b.get(t, "/console/accounts", "zh-CN").body, "等到上限允许再发")
}

// suppressed reads the account's suppression list through the API.
func (b *bundle) suppressed(t *testing.T) map[string]map[string]any {
	t.Helper()
	status, out := b.apiJSON(t, "GET", "/v1/accounts/shop/suppressions", nil)
	require.Equal(t, http.StatusOK, status, "%v", out)
	m := map[string]map[string]any{}
	for _, e := range out["entries"].([]any) {
		e := e.(map[string]any)
		m[e["openid"].(string)] = e
	}
	return m
}

// supUpload posts a multipart form with a file, as the import form does.
func (b *bundle) supUpload(t *testing.T, path, csrf, file, lang string) page {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	require.NoError(t, mw.WriteField("csrf", csrf))
	fw, err := mw.CreateFormFile("file", "list.csv")
	require.NoError(t, err)
	_, err = fw.Write([]byte(file))
	require.NoError(t, err)
	require.NoError(t, mw.Close())
	req, err := http.NewRequest("POST", b.url+path, &body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Origin", b.url)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if lang != "" {
		req.Header.Set("Accept-Language", lang)
	}
	return b.do(t, req)
}

// TestSuppressionsFromTheConsole: add (a refused openid shown next to its
// field), search, import with a bad line (the report shown) and remove
// after a confirmation, each reflected in the API's list; the export is
// linked.
func TestSuppressionsFromTheConsole(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const path = "/console/accounts/shop/suppressions"
	const one, two, three = "oCON000000000000000000000011", "oCON000000000000000000000012", "oCON000000000000000000000013"
	p := b.get(t, path, "en")
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.Contains(t, p.body, `id="no-suppressions"`)
	require.Contains(t, p.body, `href="/v1/accounts/shop/suppressions/export" id="sup-export"`)
	for _, id := range []string{`id="f-sup-openid"`, `id="f-sup-note"`, `id="sup-add"`, `id="f-sup-file"`, `id="sup-import"`, `<label for="f-sup-openid">`} {
		require.Contains(t, p.body, id)
	}

	bad := b.post(t, path, url.Values{"csrf": {token(t, p)}, "openid": {"not-an-openid"}, "note": {"x"}})
	require.Equal(t, http.StatusUnprocessableEntity, bad.status, bad.body)
	require.Contains(t, bad.body, `<p class="field-error" id="err-openids">Not an openid`)
	require.Contains(t, bad.body, `aria-describedby="err-openids"`)
	require.Contains(t, bad.body, `value="not-an-openid"`, "the value is kept")
	require.Empty(t, b.suppressed(t))

	added := b.post(t, path, url.Values{"csrf": {token(t, p)}, "openid": {one}, "note": {"投诉过"}})
	require.Equal(t, http.StatusOK, added.status, added.body)
	require.Equal(t, path, added.url.Path)
	require.Contains(t, added.body, "Added to the suppression list.")
	require.Contains(t, added.body, `<tr class="sup-entry" id="sup-`+one+`">`)
	e := b.suppressed(t)[one]
	require.Equal(t, "manual", e["reason"])
	require.Equal(t, "投诉过", e["note"])
	require.Equal(t, "alice", e["source"])

	found := b.get(t, path+"?openid="+one, "zh-CN")
	require.Contains(t, found.body, `id="sup-found"`)
	require.Contains(t, found.body, "运营人员添加")
	require.Contains(t, b.get(t, path+"?openid="+two, "en").body, `id="sup-not-found"`)

	imp := b.supUpload(t, path+"/import", token(t, p), "openid,note\n"+two+",a note\nnot an openid\n"+three+"\n", "en")
	require.Equal(t, http.StatusOK, imp.status, imp.body)
	require.Contains(t, imp.body, `<dd id="import-added">2</dd>`)
	require.Contains(t, imp.body, `<dd id="import-bad">1</dd>`)
	require.Regexp(t, `<table class="list" id="bad-lines">.*<tr><td>3</td><td>&#34;not an openid&#34; is not an openid: 20 to 64`, strings.ReplaceAll(imp.body, "\n", ""))
	list := b.suppressed(t)
	require.Len(t, list, 3)
	require.Equal(t, "a note", list[two]["note"])

	refused := b.supUpload(t, path+"/import", token(t, p), "nothing here\n", "en")
	require.Equal(t, http.StatusUnprocessableEntity, refused.status, refused.body)
	zh := b.supUpload(t, path+"/import", token(t, p), "openid\n"+one+",a,b\n"+one+"\n"+one+"\n", "zh-CN")
	require.Equal(t, http.StatusOK, zh.status, zh.body)
	require.Contains(t, zh.body, "有 3 个字段：应为 openid 或 openid,备注", "the bad lines in the page's language")
	require.Contains(t, zh.body, "与第 3 行的 openid 重复。")
	require.Contains(t, zh.body, "已导入：添加 0 个，已在名单上 1 个，有误的行 2 行。")
	require.Contains(t, refused.body, `id="form-error"`)
	require.Contains(t, refused.body, `<dd id="import-bad">1</dd>`)
	require.Len(t, b.suppressed(t), 3, "nothing stored")

	conf := b.get(t, path+"/"+two+"/remove", "en")
	require.Equal(t, http.StatusOK, conf.status, conf.body)
	require.Contains(t, conf.body, "campaigns may send to the user again")
	removed := b.post(t, path+"/"+two+"/remove", url.Values{"csrf": {token(t, conf)}})
	require.Equal(t, http.StatusOK, removed.status, removed.body)
	require.Contains(t, removed.body, "Removed from the suppression list.")
	status, _ := b.apiJSON(t, "GET", "/v1/accounts/shop/suppressions/"+two, nil)
	require.Equal(t, http.StatusNotFound, status)
	require.Len(t, b.suppressed(t), 2)

	forged := b.post(t, path+"/"+one+"/remove", url.Values{"csrf": {"forged"}})
	require.Equal(t, http.StatusForbidden, forged.status)
	require.Contains(t, b.suppressed(t), one)
	export := b.get(t, "/v1/accounts/shop/suppressions/export", "")
	require.Equal(t, http.StatusOK, export.status)
	require.Contains(t, export.body, one)
}

var eventRE = regexp.MustCompile(`<tr class="event" data-action="([^"]+)" data-key="([^"]+)" data-via="([^"]+)">`)

// events reads the rows of an audit trail's page: action, key, via.
func events(t *testing.T, p page) [][]string {
	t.Helper()
	var out [][]string
	for _, m := range eventRE.FindAllStringSubmatch(p.body, -1) {
		out = append(out, m[1:])
	}
	return out
}

// TestAuditTrailPages: a campaign's and an account's audit trails list
// the console's own actions, by the key "alice" through the session, and
// are linked from the campaign's page and the accounts page.
func TestAuditTrailPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.newCampaign(t, "审计")
	for _, action := range []string{"start", "pause"} {
		conf := b.get(t, "/console/campaigns/"+id+"/confirm/"+action, "en")
		done := b.post(t, "/console/campaigns/"+id+"/"+action, url.Values{"csrf": {token(t, conf)}})
		require.Equal(t, http.StatusOK, done.status, done.body)
	}
	cp := b.get(t, "/console/campaigns/"+id, "en")
	require.Contains(t, cp.body, `href="/console/campaigns/`+id+`/events" id="events-link"`)
	ev := b.get(t, "/console/campaigns/"+id+"/events", "en")
	require.Equal(t, http.StatusOK, ev.status, ev.body)
	rows := events(t, ev)
	require.Equal(t, []string{"pause", "alice", "session"}, rows[0], "newest first")
	require.Equal(t, []string{"start", "alice", "session"}, rows[1])
	require.Equal(t, "create", rows[2][0], "created with the key")
	require.Contains(t, ev.body, "Browser session")
	require.Regexp(t, `<td>[0-9-]+ [0-9:]+ CST</td>`, ev.body)
	require.Contains(t, b.get(t, "/console/campaigns/"+id+"/events", "zh-CN").body, "浏览器会话")

	sp := b.get(t, "/console/accounts/shop/suppressions", "en")
	b.post(t, "/console/accounts/shop/suppressions", url.Values{"csrf": {token(t, sp)}, "openid": {"oCON000000000000000000000021"}})
	ae := b.get(t, "/console/accounts/shop/events", "en")
	require.Equal(t, http.StatusOK, ae.status, ae.body)
	require.Equal(t, [][]string{{"suppress_add", "alice", "session"}}, events(t, ae))
	require.Contains(t, ae.body, "added: 1")
	require.Contains(t, ae.body, "Add to the suppression list")
	require.Equal(t, http.StatusNotFound, b.get(t, "/console/campaigns/nope/events", "en").status)
}

// TestDashboardShowsPausesAndCircuit: an account whose template API is
// paused for its daily quota and whose circuit breaker is open shows both,
// with their times in the account's zone.
func TestDashboardShowsPausesAndCircuit(t *testing.T) {
	t.Parallel()
	var lim *ratelimit.Limiter
	var br *ratelimit.Breakers
	b := setup(t, func(t *testing.T, rc *redis.Client, cfg *api.Config) {
		r := rdb.New(rc, "wxmass")
		var err error
		lim, err = ratelimit.New(r, ratelimit.Config{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = lim.Close() })
		br = ratelimit.NewBreakers(r)
		cfg.Limiter, cfg.Breakers = lim, br
	})
	p := b.get(t, "/console/", "en")
	require.Contains(t, p.body, `<td id="circuit-shop"><span class="state state-completed">Closed</span>`)
	require.Contains(t, p.body, `<td id="pauses-shop">Not paused</td>`)

	ctx := t.Context()
	until := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)
	require.NoError(t, lim.Pause(ctx, appID+":"+wechat.APITemplateSend, until))
	_, _, err := br.Open(ctx, appID, time.Minute)
	require.NoError(t, err)
	p = b.get(t, "/console/", "en")
	require.Contains(t, p.body, "Template messages: paused for WeChat&#39;s daily quota until 2030-01-02 08:00:00 CST")
	require.Regexp(t, `id="circuit-open-shop">Open since [0-9-]+ [0-9:]+ CST: WeChat is unreachable`, p.body)
	zh := b.get(t, "/console/", "zh-CN")
	require.Contains(t, zh.body, "模板消息：因微信每日额度用完而暂停，直到 2030-01-02 08:00:00 CST")
	require.Contains(t, zh.body, "微信无法访问，发送等待中")
}

var cellRE = regexp.MustCompile(`<tr><td>([0-9]+)</td><td>([^<]*)</td></tr>`)

// TestImportLineErrorsTranslated: every kind of line the API refuses in a
// suppression import is shown in Chinese on a Chinese page.
func TestImportLineErrorsTranslated(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const ok = "oCON000000000000000000000031"
	lines := []string{
		"openid,note",
		ok,
		"not an openid",                      // 3: not an openid
		ok,                                   // 4: duplicate
		",a note",                            // 5: no openid
		"a,b,c",                              // 6: fields
		ok + "2," + strings.Repeat("长", 201), // 7: note too long
		ok + "3,\"a\x01b\"",                  // 8: control character
		ok + "4,\xff",                        // 9: invalid UTF-8
		ok + "5," + strings.Repeat("x", campaigns.AudienceMaxLineBytesDefault), // 10: too long
		ok + "6,\"unterminated", // 11: not CSV
	}
	p := b.get(t, "/console/accounts/shop/suppressions", "zh-CN")
	r := b.supUpload(t, "/console/accounts/shop/suppressions/import", token(t, p), strings.Join(lines, "\n")+"\n", "zh-CN")
	require.Equal(t, http.StatusOK, r.status, r.body)
	cells := cellRE.FindAllStringSubmatch(r.body, -1)
	require.Len(t, cells, 9, r.body)
	han := regexp.MustCompile(`\p{Han}`)
	for i, c := range cells {
		require.Equal(t, strconv.Itoa(i+3), c[1])
		require.Regexp(t, han, c[2], "line %s: %s", c[1], c[2])
		require.NotContains(t, c[2], "want", "line %s: %s", c[1], c[2])
	}
}

// TestDashboardShowsQuota: with a WeChat client, the dashboard shows each
// API's quota used and left today, as WeChat's quota/get answers.
func TestDashboardShowsQuota(t *testing.T) {
	t.Parallel()
	b, _ := setupWeChat(t, false)
	en := b.get(t, "/console/", "en")
	require.Equal(t, http.StatusOK, en.status, en.body)
	require.NotContains(t, en.body, `id="quota-unavailable-shop"`)
	require.Regexp(t, `<td id="quota-shop"><ul class="plain"><li>Template messages: 0 used, [0-9,]+ left of [0-9,]+</li>`, en.body)
	zh := b.get(t, "/console/", "zh-CN")
	require.Regexp(t, `模板消息：已用 0，剩余 [0-9,]+，共 [0-9,]+`, zh.body)
}

// TestDashboardFindsOlderLiveRuns: the dashboard reads one page of the
// newest campaigns, never the whole list; a live run of an older campaign
// is found in its account's rate-bucket registry, where the producer
// registers every run that sends.
func TestDashboardFindsOlderLiveRuns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	old := b.startWithProgress(t, "老活动")
	require.NoError(t, b.store.AddBucketRun(t.Context(), appID+":"+wechat.APITemplateSend, old, 1, 1))
	for i := range 55 {
		b.newCampaign(t, "新活动 "+strconv.Itoa(i))
	}
	p := b.get(t, "/console/", "en")
	require.Equal(t, http.StatusOK, p.status, p.body)
	require.Contains(t, p.body, `<li class="live-run" id="live-`+old+`">`)
	require.Regexp(t, `<progress id="live-progress-`+old+`" max="2" value="1"`, p.body)
	require.Equal(t, 1, strings.Count(p.body, `class="live-run"`))
	require.Contains(t, p.body, `<tr id="failure-`+old+`">`, "its failures too")
}
