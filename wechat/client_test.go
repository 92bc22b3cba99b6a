package wechat_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// followerID is a syntactically valid openid for index i.
func followerID(i int) string { return fmt.Sprintf("oTEST%023d", i) }

func TestSendTemplateRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{})
	p := b.process(t, wechat.TokenCacheConfig{})
	m := &wechat.TemplateMessage{
		ToUser:      followerID(1),
		TemplateID:  wechattest.TemplateIDDefault,
		URL:         "https://example.com/order?id=1&from=<wx>",
		MiniProgram: &wechat.MiniProgram{AppID: "wx1234567890abcdef", PagePath: "pages/order?id=1&x=2"},
		ClientMsgID: "c:1:r:1",
		Data: map[string]wechat.TemplateValue{
			"thing1":            {Value: "您的订单已发货 & 在路上"},
			"character_string2": {Value: "SF1234567890"},
			"amount3":           {Value: "¥39.80"},
			"time4":             {Value: "2026-11-25 12:00:00"},
		},
	}
	msgid, err := p.client.SendTemplate(t.Context(), p.tokens, m)
	require.NoError(t, err, "raw UTF-8 with '&' and '<' unescaped is accepted (the fake refuses \\u escapes)")

	ds := b.fake.Deliveries()
	require.Len(t, ds, 1)
	d := ds[0]
	require.Equal(t, wechat.APITemplateSend, d.API)
	require.Equal(t, m.ToUser, d.OpenID)
	require.Equal(t, m.ClientMsgID, d.ClientMsgID)
	require.Equal(t, m.TemplateID, d.TemplateID)
	require.Equal(t, d.MsgID, msgid)
	require.Greater(t, msgid, int64(1)<<53, "msgids above 2^53 survive decoding exactly")

	// The same client_msg_id again inside the window: WeChat answers the
	// same msgid and delivers nothing more.
	again, err := p.client.SendTemplate(t.Context(), p.tokens, m)
	require.NoError(t, err)
	require.Equal(t, msgid, again)
	require.Len(t, b.fake.Deliveries(), 1)
	require.EqualValues(t, 1, b.apiStats(wechat.APITemplateSend).Deduped)
}

func TestSendCustomEachKind(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{})
	p := b.process(t, wechat.TokenCacheConfig{})
	kf := &wechat.CustomServiceSender{KFAccount: "support@example"}
	msgs := []*wechat.CustomMessage{
		{MsgType: wechat.MsgTypeText, Text: &wechat.Text{Content: "您好\n<a href=\"https://example.com/?a=1&b=2\">查看</a>"}},
		{MsgType: wechat.MsgTypeText, Text: &wechat.Text{Content: "from a named account"}, CustomService: kf},
		{MsgType: wechat.MsgTypeImage, Image: &wechat.Media{MediaID: "MEDIA_1"}},
		{MsgType: wechat.MsgTypeNews, News: &wechat.News{Articles: []wechat.Article{{Title: "t", Description: "d", URL: "https://example.com/a", PicURL: "https://example.com/p.jpg"}}}},
		{MsgType: wechat.MsgTypeMPNews, MPNews: &wechat.Media{MediaID: "MEDIA_2"}},
		{MsgType: wechat.MsgTypeMPNewsArticle, MPNewsArticle: &wechat.MPNewsArticle{ArticleID: "ARTICLE_1"}},
		{MsgType: wechat.MsgTypeMiniProgramPage, MiniProgramPage: &wechat.MiniProgramPage{Title: "t", AppID: "wx1234567890abcdef", PagePath: "pages/index", ThumbMediaID: "MEDIA_3"}},
		{MsgType: wechat.MsgTypeMenu, MsgMenu: &wechat.MsgMenu{HeadContent: "满意吗？", List: []wechat.MsgMenuItem{{ID: "101", Content: "满意"}, {ID: "102", Content: "不满意"}}, TailContent: "谢谢"}},
	}
	for i, m := range msgs {
		m.ToUser = followerID(i)
		require.NoError(t, p.client.SendCustom(t.Context(), p.tokens, m), m.MsgType)
	}
	ds := b.fake.Deliveries()
	require.Len(t, ds, len(msgs))
	for i, d := range ds {
		require.Equal(t, wechat.APICustomSend, d.API)
		require.Equal(t, msgs[i].ToUser, d.OpenID)
		require.Equal(t, msgs[i].MsgType, d.MsgType)
	}
}

func TestSendCustomValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		m    wechat.CustomMessage
		want string
	}{
		{wechat.CustomMessage{MsgType: "voice"}, `msgtype "voice" is not supported`},
		{wechat.CustomMessage{MsgType: wechat.MsgTypeText}, `msgtype "text" without its text field`},
		{wechat.CustomMessage{MsgType: wechat.MsgTypeText, Text: &wechat.Text{Content: "x"}, Image: &wechat.Media{MediaID: "m"}}, `field image set on a "text" message`},
	}
	client := wechat.New(wechat.WithBaseURLs("http://127.0.0.1:1"))
	for _, tt := range tests {
		err := client.SendCustom(t.Context(), nil, &tt.m)
		require.ErrorContains(t, err, tt.want)
	}
}

func TestSendSubscribe(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{})
	p := b.process(t, wechat.TokenCacheConfig{})
	m := &wechat.SubscribeMessage{
		ToUser:      followerID(1),
		TemplateID:  wechattest.SubscribeTemplateIDDefault,
		Page:        "https://example.com/x?a=1&b=2",
		MiniProgram: &wechat.MiniProgram{AppID: "wx1234567890abcdef", PagePath: "index?foo=bar"},
		Data:        map[string]wechat.TemplateValue{"thing1": {Value: "会员到期提醒"}, "time2": {Value: "2026-12-01 09:00"}},
	}
	require.NoError(t, p.client.SendSubscribe(t.Context(), p.tokens, m))
	ds := b.fake.Deliveries()
	require.Len(t, ds, 1)
	require.Equal(t, wechat.APIBizSend, ds[0].API)
	require.Equal(t, m.TemplateID, ds[0].TemplateID)
}

func TestRejectedBodiesGiveAPIError(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{Terminal: map[string]int{followerID(9): 43004}})
	p := b.process(t, wechat.TokenCacheConfig{})
	long := strings.Repeat("长", 21)
	tests := []struct {
		name string
		send func() error
		code int
		msg  string
	}{
		{"thing over 20 characters", func() error {
			m := templateMsg(followerID(1), "")
			m.Data = map[string]wechat.TemplateValue{"thing1": {Value: long}}
			_, err := p.client.SendTemplate(t.Context(), p.tokens, m)
			return err
		}, 47003, "data.thing1.value invalid"},
		{"unknown template", func() error {
			m := templateMsg(followerID(1), "")
			m.TemplateID = "NOPE"
			_, err := p.client.SendTemplate(t.Context(), p.tokens, m)
			return err
		}, 40037, "invalid template_id"},
		{"bad openid", func() error {
			_, err := p.client.SendTemplate(t.Context(), p.tokens, templateMsg("not-an-openid", ""))
			return err
		}, 40003, "invalid openid"},
		{"terminal recipient", func() error {
			_, err := p.client.SendTemplate(t.Context(), p.tokens, templateMsg(followerID(9), ""))
			return err
		}, 43004, "require subscribe"},
		{"two news articles", func() error {
			a := wechat.Article{Title: "t", URL: "https://example.com"}
			return p.client.SendCustom(t.Context(), p.tokens, &wechat.CustomMessage{ToUser: followerID(1), MsgType: wechat.MsgTypeNews, News: &wechat.News{Articles: []wechat.Article{a, a}}})
		}, 45008, "article size out of limit"},
		{"subscribe with unknown template", func() error {
			return p.client.SendSubscribe(t.Context(), p.tokens, &wechat.SubscribeMessage{ToUser: followerID(1), TemplateID: "NOPE", Data: map[string]wechat.TemplateValue{"thing1": {Value: "x"}}})
		}, 40037, "invalid template_id"},
	}
	for _, tt := range tests {
		err := tt.send()
		var ae *wechat.APIError
		require.ErrorAs(t, err, &ae, tt.name)
		require.Equal(t, tt.code, ae.Code, tt.name)
		require.Contains(t, ae.Msg, tt.msg, tt.name)
		require.NotContains(t, ae.Msg, "rid:", tt.name)
		require.NotEmpty(t, ae.RID, tt.name)
		require.Equal(t, fmt.Sprint(ae.API), ae.API)
	}
	require.Empty(t, b.fake.Deliveries())
}

func TestPagingReturnsEveryFollowerOnce(t *testing.T) {
	t.Parallel()
	members := make([]string, 2500)
	for i := range members {
		members[i] = followerID(100000 + i)
	}
	b := setup(t, wechattest.Config{Followers: 25001, PageSize: 1000, Tags: map[int64][]string{7: members, 8: members[:1000]}})
	p := b.process(t, wechat.TokenCacheConfig{})

	collect := func(fetch wechat.PageFunc) map[string]int {
		seen := map[string]int{}
		err := wechat.EachPage(t.Context(), fetch, func(ids []string) error {
			for _, id := range ids {
				seen[id]++
			}
			return nil
		})
		require.NoError(t, err)
		return seen
	}
	followers := collect(func(ctx context.Context, next string) (wechat.FollowerPage, error) {
		return p.client.Followers(ctx, p.tokens, next)
	})
	require.Len(t, followers, 25001)
	for _, id := range b.fake.FollowerOpenIDs() {
		require.Equal(t, 1, followers[id], id)
	}

	for tag, want := range map[int64][]string{7: members, 8: members[:1000]} {
		got := collect(func(ctx context.Context, next string) (wechat.FollowerPage, error) {
			return p.client.TagMembers(ctx, p.tokens, tag, next)
		})
		require.Len(t, got, len(want))
		for _, id := range want {
			require.Equal(t, 1, got[id], id)
		}
	}

	_, err := p.client.TagMembers(t.Context(), p.tokens, 99, "")
	var ae *wechat.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, 45159, ae.Code)
}

func TestEachPageStopsOnStuckCursor(t *testing.T) {
	t.Parallel()
	calls := 0
	err := wechat.EachPage(t.Context(), func(_ context.Context, next string) (wechat.FollowerPage, error) {
		calls++
		return wechat.FollowerPage{OpenIDs: []string{"a"}, NextOpenID: "a"}, nil
	}, func([]string) error { return nil })
	require.ErrorContains(t, err, "did not advance")
	require.Equal(t, 2, calls)

	boom := errors.New("boom")
	err = wechat.EachPage(t.Context(), func(context.Context, string) (wechat.FollowerPage, error) {
		return wechat.FollowerPage{OpenIDs: []string{"a"}, NextOpenID: "b"}, nil
	}, func([]string) error { return boom })
	require.ErrorIs(t, err, boom)
}

func TestQuotaGet(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{Limits: map[string]wechattest.Limit{wechat.APITemplateSend: {PerSecond: 500, Daily: 100000}}})
	p := b.process(t, wechat.TokenCacheConfig{})
	_, err := p.client.SendTemplate(t.Context(), p.tokens, templateMsg(followerID(1), ""))
	require.NoError(t, err)
	q, err := p.client.QuotaGet(t.Context(), p.tokens, "/cgi-bin/message/template/send")
	require.NoError(t, err)
	require.EqualValues(t, 100000, q.Quota.DailyLimit)
	require.EqualValues(t, 1, q.Quota.Used)
	require.EqualValues(t, 99999, q.Quota.Remain)
	require.EqualValues(t, 500, q.RateLimit.CallCount)
	require.EqualValues(t, 1, q.RateLimit.RefreshSecond)
}

func TestTransportFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{Seed: 1})
	p := b.process(t, wechat.TokenCacheConfig{})
	_, err := p.tokens.Token(t.Context())
	require.NoError(t, err)

	send := func() error {
		_, err := p.client.SendTemplate(t.Context(), p.tokens, templateMsg(followerID(1), "same-key"))
		return err
	}
	// HTTP 5xx: ambiguous, with the status.
	require.NoError(t, b.fake.SetFaults(wechattest.Faults{HTTP5xx: 1}))
	err = send()
	var te *wechat.TransportError
	require.ErrorAs(t, err, &te)
	require.True(t, te.Sent)
	require.Contains(t, []int{502, 503}, te.StatusCode)

	// Dropped after the delivery was recorded: ambiguous, and the retry
	// with the same client_msg_id is deduped by WeChat.
	require.NoError(t, b.fake.SetFaults(wechattest.Faults{DropAfterRecord: 1}))
	err = send()
	require.ErrorAs(t, err, &te)
	require.True(t, te.Sent)
	require.Len(t, b.fake.Deliveries(), 1)
	require.NoError(t, b.fake.SetFaults(wechattest.Faults{}))
	require.NoError(t, send())
	require.Len(t, b.fake.Deliveries(), 1)
	require.EqualValues(t, 0, b.fake.Stats().DuplicatesDelivered)

	// -1 is an errcode answer, not a transport failure.
	require.NoError(t, b.fake.SetFaults(wechattest.Faults{SystemError: 1}))
	err = send()
	require.ErrorIs(t, err, wechat.ErrSystemBusy)

	// A slow answer past the caller's deadline: ambiguous.
	require.NoError(t, b.fake.SetFaults(wechattest.Faults{Slow: 1, SlowDelay: 5 * time.Second}))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err = p.client.SendTemplate(ctx, p.tokens, templateMsg(followerID(2), ""))
	require.ErrorAs(t, err, &te)
	require.True(t, te.Sent)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotContains(t, err.Error(), "access_token")
}

// closedAddr returns the URL of a port that refuses connections.
func closedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	u := "http://" + ln.Addr().String()
	require.NoError(t, ln.Close())
	return u
}

func TestConnectFailureIsNotSentAndFailsOver(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{})
	dead := closedAddr(t)

	// Only a dead host: certainly not sent.
	alone := newClient(t, dead)
	p := b.process(t, wechat.TokenCacheConfig{})
	tok, err := p.tokens.Token(t.Context())
	require.NoError(t, err)
	_, err = alone.SendTemplate(t.Context(), p.tokens, templateMsg(followerID(1), ""))
	var te *wechat.TransportError
	require.ErrorAs(t, err, &te)
	require.False(t, te.Sent)
	require.NotContains(t, err.Error(), tok, "the access_token never appears in errors")
	require.NotContains(t, err.Error(), "access_token=")

	// A dead primary and a live fallback: the call goes through, and the
	// client stays on the fallback until the failback delay has passed.
	now := time.Now()
	clock := func() time.Time { return now }
	fo := wechat.New(wechat.WithBaseURLs(dead, b.fake.URL()), wechat.WithFailbackAfter(time.Minute), wechat.WithClock(clock))
	t.Cleanup(fo.CloseIdleConnections)
	_, err = fo.SendTemplate(t.Context(), p.tokens, templateMsg(followerID(1), ""))
	require.NoError(t, err)
	require.Equal(t, b.fake.URL(), fo.BaseURL())
	now = now.Add(2 * time.Minute)
	require.Equal(t, dead, fo.BaseURL())
}

func TestPlainTokenTransportErrorHidesSecret(t *testing.T) {
	t.Parallel()
	c := newClient(t, closedAddr(t))
	const s = "very-secret-appsecret-value"
	_, err := c.PlainToken(t.Context(), "wx00000000000fake1", secretOf(s))
	require.Error(t, err)
	require.NotContains(t, err.Error(), s)
}

func TestFakeKnowsEveryClientAPI(t *testing.T) {
	t.Parallel()
	fake := wechattest.Start(t, wechattest.Config{})
	apis := fake.Stats().APIs
	for _, api := range []string{wechat.APIStableToken, wechat.APIToken, wechat.APITemplateSend, wechat.APICustomSend,
		wechat.APIBizSend, wechat.APIUserGet, wechat.APITagGet, wechat.APIQuotaGet, wechat.APICallbackIP} {
		require.Contains(t, apis, api)
	}
}
