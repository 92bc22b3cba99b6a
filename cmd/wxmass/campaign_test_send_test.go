package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestCampaignTestCLI: `wxmass campaign test` against a real `wxmass
// serve` and a fake WeChat prints one line per target and exits 0 when
// every target got the message, 1 when WeChat refused one (with its
// errcode and meaning), and 2 when the API refused the request; the audit
// trail shows the test with its counts.
func TestCampaignTestCLI(t *testing.T) {
	t.Parallel()
	const (
		apiKey = "cli-test-key-0123456789ab"
		t1     = "oCLI000000000000000000000001"
		t2     = "oCLI000000000000000000000002"
		gone   = "oCLI000000000000000000000043"
	)
	fake := wechattest.Start(t, wechattest.Config{Terminal: map[string]int{gone: 43004}})
	addr := freeAddr(t)
	startServer(t, "serve", addr, append(redisEnv(t), "PATH="+os.Getenv("PATH"),
		"WXMASS_WECHAT_BASE_URL="+fake.URL(), "WXMASS_APPID="+wechattest.AppIDDefault,
		"WXMASS_APPSECRET="+wechattest.SecretDefault, "WXMASS_API_KEYS="+apiKey))
	cli := []string{"WXMASS_API_URL=http://" + addr, "WXMASS_API_KEY=" + apiKey}

	spec := filepath.Join(t.TempDir(), "campaign.json")
	require.NoError(t, os.WriteFile(spec, []byte(`{"name":"cli test","account":"`+wechattest.AppIDDefault+`","kind":"template",
		"require_test":true,
		"template":{"template_id":"`+wechattest.TemplateIDDefault+`","data":{"thing1":"会员日"}},
		"audience":{"source":"inline","openids":["oCLI000000000000000000000009"]}}`), 0o600))
	stdout, stderr, code := run(t, cli, "campaign", "create", spec)
	require.Equal(t, 0, code, stderr)
	id := strings.TrimSpace(stdout)

	_, stderr, code = run(t, cli, "campaign", "start", id)
	require.Equal(t, exitUsage, code, stderr)
	require.Contains(t, stderr, "(HTTP 409 test_required, field require_test)")

	stdout, stderr, code = run(t, cli, "campaign", "test", id, "--to", t1, "--to", t2)
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, t1+": ok\n"+t2+": ok\n", stdout)
	require.Len(t, fake.Deliveries(), 2)

	stdout, stderr, code = run(t, cli, "campaign", "test", id, "--to", t1, "--to", gone)
	require.Equal(t, exitFailure, code, stderr)
	require.Contains(t, stdout, t1+": ok\n")
	require.Contains(t, stdout, gone+": FAILED: errcode 43004 (user unfollowed): ")
	require.Contains(t, stderr, "the test did not reach every target")

	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"not an openid", []string{"--to", "nope"}, "(HTTP 422 invalid_field, field to[0])"},
		{"a WeChat ID on a template campaign", []string{"--to", t1, "--wxname", "ops_reviewer"}, "(HTTP 422 invalid_field, field wxnames)"},
		{"no target", nil, "name at least one target"},
		{"as on a message without variables", []string{"--to", t1, "--as", t2}, "(HTTP 422 invalid_field, field as)"},
	} {
		_, stderr, code := run(t, cli, append([]string{"campaign", "test", id}, tt.args...)...)
		require.Equal(t, exitUsage, code, "%s: %s", tt.name, stderr)
		require.Contains(t, stderr, tt.want, tt.name)
	}
	require.Len(t, fake.Deliveries(), 3, "refused requests sent nothing")

	// The first test reached every target: the campaign starts.
	_, stderr, code = run(t, cli, "campaign", "start", id)
	require.Equal(t, exitOK, code, stderr)

	stdout, stderr, code = run(t, cli, "campaign", "events", id)
	require.Equal(t, exitOK, code, stderr)
	require.Contains(t, stdout, "(2 of 2 targets ok)")
	require.Contains(t, stdout, "(1 of 2 targets ok)")
	require.NotContains(t, stdout, t1, "the trail never names the targets")
}
