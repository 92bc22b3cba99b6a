package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v3"

	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// binary is the wxmass binary built once for the tests that run it as a
// separate process, the way users and CI do.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wxmass-bin")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "wxmass")
	// Built without -race: the tests that run it measure rates and kill it,
	// and the race detector's slowdown would measure the detector. The
	// packages' own tests run with -race.
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build wxmass: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the binary from the repository root with env added to a clean
// environment, and returns its stdout, stderr and exit code.
func run(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = "../.."
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return stdout.String(), stderr.String(), code
}

func redisEnv(t *testing.T) []string {
	t.Helper()
	return redisEnvDB(t, redistest.DBCmd)
}

// redisEnvDB is the environment of a process on DB db under a prefix of
// the test's own. asynq's queues are per DB, not per prefix: two tests
// whose processes run workers at the same time need DBs of their own, or
// one's workers take the other's tasks.
func redisEnvDB(t *testing.T, db int) []string {
	t.Helper()
	c := redistest.Client(t, db)
	prefix := redistest.Prefix(t, c)
	opt := redistest.Options(t, db)
	return []string{
		fmt.Sprintf("WXMASS_REDIS_URL=redis://%s/%d", opt.Addr, opt.DB),
		"WXMASS_REDIS_PREFIX=" + prefix,
	}
}

func TestDemo(t *testing.T) {
	t.Parallel()
	// A Redis of its own: the demo's workers share asynq's queues with
	// nobody (TestReadmeWalkthrough's run on DBCmd meanwhile).
	srv := redistest.StartServer(t, redistest.ServerConfig{})
	stdout, stderr, code := run(t, []string{"WXMASS_REDIS_URL=" + srv.URL()}, "demo", "--log-level", "warn")
	require.Equal(t, 0, code, "stderr: %s\nstdout: %s", stderr, stdout)
	require.Contains(t, stdout, "3000 recipients uploaded")
	// The 60 recipients WeChat refuses are failed, or unknown when a
	// dropped connection lost the answer to an earlier attempt (WeChat may
	// have taken that one: wxmass does not call it failed).
	m := regexp.MustCompile(`completed: 3000/3000 settled \(2940 sent, (\d+) failed(?:, (\d+) unknown)?\)`).FindStringSubmatch(stdout)
	require.NotNil(t, m, stdout)
	failed, _ := strconv.Atoi(m[1])
	unknown, _ := strconv.Atoi(cmp.Or(m[2], "0"))
	require.Equal(t, 60, failed+unknown, stdout)
	require.Regexp(t, `43004 +\d+ +recipient`, stdout)
	require.Regexp(t, `43101 +\d+ +recipient`, stdout)
	require.Regexp(t, `48002 +\d+ +recipient`, stdout)
	require.Contains(t, stdout, "duplicates delivered: 0")
	require.Contains(t, stdout, "template sends: ")
	// The mass campaign: one batch of the 3,000, one job; the 60 openids
	// WeChat refuses (unfollowed, refused, blocked) are the job's errors.
	require.Contains(t, stdout, "a mass send has no per-recipient outcome")
	require.Regexp(t, `b0:0-3000 +3000 +\d+ +sent +poll`, stdout)
	require.Regexp(t, `msg_id \d+: SEND_SUCCESS, 2940 delivered, 0 filtered \(over 4 this month\), 60 errors`, stdout)
	require.NotContains(t, stdout+stderr, wechattest.SecretDefault)
}

func TestFakeWechatServesAndStops(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	cmd := exec.Command(binary, "fakewechat", "--fake-listen", addr, "--fake-config", "testdata/demo/fake.yaml")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	var stats wechattest.Stats
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/fake/stats")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&stats) == nil
	}, 30*time.Second, 20*time.Millisecond, "fakewechat does not answer: %s", &stderr)
	require.Contains(t, stats.APIs, "message/template/send")

	resp, err := http.Get("http://" + addr + "/cgi-bin/user/get?access_token=nope")
	require.NoError(t, err)
	var body struct{ Errcode int }
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	resp.Body.Close()
	require.Equal(t, 40014, body.Errcode, "a malformed token")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), "a signal stops it cleanly: %s", &stderr)
}

func TestUsageErrorsExitTwo(t *testing.T) {
	t.Parallel()
	env := redisEnv(t)
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"missing appid", nil, []string{"token", "check"}, "--appid (WXMASS_APPID) is required"},
		{"missing secret", []string{"WXMASS_APPID=wx00000000000fake1"}, []string{"token", "check"}, "the appsecret is missing: set WXMASS_APPSECRET or --appsecret-file"},
		{"secret file missing", []string{"WXMASS_APPID=wx00000000000fake1", "WXMASS_APPSECRET_FILE=/nonexistent/secret"}, []string{"token", "check"}, "--appsecret-file"},
		{"bad base url", []string{"WXMASS_APPID=wx00000000000fake1", "WXMASS_APPSECRET=x", "WXMASS_WECHAT_BASE_URL=ftp://x"}, []string{"token", "check"}, `--wechat-base-url: "ftp://x" is not an http(s) URL`},
		{"bad token api", []string{"WXMASS_APPID=wx00000000000fake1", "WXMASS_APPSECRET=x", "WXMASS_TOKEN_API=magic"}, []string{"token", "check"}, `--token-api: "magic" is not stable or plain`},
		{"bad log level", []string{"WXMASS_LOG_LEVEL=loud"}, []string{"token", "check"}, `log level "loud"`},
		{"bad fake config", nil, []string{"fakewechat", "--fake-config", "testdata/demo/audience.csv"}, "--fake-config testdata/demo/audience.csv"},
		{"bad redis url", []string{"WXMASS_REDIS_URL=http://x"}, []string{"token", "check"}, "--redis-url"},
		{"bad quota zone", nil, []string{"demo", "--quota-timezone", "Mars/Base"}, "--quota-timezone"},
		{"no api key", nil, []string{"serve"}, "no API key: set WXMASS_API_KEYS or --api-keys-file"},
		{"short api key", []string{"WXMASS_API_KEYS=short"}, []string{"serve"}, "WXMASS_API_KEYS: key 1: api: an API key must be at least 16 characters"},
		{"bad keys file", nil, []string{"serve", "--api-keys-file", "/nonexistent/keys"}, "--api-keys-file"},
		{"tls cert without key", []string{"WXMASS_API_KEYS=key-0123456789abcdef"}, []string{"serve", "--tls-cert-file", "/nonexistent/c"}, "--tls-cert-file and --tls-key-file go together: set both or neither"},
		{"tls files missing", []string{"WXMASS_API_KEYS=key-0123456789abcdef", "WXMASS_APPID=wx00000000000fake1", "WXMASS_APPSECRET=x"}, []string{"serve", "--listen", "127.0.0.1:0", "--tls-cert-file", "/nonexistent/c", "--tls-key-file", "/nonexistent/k"}, "--tls-cert-file /nonexistent/c, --tls-key-file /nonexistent/k: stat /nonexistent/c: no such file or directory"},
		{"zero body timeout", []string{"WXMASS_API_KEYS=key-0123456789abcdef"}, []string{"serve", "--http-body-timeout", "0s"}, "--http-body-timeout: want more than 0, got 0s"},
		{"negative key rate", []string{"WXMASS_API_KEYS=key-0123456789abcdef"}, []string{"serve", "--api-rate-per-key", "-1"}, "--api-rate-per-key: want 0 (no limit) or more, got -1"},
		{"zero failure burst", []string{"WXMASS_API_KEYS=key-0123456789abcdef"}, []string{"serve", "--auth-failure-burst", "0"}, "--auth-failure-burst: want 1 or more, got 0"},
		{"short session", []string{"WXMASS_API_KEYS=usage-test-key-0123456789"}, []string{"serve", "--session-ttl", "30s"}, "--session-ttl: 30s: want a duration from 1m to 720h"},
		{"short reconcile interval", []string{"WXMASS_APPID=wx00000000000fake1", "WXMASS_APPSECRET=x"}, []string{"worker", "--reconcile-interval", "10ms"}, "--reconcile-interval: 10ms: want at least 100ms"},
		{"bad archive url", []string{"WXMASS_APPID=wx00000000000fake1", "WXMASS_APPSECRET=x"}, []string{"worker", "--archive-url", "ftp://host/dir"}, `--archive-url: campaigns: archive URL: no driver for scheme "ftp"`},
		{"archive before the dedupe window", []string{"WXMASS_APPID=wx00000000000fake1", "WXMASS_APPSECRET=x"}, []string{"worker", "--archive-after", "5m"}, "--archive-after: 5m0s: want at least --dedupe-window (9m0s)"},
		{"short retention", []string{"WXMASS_APPID=wx00000000000fake1", "WXMASS_APPSECRET=x"}, []string{"worker", "--retention", "10m"}, "--retention: 10m0s: want at least 1h"},
		{"retention before the archive", []string{"WXMASS_APPID=wx00000000000fake1", "WXMASS_APPSECRET=x"}, []string{"worker", "--retention", "2h"}, "--retention: 2h0m0s: want at least --archive-after (24h0m0s)"},
		{"short stall timeout", []string{"WXMASS_APPID=wx00000000000fake1", "WXMASS_APPSECRET=x"}, []string{"worker", "--stall-timeout", "500ms"}, "--stall-timeout: 500ms: want at least 1s"},
		{"long session", []string{"WXMASS_API_KEYS=usage-test-key-0123456789", "WXMASS_SESSION_TTL=1000h"}, []string{"all"}, "--session-ttl: 1000h0m0s: want a duration from 1m to 720h"},
	}
	for _, tt := range tests {
		e := append(append([]string{}, env...), tt.env...)
		_, stderr, code := run(t, e, tt.args...)
		require.Equal(t, 2, code, "%s: %s", tt.name, stderr)
		require.Contains(t, stderr, tt.want, tt.name)
	}
}

func TestTokenCheck(t *testing.T) {
	t.Parallel()
	fake := wechattest.Start(t, wechattest.Config{})
	env := append(redisEnv(t), "WXMASS_APPID="+wechattest.AppIDDefault, "WXMASS_WECHAT_BASE_URL="+fake.URL())

	stdout, stderr, code := run(t, append(env, "WXMASS_APPSECRET="+wechattest.SecretDefault), "token", "check")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, "secret:     accepted by WeChat (a fresh stable_token call)")
	require.Contains(t, stdout, "expires at:")

	// A secret from a file works the same; the stored token is reused
	// (one fetch for it), the secret checked on each run.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "s"), []byte(wechattest.SecretDefault+"\n"), 0o600))
	_, stderr, code = run(t, append(env, "WXMASS_APPSECRET_FILE="+filepath.Join(dir, "s")), "token", "check")
	require.Equal(t, 0, code, stderr)
	require.EqualValues(t, 3, fake.Stats().APIs["stable_token"].Calls, "one fetch of the shared token, one check per run")
	require.EqualValues(t, 1, fake.Stats().APIs["stable_token"].TokensIssued)

	// A wrong secret while the token fetched with the right one is still
	// stored: WeChat's refusal, named by its errcode, and exit 1 (it was
	// exit 0, the stored token taken for a proof of the secret). Neither
	// the secret nor a token is printed.
	stdout, stderr, code = run(t, append(env, "WXMASS_APPSECRET=the-wrong-secret-xyz"), "token", "check")
	require.Equal(t, 1, code, "stdout: %s\nstderr: %s", stdout, stderr)
	require.Contains(t, stdout, "secret:     REFUSED: wechat: stable_token: errcode 40125 (appsecret invalid)")
	require.Contains(t, stdout, "expires at:", "the stored token's times are still shown")
	require.Contains(t, stderr, "WeChat refused the credentials of 1 of 1 accounts")
	require.Contains(t, stderr, "errcode 40125 (appsecret invalid)")
	require.NotContains(t, stdout+stderr, "the-wrong-secret-xyz")
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		require.Regexp(t, `^(account|appid|token api|secret|fetched at|refresh at|expires at|token): `, line, "only known lines, never a token")
	}

	// Nothing stored and a wrong secret: the same failure.
	wrongEnv := append(redisEnv(t), "WXMASS_APPID="+wechattest.AppIDDefault, "WXMASS_WECHAT_BASE_URL="+fake.URL(), "WXMASS_APPSECRET=the-wrong-secret-xyz")
	stdout, stderr, code = run(t, wrongEnv, "token", "check")
	require.Equal(t, 1, code)
	require.Contains(t, stdout, "token:      none stored")
	require.Contains(t, stderr, "errcode 40125 (appsecret invalid)")
	require.NotContains(t, stdout+stderr, "the-wrong-secret-xyz")
}

// TestReadmeDocumentsEveryFlag keeps the README's configuration table true:
// every flag of every command, and its environment variable, is there.
func TestReadmeDocumentsEveryFlag(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	tables := readmeFlagTables(t, string(readme))
	root := (&app{}).command()
	// Each command's own flags are rows of the table named after it (the
	// top-level command: campaign's subcommands are under "campaign"); the
	// root's are under "Every command".
	check := func(table string, c *cli.Command) {
		for _, f := range c.Flags {
			if df, ok := f.(cli.DocGenerationFlag); ok {
				require.NotContains(t, df.GetUsage(), "`", "--%s: a backquote in a usage is taken as the value's placeholder by --help", f.Names()[0])
			}
			for _, name := range f.Names() {
				if name == "help" || name == "h" || name == "version" || name == "v" {
					continue
				}
				row, ok := tables[table][name]
				require.True(t, ok, "README: the table of %q lacks flag --%s", table, name)
				require.Contains(t, row, envName(name), "README: the row of --%s (%s) lacks its variable", name, table)
			}
		}
	}
	check("every command", root)
	var walk func(top string, c *cli.Command)
	walk = func(top string, c *cli.Command) {
		check(top, c)
		for _, sub := range c.Commands {
			walk(top, sub)
		}
	}
	for _, c := range root.Commands {
		walk(c.Name, c)
	}
	require.Contains(t, string(readme), envAppSecret)
	require.Contains(t, string(readme), envAPIKeys)
	// Every WXMASS_ variable the README names exists.
	for _, m := range regexp.MustCompile(`WXMASS_[A-Z_]+`).FindAllString(string(readme), -1) {
		known := m == envAppSecret || m == envAPIKeys || m == envAPIKey || m == envCallbackToken || m == envCallbackAESKey ||
			m == envCallbackAESKeyPrev || m == "WXMASS_PRIVATE_REDIS" || m == "WXMASS_ARTIFACTS" || m == "WXMASS_NEED_CHROMIUM"
		for _, name := range allFlagNames((&app{}).command()) {
			if envName(name) == m {
				known = true
			}
		}
		require.True(t, known, "README names %s, which no flag reads", m)
	}
}

// readmeFlagTables reads the flag tables of the README's Configuration
// section: for each command a "### " heading names in backquotes ("every
// command" for the heading "Every command"), its flags' rows by flag name.
func readmeFlagTables(t *testing.T, readme string) map[string]map[string]string {
	t.Helper()
	start := strings.Index(readme, "\n## Configuration\n")
	require.GreaterOrEqual(t, start, 0, "README has a Configuration section")
	section := readme[start+1:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	tables := map[string]map[string]string{}
	var commands []string
	row := regexp.MustCompile("^\\| (`--[a-z0-9-]+`(?:, `--[a-z0-9-]+`)*) \\|")
	flag := regexp.MustCompile("`--([a-z0-9-]+)`")
	quoted := regexp.MustCompile("`([a-z]+)[a-z ]*`")
	for _, line := range strings.Split(section, "\n") {
		if h, ok := strings.CutPrefix(line, "### "); ok {
			commands = nil
			if strings.EqualFold(h, "Every command") {
				commands = []string{"every command"}
			}
			for _, m := range quoted.FindAllStringSubmatch(h, -1) {
				commands = append(commands, m[1])
			}
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil {
			require.NotEmpty(t, commands, "README: the row of %s is under no command's heading", m[1])
			for _, c := range commands {
				if tables[c] == nil {
					tables[c] = map[string]string{}
				}
				for _, f := range flag.FindAllStringSubmatch(m[1], -1) {
					tables[c][f[1]] = line
				}
			}
		}
	}
	return tables
}

func allFlagNames(c *cli.Command) []string {
	var names []string
	for _, f := range c.Flags {
		names = append(names, f.Names()...)
	}
	for _, sub := range c.Commands {
		names = append(names, allFlagNames(sub)...)
	}
	return names
}
