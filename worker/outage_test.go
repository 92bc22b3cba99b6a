package worker_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestOutageSlowsTheFleetDown: while WeChat answers every call with HTTP
// 5xx, the worker slows the account's shared rate down instead of calling
// it at the full rate with every recipient in flight; once WeChat is back,
// every recipient is sent.
func TestOutageSlowsTheFleetDown(t *testing.T) {
	const n = 1000
	b := setup(t, wechattest.Config{Faults: wechattest.Faults{HTTP5xx: 1}})
	p := b.process(t, procConfig{rate: 400})
	c := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, openIDs(n))
	run, err := p.producer.Start(t.Context(), c.ID)
	require.NoError(t, err)

	key := wechattest.AppIDDefault + ":" + wechat.APITemplateSend
	require.Eventually(t, func() bool {
		st, err := p.limiter.State(t.Context(), key)
		require.NoError(t, err)
		return st.Factor > 0 && st.Factor < 1
	}, 30*time.Second, 20*time.Millisecond, "an outage cuts the shared rate")
	require.NoError(t, b.fake.SetFaults(wechattest.Faults{}))

	rec := b.waitSettled(t, c.ID, run, 2*time.Minute)
	b.truth(t, c, nil, run)
	require.EqualValues(t, n, rec.Counters["sent"], "the outage fails nobody: %v", rec.Counters)
	st := b.fake.Stats()
	require.Positive(t, st.APIs[wechat.APITemplateSend].Faults.HTTP5xx)
	require.EqualValues(t, 0, st.DuplicatesDelivered)
}
