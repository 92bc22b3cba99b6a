package wechat_test

import (
	"context"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// BenchmarkSendTemplate measures the client's send path against the
// in-process fake over real HTTP: encode, token (from memory), POST, decode.
// Every iteration is a distinct recipient, so the fake records a delivery.
func BenchmarkSendTemplate(b *testing.B) {
	fake := wechattest.Start(b, wechattest.Config{})
	rc := redistest.Client(b, redistest.DBDefault)
	r := rdb.New(rc, redistest.Prefix(b, rc))
	client := wechat.New(wechat.WithBaseURLs(fake.URL()), wechat.WithHTTPClient(&http.Client{Transport: wechat.NewTransport(256)}))
	b.Cleanup(client.CloseIdleConnections)
	tc, err := wechat.NewTokenCache(r, wechat.TokenCacheConfig{
		AppID: wechattest.AppIDDefault,
		Fetch: func(ctx context.Context) (wechat.AccessToken, error) {
			return client.StableToken(ctx, wechattest.AppIDDefault, secret.New(wechattest.SecretDefault), false)
		},
	})
	require.NoError(b, err)
	_, err = tc.Token(b.Context())
	require.NoError(b, err)

	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		m := templateMsg("", "")
		for pb.Next() {
			n := seq.Add(1)
			m.ToUser = followerID(int(n))
			m.ClientMsgID = "bench:" + strconv.FormatInt(n, 10)
			if _, err := client.SendTemplate(b.Context(), tc, m); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
}
