package account

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

const (
	shopAppID = "wx0000000000000001"
	newsAppID = "wx0000000000000002"
	blogAppID = "wx0000000000000003"
	shopOld   = "shop-secret-old"
	shopNew   = "shop-secret-new"
	newsSec   = "news-secret"
)

// recordedMetrics records TokenRefresh calls as "account ok" or
// "account error".
type recordedMetrics struct {
	mu    sync.Mutex
	calls []string
}

func (m *recordedMetrics) TokenRefresh(account string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.calls = append(m.calls, account+" "+result)
}

func (m *recordedMetrics) Calls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.calls...)
}

type hubBundle struct {
	fake    *wechattest.Server
	rdb     *rdb.RDB
	metrics *recordedMetrics
	applied chan []Spec // what OnApply saw
}

// setupHub starts a fake WeChat with the shop and news accounts and
// returns a HubConfig calling it, on a Redis prefix of the test's own.
func setupHub(t *testing.T) (*hubBundle, HubConfig) {
	t.Helper()
	c := redistest.Client(t, redistest.DBDefault)
	b := &hubBundle{
		fake: wechattest.Start(t, wechattest.Config{Accounts: []wechattest.Account{
			{AppID: shopAppID, Secret: shopOld}, {AppID: newsAppID, Secret: newsSec}}}),
		rdb:     rdb.New(c, redistest.Prefix(t, c)),
		metrics: &recordedMetrics{},
		applied: make(chan []Spec, 8),
	}
	cfg := HubConfig{WeChat: wechat.New(wechat.WithBaseURLs(b.fake.URL())), RDB: b.rdb, Metrics: b.metrics}
	return b, cfg
}

// newHub returns a Hub of cfg and specs whose applies are sent on
// b.applied.
func (b *hubBundle) newHub(t *testing.T, cfg HubConfig, specs []Spec) *Hub {
	t.Helper()
	h, err := NewHub(cfg, specs)
	require.NoError(t, err)
	h.OnApply(func(specs []Spec) { b.applied <- specs })
	return h
}

func testSpec(id, appID, appSecret string, rate float64) Spec {
	l := ratelimit.Limit{Rate: rate, Burst: 1}
	return Spec{ID: id, AppID: appID, Secret: secret.New(appSecret), TokenAPI: TokenAPIStable,
		Limits: map[string]ratelimit.Limit{wechat.APITemplateSend: l, wechat.APICustomSend: l}}
}

func TestNewHub(t *testing.T) {
	t.Parallel()
	b, cfg := setupHub(t)
	specs := []Spec{testSpec("shop", shopAppID, shopOld, 300), testSpec("news", newsAppID, newsSec, 100)}
	specs[0].DailyQuota = map[string]int64{wechat.APITemplateSend: 5000}
	specs[1].Location = time.UTC
	h := b.newHub(t, cfg, specs)

	reg := h.Registry()
	require.Equal(t, "shop", reg.Default(), "the first spec is the default")
	shop, err := reg.Get("shop")
	require.NoError(t, err)
	require.Equal(t, shopAppID, shop.AppID)
	require.Same(t, h.tokens[shopAppID], shop.Tokens)
	require.Equal(t, ratelimit.Limit{Rate: 300, Burst: 1, Daily: 5000}, shop.Limit(wechat.APITemplateSend), "the daily quota joins the limit")
	require.Equal(t, ratelimit.Limit{Rate: 300, Burst: 1}, shop.Limit(wechat.APICustomSend))
	require.Equal(t, shop.Limit(wechat.APITemplateSend), shop.Default, "the template limit is the default")
	require.Equal(t, specs, h.Specs())
	require.Equal(t, TimeZoneDefault, shop.TimeZone().String(), "no time zone: the default")
	news, err := reg.Get("news")
	require.NoError(t, err)
	require.Same(t, time.UTC, news.Location, "the spec's time zone")

	for _, tc := range []struct {
		name string
		cfg  HubConfig
		want string
	}{
		{"no WeChat", HubConfig{RDB: cfg.RDB}, "WeChat is nil"},
		{"no RDB", HubConfig{WeChat: cfg.WeChat}, "RDB is nil"},
		{"no account", cfg, "no account configured"},
	} {
		_, err := NewHub(tc.cfg, nil)
		require.ErrorContains(t, err, tc.want, tc.name)
	}
	_, err = NewHub(cfg, []Spec{testSpec("a", shopAppID, "s", 1), testSpec("a", newsAppID, "s", 1)})
	require.ErrorContains(t, err, "a configured twice")
}

// Apply replaces the accounts in force at once; every appid keeps its
// token cache; a refused configuration changes nothing.
func TestHubApply(t *testing.T) {
	t.Parallel()
	b, cfg := setupHub(t)
	specs := []Spec{testSpec("shop", shopAppID, shopOld, 300), testSpec("news", newsAppID, newsSec, 100)}
	h := b.newHub(t, cfg, specs)
	shopTokens := h.tokens[shopAppID]

	rotated := []Spec{testSpec("shop", shopAppID, shopNew, 50), testSpec("blog", blogAppID, "blog-secret", 10)}
	require.NoError(t, h.Apply(t.Context(), rotated))
	require.Equal(t, rotated, <-b.applied, "OnApply sees the new configuration")
	require.Equal(t, rotated, h.Specs())

	// The registry follows, with the token cache of each appid kept.
	shop, err := h.Registry().Get("shop")
	require.NoError(t, err)
	require.Same(t, h.tokens[shopAppID], shop.Tokens)
	require.Same(t, shopTokens, shop.Tokens)
	require.Equal(t, ratelimit.Limit{Rate: 50, Burst: 1}, shop.Limit(wechat.APITemplateSend))
	require.Equal(t, shopNew, h.creds[shopAppID].Load().Secret.Reveal(), "the next fetch uses the new appsecret")
	_, err = h.Registry().Get("news")
	require.ErrorIs(t, err, ErrUnknown, "a removed account")
	blog, err := h.Registry().Get(blogAppID)
	require.NoError(t, err, "an added account")
	require.Same(t, h.tokens[blogAppID], blog.Tokens)

	// Refused: the accounts in force stay and OnApply is not called.
	require.ErrorContains(t, h.Apply(t.Context(), []Spec{testSpec("x", shopAppID, "s", 1), testSpec("x", newsAppID, "s", 1)}), "configured twice")
	require.ErrorContains(t, h.Apply(t.Context(), nil), "no account")
	require.Equal(t, rotated, h.Specs())
	_, err = h.Registry().Get("blog")
	require.NoError(t, err)
	require.Empty(t, b.applied)
}

// A token fetch uses the appsecret in force at the time: an appsecret reset
// at WeChat fails the fetch (and the error is remembered in Redis, so that
// no process calls the token API again for a while), and applying the new
// appsecret forgets that error, so the very next Token fetches with it.
func TestHubFetchesWithTheSecretInForce(t *testing.T) {
	t.Parallel()
	b, cfg := setupHub(t)
	ctx := t.Context()
	specs := []Spec{testSpec("shop", shopAppID, shopOld, 300)}
	h := b.newHub(t, cfg, specs)
	shop, err := h.Registry().Get("shop")
	require.NoError(t, err)

	tok, err := shop.Tokens.Token(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"shop ok"}, b.metrics.Calls())

	require.NoError(t, b.fake.SetSecret(shopAppID, shopNew))
	require.NoError(t, shop.Tokens.Invalidate(ctx, tok))
	_, err = shop.Tokens.Token(ctx)
	require.ErrorIs(t, err, wechat.ErrTokenConfig, "the old appsecret is refused")
	_, err = shop.Tokens.Token(ctx)
	require.ErrorIs(t, err, wechat.ErrTokenConfig, "the error is remembered")
	require.Equal(t, []string{"shop ok", "shop error"}, b.metrics.Calls(), "without calling WeChat again")

	b.fake.InvalidateTokens() // else stable_token answers the token it issued before
	issued := b.fake.Stats().APIs["stable_token"].TokensIssued
	rotated := []Spec{testSpec("shop", shopAppID, shopNew, 300)}
	require.NoError(t, h.Apply(ctx, rotated))
	<-b.applied
	_, err = shop.Tokens.Token(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"shop ok", "shop error", "shop ok"}, b.metrics.Calls())
	require.Greater(t, b.fake.Stats().APIs["stable_token"].TokensIssued, issued, "a token fetched with the new appsecret")
}

// Run applies the accounts file again on Reload and every Interval, keeps
// the accounts in force when the file turns bad, and returns when ctx ends.
func TestHubRun(t *testing.T) {
	t.Parallel()
	b, cfg := setupHub(t)
	dir := t.TempDir()
	writeFile(t, dir, "shop.secret", shopOld)
	file := func(rate int) string {
		return fmt.Sprintf("accounts:\n  - {id: shop, appid: %s, appsecret_file: shop.secret, rate: {template: %d}}\n", shopAppID, rate)
	}
	path := writeFile(t, dir, "accounts.yaml", file(300))
	core, logs := observer.New(zap.InfoLevel)
	cfg.Path, cfg.Defaults, cfg.Interval, cfg.Logger = path, Defaults{Rate: 100}, time.Hour, zap.New(core)
	specs, err := LoadFile(path, cfg.Defaults, nil)
	require.NoError(t, err)
	h := b.newHub(t, cfg, specs)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()

	writeFile(t, dir, "shop.secret", shopNew)
	h.Reload()
	got := <-b.applied
	require.Equal(t, shopNew, got[0].Secret.Reveal())
	require.Equal(t, shopNew, h.Specs()[0].Secret.Reveal())

	// A broken file changes nothing; fixing it applies what changed since.
	writeFile(t, dir, "accounts.yaml", "accounts:\n  - {id: shop, appid: nope, appsecret_file: shop.secret}\n")
	h.Reload()
	require.Eventually(t, func() bool {
		return logs.FilterLoggerName("accounts").FilterMessage("accounts file refused; the accounts in force stay").Len() == 1
	}, 10*time.Second, 5*time.Millisecond, "the broken file is not refused")
	require.Equal(t, shopNew, h.Specs()[0].Secret.Reveal(), "the accounts in force stay")
	writeFile(t, dir, "accounts.yaml", file(7))
	h.Reload()
	got = <-b.applied
	shop, err := h.Registry().Get("shop")
	require.NoError(t, err)
	require.Equal(t, 7.0, shop.Limit(wechat.APITemplateSend).Rate)
	require.Equal(t, got, h.Specs())

	cancel()
	require.NoError(t, <-done)
	require.Empty(t, b.applied, "the broken file applied nothing")
}

// Run reads the file every Interval without being asked.
func TestHubRunInterval(t *testing.T) {
	t.Parallel()
	b, cfg := setupHub(t)
	dir := t.TempDir()
	path := writeFile(t, dir, "accounts.yaml", "accounts:\n  - {id: shop, appid: "+shopAppID+", appsecret_env: S}\n")
	getenv := env(map[string]string{"S": shopOld})
	cfg.Path, cfg.Defaults, cfg.Getenv, cfg.Interval = path, Defaults{Rate: 100}, getenv, 10*time.Millisecond
	specs, err := LoadFile(path, cfg.Defaults, getenv)
	require.NoError(t, err)
	h := b.newHub(t, cfg, specs)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	writeFile(t, dir, "accounts.yaml", "accounts:\n  - {id: shop, appid: "+shopAppID+", appsecret_env: S}\n  - {id: news, appid: "+newsAppID+", appsecret_env: S}\n")
	got := <-b.applied
	require.Len(t, got, 2)
	_, err = h.Registry().Get("news")
	require.NoError(t, err)
	cancel()
	require.NoError(t, <-done)
}

// Without an accounts file there is nothing to reload: Run returns at once.
func TestHubRunWithoutFile(t *testing.T) {
	t.Parallel()
	b, cfg := setupHub(t)
	h := b.newHub(t, cfg, []Spec{testSpec("shop", shopAppID, shopOld, 1)})
	h.Reload() // never blocks, even with no Run to take it
	h.Reload()
	require.NoError(t, h.Run(t.Context()))
	require.Empty(t, b.applied)
}
