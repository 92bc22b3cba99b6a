package wechattest

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func bizBody(openid string) map[string]any {
	return map[string]any{
		"touser":      openid,
		"template_id": SubscribeTemplateIDDefault,
		"page":        "https://example.com/orders/42",
		"miniprogram": map[string]any{"appid": "wx1111111111111111", "pagepath": "pages/order?id=42"},
		"data": map[string]any{
			"thing1": map[string]any{"value": "订单已发货"},
			"time2":  map[string]any{"value": "2019-12-25 09:42"},
		},
	}
}

func TestBizSend(t *testing.T) {
	t.Parallel()
	refused := openID("refused")
	b := setup(t, Config{Terminal: map[string]int{refused: 43101}})
	tok := b.token(t)
	u := openID("biz")

	m := b.send(t, nameBizSend, tok, mustJSON(t, bizBody(u)))
	require.Zero(t, errcode(t, m), "%v", m)
	require.Equal(t, "ok", m["errmsg"])
	ds := b.srv.Deliveries()
	require.Len(t, ds, 1)
	require.Equal(t, Delivery{API: nameBizSend, AppID: AppIDDefault, OpenID: u, TemplateID: SubscribeTemplateIDDefault, Time: testStart(), BodyHash: ds[0].BodyHash}, ds[0])

	with := func(change func(map[string]any)) string {
		body := bizBody(u)
		change(body)
		return mustJSON(t, body)
	}
	cases := []struct {
		name string
		body string
		code int
	}{
		{"empty", "", 44002},
		{"escape", `{"touser":"\u006f"}`, 40033},
		{"not json", "{", 47001},
		{"toUser casing", with(func(m map[string]any) { m["toUser"] = u; delete(m, "touser") }), 40003},
		{"templateId casing", with(func(m map[string]any) { m["templateId"] = m["template_id"]; delete(m, "template_id") }), 40037},
		{"data array", with(func(m map[string]any) { m["data"] = []any{map[string]any{"thing1": "x"}} }), 40003},
		{"template of template/send", with(func(m map[string]any) { m["template_id"] = TemplateIDDefault }), 40037},
		{"page number", with(func(m map[string]any) { m["page"] = 1 }), 47001},
		{"value rule", with(func(m map[string]any) { m["data"] = map[string]any{"phrase3": map[string]any{"value": "abc"}} }), 47003},
		{"refused", mustJSON(t, bizBody(refused)), 43101},
	}
	// Not parallel: the delivery count after the loop needs them finished.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := b.send(t, nameBizSend, tok, tc.body)
			require.Equal(t, tc.code, errcode(t, m), "%v", m)
		})
	}
	require.Len(t, b.srv.Deliveries(), 1)
}
