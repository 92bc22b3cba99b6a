package wechattest

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func customBody(openid, msgtype string, payload any) map[string]any {
	return map[string]any{"touser": openid, "msgtype": msgtype, msgtype: payload}
}

func TestCustomSendAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MediaIDs: []string{"MEDIA_1", "THUMB_1", "ARTICLE_1"}, KFAccounts: []string{"kf1@fake"}})
	tok := b.token(t)
	u := openID("custom")
	cases := map[string]any{
		"text":          map[string]any{"content": "你好 <a href=\"https://e.com/?a=1&b=2\">link</a>\nline two"},
		"image":         map[string]any{"media_id": "MEDIA_1"},
		"voice":         map[string]any{"media_id": "MEDIA_1"},
		"video":         map[string]any{"media_id": "MEDIA_1", "thumb_media_id": "THUMB_1", "title": "t"},
		"music":         map[string]any{"musicurl": "https://e.com/m.mp3", "hqmusicurl": "https://e.com/hq.mp3", "thumb_media_id": "THUMB_1"},
		"news":          map[string]any{"articles": []any{map[string]any{"title": "t", "description": "d", "url": "https://e.com", "picurl": "https://e.com/p.png"}}},
		"mpnews":        map[string]any{"media_id": "MEDIA_1"},
		"mpnewsarticle": map[string]any{"article_id": "ARTICLE_1"},
		"msgmenu": map[string]any{"head_content": "您对本次服务是否满意？", "tail_content": "欢迎再次光临",
			"list": []any{map[string]any{"id": "101", "content": "满意"}, map[string]any{"id": "102", "content": "不满意"}}},
		"wxcard":          map[string]any{"card_id": "CARD_1"},
		"miniprogrampage": map[string]any{"title": "t", "appid": "wx1111111111111111", "pagepath": "pages/index?x=1", "thumb_media_id": "THUMB_1"},
	}
	for msgtype, payload := range cases {
		t.Run(msgtype, func(t *testing.T) {
			t.Parallel()
			body := customBody(u, msgtype, payload)
			m := b.send(t, nameCustomSend, tok, mustJSON(t, body))
			require.Zero(t, errcode(t, m), "%v", m)
			require.Equal(t, "ok", m["errmsg"])
			require.NotContains(t, m, "msgid")
		})
	}
	t.Run("kf_account", func(t *testing.T) {
		t.Parallel()
		body := customBody(u, "text", map[string]any{"content": "from kf"})
		body["customservice"] = map[string]any{"kf_account": "kf1@fake"}
		require.Zero(t, errcode(t, b.send(t, nameCustomSend, tok, mustJSON(t, body))))
	})
	t.Cleanup(func() {
		ds := b.srv.Deliveries()
		require.Len(t, ds, len(cases)+1)
		types := map[string]int{}
		for _, d := range ds {
			require.Equal(t, nameCustomSend, d.API)
			require.Zero(t, d.MsgID)
			types[d.MsgType]++
		}
		require.Equal(t, 2, types["text"])
	})
}

func TestCustomSendErrors(t *testing.T) {
	t.Parallel()
	blocked := openID("window")
	b := setup(t, Config{
		MediaIDs:        []string{"MEDIA_1"},
		KFAccounts:      []string{"kf1@fake"},
		Followers:       1,
		FollowerIDs:     []string{blocked},
		RequireFollower: true,
		Terminal:        map[string]int{blocked: 45047},
	})
	tok := b.token(t)
	u := b.srv.FollowerOpenIDs()[0]
	body := func(msgtype string, payload any) string { return mustJSON(t, customBody(u, msgtype, payload)) }
	article := map[string]any{"title": "t", "url": "https://e.com"}
	cases := []struct {
		name string
		body string
		code int
	}{
		{"empty body", "", 44002},
		{"unicode escape", `{"touser":"` + u + `","msgtype":"text","text":{"content":"\u4f60"}}`, 40033},
		{"not json", "text", 47001},
		{"touser missing", mustJSON(t, map[string]any{"msgtype": "text", "text": map[string]any{"content": "x"}}), 40003},
		{"touser malformed", mustJSON(t, customBody("bad", "text", map[string]any{"content": "x"})), 40003},
		{"msgtype missing", mustJSON(t, map[string]any{"touser": u, "text": map[string]any{"content": "x"}}), 40008},
		{"msgtype unknown", body("link", map[string]any{"title": "t"}), 40008},
		{"msgtype wrong case", body("Text", map[string]any{"content": "x"}), 40008},
		{"msgtype number", mustJSON(t, map[string]any{"touser": u, "msgtype": 1}), 47001},
		{"payload missing", mustJSON(t, map[string]any{"touser": u, "msgtype": "text"}), 47001},
		{"payload not object", body("text", "hello"), 47001},
		{"text empty", body("text", map[string]any{"content": ""}), 47001},
		{"text wrong key", body("text", map[string]any{"Content": "x"}), 47001},
		{"text too long", body("text", map[string]any{"content": strings.Repeat("x", 2049)}), 45002},
		{"image without media_id", body("image", map[string]any{}), 47001},
		{"image unknown media", body("image", map[string]any{"media_id": "MEDIA_2"}), 40007},
		{"mpnews unknown media", body("mpnews", map[string]any{"media_id": "MEDIA_2"}), 40007},
		{"mpnewsarticle unknown", body("mpnewsarticle", map[string]any{"article_id": "A"}), 40007},
		{"mpnewsarticle missing", body("mpnewsarticle", map[string]any{"media_id": "MEDIA_1"}), 47001},
		{"video without thumb", body("video", map[string]any{"media_id": "MEDIA_1"}), 47001},
		{"news no articles", body("news", map[string]any{"articles": []any{}}), 47001},
		{"news two articles", body("news", map[string]any{"articles": []any{article, article}}), 45008},
		{"news article without url", body("news", map[string]any{"articles": []any{map[string]any{"title": "t"}}}), 47001},
		{"news articles object", body("news", map[string]any{"articles": article}), 47001},
		{"miniprogrampage without appid", body("miniprogrampage", map[string]any{"title": "t", "pagepath": "p", "thumb_media_id": "MEDIA_1"}), 47001},
		{"miniprogrampage unknown thumb", body("miniprogrampage", map[string]any{"title": "t", "appid": "wx1", "pagepath": "p", "thumb_media_id": "X"}), 40007},
		{"msgmenu empty list", body("msgmenu", map[string]any{"list": []any{}}), 47001},
		{"msgmenu item without id", body("msgmenu", map[string]any{"list": []any{map[string]any{"content": "x"}}}), 47001},
		{"msgmenu too many", body("msgmenu", map[string]any{"list": func() []any {
			var l []any
			for range 11 {
				l = append(l, map[string]any{"id": "1", "content": "x"})
			}
			return l
		}()}), 45098},
		{"msgmenu item too long", body("msgmenu", map[string]any{"list": []any{map[string]any{"id": "1", "content": strings.Repeat("x", 257)}}}), 45099},
		{"wxcard without card_id", body("wxcard", map[string]any{}), 47001},
		{"kf_account unknown", mustJSON(t, map[string]any{"touser": u, "msgtype": "text", "text": map[string]any{"content": "x"}, "customservice": map[string]any{"kf_account": "kf2@fake"}}), 61452},
		{"customservice not object", mustJSON(t, map[string]any{"touser": u, "msgtype": "text", "text": map[string]any{"content": "x"}, "customservice": "kf1@fake"}), 47001},
		{"not a follower", mustJSON(t, customBody(openID("stranger"), "text", map[string]any{"content": "x"})), 45015},
		{"terminal", mustJSON(t, customBody(blocked, "text", map[string]any{"content": "x"})), 45047},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := b.send(t, nameCustomSend, tok, tc.body)
			require.Equal(t, tc.code, errcode(t, m), "%v", m)
		})
	}
	t.Cleanup(func() { require.Empty(t, b.srv.Deliveries()) })
}

func TestCustomSendKFFormat(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tok := b.token(t)
	body := func(kf string) string {
		m := customBody(openID("kf"), "text", map[string]any{"content": "x"})
		m["customservice"] = map[string]any{"kf_account": kf}
		return mustJSON(t, m)
	}
	require.Zero(t, errcode(t, b.send(t, nameCustomSend, tok, body("anyone@test"))))
	require.Equal(t, 61452, errcode(t, b.send(t, nameCustomSend, tok, body("anyone"))))
	require.Equal(t, 61452, errcode(t, b.send(t, nameCustomSend, tok, body(""))))
}
