package worker_test

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/callback"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestReceiptsSettleLostAnswers: WeChat drops 5 % of connections after
// taking a template message, and pushes a delivery receipt for every
// message it took. A receipt whose msgid wxmass never saw settles the
// recipient whose answer was lost: delivered, before its retry (which is
// then not made) or after the run stopped with it unknown. So with receipts
// a run cancelled half way ends with no unknown recipient, and each
// recipient's truth still holds against the fake's record.
func TestReceiptsSettleLostAnswers(t *testing.T) {
	const n = 2000
	var store atomic.Pointer[campaigns.Store]
	h, err := callback.NewHandler(callback.Config{
		Token: "receipts-token",
		OnEvent: func(ctx context.Context, e callback.Event) error {
			if !e.IsReceipt() {
				return nil
			}
			_, err := store.Load().Reconcile(ctx, campaigns.Receipt{Account: wechattest.AppIDDefault, OpenID: e.FromUserName, MsgID: e.MsgID,
				Delivered: e.Delivery == callback.DeliveryDelivered, Reason: e.Reason, Created: time.Unix(e.CreateTime, 0)}, 0)
			return err
		},
	})
	require.NoError(t, err)
	receiver := httptest.NewServer(h)
	t.Cleanup(receiver.Close)
	b := setup(t, wechattest.Config{Seed: 9, Faults: wechattest.Faults{DropAfterRecord: 0.05},
		Callback: wechattest.Callback{URL: receiver.URL, Token: "receipts-token", Delay: 100 * time.Millisecond}})
	store.Store(b.store)
	p := b.process(t, procConfig{rate: 300, concurrency: 20})
	c := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, openIDs(n))
	run, err := p.producer.Start(t.Context(), c.ID)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		rec, err := b.rdb.GetRun(t.Context(), c.ID, run)
		require.NoError(t, err)
		return rec.Settled() >= n/2
	}, time.Minute, 10*time.Millisecond)
	require.NoError(t, p.producer.Cancel(t.Context(), c.ID))
	b.waitSettled(t, c.ID, run, time.Minute)

	// Every receipt pushed and handled: the lost answers are delivered.
	require.Eventually(t, func() bool {
		rec, err := b.rdb.GetRun(t.Context(), c.ID, run)
		require.NoError(t, err)
		return rec.Counters["unknown"] == 0 && rec.Counters["sent"] == 0
	}, 30*time.Second, 50*time.Millisecond, "receipts turn every sent and unknown recipient into delivered")
	rep := b.truth(t, c, nil, run)
	require.Zero(t, rep.Twice)
	st := b.fake.Stats().APIs[wechat.APITemplateSend]
	require.Positive(t, st.Dropped, "answers were lost")
	rec, err := b.rdb.GetRun(t.Context(), c.ID, run)
	require.NoError(t, err)
	require.EqualValues(t, rep.Delivered, rec.Counters["delivered"])
	require.EqualValues(t, n, rec.Counters["delivered"]+rec.Counters["cancelled"])
	t.Logf("%d dropped answers, %d deduped retries; outcomes %v", st.Dropped, st.Deduped, rec.Counters)
}
