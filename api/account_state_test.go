package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat"
)

// TestAccountsShowPausesAndCircuit: GET /v1/accounts shows each account's
// time zone, its circuit breaker and the buckets paused now (a 45009 quota
// pause), as the workers keep them in Redis; checked against the OpenAPI
// document.
func TestAccountsShowPausesAndCircuit(t *testing.T) {
	t.Parallel()
	c := redistest.Client(t, redistest.DBAPI)
	r := rdb.New(c, redistest.Prefix(t, c))
	lim, err := ratelimit.New(r, ratelimit.Config{})
	require.NoError(t, err)
	br := ratelimit.NewBreakers(r)
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	shop := &account.Account{ID: "shop", AppID: appID, Default: ratelimit.Limit{Rate: 10, Burst: 1}, Location: paris}
	reg, err := account.NewRegistry(shop)
	require.NoError(t, err)
	b := setup(t, func(c *api.Config) {
		c.Accounts, c.Limiter, c.Breakers = reg, lim, br
	})
	a := b.json(t, "GET", "/v1/accounts", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	v := a.body["accounts"].([]any)[0].(map[string]any)
	require.Equal(t, "Europe/Paris", v["time_zone"])
	require.Equal(t, map[string]any{"open": false, "probes": 0.0}, v["circuit"])
	require.Nil(t, v["paused"], "nothing paused")

	ctx := context.Background()
	until := time.Now().Add(time.Hour).Truncate(time.Second)
	require.NoError(t, lim.Pause(ctx, shop.BucketKey(wechat.APITemplateSend), until))
	_, since, err := br.Open(ctx, appID, time.Minute)
	require.NoError(t, err)
	a = b.json(t, "GET", "/v1/accounts", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	v = a.body["accounts"].([]any)[0].(map[string]any)
	circ := v["circuit"].(map[string]any)
	require.Equal(t, true, circ["open"])
	got, err := time.Parse(time.RFC3339Nano, circ["since"].(string))
	require.NoError(t, err)
	require.True(t, since.Equal(got), "since %v, got %v", since, got)
	paused := v["paused"].([]any)
	require.Len(t, paused, 1, a.raw)
	p := paused[0].(map[string]any)
	require.Equal(t, wechat.APITemplateSend, p["api"])
	require.Equal(t, "quota", p["reason"])
	pu, err := time.Parse(time.RFC3339Nano, p["until"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, until, pu, time.Second)
}
