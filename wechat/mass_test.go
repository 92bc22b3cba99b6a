package wechat_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestMassSendRoundTrip: a worker process (shared Redis token cache) sends
// a mass batch, an mpnews from a draft, and reads the status; the fake's
// record holds exactly the batch, and 45065 comes back as ErrMassDuplicate
// with the first msg_id.
func TestMassSendRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{})
	p := b.process(t, wechat.TokenCacheConfig{})
	ctx := t.Context()
	users := []string{followerID(1), followerID(2), followerID(3)}

	thumb, err := p.client.AddMaterial(ctx, p.tokens, wechat.MediaImage, "cover.jpg", []byte("jpeg"), nil)
	require.NoError(t, err)
	draft, err := p.client.AddDraft(ctx, p.tokens, []wechat.DraftArticle{{Title: "周报", Content: "<p>本周</p>", ThumbMediaID: thumb.MediaID}})
	require.NoError(t, err)
	m := &wechat.MassMessage{MsgType: wechat.MassTypeMPNews, MPNews: &wechat.Media{MediaID: draft}, ClientMsgID: "c:9:batch:0"}
	res, err := p.client.MassSend(ctx, p.tokens, users, m)
	require.NoError(t, err)
	require.NotZero(t, res.MsgDataID)

	_, err = p.client.MassSend(ctx, p.tokens, users, m)
	require.ErrorIs(t, err, wechat.ErrMassDuplicate)
	var de *wechat.MassDuplicateError
	require.ErrorAs(t, err, &de)
	require.Equal(t, res.MsgID, de.MsgID)

	st, err := p.client.MassGet(ctx, p.tokens, res.MsgID)
	require.NoError(t, err)
	require.Equal(t, wechat.MassStatusSending, st, "the fake's job sends for a minute")

	jobs := b.fake.MassJobs()
	require.Len(t, jobs, 1)
	require.Equal(t, res.MsgID, jobs[0].MsgID)
	require.Equal(t, "c:9:batch:0", jobs[0].ClientMsgID)
	require.Equal(t, wechat.MassTypeMPNews, jobs[0].MsgType)
	require.ElementsMatch(t, users, jobs[0].Delivered)
	require.Empty(t, b.fake.Deliveries(), "mass jobs are recorded apart from template deliveries")
}
