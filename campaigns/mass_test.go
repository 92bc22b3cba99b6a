package campaigns

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat"
)

func massCampaign(mutate func(c *Campaign)) *Campaign {
	c := &Campaign{
		Name: "monthly digest", Account: "acct", Kind: KindMass,
		Mass:     &MassSpec{MsgType: wechat.MassTypeText, Text: &wechat.Text{Content: "本月精选"}},
		Audience: AudienceSpec{Source: SourceFollowers},
	}
	if mutate != nil {
		mutate(c)
	}
	return c
}

func TestValidateMass(t *testing.T) {
	t.Parallel()
	for _, c := range []*Campaign{
		massCampaign(nil),
		massCampaign(func(c *Campaign) { c.Audience = AudienceSpec{Source: SourceTag, TagID: 2} }),
		massCampaign(func(c *Campaign) {
			c.Audience = AudienceSpec{Source: SourceInline, OpenIDs: []string{"oTX0000000000000000000000001", "oTX0000000000000000000000002"}}
		}),
		massCampaign(func(c *Campaign) {
			c.Mass = &MassSpec{MsgType: wechat.MassTypeMPNews, MPNews: &MassNewsSpec{MediaID: "draft_1"}, SendIgnoreReprint: true}
		}),
		massCampaign(func(c *Campaign) {
			c.Mass = &MassSpec{MsgType: wechat.MassTypeImage, Images: &MassImagesSpec{MediaIDs: []string{"img1", "img2"}, NeedOpenComment: 1}}
		}),
		massCampaign(func(c *Campaign) {
			c.Mass = &MassSpec{MsgType: wechat.MassTypeWXCard, WXCard: &wechat.WXCard{CardID: "card_1"}}
		}),
	} {
		require.NoError(t, c.Validate(), "%+v", c.Mass)
	}

	for _, tt := range []struct {
		name, field, want string
		c                 *Campaign
	}{
		{"no spec", "mass", "required for a mass campaign", massCampaign(func(c *Campaign) { c.Mass = nil })},
		{"no msgtype", "mass.msgtype", "required: one of mpnews, text, image, voice, mpvideo, wxcard", massCampaign(func(c *Campaign) { c.Mass.MsgType = "" })},
		{"unknown msgtype", "mass.msgtype", `unsupported msgtype "music"`, massCampaign(func(c *Campaign) { c.Mass.MsgType = "music" })},
		{"payload of another type", "mass.voice", "set on a text message", massCampaign(func(c *Campaign) { c.Mass.Voice = &MediaRef{MediaID: "v"} })},
		{"missing payload", "mass.mpnews", "required for msgtype mpnews", massCampaign(func(c *Campaign) { c.Mass = &MassSpec{MsgType: "mpnews"} })},
		{"variables", "mass.text.content", "variables such as {{.name}} are not allowed", massCampaign(func(c *Campaign) { c.Mass.Text.Content = "你好 {{.name}}" })},
		{"empty text", "mass.text.content", "must not be empty", massCampaign(func(c *Campaign) { c.Mass.Text.Content = " " })},
		{"no images", "mass.images.media_ids", "at least one media_id", massCampaign(func(c *Campaign) {
			c.Mass = &MassSpec{MsgType: "image", Images: &MassImagesSpec{}}
		})},
		{"comment flag", "mass.images.need_open_comment", "must be 0 or 1, not 2", massCampaign(func(c *Campaign) {
			c.Mass = &MassSpec{MsgType: "image", Images: &MassImagesSpec{MediaIDs: []string{"i"}, NeedOpenComment: 2}}
		})},
		{"one openid", "audience.openids", "at least 2 openids", massCampaign(func(c *Campaign) {
			c.Audience = AudienceSpec{Source: SourceInline, OpenIDs: []string{"oTX0000000000000000000000001"}}
		})},
		{"media_id with a space", "mass.voice.media_id", "printable ASCII without spaces", massCampaign(func(c *Campaign) {
			c.Mass = &MassSpec{MsgType: "voice", Voice: &MediaRef{MediaID: "a b"}}
		})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var ve *ValidationError
			require.True(t, errors.As(tt.c.Validate(), &ve), tt.name)
			require.Contains(t, fieldMessage(t, ve, tt.field), tt.want)
			require.Len(t, ve.Errors, 1, "only the broken field is reported: %v", ve)
		})
	}
}

func TestRenderMass(t *testing.T) {
	t.Parallel()
	m, err := massCampaign(func(c *Campaign) {
		c.Mass = &MassSpec{MsgType: "image", Images: &MassImagesSpec{MediaIDs: []string{"a", "b"}, Recommend: "看看"}, SendIgnoreReprint: true}
	}).Compile()
	require.NoError(t, err)
	out, err := m.RenderMass("cmid-1")
	require.NoError(t, err)
	require.Equal(t, &wechat.MassMessage{MsgType: "image", Images: &wechat.MassImages{MediaIDs: []string{"a", "b"}, Recommend: "看看"},
		SendIgnoreReprint: 1, ClientMsgID: "cmid-1"}, out)
	require.NoError(t, out.Validate())
	out.Images.MediaIDs[0] = "changed"
	again, err := m.RenderMass("cmid-2")
	require.NoError(t, err)
	require.Equal(t, "a", again.Images.MediaIDs[0], "a rendered message is the caller's to change")

	_, err = m.RenderTemplate("o", nil, "")
	require.ErrorIs(t, err, ErrWrongKind)
	tm, err := massCampaign(nil).Compile()
	require.NoError(t, err)
	_, err = tm.RenderCustom("o", nil)
	require.ErrorIs(t, err, ErrWrongKind)
}

func TestMassBatches(t *testing.T) {
	t.Parallel()
	require.Nil(t, MassBatches(0))
	require.Equal(t, []MassBatch{{0, 0, 2}}, MassBatches(2))
	require.Equal(t, []MassBatch{{0, 0, 10000}}, MassBatches(10000))
	require.Equal(t, []MassBatch{{0, 0, 5000}, {1, 5000, 10001}}, MassBatches(10001))
	b := MassBatches(25000)
	require.Len(t, b, 3)
	var sum int64
	for i, x := range b {
		n := x.To - x.From
		require.LessOrEqual(t, n, int64(MassBatchMax))
		require.GreaterOrEqual(t, n, int64(MassBatchMin))
		if i > 0 {
			require.Equal(t, b[i-1].To, x.From, "batches are contiguous")
		}
		sum += n
		got, err := ParseMassBatch(x.Key())
		require.NoError(t, err)
		require.Equal(t, x, got)
	}
	require.Equal(t, int64(25000), sum)
	for _, bad := range []string{"", "all", "b1", "b1:2", "bx:0-2", "b0:2-2", "b0:-1-3"} {
		_, err := ParseMassBatch(bad)
		require.Error(t, err, bad)
	}
}

func TestMassClientMsgID(t *testing.T) {
	t.Parallel()
	a := MassClientMsgID("c1", 1, "b0:0-8333")
	require.Equal(t, a, MassClientMsgID("c1", 1, "b0:0-8333"), "the same batch keeps its clientmsgid")
	require.LessOrEqual(t, len(a), wechat.ClientMsgIDMax)
	seen := map[string]bool{a: true}
	for _, other := range []string{MassClientMsgID("c1", 1, "b1:8333-16666"), MassClientMsgID("c1", 2, "b0:0-8333"), MassClientMsgID("c2", 1, "b0:0-8333")} {
		require.False(t, seen[other])
		seen[other] = true
	}
}

func TestMassPeriod(t *testing.T) {
	t.Parallel()
	// 2026-11-30 16:30 UTC is 2026-12-01 00:30 in China: December already.
	at := time.Date(2026, 11, 30, 16, 30, 0, 0, time.UTC)
	p, limit, _ := MassPeriod(false, at)
	require.Equal(t, "2026-12", p)
	require.EqualValues(t, MassMonthlyCap, limit)
	p, limit, _ = MassPeriod(true, at)
	require.Equal(t, "2026-12-01", p)
	require.EqualValues(t, MassDailyCap, limit)
	p, _, _ = MassPeriod(false, at.Add(-time.Hour))
	require.Equal(t, "2026-11", p)
}
