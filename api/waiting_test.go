package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/ratelimit"
)

// TestRunStatusWaiting: while the account's circuit breaker is open (read
// from Redis, as the workers keep it), a live run's status answer has
// waiting {reason: wechat_unreachable, since} (checked against the OpenAPI
// document); once it closes, it has none.
func TestRunStatusWaiting(t *testing.T) {
	t.Parallel()
	late := &lateBreakers{}
	reg, err := account.NewRegistry(&account.Account{AppID: appID, Default: ratelimit.Limit{Rate: 10, Burst: 1}})
	require.NoError(t, err)
	b := setup(t, func(c *api.Config) {
		c.Breakers = late
		c.Accounts = reg
	})
	br := ratelimit.NewBreakers(b.rdb)
	late.br = br
	id := b.startCustom(t)
	path := "/v1/campaigns/" + id + "/runs/1"
	a := b.json(t, "GET", path, "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Nil(t, a.body["waiting"])

	_, since, err := br.Open(context.Background(), appID, time.Minute)
	require.NoError(t, err)
	a = b.json(t, "GET", path, "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	w, ok := a.body["waiting"].(map[string]any)
	require.True(t, ok, a.raw)
	require.Equal(t, "wechat_unreachable", w["reason"])
	got, err := time.Parse(time.RFC3339Nano, w["since"].(string))
	require.NoError(t, err)
	require.True(t, since.Equal(got), "since %v, got %v", since, got)
	page := b.raw(t, path+"/report.html")
	require.Equal(t, http.StatusOK, page.status)
	require.Contains(t, page.body, "waiting for WeChat since "+since.UTC().Format("2006-01-02 15:04:05 MST"), "the page says so too")

	_, _, err = br.Close(context.Background(), appID)
	require.NoError(t, err)
	a = b.json(t, "GET", path, "")
	require.Nil(t, a.body["waiting"], a.raw)
	require.NotContains(t, b.raw(t, path+"/report.html").body, "waiting for WeChat")
}

// lateBreakers are the test's breakers, known only once setup has made
// the Redis client.
type lateBreakers struct{ br *ratelimit.Breakers }

func (l *lateBreakers) State(ctx context.Context, appID string) (ratelimit.BreakerState, error) {
	return l.br.State(ctx, appID)
}
