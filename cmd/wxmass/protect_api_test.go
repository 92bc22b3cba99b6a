package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestSuppressionThroughTheAPI runs `wxmass all` (the API, the callback
// receiver and a worker in one process, on a Redis of its own) against
// the fake WeChat, which pushes receipts and the users' events to it:
// a campaign's 43004, 48002 and 43101 recipients, and one whose receipt
// says "failed:user block", end on the account's suppression list; the
// next campaign to the same list makes no call for them and reports them
// skipped, class suppressed; an unsubscribe event suppresses a user and
// a subscribe event lifts it again.
func TestSuppressionThroughTheAPI(t *testing.T) {
	t.Parallel()
	const apiKey, cbToken = "protect-test-key-0123456789", "protect-callback-token"
	users := make([]string, 10)
	for i := range users {
		users[i] = fmt.Sprintf("oPRT%024d", i)
	}
	terminal := map[string]int{users[0]: 43004, users[1]: 48002, users[2]: 43101}
	addr := freeAddr(t)
	fake := wechattest.Start(t, wechattest.Config{Terminal: terminal,
		Callback: wechattest.Callback{URL: "http://" + addr + "/wechat/callback", Token: cbToken, AppID: wechattest.AppIDDefault}})
	require.NoError(t, fake.SetReceiptStatus(users[3], "failed:user block"))
	srv := redistest.StartServer(t, redistest.ServerConfig{})
	p := startAll(t, addr, []string{
		"WXMASS_REDIS_URL=" + srv.URL(),
		"WXMASS_WECHAT_BASE_URL=" + fake.URL(),
		"WXMASS_APPID=" + wechattest.AppIDDefault,
		"WXMASS_APPSECRET=" + wechattest.SecretDefault,
		"WXMASS_API_KEYS=" + apiKey,
		"WXMASS_CALLBACK_TOKEN=" + cbToken,
	})
	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		status, m, _ := apiCall(t, addr, apiKey, method, path, body)
		return status, m
	}
	calls := func() map[string]int {
		out := map[string]int{}
		for _, c := range fake.Calls() {
			out[c.OpenID]++
		}
		return out
	}
	campaign := func(list []string) (string, map[string]any) {
		t.Helper()
		status, created := call("POST", "/v1/campaigns", `{"name":"订单","account":"`+wechattest.AppIDDefault+`","kind":"template",
			"template":{"template_id":"`+wechattest.TemplateIDDefault+`","data":{"thing1":"您的订单已发货"}},
			"audience":{"source":"inline","openids":["`+strings.Join(list, `","`)+`"]}}`)
		require.Equal(t, http.StatusCreated, status, "%v", created)
		id := created["id"].(string)
		status, started := call("POST", "/v1/campaigns/"+id+"/start", "")
		require.Equal(t, http.StatusAccepted, status, "%v", started)
		var rep map[string]any
		pollUntil(t, 30*time.Second, 50*time.Millisecond, func() bool {
			_, rep = call("GET", "/v1/campaigns/"+id+"/runs/1", "")
			return rep["state"] == "completed"
		}, "the run does not complete: %v\n%s", rep, p.out)
		return id, rep
	}
	// reached counts the recipients WeChat took: sent, or delivered once
	// their receipt came.
	reached := func(rs map[string]any) float64 {
		c := rs["counters"].(map[string]any)
		n, _ := c["sent"].(float64)
		d, _ := c["delivered"].(float64)
		return n + d
	}
	suppressed := func(openid string) (int, map[string]any) {
		return call("GET", "/v1/accounts/"+wechattest.AppIDDefault+"/suppressions/"+openid, "")
	}

	campaign(users)
	want := map[string]string{users[0]: "unfollowed", users[1]: "blocked", users[2]: "refused", users[3]: "blocked"}
	for o, reason := range want {
		var e map[string]any
		pollUntil(t, 10*time.Second, 20*time.Millisecond, func() bool {
			var status int
			status, e = suppressed(o)
			return status == http.StatusOK
		}, "%s is suppressed", o)
		require.Equal(t, reason, e["reason"], o)
	}
	before := calls()
	id, rep := campaign(users)
	after := calls()
	for o := range want {
		require.Equal(t, before[o], after[o], "no call for suppressed %s", o)
	}
	counters := rep["counters"].(map[string]any)
	require.EqualValues(t, 4, counters["class:suppressed"], "%v", rep)
	require.EqualValues(t, 6, reached(rep), "%v", rep)
	prot := rep["protection"].(map[string]any)
	require.EqualValues(t, 4, prot["suppressed"], "%v", prot)
	_ = id

	// An unsubscribe event suppresses; a subscribe event lifts it.
	u := users[5]
	require.NoError(t, fake.PushInteraction(t.Context(), wechattest.AppIDDefault, u, wechattest.InteractUnfollow, time.Now()))
	status, e := suppressed(u)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "unfollowed", e["reason"])
	before = calls()
	_, rep = campaign([]string{u, users[6]})
	require.EqualValues(t, 1, rep["counters"].(map[string]any)["class:suppressed"], "%v", rep)
	require.Equal(t, before[u], calls()[u], "no call for the user who unfollowed")
	require.NoError(t, fake.PushInteraction(t.Context(), wechattest.AppIDDefault, u, wechattest.InteractFollow, time.Now()))
	status, _ = suppressed(u)
	require.Equal(t, http.StatusNotFound, status, "the follow lifted it")
	_, rep = campaign([]string{u, users[6]})
	require.EqualValues(t, 2, reached(rep), "%v", rep)
}
