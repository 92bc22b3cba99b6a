package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestCampaignCLIDelete: `wxmass campaign delete ID` against a real `wxmass
// serve` deletes a campaign without a live run (exit 0; it is gone), and
// exits 2 with the API's message for a running campaign (409
// invalid_state, which stays) and for an unknown or deleted one (404).
func TestCampaignCLIDelete(t *testing.T) {
	t.Parallel()
	const apiKey = "cli-delete-key-0123456789"
	cli, _ := serveForCLI(t, apiKey)
	spec := filepath.Join(t.TempDir(), "campaign.json")
	require.NoError(t, os.WriteFile(spec, []byte(`{"name":"cli","account":"`+wechattest.AppIDDefault+`","kind":"template",
		"template":{"template_id":"`+wechattest.TemplateIDDefault+`","data":{"thing1":"会员日"}},
		"audience":{"source":"inline","openids":["oTX0000000000000000000000001"]}}`), 0o600))
	create := func() string {
		stdout, stderr, code := run(t, cli, "campaign", "create", spec)
		require.Equal(t, 0, code, stderr)
		return strings.TrimSpace(stdout)
	}

	// A running campaign (no worker here: it stays running) is refused.
	live := create()
	_, stderr, code := run(t, cli, "campaign", "start", live)
	require.Equal(t, 0, code, stderr)
	_, stderr, code = run(t, cli, "campaign", "delete", live)
	require.Equal(t, exitUsage, code, stderr)
	require.Contains(t, stderr, "cannot delete a campaign that is running (HTTP 409 invalid_state, field state)")
	_, stderr, code = run(t, cli, "campaign", "status", live)
	require.Equal(t, 0, code, "the refused campaign is still there: %s", stderr)

	draft := create()
	stdout, stderr, code := run(t, cli, "campaign", "delete", draft)
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "campaign "+draft+": deleted\n", stdout)
	_, stderr, code = run(t, cli, "campaign", "delete", draft)
	require.Equal(t, exitUsage, code, stderr)
	require.Contains(t, stderr, "no such campaign (HTTP 404 not_found, field id)")
	_, stderr, code = run(t, cli, "campaign", "delete")
	require.Equal(t, exitUsage, code, stderr)
	require.Contains(t, stderr, "want one campaign id, got 0 arguments")
}
