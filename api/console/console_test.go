package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPagesNeedASession: a browser without a session is sent to the login
// page, which brings it back.
func TestPagesNeedASession(t *testing.T) {
	t.Parallel()
	b := setup(t)
	req, err := http.NewRequest("GET", b.url+"/console/campaigns", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/html")
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/login?next=%2Fconsole%2Fcampaigns", res.Header.Get("Location"))
}

// TestLanguageByHeaderAndSwitch: Accept-Language chooses the language; the
// switch keeps the other one in a cookie.
func TestLanguageByHeaderAndSwitch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	en := b.get(t, "/console/", "en-US,en;q=0.9")
	require.Equal(t, http.StatusOK, en.status, en.body)
	require.Contains(t, en.body, `<html lang="en">`)
	require.Contains(t, en.body, "Dashboard")
	zh := b.get(t, "/console/", "zh-CN,zh;q=0.9")
	require.Contains(t, zh.body, `<html lang="zh-CN">`)
	require.Contains(t, zh.body, "概览")

	sw := b.post(t, "/console/lang", url.Values{"csrf": {token(t, en)}, "lang": {"zh-CN"}, "back": {"/console/campaigns"}})
	require.Equal(t, http.StatusOK, sw.status, sw.body)
	require.Equal(t, "/console/campaigns", sw.url.Path)
	require.Contains(t, sw.body, `<html lang="zh-CN">`, "the cookie wins over Accept-Language")
	require.Contains(t, b.get(t, "/console/", "en").body, "概览")
}

// TestPauseResumeCancelFromTheConsole: each confirmed action changes the
// campaign as the API then shows it, and the audit trail names the
// session's key.
func TestPauseResumeCancelFromTheConsole(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.newCampaign(t, "会员日")
	state := func() string {
		_, c := b.apiJSON(t, "GET", "/v1/campaigns/"+id, nil)
		return c["state"].(string)
	}
	for _, step := range []struct{ action, want, says string }{
		{"start", "running", "starts a new run now"},
		{"pause", "paused", "stops sending"},
		{"resume", "running", "sends again"},
		{"cancel", "", "stops for good"},
	} {
		conf := b.get(t, "/console/campaigns/"+id+"/confirm/"+step.action, "en")
		require.Equal(t, http.StatusOK, conf.status, conf.body)
		require.Contains(t, conf.body, step.says, "the confirmation says what %s does", step.action)
		done := b.post(t, "/console/campaigns/"+id+"/"+step.action, url.Values{"csrf": {token(t, conf)}})
		require.Equal(t, http.StatusOK, done.status, done.body)
		require.Equal(t, "/console/campaigns/"+id, done.url.Path)
		if step.want != "" {
			require.Equal(t, step.want, state(), "after %s", step.action)
		} else {
			require.Contains(t, []string{"stopping", "cancelled"}, state())
		}
	}
	_, ev := b.apiJSON(t, "GET", "/v1/campaigns/"+id+"/events", nil)
	var actions []string
	for _, e := range ev["events"].([]any) {
		m := e.(map[string]any)
		require.Equal(t, "alice", m["key"])
		if m["action"] != "create" {
			require.Equal(t, "session", m["via"], "%v", m)
			actions = append(actions, m["action"].(string))
		}
	}
	require.ElementsMatch(t, []string{"start", "pause", "resume", "cancel"}, actions)
}

// TestFormWithoutTokenRefused: a form post without the session's token
// changes nothing, even from the same origin.
func TestFormWithoutTokenRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.newCampaign(t, "no token")
	p := b.post(t, "/console/campaigns/"+id+"/start", url.Values{"csrf": {"forged"}})
	require.Equal(t, http.StatusForbidden, p.status)
	_, c := b.apiJSON(t, "GET", "/v1/campaigns/"+id, nil)
	require.Equal(t, "draft", c["state"])
}

// TestCampaignList pages through the list and filters it.
func TestCampaignList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i := range 60 {
		name := "promo"
		if i%10 == 0 {
			name = "会员日"
		}
		b.newCampaign(t, name+" "+strings.Repeat("x", i%3))
	}
	first := b.get(t, "/console/campaigns", "en")
	require.Equal(t, http.StatusOK, first.status, first.body)
	require.Equal(t, 50, strings.Count(first.body, `<tr><td><a href="/console/campaigns/`))
	require.Contains(t, first.body, "60 campaigns in all")
	require.Contains(t, first.body, `id="next-page"`)
	second := b.get(t, "/console/campaigns?offset=50", "en")
	require.Equal(t, 10, strings.Count(second.body, `<tr><td><a href="/console/campaigns/`))
	found := b.get(t, "/console/campaigns?q="+url.QueryEscape("会员"), "zh-CN")
	require.Equal(t, 6, strings.Count(found.body, `<tr><td><a href="/console/campaigns/`), found.body)
}
