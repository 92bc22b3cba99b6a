package worker_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/media"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestCustomImageFromFile: a custom image campaign whose image is a stored
// file, sent by 3 worker processes at once (each with its own Redis
// connections, WeChat client and media cache). Run 1 uploads it once for
// the account (temporary media), whichever process's sends come first, and
// every recipient's
// message at the fake carries that media_id. Then WeChat drops the media
// (the fake expires it): run 2's first sends are answered 40007, the cache
// entry is dropped, the file is uploaded once more, and every recipient
// gets run 2's message once, with the new media_id.
func TestCustomImageFromFile(t *testing.T) {
	const n = 300
	ids := openIDs(n)
	b := setup(t, wechattest.Config{})
	p := b.process(t, procConfig{concurrency: 10, name: "p1"})
	b.process(t, procConfig{concurrency: 10, name: "p2"})
	b.process(t, procConfig{concurrency: 10, name: "p3"})
	f, _, err := media.NewStore(b.rdb).Put(t.Context(), "banner.png", wechat.MediaImage, bytes.Repeat([]byte("png!"), 2500))
	require.NoError(t, err)

	c := b.fileCampaign(t, campaigns.KindCustom, "", ids)
	c.Custom = &campaigns.CustomSpec{MsgType: wechat.MsgTypeImage, Image: &campaigns.MediaRef{File: f.ID}}
	_, err = b.store.Update(t.Context(), c)
	require.NoError(t, err)

	run1, err := p.producer.Start(t.Context(), c.ID)
	require.NoError(t, err)
	rec := b.waitSettled(t, c.ID, run1, time.Minute)
	require.EqualValues(t, n, rec.Counters["sent"], "%v", rec.Counters)
	b.truth(t, c, nil, run1)
	require.Equal(t, int64(1), b.fake.MassCalls()["media/upload"], "one upload for the whole run, across the 3 processes")
	first := mediaByOpenID(t, b.fake)
	require.Len(t, first, n)
	var id1 string
	for _, o := range ids {
		require.Len(t, first[o], 1, "recipient %s got the image once", o)
		if id1 == "" {
			id1 = first[o][0]
		}
		require.Equal(t, id1, first[o][0], "recipient %s got the uploaded media_id", o)
	}

	require.Equal(t, 1, b.fake.ExpireMedia(id1))
	run2, err := p.producer.Start(t.Context(), c.ID)
	require.NoError(t, err)
	rec = b.waitSettled(t, c.ID, run2, time.Minute)
	require.EqualValues(t, n, rec.Counters["sent"], "%v", rec.Counters)
	require.Equal(t, int64(2), b.fake.MassCalls()["media/upload"], "uploaded again once after the 40007s")
	both := mediaByOpenID(t, b.fake)
	for _, o := range ids {
		got := both[o]
		require.Len(t, got, 2, "recipient %s got one message per run", o)
		require.Equal(t, id1, got[0])
		require.NotEqual(t, id1, got[1], "run 2 sent recipient %s the new media_id", o)
		require.Equal(t, both[ids[0]][1], got[1])
	}
	for o, out := range b.outcomes(t, c.ID, run2) {
		require.Equal(t, string(campaigns.OutcomeSent), out.Status, o)
	}
}

// mediaByOpenID returns the media_ids of the image messages the fake
// delivered, per recipient, in order.
func mediaByOpenID(t *testing.T, fake *wechattest.Server) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, d := range fake.Deliveries() {
		if d.API == wechat.APICustomSend && d.MsgType == wechat.MsgTypeImage {
			out[d.OpenID] = append(out[d.OpenID], d.MediaID)
		}
	}
	return out
}
