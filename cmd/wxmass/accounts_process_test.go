package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestAccountsFileAndRotation runs `wxmass all` with an accounts file of
// two accounts: campaigns name their account (by id or appid), reports and
// metrics name it, each account's receipts arrive at its own callback path,
// and the appsecret is rotated without a restart: the fake resets it, the
// operator writes the new one into the secret file, and the next token
// fetch uses it. A broken accounts file changes nothing.
func TestAccountsFileAndRotation(t *testing.T) {
	t.Parallel()
	const (
		apiKey    = "accounts-test-key-0123456789"
		shopAppID = "wx000000000000shop"
		shopOld   = "shop-secret-old-0123456789abcdef"
		shopNew   = "shop-secret-new-fedcba9876543210"
		newsAppID = "wx000000000000news"
		newsSec   = "news-secret-0123456789abcdef0123"
		cbToken   = "shop-callback-token-42"
	)
	addr := freeAddr(t)
	fake := wechattest.Start(t, wechattest.Config{
		Accounts: []wechattest.Account{{AppID: shopAppID, Secret: shopOld}, {AppID: newsAppID, Secret: newsSec}},
		Callback: wechattest.Callback{URL: "http://" + addr + "/wechat/callback/shop", Token: cbToken},
	})
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "shop.secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(shopOld+"\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "shop.cbtoken"), []byte(cbToken), 0o600))
	accountsFile := filepath.Join(dir, "accounts.yaml")
	accounts := `accounts:
  - id: shop
    appid: ` + shopAppID + `
    appsecret_file: shop.secret
    rate: {template: 300}
    callback: {mode: plain, token_file: shop.cbtoken}
  - id: news
    appid: ` + newsAppID + `
    appsecret_env: NEWS_APPSECRET
    rate: {template: 100}
`
	require.NoError(t, os.WriteFile(accountsFile, []byte(accounts), 0o600))

	c := redistest.Client(t, redistest.DBCmdAccts)
	prefix := redistest.Prefix(t, c)
	opt := redistest.Options(t, redistest.DBCmdAccts)
	p := startAll(t, addr, []string{
		fmt.Sprintf("WXMASS_REDIS_URL=redis://%s/%d", opt.Addr, opt.DB),
		"WXMASS_REDIS_PREFIX=" + prefix,
		"WXMASS_WECHAT_BASE_URL=" + fake.URL(),
		"WXMASS_API_KEYS=" + apiKey,
		"WXMASS_ACCOUNTS_FILE=" + accountsFile,
		"NEWS_APPSECRET=" + newsSec,
	}, "--accounts-reload-interval", "100ms")

	var answers strings.Builder
	call := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		status, m, raw := apiCall(t, addr, apiKey, method, path, body)
		answers.Write(raw)
		return status, m
	}
	// run sends a campaign of n recipients for account and returns its id
	// once its run has completed.
	run := func(name, account string, n int) string {
		t.Helper()
		openids := make([]string, n)
		for i := range openids {
			openids[i] = fmt.Sprintf(`"o%s%023d"`, strings.ToUpper(name[:4]), i)
		}
		status, created := call("POST", "/v1/campaigns", `{"name":"`+name+`","account":"`+account+`","kind":"template",
			"template":{"template_id":"`+wechattest.TemplateIDDefault+`","data":{"thing1":"x"}},
			"audience":{"source":"inline","openids":[`+strings.Join(openids, ",")+`]}}`)
		require.Equal(t, http.StatusCreated, status, "%v", created)
		id := created["id"].(string)
		status, started := call("POST", "/v1/campaigns/"+id+"/start", "")
		require.Equal(t, http.StatusAccepted, status, "%v", started)
		var rs map[string]any
		pollUntil(t, time.Minute, 50*time.Millisecond, func() bool {
			_, rs = call("GET", "/v1/campaigns/"+id+"/runs/1", "")
			return rs["state"] == "completed" || rs["state"] == "failed"
		}, "%s does not complete: %v\n%s", name, rs, p.out)
		require.Equal(t, "completed", rs["state"], "%v\n%s", rs, p.out)
		require.EqualValues(t, n, rs["counters"].(map[string]any)["sent"].(float64)+countOf(rs, "delivered"), "%v", rs)
		return id
	}

	status, list := call("GET", "/v1/accounts", "")
	require.Equal(t, http.StatusOK, status)
	require.Len(t, list["accounts"], 2)

	news := run("news one", "news", 50)
	shop := run("shop one", shopAppID, 80) // by appid: stored as "shop"
	_, rep := call("GET", "/v1/campaigns/"+shop+"/runs/1/report", "")
	require.Equal(t, "shop", rep["account"], "reports name the account")
	_, rep = call("GET", "/v1/campaigns/"+news+"/runs/1/report", "")
	require.Equal(t, "news", rep["account"])

	// Receipts of shop's sends came to /wechat/callback/shop.
	pollUntil(t, 20*time.Second, 50*time.Millisecond, func() bool {
		_, rs := call("GET", "/v1/campaigns/"+shop+"/runs/1", "")
		return countOf(rs, "delivered") == 80
	}, "shop's receipts do not arrive:\n%s", p.out)

	// A broken accounts file is refused; the accounts in force stay.
	require.NoError(t, os.WriteFile(accountsFile, []byte("accounts:\n  - appid: nope\n"), 0o600))
	pollUntil(t, 20*time.Second, 20*time.Millisecond, func() bool {
		return strings.Contains(p.out.String(), "accounts file refused")
	}, "the broken file is not reported:\n%s", p.out)
	run("news two", "news", 20)
	require.NoError(t, os.WriteFile(accountsFile, []byte(accounts), 0o600))

	// Rotation: WeChat's appsecret is reset and every token with it; the
	// operator writes the new secret into the file; no restart.
	require.NoError(t, fake.SetSecret(shopAppID, shopNew))
	require.NoError(t, os.WriteFile(secretFile, []byte(shopNew+"\n"), 0o600))
	pollUntil(t, 20*time.Second, 20*time.Millisecond, func() bool {
		return strings.Contains(p.out.String(), `"changed":{"shop":["appsecret"]}`)
	}, "the rotated secret is not applied:\n%s", p.out)
	fake.InvalidateTokens()
	before := fake.Stats().APIs["stable_token"].TokensIssued
	run("shop two", "shop", 60)
	require.Greater(t, fake.Stats().APIs["stable_token"].TokensIssued, before, "a token was fetched with the new secret")

	// Metrics name the account by id.
	req, err := http.NewRequestWithContext(t.Context(), "GET", "http://"+addr+"/metrics", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+apiKey)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	metrics, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Contains(t, string(metrics), `wxmass_sends_total{account="shop",class="",kind="template",outcome="sent"} 140`)
	require.Contains(t, string(metrics), `wxmass_sends_total{account="news",class="",kind="template",outcome="sent"} 70`)

	// No secret anywhere.
	for _, s := range []string{shopOld, shopNew, newsSec, cbToken, apiKey} {
		require.NotContains(t, p.out.String(), s, "a secret in the logs")
		require.NotContains(t, answers.String(), s, "a secret in an answer")
		require.NotContains(t, string(metrics), s, "a secret in the metrics")
	}
}

// countOf reads a counter of a run status answer (0 when absent).
func countOf(rs map[string]any, name string) float64 {
	cnt, _ := rs["counters"].(map[string]any)
	n, _ := cnt[name].(float64)
	return n
}
