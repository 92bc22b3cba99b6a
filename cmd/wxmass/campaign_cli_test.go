package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestCampaignCLIExitCodes: `wxmass campaign` exits 2 for every 4xx answer
// of the API (the request, the key or the --api-url is wrong: fix the
// input) and 1 for a 5xx answer or a transport failure (try again later),
// and prints the API's message, code and field. Against a real `wxmass
// serve` (no worker: nothing here queues a send), and a stand-in server for
// the answers a healthy wxmass does not give.
func TestCampaignCLIExitCodes(t *testing.T) {
	t.Parallel()
	const apiKey = "cli-exit-key-0123456789ab"
	cli, addr := serveForCLI(t, apiKey)
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}
	spec := file("campaign.json", `{"name":"cli","account":"`+wechattest.AppIDDefault+`","kind":"template",
		"template":{"template_id":"`+wechattest.TemplateIDDefault+`","data":{"thing1":"{{.name}}的会员日"}},
		"audience":{"source":"file","variables":["name"]}}`)
	stdout, stderr, code := run(t, cli, "campaign", "create", spec)
	require.Equal(t, 0, code, stderr)
	id := strings.TrimSpace(stdout)

	for _, tt := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"start with no audience (was a 500, exit 1)", nil, []string{"start", id},
			"the audience is empty: upload an audience file first (PUT /v1/campaigns/{id}/audience, or wxmass campaign upload) (HTTP 409 no_audience, field audience)"},
		{"no such campaign", nil, []string{"start", "cnothere00000"}, "no such campaign (HTTP 404 not_found, field id)"},
		{"duplicate field", nil, []string{"create", file("dup.json", `{"name":"a","name":"b"}`)},
			"name appears more than once: give each field once (HTTP 400 duplicate_field, field name)"},
		{"invalid campaign", nil, []string{"create", file("bad.json", `{"name":""}`)}, "(HTTP 422 invalid_campaign"},
		{"all-bad audience", nil, []string{"upload", id, file("bad.csv", "openid,name\nnot an openid,Ann\n")},
			"none of the file's 1 lines is a valid recipient"},
		{"wrong key", []string{"WXMASS_API_KEY=wrong-key-0123456789"}, []string{"status", id}, "(HTTP 401 unauthorized, field Authorization)"},
		{"not the API at --api-url", []string{"WXMASS_API_URL=http://" + addr + "/nothere"}, []string{"start", id}, "HTTP 404 (not an answer of the wxmass API: is --api-url right?)"},
	} {
		_, stderr, code := run(t, append(append([]string{}, cli...), tt.env...), append([]string{"campaign"}, tt.args...)...)
		require.Equal(t, exitUsage, code, "%s: %s", tt.name, stderr)
		require.Contains(t, stderr, tt.want, tt.name)
	}

	// What a healthy wxmass does not answer: a stand-in.
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/campaigns/c500/start":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"error":{"code":"internal","message":"redis: connection refused"}}`))
		case "/v1/campaigns/c502/start":
			http.Error(w, "bad gateway", http.StatusBadGateway)
		case "/v1/campaigns/c404/start":
			http.Error(w, "404 page not found", http.StatusNotFound)
		case "/v1/campaigns/c429/start":
			http.Error(w, "slow down", http.StatusTooManyRequests)
		}
	}))
	t.Cleanup(stub.Close)
	stubCLI := []string{"WXMASS_API_URL=" + stub.URL, "WXMASS_API_KEY=" + apiKey}
	for _, tt := range []struct {
		id   string
		code int
		want string
	}{
		{"c500", exitFailure, "redis: connection refused (HTTP 500 internal)"},
		{"c502", exitFailure, "HTTP 502 (not an answer of the wxmass API: is --api-url right?)"},
		{"c404", exitUsage, "HTTP 404 (not an answer of the wxmass API: is --api-url right?)"},
		{"c429", exitUsage, "HTTP 429"},
	} {
		_, stderr, code := run(t, stubCLI, "campaign", "start", tt.id)
		require.Equal(t, tt.code, code, "%s: %s", tt.id, stderr)
		require.Contains(t, stderr, tt.want, tt.id)
	}
	// Nothing listens: a transport failure.
	_, stderr, code = run(t, []string{"WXMASS_API_URL=http://" + freeAddr(t), "WXMASS_API_KEY=" + apiKey}, "campaign", "start", id)
	require.Equal(t, exitFailure, code, stderr)
	require.Contains(t, stderr, "connection refused")
}

// serveForCLI starts a real `wxmass serve` (no worker: nothing queues a
// send) against a fake WeChat, accepting apiKey, and returns the
// environment of a CLI that talks to it, and its address.
func serveForCLI(t *testing.T, apiKey string) (cli []string, addr string) {
	t.Helper()
	fake := wechattest.Start(t, wechattest.Config{})
	addr = freeAddr(t)
	startServer(t, "serve", addr, append(redisEnv(t), "PATH="+os.Getenv("PATH"),
		"WXMASS_WECHAT_BASE_URL="+fake.URL(), "WXMASS_APPID="+wechattest.AppIDDefault,
		"WXMASS_APPSECRET="+wechattest.SecretDefault, "WXMASS_API_KEYS="+apiKey))
	return []string{"WXMASS_API_URL=http://" + addr, "WXMASS_API_KEY=" + apiKey}, addr
}
