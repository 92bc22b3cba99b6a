package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestMassOpsCLI: against a real `wxmass all` and a fake WeChat (time
// scaled 30 times, API mass-send protection on), `wxmass campaign
// mass-delete` deletes a sent batch's message (exit 0, one line per
// batch), exits 1 with WeChat's errcode and meaning when WeChat refuses
// (a send to all still awaiting its admin's confirmation has not been
// sent), and 2 when the API refuses (an unknown batch, an article_idx
// over 8); `wxmass campaign mass-speed` prints and sets the speed, and
// exits 2 for a speed outside 0-4, an unknown account, and while a send to
// all awaits its admin (409 awaiting_confirmation).
func TestMassOpsCLI(t *testing.T) {
	t.Parallel()
	const (
		apiKey = "cli-massops-key-0123456789"
		acct   = wechattest.AppIDDefault
	)
	fake := wechattest.Start(t, wechattest.Config{
		Followers: 5,
		TimeScale: 30,
		Mass:      wechattest.MassConfig{Protected: []string{acct}},
	})
	addr := freeAddr(t)
	// DBCmdMass: its worker must not take other tests' tasks (the
	// sequential TestMassThroughTheAPI never runs beside it).
	startAll(t, addr, append(redisEnvDB(t, redistest.DBCmdMass), "PATH="+os.Getenv("PATH"),
		"WXMASS_WECHAT_BASE_URL="+fake.URL(), "WXMASS_APPID="+acct,
		"WXMASS_APPSECRET="+wechattest.SecretDefault, "WXMASS_API_KEYS="+apiKey), "--log-level", "warn")
	cli := []string{"WXMASS_API_URL=http://" + addr, "WXMASS_API_KEY=" + apiKey}

	create := func(audience string) string {
		t.Helper()
		spec := filepath.Join(t.TempDir(), "mass.json")
		require.NoError(t, os.WriteFile(spec, []byte(`{"name":"cli mass","account":"`+acct+`","kind":"mass",
			"mass":{"msgtype":"text","text":{"content":"本月精选"}},"audience":`+audience+`}`), 0o600))
		stdout, stderr, code := run(t, cli, "campaign", "create", spec)
		require.Equal(t, exitOK, code, stderr)
		id := strings.TrimSpace(stdout)
		_, stderr, code = run(t, cli, "campaign", "start", id)
		require.Equal(t, exitOK, code, stderr)
		return id
	}
	// accepted waits until the worker's job for the run's one batch is
	// accepted and the fake's job has status; it returns the msg_id.
	accepted := func(id, status string) int64 {
		t.Helper()
		var msgID int64
		pollUntil(t, 30*time.Second, 50*time.Millisecond, func() bool {
			_, st, _ := apiCall(t, addr, apiKey, "GET", "/v1/campaigns/"+id+"/runs/1", "")
			mass, _ := st["mass"].(map[string]any)
			batches, _ := mass["batches"].([]any)
			if len(batches) != 1 {
				return false
			}
			msgID = int64(batches[0].(map[string]any)["msg_id"].(float64))
			for _, j := range fake.MassJobs() {
				if j.MsgID == msgID {
					return j.Status == status
				}
			}
			return false
		}, "campaign %s: no job %s", id, status)
		return msgID
	}

	stdout, stderr, code := run(t, cli, "campaign", "mass-speed", acct)
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, acct+": mass speed 0 (realspeed 80: 800,000 users a minute)\n", stdout)
	stdout, stderr, code = run(t, cli, "campaign", "mass-speed", acct, "--set", "3")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, acct+": mass speed set to 3\n", stdout)
	stdout, _, _ = run(t, cli, "campaign", "mass-speed", acct)
	require.Equal(t, acct+": mass speed 3 (realspeed 30: 300,000 users a minute)\n", stdout)
	_, stderr, code = run(t, cli, "campaign", "mass-speed", acct, "--set", "9")
	require.Equal(t, exitUsage, code, stderr)
	require.Contains(t, stderr, "(HTTP 422 invalid_field, field speed)")
	_, stderr, code = run(t, cli, "campaign", "mass-speed", "nope")
	require.Equal(t, exitUsage, code, stderr)
	require.Contains(t, stderr, "(HTTP 404 not_found, field account)")

	// A list of two: one batch, sent by the worker, then sent by WeChat.
	list := create(`{"source":"inline","openids":["oCLI000000000000000000000001","oCLI000000000000000000000002"]}`)
	msgID := accepted(list, wechattest.MassSuccess)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown batch", []string{"--batch", "b9:0-2"}, "(HTTP 422 invalid_field, field batches[0])"},
		{"article over 8", []string{"--article-idx", "9"}, "(HTTP 422 invalid_field, field article_idx)"},
		{"no such run", []string{"--run", "7"}, "(HTTP 404 not_found, field run)"},
	} {
		_, stderr, code := run(t, cli, append([]string{"campaign", "mass-delete", list}, tt.args...)...)
		require.Equal(t, exitUsage, code, "%s: %s", tt.name, stderr)
		require.Contains(t, stderr, tt.want, tt.name)
	}
	stdout, stderr, code = run(t, cli, "campaign", "mass-delete", list, "--batch", "b0:0-2")
	require.Equal(t, exitOK, code, stderr)
	require.Equal(t, "b0:0-2: msg_id "+strconv.FormatInt(msgID, 10)+": deleted\n", stdout)
	for _, j := range fake.MassJobs() {
		if j.MsgID == msgID {
			require.Equal(t, wechattest.MassDeleted, j.Status)
		}
	}

	// A send to all waits for the admin (the fake protects the account):
	// WeChat refuses to change the speed, and has nothing to delete.
	all := create(`{"source":"followers"}`)
	allID := accepted(all, wechattest.MassWaiting)
	_, stderr, code = run(t, cli, "campaign", "mass-speed", acct, "--set", "2")
	require.Equal(t, exitUsage, code, stderr)
	require.Contains(t, stderr, "(HTTP 409 awaiting_confirmation)")
	require.Contains(t, stderr, "admin's confirmation")
	stdout, stderr, code = run(t, cli, "campaign", "mass-delete", all)
	require.Equal(t, exitFailure, code, stderr)
	require.Equal(t, "all: msg_id "+strconv.FormatInt(allID, 10)+": FAILED: errcode 40059 (invalid msg id): invalid msg id\n", stdout)
	require.Contains(t, stderr, "WeChat did not delete every batch's message")

	stdout, stderr, code = run(t, cli, "campaign", "events", list)
	require.Equal(t, exitOK, code, stderr)
	require.Regexp(t, `mass_delete +1 +200 \(1 of 1 batches deleted\)`, stdout)
	require.Regexp(t, `mass_delete +1 +422 invalid_field`, stdout)
}
