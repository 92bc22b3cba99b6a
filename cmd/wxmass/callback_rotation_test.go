package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/callback"
)

// Each account's receiver answers at base/{id}, the default account's at
// base too; a rotated callback token takes effect on the next push, without
// a restart, and the old token is refused from then on.
func TestCallbackRouterFollowsRotation(t *testing.T) {
	c := redistest.Client(t, redistest.DBCmd)
	r := rdb.New(c, redistest.Prefix(t, c))
	spec := func(id, appID, token string) account.Spec {
		l := ratelimit.Limit{Rate: 10, Burst: 1}
		s := account.Spec{ID: id, AppID: appID, Secret: secret.New("s"), TokenAPI: account.TokenAPIStable,
			Limits: map[string]ratelimit.Limit{wechat.APITemplateSend: l}}
		if token != "" {
			s.Callback = &account.CallbackSpec{Mode: callback.ModePlain, Token: secret.New(token)}
		}
		return s
	}
	specs := []account.Spec{spec("shop", "wx0000000000000001", "old-token"), spec("news", "wx0000000000000002", "")}
	hub, err := account.NewHub(account.HubConfig{WeChat: wechat.New(), RDB: r}, specs)
	require.NoError(t, err)
	a := &app{log: zap.NewNop()}
	cr, err := a.newCallbackRouter("/wechat/callback/", hub, r, nil)
	require.NoError(t, err)
	srv := httptest.NewServer(cr)
	t.Cleanup(srv.Close)

	// check sends WeChat's URL check signed with token to path.
	check := func(path, token string) int {
		t.Helper()
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		q := url.Values{"timestamp": {ts}, "nonce": {"n1"}, "echostr": {"hello"}, "signature": {callback.Signature(token, ts, "n1")}}
		res, err := http.Get(srv.URL + path + "?" + q.Encode())
		require.NoError(t, err)
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			require.Equal(t, "hello", string(body))
		}
		return res.StatusCode
	}
	require.Equal(t, http.StatusOK, check("/wechat/callback/shop", "old-token"))
	require.Equal(t, http.StatusOK, check("/wechat/callback", "old-token"), "the default account at the base path")
	require.Equal(t, http.StatusUnauthorized, check("/wechat/callback/shop", "new-token"))
	require.Equal(t, http.StatusNotFound, check("/wechat/callback/news", "old-token"), "news has no callback")
	require.Equal(t, http.StatusNotFound, check("/wechat/callback/shop/x", "old-token"))

	rotated := []account.Spec{spec("shop", "wx0000000000000001", "new-token"), spec("news", "wx0000000000000002", "news-token")}
	require.NoError(t, hub.Apply(context.Background(), rotated))
	require.Equal(t, http.StatusOK, check("/wechat/callback/shop", "new-token"))
	require.Equal(t, http.StatusUnauthorized, check("/wechat/callback/shop", "old-token"), "the old token is refused")
	require.Equal(t, http.StatusOK, check("/wechat/callback/news", "news-token"), "an added callback answers")
	// That the registry follows too, with the token cache of each appid
	// kept, is account.TestHubApply's.
}
