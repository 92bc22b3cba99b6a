package wechattest

import (
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestNewValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"appid", Config{Accounts: []Account{{AppID: "wx1", Secret: "s"}}}, `Config.Accounts[0].AppID: "wx1" is not an appid`},
		{"duplicate appid", Config{Accounts: []Account{{AppID: AppIDDefault, Secret: "s"}, {AppID: AppIDDefault, Secret: "t"}}}, `Config.Accounts[1].AppID: duplicate appid`},
		{"secret", Config{Accounts: []Account{{AppID: AppIDDefault}}}, `Config.Accounts[0].Secret: empty`},
		{"template id empty", Config{TemplateIDs: []string{"A", " "}}, `Config.TemplateIDs[1]: empty id`},
		{"template id duplicate", Config{SubscribeTemplateIDs: []string{"A", "A"}}, `Config.SubscribeTemplateIDs[1]: duplicate id "A"`},
		{"keywords template", Config{TemplateKeywords: map[string][]string{"X": {"thing1"}}}, `Config.TemplateKeywords["X"]: template id "X" is in neither`},
		{"keywords key", Config{TemplateKeywords: map[string][]string{TemplateIDDefault: {"Thing1"}}}, `Config.TemplateKeywords["TPL_ORDER_SHIPPED"][0]: "Thing1" is not a template keyword`},
		{"kf account", Config{KFAccounts: []string{"nobody"}}, `Config.KFAccounts[0]: "nobody" is not a kf_account`},
		{"followers", Config{Followers: -1}, `Config.Followers: -1 is not in`},
		{"follower id", Config{FollowerIDs: []string{"o1"}}, `Config.FollowerIDs[0]: "o1" is not an openid`},
		{"tag member", Config{Tags: map[int64][]string{7: {openID("a"), "bad"}}}, `Config.Tags["7"][1]: "bad" is not an openid`},
		{"terminal openid", Config{Terminal: map[string]int{"bad": 43004}}, `Config.Terminal["bad"]: "bad" is not an openid`},
		{"terminal zero", Config{Terminal: map[string]int{openID("a"): 0}}, `errcode 0 is success`},
		{"limit api", Config{Limits: map[string]Limit{"message/mass/send": {Daily: 1}}}, `Config.Limits["message/mass/send"]: unknown API`},
		{"limit negative", Config{Limits: map[string]Limit{nameTemplateSend: {PerSecond: -1}}}, `Config.Limits["message/template/send"].PerSecond: -1 is negative`},
		{"limit too high", Config{Limits: map[string]Limit{nameTemplateSend: {PerSecond: PerSecondMax + 1}}}, `Config.Limits["message/template/send"].PerSecond: 1000001 is over 1000000`},
		{"page size", Config{PageSize: 10001}, `Config.PageSize: 10001 is not in [1, 10000]`},
		{"time scale", Config{TimeScale: -1}, `Config.TimeScale: -1 is not a positive number`},
		{"time scale nan", Config{TimeScale: math.NaN()}, `Config.TimeScale: NaN`},
		{"faults", Config{Faults: Faults{Slow: 2}}, `Config.Faults.Slow: rate 2 is not in [0, 1]`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tc.cfg)
			require.ErrorContains(t, err, tc.want)
			var ce *ConfigError
			require.True(t, errors.As(err, &ce))
		})
	}
}

func TestNewDefaults(t *testing.T) {
	t.Parallel()
	s, err := New(Config{})
	require.NoError(t, err)
	require.Contains(t, s.accounts, AppIDDefault)
	require.Equal(t, map[string]string{TemplateIDDefault: TemplateIDDefault}, s.templates.Load().canon)
	require.Equal(t, []string{TemplateIDDefault}, s.TemplateIDs())
	require.Equal(t, map[string]string{SubscribeTemplateIDDefault: SubscribeTemplateIDDefault}, s.subTemplates)
	require.Equal(t, PageSizeDefault, s.set.pageSize)
	require.Equal(t, TokenTTL, s.set.tokenTTL)
	require.Equal(t, "Asia/Shanghai", s.set.loc.String())
	require.Empty(t, s.FollowerOpenIDs())
	require.Empty(t, s.URL())
}

const fullYAML = `
accounts:
  - app_id: wx00000000000fake1
    secret: fakesecret-0123456789abcdef0123456
  - app_id: wx0000000000000two
    secret: two
    token_errcode: 40164
template_ids: [TPL_ORDER_SHIPPED, TPL_PAID]
subscribe_template_ids: [SUB_1]
template_keywords:
  TPL_PAID: [thing1, amount2]
media_ids: [MEDIA_1]
kf_accounts: [kf1@fake]
followers: 100
follower_ids: [oAAAAAAAAAAAAAAAAAAAAAAAAAAA]
tags:
  134: [oAAAAAAAAAAAAAAAAAAAAAAAAAAA]
require_follower: true
terminal:
  oBBBBBBBBBBBBBBBBBBBBBBBBBBB: 43004
cs_window: true
limits:
  message/template/send: {per_second: 500, daily: 100000}
  stable_token: {daily: 500000}
page_size: 5000
faults: {system_error: 0.01, http_5xx: 0.02, drop_after_record: 0.001, slow: 0.01, slow_delay: 3s, invalidate_tokens: 0.0001, latency: 20ms}
seed: 42
time_scale: 60
quota_location: UTC
`

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(strings.NewReader(fullYAML))
	require.NoError(t, err)
	require.Equal(t, Config{
		Accounts: []Account{
			{AppID: AppIDDefault, Secret: SecretDefault},
			{AppID: "wx0000000000000two", Secret: "two", TokenErrcode: 40164},
		},
		TemplateIDs:          []string{"TPL_ORDER_SHIPPED", "TPL_PAID"},
		SubscribeTemplateIDs: []string{"SUB_1"},
		TemplateKeywords:     map[string][]string{"TPL_PAID": {"thing1", "amount2"}},
		MediaIDs:             []string{"MEDIA_1"},
		KFAccounts:           []string{"kf1@fake"},
		Followers:            100,
		FollowerIDs:          []string{"oAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		Tags:                 map[int64][]string{134: {"oAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		RequireFollower:      true,
		Terminal:             map[string]int{"oBBBBBBBBBBBBBBBBBBBBBBBBBBB": 43004},
		CSWindow:             true,
		Limits:               map[string]Limit{nameTemplateSend: {PerSecond: 500, Daily: 100000}, nameStableToken: {Daily: 500000}},
		PageSize:             5000,
		Faults:               Faults{SystemError: 0.01, HTTP5xx: 0.02, DropAfterRecord: 0.001, Slow: 0.01, SlowDelay: 3 * time.Second, InvalidateTokens: 0.0001, Latency: 20 * time.Millisecond},
		Seed:                 42,
		TimeScale:            60,
		QuotaLocation:        time.UTC,
	}, cfg)
	_, err = New(cfg)
	require.NoError(t, err)

	empty, err := LoadConfig(strings.NewReader(""))
	require.NoError(t, err)
	require.Equal(t, Config{}, empty)
}

func TestLoadConfigErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		yaml string
		want string
	}{
		{"unknown key", "followers: 1\nfolowers: 2\n", "line 2: field folowers not found"},
		{"unknown nested key", "accounts:\n  - app_id: wx00000000000fake1\n    secret: s\n    secrte: t\n", "line 4: field secrte not found"},
		{"wrong type", "followers: many\n", "line 1: cannot unmarshal !!str `many` into int"},
		{"duration as number", "faults:\n  slow: 0.5\n  slow_delay: 3\n", "line 3: cannot unmarshal !!int `3` into time.Duration"},
		{"two documents", "seed: 1\n---\nseed: 2\n", "more than one YAML document"},
		{"syntax", "accounts: [\n", "yaml:"},
		{"invalid appid", "accounts:\n  - app_id: wx00000000000fake1\n    secret: s\n  - app_id: nope\n    secret: s\n", `config line 4: accounts[1].app_id: "nope" is not an appid`},
		{"invalid limit", "limits:\n  message/template/send:\n    per_second: -5\n", `config line 3: limits["message/template/send"].per_second: -5 is negative`},
		{"invalid api", "seed: 1\nlimits:\n  nope: {daily: 1}\n", `config line 3: limits["nope"]: unknown API`},
		{"invalid tag member", "tags:\n  7:\n    - oAAAAAAAAAAAAAAAAAAAAAAAAAAA\n    - bad\n", `config line 4: tags["7"][1]: "bad" is not an openid`},
		{"invalid rate", "faults:\n  http_5xx: 2\n", `config line 2: faults.http_5xx: rate 2 is not in [0, 1]`},
		{"negative latency", "faults:\n  slow: 0\n  latency: -1s\n", `config line 3: faults.latency: -1s is negative`},
		{"duplicate follower", "followers: 0\nfollower_ids:\n  - oAAAAAAAAAAAAAAAAAAAAAAAAAAA\n  - oAAAAAAAAAAAAAAAAAAAAAAAAAAA\n", `config line 4: follower_ids[1]: duplicate openid`},
		{"location", "quota_location: Mars/Olympus\n", `config line 1: quota_location: unknown time zone Mars/Olympus`},
		{"time scale", "time_scale: -2\n", `config line 1: time_scale: -2 is not a positive number`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadConfig(strings.NewReader(tc.yaml))
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestLoadConfigSample(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/fakewechat.yaml")
	require.NoError(t, err)
	defer f.Close()
	cfg, err := LoadConfig(f)
	require.NoError(t, err)
	require.Len(t, cfg.Accounts, 2)
	require.Equal(t, 100000, cfg.Followers)
	require.Equal(t, 3*time.Second, cfg.Faults.SlowDelay)
	s, err := New(cfg)
	require.NoError(t, err)
	require.Len(t, s.FollowerOpenIDs(), 100000)
}
