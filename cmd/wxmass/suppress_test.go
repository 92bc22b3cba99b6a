package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// suppressServe starts a real `wxmass serve` against a fake WeChat with one
// account, shop, whose quiet hours are on now (from an hour ago to an hour
// from now, in UTC), and returns the environment of a CLI that talks to it
// (in UTC), the store on the server's Redis keys, and when the quiet hours
// end.
func suppressServe(t *testing.T, apiKey string) ([]string, *campaigns.Store, time.Time) {
	t.Helper()
	fake := wechattest.Start(t, wechattest.Config{})
	env := redisEnv(t)
	var prefix string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "WXMASS_REDIS_PREFIX="); ok {
			prefix = v
		}
	}
	require.NotEmpty(t, prefix)
	store := campaigns.NewStore(rdb.New(redistest.Client(t, redistest.DBCmd), prefix))

	now := time.Now().UTC()
	from, to := now.Add(-time.Hour).Truncate(time.Minute), now.Add(time.Hour).Truncate(time.Minute)
	until := to
	if !until.After(now) {
		until = until.Add(time.Minute)
	}
	dir := t.TempDir()
	accounts := filepath.Join(dir, "accounts.yaml")
	require.NoError(t, os.WriteFile(accounts, []byte(`accounts:
  - id: shop
    appid: `+wechattest.AppIDDefault+`
    appsecret_env: SHOP_APPSECRET
    protection:
      caps: [{max: 2, per: 24h}]
      quiet_hours: {from: "`+from.Format("15:04")+`", to: "`+to.Format("15:04")+`", time_zone: UTC}
`), 0o600))
	addr := freeAddr(t)
	startServer(t, "serve", addr, append(env, "PATH="+os.Getenv("PATH"), "WXMASS_WECHAT_BASE_URL="+fake.URL(),
		"WXMASS_ACCOUNTS_FILE="+accounts, "SHOP_APPSECRET="+wechattest.SecretDefault, "WXMASS_API_KEYS=ops "+apiKey))
	return []string{"WXMASS_API_URL=http://" + addr, "WXMASS_API_KEY=" + apiKey, "TZ=UTC"}, store, until
}

// TestSuppressCLI: `wxmass suppress` against a real `wxmass serve`: add
// (with a note and the key's name), get, list (a page with the next
// cursor, or --all), import (bad lines by number), export (CSV, formulas
// neutralised), remove; a user not on the list, an unknown account, no
// --account and a body with no valid line exit 2 with the API's message.
func TestSuppressCLI(t *testing.T) {
	t.Parallel()
	const apiKey = "suppress-cli-key-0123456789"
	cli, _, _ := suppressServe(t, apiKey)
	o := func(n int) string { return fmt.Sprintf("oCLI%024d", n) }
	suppress := func(args ...string) (string, string, int) {
		t.Helper()
		return run(t, cli, append([]string{"suppress"}, args...)...)
	}
	dir := t.TempDir()
	file := func(name, body string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
		return p
	}

	stdout, stderr, code := suppress("add", "--account", "shop", "--note", "=1+1 asked by phone", o(1), o(2))
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "added 2, updated 0\n", stdout)
	stdout, stderr, code = suppress("get", "--account", wechattest.AppIDDefault, o(1))
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `^`+o(1)+`: manual since 20\d\d-\d\d-\d\dT\d\d:\d\d:\d\dZ by ops: =1\+1 asked by phone\n$`, stdout)

	stdout, stderr, code = suppress("import", "--account", "shop", file("list.csv", "openid,note\n"+o(2)+",again\nN/A\n"+o(3)+"\n"))
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "added 1, updated 1, bad lines 1\n  line 3: openid: \"N/A\" is not an openid: 20 to 64 letters, digits, '_' and '-'\n", stdout)

	stdout, stderr, code = suppress("list", "--account", "shop")
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `(?m)^openid +reason +code +at +source +note$`, stdout)
	for _, id := range []string{o(1), o(2), o(3)} {
		require.Regexp(t, `(?m)^`+id+` +manual +20\S+ +ops`, stdout)
	}
	require.Contains(t, stdout, "3 shown; the list holds 3\n")
	require.Empty(t, stderr, "one page: no cursor")

	stdout, stderr, code = suppress("export", "--account", "shop")
	require.Equal(t, 0, code, stderr)
	rows, err := csv.NewReader(strings.NewReader(stdout)).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 4, stdout)
	require.Equal(t, []string{"openid", "reason", "code", "at", "source", "note"}, rows[0])
	for _, row := range rows[1:] {
		if row[0] == o(1) {
			require.Equal(t, "'=1+1 asked by phone", row[5], "a formula is neutralised")
		}
	}

	// Enough to page: the first page says where the next starts; --all
	// follows the cursors.
	var many strings.Builder
	for i := range 1200 {
		many.WriteString(o(100+i) + "\n")
	}
	stdout, stderr, code = run(t, cli, "suppress", "import", "--account", "shop", file("many.csv", many.String()))
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "added 1200, updated 0, bad lines 0\n", stdout)
	stdout, stderr, code = suppress("list", "--account", "shop", "--limit", "100")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "; the list holds 1203\n")
	require.Regexp(t, `^more: --cursor \d+ \(or --all\)\n$`, stderr)
	cursor := strings.Fields(stderr)[2]
	stdout, stderr, code = suppress("list", "--account", "shop", "--limit", "100", "--cursor", cursor)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "; the list holds 1203\n")
	stdout, stderr, code = suppress("list", "--account", "shop", "--limit", "100", "--all")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "1203 shown; the list holds 1203\n")
	require.Empty(t, stderr)

	stdout, stderr, code = suppress("remove", "--account", "shop", o(1), o(9))
	require.Equal(t, exitUsage, code, stderr)
	require.Equal(t, o(1)+": removed\n"+o(9)+": not on the list\n", stdout)
	require.Contains(t, stderr, "1 of the 2 users were not on the list")

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"removed", []string{"get", "--account", "shop", o(1)}, "(HTTP 404 not_suppressed, field openid)"},
		{"no account", []string{"list"}, "--account: name the account"},
		{"an unknown account", []string{"list", "--account", "sports"}, `no account "sports" (configured: shop) (HTTP 404 not_found, field account)`},
		{"not an openid", []string{"add", "--account", "shop", "N/A"}, "(HTTP 422 invalid_field, field openids[0])"},
		{"no valid line", []string{"import", "--account", "shop", file("bad.csv", "N/A\n")},
			"no valid line: line 1: openid: \"N/A\" is not an openid"},
		{"a missing file", []string{"import", "--account", "shop", filepath.Join(dir, "nothere.csv")}, "no such file"},
	} {
		_, stderr, code := suppress(tc.args...)
		require.Equal(t, exitUsage, code, "%s: %s", tc.name, stderr)
		require.Contains(t, stderr, tc.want, tc.name)
	}
}

// TestSuppressStatusShowsProtection: `wxmass campaign status` against a
// real `wxmass serve` says what the account's protection held back of the
// run (the counters and the deferred set the send path keeps, written
// here through the store) and that the run waits for the account's quiet
// hours, until when.
func TestSuppressStatusShowsProtection(t *testing.T) {
	t.Parallel()
	const apiKey = "protect-cli-key-0123456789"
	cli, store, until := suppressServe(t, apiKey)
	ctx := t.Context()
	openids := []string{"oCLS0000000000000000000000001", "oCLS0000000000000000000000002", "oCLS0000000000000000000000003"}
	c := &campaigns.Campaign{Name: "protected", Account: "shop", Kind: campaigns.KindCustom,
		Custom:   &campaigns.CustomSpec{MsgType: wechat.MsgTypeText, Text: &wechat.Text{Content: "您好"}},
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceInline, OpenIDs: openids}}
	require.NoError(t, store.Create(ctx, c))
	run1, err := store.StartRun(ctx, c)
	require.NoError(t, err)
	_, err = store.RecordAll(ctx, c, run1, campaigns.Settle{OpenID: openids[0], Mode: campaigns.RecordUnanswered,
		Outcome: campaigns.SuppressedOutcome(campaigns.Suppression{OpenID: openids[0], Reason: campaigns.SuppressUnfollowed, Code: 43004, At: time.Now()})})
	require.NoError(t, err)
	due := time.Now().Add(3 * time.Hour).Truncate(time.Second)
	_, err = store.Unbegin(ctx, c, run1, openids[1], false, &campaigns.Deferral{Reason: campaigns.DeferCap, Until: due}, nil, campaigns.RecordPlain)
	require.NoError(t, err)

	stdout, stderr, code := run(t, cli, "campaign", "status", c.ID)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "\nwaiting: quiet hours until "+until.Format("2006-01-02 15:04")+" UTC (sends wait without using retries)\n")
	require.Contains(t, stdout, "\nsuppressed 1 · deferred by caps 1 · deferred now 1 (next "+due.UTC().Format("2006-01-02 15:04")+" UTC)\n")

	var st runStatus
	_, raw := apiGet(t, cli, "/v1/campaigns/"+c.ID+"/runs/1")
	require.NoError(t, json.Unmarshal(raw, &st))
	require.Contains(t, progressLine(st, 0), "quiet hours until ")
	require.Contains(t, progressLine(st, 0), "suppressed 1 · deferred by caps 1 · deferred now 1")
}

// apiGet reads path from the API the CLI environment cli names.
func apiGet(t *testing.T, cli []string, path string) (int, []byte) {
	t.Helper()
	var addr, key string
	for _, kv := range cli {
		if v, ok := strings.CutPrefix(kv, "WXMASS_API_URL=http://"); ok {
			addr = v
		}
		if v, ok := strings.CutPrefix(kv, "WXMASS_API_KEY="); ok {
			key = v
		}
	}
	code, _, raw := apiCall(t, addr, key, "GET", path, "")
	return code, raw
}

// TestCampaignStatusShowsProtection: `campaign status` and `watch` print
// the run's protection counts, the non-zero ones only, and the quiet-hours
// wait; a run without them prints neither.
func TestCampaignStatusShowsProtection(t *testing.T) {
	t.Parallel()
	var st runStatus
	require.NoError(t, json.Unmarshal([]byte(`{"campaign":"c1","account":"a","run":1,"state":"running","size":60,"settled":15,
		"started":"2026-12-07T21:00:00Z","counters":{"sent":0,"skipped":15},
		"waiting":{"reason":"quiet_hours","since":"2026-12-07T14:00:00Z","until":"2026-12-08T00:00:00Z"},
		"protection":{"suppressed":12,"capped":3,"outside_window":0,"deferred":{"cap":40,"rest":0},"deferred_now":40,"next_due":"2026-12-08T00:00:00Z"}}`), &st))
	next := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	var b strings.Builder
	require.NoError(t, printRunReport(&b, st))
	require.Contains(t, b.String(), "waiting: quiet hours until "+cliTime(next)+" (sends wait without using retries)\n")
	require.Contains(t, b.String(), "\nsuppressed 12 · capped 3 · deferred by caps 40 · deferred now 40 (next "+cliTime(next)+")\n")
	require.NotContains(t, b.String(), "outside window", "zero counts are left out")
	line := progressLine(st, 0)
	require.Contains(t, line, "quiet hours until "+next.Local().Format(time.TimeOnly))
	require.Contains(t, line, "suppressed 12 · capped 3")

	st.Waiting, st.Protection = nil, nil
	b.Reset()
	require.NoError(t, printRunReport(&b, st))
	require.NotContains(t, b.String(), "quiet hours")
	require.NotContains(t, b.String(), "suppressed")
	require.NotContains(t, progressLine(st, 0), "suppressed")
}

// TestSuppressEventsCLI: `wxmass suppress events` against a real `wxmass
// serve` prints the account's audit trail, newest first: who added,
// removed and imported users of its list and set its mass-send speed, the
// counts, one user's openid masked, and the answer; --limit cuts it (and
// says so), --json prints it as the API answers it; the account is named
// by id or appid; an unknown account exits 2.
func TestSuppressEventsCLI(t *testing.T) {
	t.Parallel()
	const apiKey = "events-cli-key-0123456789"
	cli, _, _ := suppressServe(t, apiKey)
	o := func(n int) string { return fmt.Sprintf("oCLE%024d", n) }
	suppress := func(args ...string) (string, string, int) {
		t.Helper()
		return run(t, cli, append([]string{"suppress"}, args...)...)
	}
	list := filepath.Join(t.TempDir(), "list.csv")
	require.NoError(t, os.WriteFile(list, []byte(o(2)+"\n"+o(3)+"\nN/A\n"), 0o600))

	stdout, stderr, code := suppress("events", "--account", "shop")
	require.Equal(t, 0, code, stderr)
	require.Equal(t, "no events\n", stdout)

	for _, args := range [][]string{
		{"add", "--account", "shop", o(1)},
		{"add", "--account", "shop", o(1), o(2)},
		{"import", "--account", wechattest.AppIDDefault, list},
		{"remove", "--account", "shop", o(1)},
	} {
		_, stderr, code := suppress(args...)
		require.Equal(t, 0, code, "%v: %s", args, stderr)
	}
	_, stderr, code = run(t, cli, "campaign", "mass-speed", "shop", "--set", "2")
	require.Equal(t, 0, code, stderr)

	for _, acct := range []string{"shop", wechattest.AppIDDefault} {
		stdout, stderr, code = suppress("events", "--account", acct)
		require.Equal(t, 0, code, stderr)
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		require.Len(t, lines, 6, stdout)
		require.Regexp(t, `^time +key +action +user +result$`, lines[0])
		ts := `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z +ops +`
		require.Regexp(t, ts+`mass_speed +- +200 \(speed 2\)$`, lines[1])
		require.Regexp(t, ts+`suppress_remove +oCLE…0001 +204 \(removed 1\)$`, lines[2])
		require.Regexp(t, ts+`suppress_import +- +200 \(added 1, updated 1, bad 1\)$`, lines[3])
		require.Regexp(t, ts+`suppress_add +- +200 \(added 1, updated 1\)$`, lines[4])
		require.Regexp(t, ts+`suppress_add +oCLE…0001 +200 \(added 1, updated 0\)$`, lines[5])
		require.NotContains(t, stdout, o(1), "no raw openid")
		require.NotContains(t, stdout, apiKey)
	}

	stdout, stderr, code = suppress("events", "--account", "shop", "--limit", "2", "--json")
	require.Equal(t, 0, code, stderr)
	var page struct {
		Events []struct {
			Key, Action, Account, OpenID string
			Status                       int
			Counts                       map[string]int
			RequestID                    string `json:"request_id"`
		}
		NextBefore string `json:"next_before"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &page), stdout)
	require.Len(t, page.Events, 2)
	require.NotEmpty(t, page.NextBefore, "older events are left")
	require.Equal(t, "mass_speed", page.Events[0].Action)
	require.Equal(t, map[string]int{"speed": 2}, page.Events[0].Counts)
	require.Equal(t, "shop", page.Events[1].Account)
	require.Equal(t, "oCLE…0001", page.Events[1].OpenID)
	require.Equal(t, 204, page.Events[1].Status)
	require.NotEmpty(t, page.Events[1].RequestID)
	require.NotContains(t, stdout, `"campaign"`, "an account's event names no campaign")

	stdout, stderr, code = suppress("events", "--account", "shop", "--limit", "2")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "(older events: raise --limit)")

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"an unknown account", []string{"events", "--account", "sports"}, `no account "sports" (configured: shop) (HTTP 404 not_found, field account)`},
		{"no account", []string{"events"}, "--account: name the account"},
		{"a bad limit", []string{"events", "--account", "shop", "--limit", "0"}, "--limit: want at least 1"},
		{"an argument", []string{"events", "--account", "shop", "x"}, "events takes no arguments"},
	} {
		_, stderr, code := suppress(tc.args...)
		require.Equal(t, exitUsage, code, "%s: %s", tc.name, stderr)
		require.Contains(t, stderr, tc.want, tc.name)
	}
}
