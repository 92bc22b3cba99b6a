package wechat_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestCallbackIPsProbe: getcallbackip answers with the IP list; while the
// fake is down it is a transport failure (sent, HTTP 503), and the fake
// counts the calls of the API either way.
func TestCallbackIPsProbe(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{})
	p := b.process(t, wechat.TokenCacheConfig{})
	ips, err := p.client.CallbackIPs(t.Context(), p.tokens)
	require.NoError(t, err)
	require.NotEmpty(t, ips)

	require.NoError(t, b.fake.SetDown(503))
	_, err = p.client.CallbackIPs(t.Context(), p.tokens)
	var te *wechat.TransportError
	require.True(t, errors.As(err, &te), "%v", err)
	require.Equal(t, 503, te.StatusCode)
	require.Equal(t, wechat.APICallbackIP, te.API)
	require.NoError(t, b.fake.SetDown(0))

	st := b.fake.Stats().APIs[wechat.APICallbackIP]
	require.EqualValues(t, 2, st.Calls)
	require.EqualValues(t, 1, st.OK)
	require.EqualValues(t, 1, st.Faults.HTTP5xx)
	require.Error(t, b.fake.SetDown(404))
}
