package wechat_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// bundle is one test's fake WeChat and key prefix; each process() is a
// separate client, Redis connection and token cache, as a separate worker
// process would have.
type bundle struct {
	fake   *wechattest.Server
	prefix string
	redis  *redis.Client
}

func setup(t *testing.T, cfg wechattest.Config) *bundle {
	t.Helper()
	c := redistest.Client(t, redistest.DBDefault)
	return &bundle{
		fake:   wechattest.Start(t, cfg),
		prefix: redistest.Prefix(t, c),
		redis:  c,
	}
}

// proc is what one worker process holds.
type proc struct {
	client *wechat.Client
	tokens *wechat.TokenCache
	rdb    *rdb.RDB
}

func (b *bundle) process(t *testing.T, cfg wechat.TokenCacheConfig) *proc {
	t.Helper()
	rc := redistest.Client(t, redistest.DBDefault)
	r := rdb.New(rc, b.prefix)
	client := newClient(t, b.fake.URL())
	if cfg.AppID == "" {
		cfg.AppID = wechattest.AppIDDefault
	}
	if cfg.Fetch == nil {
		appID := cfg.AppID
		cfg.Fetch = func(ctx context.Context) (wechat.AccessToken, error) {
			return client.StableToken(ctx, appID, secret.New(wechattest.SecretDefault), false)
		}
	}
	tc, err := wechat.NewTokenCache(r, cfg)
	require.NoError(t, err)
	return &proc{client: client, tokens: tc, rdb: r}
}

func newClient(t *testing.T, urls ...string) *wechat.Client {
	t.Helper()
	c := wechat.New(wechat.WithBaseURLs(urls...), wechat.WithHTTPClient(&http.Client{Transport: wechat.NewTransport(64)}), wechat.WithTimeout(10*time.Second))
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func (b *bundle) apiStats(api string) wechattest.APIStats {
	return b.fake.Stats().APIs[api]
}

func secretOf(s string) secret.String { return secret.New(s) }
