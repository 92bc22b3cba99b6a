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
	c := redistest.Client(t, redistest.DBCmd)
	prefix := redistest.Prefix(t, c)
	opt := redistest.Options(t, redistest.DBCmd)
	return []string{
		fmt.Sprintf("WXMASS_REDIS_URL=redis://%s/%d", opt.Addr, opt.DB),
		"WXMASS_REDIS_PREFIX=" + prefix,
	}
}

func TestDemo(t *testing.T) {
	t.Parallel()
	stdout, stderr, code := run(t, redisEnv(t), "demo", "--log-level", "warn")
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
		{"short session", []string{"WXMASS_API_KEYS=usage-test-key-0123456789"}, []string{"serve", "--session-ttl", "30s"}, "--session-ttl: 30s: want a duration from 1m to 720h"},
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
	require.Contains(t, stdout, "expires at:")

	// A secret from a file works the same; the stored token is reused.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "s"), []byte(wechattest.SecretDefault+"\n"), 0o600))
	_, stderr, code = run(t, append(env, "WXMASS_APPSECRET_FILE="+filepath.Join(dir, "s")), "token", "check")
	require.Equal(t, 0, code, stderr)
	require.EqualValues(t, 1, fake.Stats().APIs["stable_token"].Calls)

	// A wrong secret is a clear failure that never prints the secret.
	wrongEnv := append(redisEnv(t), "WXMASS_APPID="+wechattest.AppIDDefault, "WXMASS_WECHAT_BASE_URL="+fake.URL(), "WXMASS_APPSECRET=the-wrong-secret-xyz")
	stdout, stderr, code = run(t, wrongEnv, "token", "check")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "errcode 40125 (appsecret invalid)")
	require.NotContains(t, stdout+stderr, "the-wrong-secret-xyz")
}

// TestReadmeDocumentsEveryFlag keeps the README's configuration table true:
// every flag of every command, and its environment variable, is there.
func TestReadmeDocumentsEveryFlag(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	var walk func(c *cli.Command)
	walk = func(c *cli.Command) {
		for _, f := range c.Flags {
			for _, name := range f.Names() {
				if name == "help" || name == "h" || name == "version" || name == "v" {
					continue
				}
				require.True(t, strings.Contains(string(readme), "`--"+name+"`"), "README lacks flag --%s", name)
				require.True(t, strings.Contains(string(readme), envName(name)), "README lacks %s", envName(name))
			}
		}
		for _, sub := range c.Commands {
			walk(sub)
		}
	}
	walk((&app{}).command())
	require.Contains(t, string(readme), envAppSecret)
	require.Contains(t, string(readme), envAPIKeys)
	// Every WXMASS_ variable the README names exists.
	for _, m := range regexp.MustCompile(`WXMASS_[A-Z_]+`).FindAllString(string(readme), -1) {
		known := m == envAppSecret || m == envAPIKeys || m == envAPIKey || m == envCallbackToken || m == envCallbackAESKey ||
			m == envCallbackAESKeyPrev || m == "WXMASS_PRIVATE_REDIS" || m == "WXMASS_ARTIFACTS"
		for _, name := range allFlagNames((&app{}).command()) {
			if envName(name) == m {
				known = true
			}
		}
		require.True(t, known, "README names %s, which no flag reads", m)
	}
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
