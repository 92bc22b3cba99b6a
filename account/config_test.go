package account

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat"
)

const aesKey = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte(body), 0o600))
	return p
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "shop.secret", "shop-secret\n")
	writeFile(t, dir, "cb.token", "cbtoken")
	path := writeFile(t, dir, "accounts.yaml", `
accounts:
  - id: shop
    appid: wx0123456789abcdef
    appsecret_file: shop.secret
    rate: {template: 300, custom: 50}
    burst: {template: 20}
    daily_quota: {template: 100000}
    callback:
      mode: safe
      token_file: cb.token
      aes_key_env: SHOP_AES
  - appid: wxfedcba9876543210
    appsecret_env: NEWS_SECRET
    token_api: plain
`)
	specs, err := LoadFile(path, Defaults{Rate: 100}, env(map[string]string{"NEWS_SECRET": " news-secret ", "SHOP_AES": aesKey}))
	require.NoError(t, err)
	require.Len(t, specs, 2)

	shop := specs[0]
	require.Equal(t, "shop", shop.ID)
	require.Equal(t, "shop-secret", shop.Secret.Reveal(), "secret file read and trimmed, relative to the accounts file")
	require.Equal(t, TokenAPIStable, shop.TokenAPI)
	require.Equal(t, ratelimit.Limit{Rate: 300, Burst: 20}, shop.Limits[wechat.APITemplateSend])
	require.Equal(t, ratelimit.Limit{Rate: 50, Burst: 5}, shop.Limits[wechat.APICustomSend], "burst: a tenth of the account's own rate")
	require.Equal(t, ratelimit.Limit{Rate: 100, Burst: 10}, shop.Limits[wechat.APIBizSend], "an API not listed gets the default")
	require.Equal(t, map[string]int64{wechat.APITemplateSend: 100000}, shop.DailyQuota)
	require.NotNil(t, shop.Callback)
	require.Equal(t, "safe", shop.Callback.Mode)
	require.Equal(t, "cbtoken", shop.Callback.Token.Reveal())
	require.Equal(t, aesKey, shop.Callback.AESKey.Reveal())

	news := specs[1]
	require.Equal(t, "wxfedcba9876543210", news.ID, "the id defaults to the appid")
	require.Equal(t, "news-secret", news.Secret.Reveal())
	require.Equal(t, TokenAPIPlain, news.TokenAPI)
	require.Nil(t, news.Callback)
}

// Every refused file names the field at fault, and no error holds a secret.
func TestLoadRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "s", "the-secret-value")
	writeFile(t, dir, "empty", "\n")
	const ok = "appid: wx0123456789abcdef\n    appsecret_file: s\n"
	cases := []struct {
		name, body, want string
	}{
		{"empty", ``, "accounts: no account configured"},
		{"no accounts", "accounts: []\n", "accounts: no account configured"},
		{"unknown field", "accounts:\n  - " + ok + "    rates: {template: 1}\n", "field rates not found"},
		{"wrong type", "accounts:\n  - " + ok + "    rate: {template: fast}\n", "cannot unmarshal"},
		{"no appid", "accounts:\n  - appsecret_file: s\n", "accounts[0].appid: required"},
		{"bad appid", "accounts:\n  - appid: wx12\n    appsecret_file: s\n", `accounts[0].appid: "wx12" is not an appid`},
		{"bad id", "accounts:\n  - id: shop/1\n    " + ok, `accounts[0].id: "shop/1"`},
		{"duplicate id", "accounts:\n  - id: a\n    " + ok + "  - id: a\n    appid: wxfedcba9876543210\n    appsecret_file: s\n", `accounts[1].id: "a" is also accounts[0]'s id`},
		{"duplicate appid", "accounts:\n  - id: a\n    " + ok + "  - id: b\n    " + ok, "accounts[1].appid: wx0123456789abcdef is also accounts[0]'s appid"},
		{"no secret", "accounts:\n  - appid: wx0123456789abcdef\n", "accounts[0].appsecret_file: required (or appsecret_env)"},
		{"two secrets", "accounts:\n  - " + ok + "    appsecret_env: X\n", "accounts[0].appsecret: set appsecret_file or appsecret_env, not both"},
		{"missing secret file", "accounts:\n  - appid: wx0123456789abcdef\n    appsecret_file: nothere\n", "accounts[0].appsecret_file: read secret file"},
		{"empty secret file", "accounts:\n  - appid: wx0123456789abcdef\n    appsecret_file: empty\n", "accounts[0].appsecret_file: secret file"},
		{"unset env", "accounts:\n  - appid: wx0123456789abcdef\n    appsecret_env: NOT_SET\n", "accounts[0].appsecret_env: environment variable NOT_SET is not set"},
		{"bad env name", "accounts:\n  - appid: wx0123456789abcdef\n    appsecret_env: 'A-B'\n", `accounts[0].appsecret_env: "A-B" is not`},
		{"token api", "accounts:\n  - " + ok + "    token_api: fast\n", `accounts[0].token_api: "fast" is not stable or plain`},
		{"unknown kind", "accounts:\n  - " + ok + "    rate: {mass: 10}\n", "accounts[0].rate.mass: unknown kind"},
		{"zero rate", "accounts:\n  - " + ok + "    rate: {template: 0}\n", "accounts[0].rate.template: 0: want more than 0"},
		{"huge rate", "accounts:\n  - " + ok + "    rate: {custom: 1e9}\n", "accounts[0].rate.custom: 1e+09"},
		{"zero burst", "accounts:\n  - " + ok + "    burst: {template: 0}\n", "accounts[0].burst.template: 0: want 1 to"},
		{"negative quota", "accounts:\n  - " + ok + "    daily_quota: {subscribe: -1}\n", "accounts[0].daily_quota.subscribe: -1 is negative"},
		{"callback mode", "accounts:\n  - " + ok + "    callback: {mode: secret, token_file: s}\n", `accounts[0].callback.mode: "secret"`},
		{"callback token", "accounts:\n  - " + ok + "    callback: {mode: plain}\n", "accounts[0].callback.token_file: required"},
		{"safe without key", "accounts:\n  - " + ok + "    callback: {mode: safe, token_file: s}\n", "accounts[0].callback.aes_key_file: required"},
		{"short aes key", "accounts:\n  - " + ok + "    callback: {mode: safe, token_file: s, aes_key_file: s}\n", "accounts[0].callback.aes_key: an EncodingAESKey has 43 characters, this one has 16"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, dir, "accounts.yaml", tc.body)
			_, err := LoadFile(path, Defaults{Rate: 100}, env(nil))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.Contains(t, err.Error(), path, "the error names the file")
			require.NotContains(t, err.Error(), "the-secret-value")
		})
	}
	_, err := LoadFile(filepath.Join(dir, "none.yaml"), Defaults{Rate: 100}, nil)
	require.ErrorContains(t, err, "none.yaml")
}

func TestDiff(t *testing.T) {
	load := func(body string) []Spec {
		t.Helper()
		specs, err := Load(strings.NewReader(body), "test", t.TempDir(), Defaults{Rate: 100}, env(map[string]string{"A": "1", "B": "2"}))
		require.NoError(t, err)
		return specs
	}
	base := load("accounts:\n  - {id: a, appid: wx0123456789abcdef, appsecret_env: A}\n  - {id: b, appid: wxfedcba9876543210, appsecret_env: A}\n")
	require.True(t, Diff(base, base).Empty())

	rotated := load("accounts:\n  - {id: a, appid: wx0123456789abcdef, appsecret_env: B}\n  - {id: b, appid: wxfedcba9876543210, appsecret_env: A, rate: {template: 5}}\n")
	c := Diff(base, rotated)
	require.Equal(t, map[string][]string{"a": {"appsecret"}, "b": {"rate"}}, c.Changed)
	require.Empty(t, c.Added)
	require.Empty(t, c.Removed)

	swapped := load("accounts:\n  - {id: c, appid: wx0123456789abcdef, appsecret_env: A}\n  - {id: b, appid: wxfedcba9876543210, appsecret_env: A}\n")
	c = Diff(base, swapped)
	require.Equal(t, []string{"c"}, c.Added)
	require.Equal(t, []string{"a"}, c.Removed)
	require.Nil(t, c.Changed)
}

func TestRegistry(t *testing.T) {
	r, err := NewRegistry(&Account{ID: "shop", AppID: "wx0123456789abcdef"}, &Account{AppID: "wxfedcba9876543210"})
	require.NoError(t, err)
	require.Equal(t, "shop", r.Default())
	for _, name := range []string{"", "shop", "wx0123456789abcdef"} {
		a, err := r.Get(name)
		require.NoError(t, err, name)
		require.Equal(t, "shop", a.ID)
	}
	a, err := r.Get("wxfedcba9876543210")
	require.NoError(t, err)
	require.Equal(t, "wxfedcba9876543210", a.ID, "the id defaults to the appid")
	_, err = r.Get("news")
	require.ErrorIs(t, err, ErrUnknown)
	require.ErrorContains(t, err, `"news" (configured: shop, wxfedcba9876543210)`)

	require.ErrorContains(t, r.Replace(&Account{ID: "x", AppID: "wx0123456789abcdef"}, &Account{ID: "y", AppID: "wx0123456789abcdef"}), "configured twice")
	require.ErrorContains(t, r.Replace(), "no account")
	_, err = r.Get("shop")
	require.NoError(t, err, "a refused Replace changes nothing")

	require.NoError(t, r.Replace(&Account{ID: "news", AppID: "wxfedcba9876543210"}))
	_, err = r.Get("shop")
	require.ErrorIs(t, err, ErrUnknown)
	require.Equal(t, "news", r.Default())
}

// Watch applies a rotated secret file, keeps the accounts in force when the
// file turns bad, and reads at once on Reload.
func TestWatchRotates(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "secret", "old")
	path := writeFile(t, dir, "accounts.yaml", "accounts:\n  - {id: a, appid: wx0123456789abcdef, appsecret_file: secret}\n")
	cur, err := LoadFile(path, Defaults{Rate: 100}, nil)
	require.NoError(t, err)

	applied := make(chan Changes, 4)
	secrets := make(chan string, 4)
	reload := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Watch(ctx, WatchConfig{Path: path, Defaults: Defaults{Rate: 100}, Interval: time.Hour, Reload: reload,
			Apply: func(specs []Spec, c Changes) error {
				secrets <- specs[0].Secret.Reveal()
				applied <- c
				return nil
			}}, cur)
	}()

	writeFile(t, dir, "secret", "new")
	reload <- struct{}{}
	require.Equal(t, "new", <-secrets)
	require.Equal(t, map[string][]string{"a": {"appsecret"}}, (<-applied).Changed)

	// A broken file changes nothing; fixing it applies what changed since.
	writeFile(t, dir, "accounts.yaml", "accounts:\n  - {id: a, appid: nope, appsecret_file: secret}\n")
	reload <- struct{}{}
	writeFile(t, dir, "accounts.yaml", "accounts:\n  - {id: a, appid: wx0123456789abcdef, appsecret_file: secret, rate: {template: 7}}\n")
	reload <- struct{}{}
	require.Equal(t, "new", <-secrets)
	require.Equal(t, map[string][]string{"a": {"rate"}}, (<-applied).Changed)

	cancel()
	require.NoError(t, <-done)
	require.Empty(t, applied, "the broken file applied nothing")
}

func FuzzLoad(f *testing.F) {
	f.Add("accounts:\n  - {id: a, appid: wx0123456789abcdef, appsecret_env: A, rate: {template: 3}}\n")
	f.Add("accounts:\n  - appid: wx0123456789abcdef\n    appsecret_env: A\n    callback: {mode: safe, token_env: A, aes_key_env: K}\n")
	f.Add("accounts: {}")
	f.Fuzz(func(t *testing.T, body string) {
		specs, err := Load(strings.NewReader(body), "fuzz", t.TempDir(), Defaults{Rate: 100},
			env(map[string]string{"A": "secret-a", "K": aesKey}))
		if err != nil {
			if strings.Contains(err.Error(), "secret-a") || strings.Contains(err.Error(), aesKey) {
				t.Fatalf("error holds a secret: %v", err)
			}
			return
		}
		for _, s := range specs {
			for api, l := range s.Limits {
				if l.Rate <= 0 || l.Burst < 1 {
					t.Fatalf("%s %s: limit %+v", s.ID, api, l)
				}
			}
		}
	})
}

// TestLoadTimeZone: an account's time_zone is an IANA name, Asia/Shanghai
// when absent; a wrong one is refused naming the field; a change is a
// change of time_zone; the Hub's Account has it.
func TestLoadTimeZone(t *testing.T) {
	load := func(body string) ([]Spec, error) {
		return Load(strings.NewReader(body), "test", t.TempDir(), Defaults{Rate: 100}, env(map[string]string{"A": "1"}))
	}
	specs, err := load("accounts:\n  - {id: a, appid: wx0123456789abcdef, appsecret_env: A}\n" +
		"  - {id: b, appid: wxfedcba9876543210, appsecret_env: A, time_zone: Europe/Paris}\n")
	require.NoError(t, err)
	require.Equal(t, TimeZoneDefault, specs[0].Location.String(), "the default")
	require.Equal(t, "Europe/Paris", specs[1].Location.String())

	for _, zone := range []string{"Mars/Olympus", "Local", "Asia/Shanghai ", "../etc/passwd"} {
		_, err := load("accounts:\n  - {id: a, appid: wx0123456789abcdef, appsecret_env: A, time_zone: '" + zone + "'}\n")
		require.Error(t, err, zone)
		require.Contains(t, err.Error(), "accounts[0].time_zone: ", zone)
		require.Contains(t, err.Error(), "is not an IANA time zone name", zone)
	}

	moved, err := load("accounts:\n  - {id: a, appid: wx0123456789abcdef, appsecret_env: A, time_zone: UTC}\n" +
		"  - {id: b, appid: wxfedcba9876543210, appsecret_env: A, time_zone: Europe/Paris}\n")
	require.NoError(t, err)
	require.Equal(t, map[string][]string{"a": {"time_zone"}}, Diff(specs, moved).Changed)
	same, err := load("accounts:\n  - {id: a, appid: wx0123456789abcdef, appsecret_env: A, time_zone: Asia/Shanghai}\n" +
		"  - {id: b, appid: wxfedcba9876543210, appsecret_env: A, time_zone: Europe/Paris}\n")
	require.NoError(t, err)
	require.True(t, Diff(specs, same).Empty(), "the default written out is no change")

	require.Equal(t, TimeZoneDefault, (&Account{}).TimeZone().String())
	require.Equal(t, "UTC", (&Account{Location: time.UTC}).TimeZone().String())
}
