package wechattest

import (
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// templateBody is a valid template/send body for openid.
func templateBody(openid, clientMsgID string) map[string]any {
	body := map[string]any{
		"touser":      openid,
		"template_id": TemplateIDDefault,
		"url":         "https://example.com/orders/42?from=wx&x=<1>",
		"data": map[string]any{
			"thing1":            map[string]any{"value": "您的订单已发货"},
			"character_string2": map[string]any{"value": "SN-20260310-0042"},
			"time3":             map[string]any{"value": "2026-03-10 09:00"},
			"amount4":           map[string]any{"value": "¥39.80"},
		},
	}
	if clientMsgID != "" {
		body["client_msg_id"] = clientMsgID
	}
	return body
}

func TestTemplateSendAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tok := b.token(t)
	u1, u2 := openID("user1"), openID("user2")

	m1 := b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(u1, "c1")))
	require.Equal(t, 0, errcode(t, m1))
	require.Equal(t, "ok", m1["errmsg"])
	id1 := num(t, m1, "msgid")
	require.Greater(t, id1, int64(1)<<53)
	m2 := b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(u2, "")))
	id2 := num(t, m2, "msgid")
	require.Greater(t, id2, id1)

	ds := b.srv.Deliveries()
	require.Len(t, ds, 2)
	require.Equal(t, Delivery{
		API: nameTemplateSend, AppID: AppIDDefault, OpenID: u1, MsgID: id1, ClientMsgID: "c1",
		TemplateID: TemplateIDDefault, Time: testStart(), BodyHash: ds[0].BodyHash,
	}, ds[0])
	require.Regexp(t, `^[0-9a-f]{32}$`, ds[0].BodyHash)
	require.Equal(t, u2, ds[1].OpenID)

	st := b.srv.Stats()
	require.EqualValues(t, 2, st.Deliveries)
	require.EqualValues(t, 2, st.APIs[nameTemplateSend].Accepted)
	require.EqualValues(t, 2, st.APIs[nameTemplateSend].OK)
}

func TestTemplateSendErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{TemplateIDs: []string{TemplateIDDefault, "TPL_KW"}, TemplateKeywords: map[string][]string{"TPL_KW": {"thing1", "time2"}}})
	tok := b.token(t)
	u := openID("err")
	with := func(change func(m map[string]any)) string {
		m := templateBody(u, "")
		change(m)
		return mustJSON(t, m)
	}
	data := func(key, value string) string {
		return with(func(m map[string]any) { m["data"] = map[string]any{key: map[string]any{"value": value}} })
	}
	cases := []struct {
		name string
		body string
		code int
		msg  string
	}{
		{"empty body", "", 44002, "empty post data"},
		{"unicode escape", `{"touser":"` + u + `","template_id":"TPL_ORDER_SHIPPED","data":{"thing1":{"value":"\u60a8"}}}`, 40033, "will create fail!"},
		{"html escape", `{"touser":"` + u + `","template_id":"TPL_ORDER_SHIPPED","url":"https://e.com/?a=1\u0026b=2","data":{"thing1":{"value":"x"}}}`, 40033, ""},
		{"invalid utf-8", "{\"touser\":\"" + u + "\",\"template_id\":\"TPL_ORDER_SHIPPED\",\"data\":{\"thing1\":{\"value\":\"\xff\"}}}", 40033, ""},
		{"not json", `touser=` + u, 47001, "data format error"},
		{"truncated", `{"touser":"` + u + `"`, 47001, ""},
		{"array body", `[]`, 47001, ""},
		{"duplicate key", `{"touser":"` + u + `","touser":"` + u + `","template_id":"TPL_ORDER_SHIPPED","data":{"thing1":{"value":"x"}}}`, 47001, ""},
		{"touser number", with(func(m map[string]any) { m["touser"] = 12 }), 47001, ""},
		{"touser null", with(func(m map[string]any) { m["touser"] = nil }), 47001, ""},
		{"data array", with(func(m map[string]any) { m["data"] = []any{} }), 47001, ""},
		{"data value string", with(func(m map[string]any) { m["data"] = map[string]any{"thing1": "x"} }), 47001, ""},
		{"data value number", with(func(m map[string]any) { m["data"] = map[string]any{"thing1": map[string]any{"value": 3}} }), 47001, ""},
		{"miniprogram without appid", with(func(m map[string]any) { m["miniprogram"] = map[string]any{"pagepath": "index"} }), 47001, ""},
		{"client_msg_id number", with(func(m map[string]any) { m["client_msg_id"] = 7 }), 47001, ""},
		{"touser missing", with(func(m map[string]any) { delete(m, "touser") }), 40003, "invalid openid"},
		{"touser wrong case", with(func(m map[string]any) { m["toUser"] = m["touser"]; delete(m, "touser") }), 40003, ""},
		{"touser malformed", with(func(m map[string]any) { m["touser"] = "o123" }), 40003, ""},
		{"template_id missing", with(func(m map[string]any) { delete(m, "template_id") }), 40036, "invalid template_id size"},
		{"template_id unknown", with(func(m map[string]any) { m["template_id"] = "TPL_OTHER" }), 40037, "invalid template_id"},
		{"client_msg_id too long", with(func(m map[string]any) { m["client_msg_id"] = strings.Repeat("x", 65) }), 45067, ""},
		{"data missing", with(func(m map[string]any) { delete(m, "data") }), 47003, "argument invalid! data is empty"},
		{"data empty", with(func(m map[string]any) { m["data"] = map[string]any{} }), 47003, ""},
		{"value missing", with(func(m map[string]any) { m["data"] = map[string]any{"thing1": map[string]any{}} }), 47003, "argument invalid! data.thing1.value invalid"},
		{"thing too long", data("thing7", strings.Repeat("长", 21)), 47003, "argument invalid! data.thing7.value invalid"},
		{"newline", data("thing1", "a\nb"), 47003, "data.thing1.value invalid"},
		{"number", data("number2", "12a"), 47003, "data.number2.value invalid"},
		{"letter", data("letter1", "ab1"), 47003, ""},
		{"symbol", data("symbol1", "a"), 47003, ""},
		{"character_string chinese", data("character_string3", "订单123"), 47003, "data.character_string3.value invalid"},
		{"character_string long", data("character_string3", strings.Repeat("1", 33)), 47003, ""},
		{"time", data("time4", "25:00"), 47003, "data.time4.value invalid"},
		{"date", data("date5", "2026-02-30"), 47003, ""},
		{"amount", data("amount6", "¥12345678901"), 47003, ""},
		{"phone_number", data("phone_number1", "call me"), 47003, ""},
		{"car_number", data("car_number1", "A粤12345"), 47003, ""},
		{"name", data("name1", "张三abc"), 47003, ""},
		{"phrase", data("phrase1", "已经发货了啊"), 47003, "data.phrase1.value invalid"},
		{"const", data("const1", strings.Repeat("x", 21)), 47003, ""},
		{"bad key", data("Thing1", "x"), 47003, "data.Thing1.value invalid"},
		{"first bad key named", with(func(m map[string]any) {
			m["data"] = map[string]any{"thing1": map[string]any{"value": "ok"}, "thing2": map[string]any{"value": ""}}
		}), 47003, "data.thing2.value invalid"},
		{"keywords missing one", with(func(m map[string]any) {
			m["template_id"] = "TPL_KW"
			m["data"] = map[string]any{"thing1": map[string]any{"value": "ok"}}
		}), 47003, "data.time2.value invalid"},
		{"keywords extra one", with(func(m map[string]any) {
			m["template_id"] = "TPL_KW"
			m["data"] = map[string]any{"thing1": map[string]any{"value": "ok"}, "time2": map[string]any{"value": "09:00"}, "thing3": map[string]any{"value": "x"}}
		}), 47003, "data.thing3.value invalid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := b.send(t, nameTemplateSend, tok, tc.body)
			require.Equal(t, tc.code, errcode(t, m), "%v", m)
			require.Contains(t, m["errmsg"], tc.msg+" rid: ")
			require.NotContains(t, m, "msgid")
		})
	}
	t.Run("keywords exact set", func(t *testing.T) {
		t.Parallel()
		m := b.send(t, nameTemplateSend, tok, with(func(m map[string]any) {
			m["template_id"] = "TPL_KW"
			m["data"] = map[string]any{"thing1": map[string]any{"value": "ok", "color": "#173177"}, "time2": map[string]any{"value": "09:00"}}
		}))
		require.Zero(t, errcode(t, m), "%v", m)
	})
	t.Run("first and remark ignored", func(t *testing.T) {
		t.Parallel()
		m := b.send(t, nameTemplateSend, tok, with(func(m map[string]any) {
			m["data"].(map[string]any)["first"] = map[string]any{"value": strings.Repeat("x\n", 30)}
			m["data"].(map[string]any)["remark"] = map[string]any{"value": ""}
		}))
		require.Zero(t, errcode(t, m), "%v", m)
	})
	t.Run("escaped backslash u is not an escape", func(t *testing.T) {
		t.Parallel()
		m := b.send(t, nameTemplateSend, tok, data("thing1", `C:\users`))
		require.Zero(t, errcode(t, m), "%v", m)
	})
}

func TestTemplateDedupe(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tok := b.token(t)
	u, other := openID("dedupe"), openID("other")
	body := mustJSON(t, templateBody(u, "campaign-1:run-1:"+u))

	first := num(t, b.send(t, nameTemplateSend, tok, body), "msgid")
	// A retry inside the window answers the same msgid and delivers nothing.
	b.clock.Advance(DedupeWindow - time.Second)
	m := b.send(t, nameTemplateSend, tok, body)
	require.Zero(t, errcode(t, m))
	require.Equal(t, first, num(t, m, "msgid"))
	require.Len(t, b.srv.Deliveries(), 1)

	// The same client_msg_id for another user is another message.
	otherID := num(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(other, "campaign-1:run-1:"+u))), "msgid")
	require.NotEqual(t, first, otherID)

	// After the window it is delivered again: a duplicate.
	b.clock.Advance(time.Second)
	again := num(t, b.send(t, nameTemplateSend, tok, body), "msgid")
	require.NotEqual(t, first, again)

	st := b.srv.Stats()
	require.EqualValues(t, 3, st.Deliveries)
	require.EqualValues(t, 1, st.DuplicatesDelivered)
	require.EqualValues(t, 1, st.APIs[nameTemplateSend].Deduped)
	require.EqualValues(t, 3, st.APIs[nameTemplateSend].Accepted)
	require.EqualValues(t, 4, st.APIs[nameTemplateSend].OK)
}

func TestTemplateDuplicateWithoutClientMsgID(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tok := b.token(t)
	body := mustJSON(t, templateBody(openID("nodedupe"), ""))
	id1 := num(t, b.send(t, nameTemplateSend, tok, body), "msgid")
	id2 := num(t, b.send(t, nameTemplateSend, tok, body), "msgid")
	require.NotEqual(t, id1, id2)
	require.EqualValues(t, 1, b.srv.Stats().DuplicatesDelivered)
}

func TestTemplateRecipient(t *testing.T) {
	t.Parallel()
	blocked, refused := openID("blocked"), openID("refused")
	b := setup(t, Config{
		FollowerIDs:     []string{blocked},
		Followers:       3,
		RequireFollower: true,
		Terminal:        map[string]int{blocked: 48002, refused: 43101},
	})
	tok := b.token(t)
	follower := b.srv.FollowerOpenIDs()[0]
	require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(follower, "")))))
	require.Equal(t, 43004, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(openID("stranger"), "")))))
	require.Equal(t, 48002, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(blocked, "")))))
	require.Equal(t, 43101, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(refused, "")))))
	// Body errors come before recipient errors.
	bad := templateBody(blocked, "")
	bad["template_id"] = "nope"
	require.Equal(t, 40037, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, bad))))
	require.Len(t, b.srv.Deliveries(), 1)
	require.Equal(t, map[int]int64{43004: 1, 48002: 1, 43101: 1, 40037: 1}, b.srv.Stats().APIs[nameTemplateSend].Errors)
}

// templateBodyWith is templateBody with another template id.
func templateBodyWith(openid, templateID string) map[string]any {
	body := templateBody(openid, "")
	body["template_id"] = templateID
	return body
}

func TestSetTemplateIDs(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{TemplateKeywords: map[string][]string{TemplateIDDefault: {"thing1", "character_string2", "time3", "amount4"}}})
	tok := b.token(t)
	u := openID("tpl")
	require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(u, "")))))

	ids := []string{"TPL_NEW", "TPL_OTHER"}
	require.NoError(t, b.srv.SetTemplateIDs(ids))
	ids[0] = "changed by the caller"
	require.Equal(t, []string{"TPL_NEW", "TPL_OTHER"}, b.srv.TemplateIDs())
	require.Equal(t, 40037, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(u, "")))))
	require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBodyWith(u, "TPL_NEW")))))
	require.Equal(t, "TPL_NEW", b.srv.Deliveries()[1].TemplateID)

	// Back again: the keywords configured for the id still apply.
	require.NoError(t, b.srv.SetTemplateIDs([]string{TemplateIDDefault}))
	body := templateBody(u, "")
	body["data"].(map[string]any)["thing5"] = map[string]any{"value": "x"}
	require.Equal(t, 47003, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, body))))

	for _, tc := range []struct {
		ids  []string
		want string
	}{
		{nil, "wechattest: template ids: empty list"},
		{[]string{}, "wechattest: template ids: empty list"},
		{[]string{"A", " "}, "wechattest: template ids[1]: empty id"},
		{[]string{"A", "B", "A"}, `wechattest: template ids[2]: duplicate id "A"`},
	} {
		require.EqualError(t, b.srv.SetTemplateIDs(tc.ids), tc.want)
	}
	require.Equal(t, []string{TemplateIDDefault}, b.srv.TemplateIDs())
	// subscribe/bizsend has its own list.
	require.Zero(t, errcode(t, b.send(t, nameBizSend, tok, mustJSON(t, bizBody(u)))))
}

// TestSetTemplateIDsConcurrent swaps the allow-list while sends run; the race
// detector checks the hot path's read.
func TestSetTemplateIDsConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tok := b.token(t)
	const senders, sends = 4, 25
	type answer struct {
		code int
		err  error
	}
	answers := make(chan answer, senders*sends)
	url := b.srv.URL() + "/cgi-bin/" + nameTemplateSend + "?access_token=" + tok
	var wg sync.WaitGroup
	for g := range senders {
		wg.Go(func() {
			for i := range sends {
				// Not require: this is not the test's goroutine.
				body := `{"touser":"` + openID("c"+strconv.Itoa(g*sends+i)) + `","template_id":"` + TemplateIDDefault + `","data":{"thing1":{"value":"x"}}}`
				resp, err := b.client.Post(url, "application/json", strings.NewReader(body))
				if err != nil {
					answers <- answer{err: err}
					continue
				}
				var m struct {
					Errcode int `json:"errcode"`
				}
				err = json.NewDecoder(resp.Body).Decode(&m)
				resp.Body.Close()
				answers <- answer{code: m.Errcode, err: err}
			}
		})
	}
	for i := range 50 {
		ids := []string{TemplateIDDefault}
		if i%2 == 0 {
			ids = []string{"TPL_ELSE"}
		}
		require.NoError(t, b.srv.SetTemplateIDs(ids))
	}
	wg.Wait()
	close(answers)
	seen := map[int]int{}
	for a := range answers {
		require.NoError(t, a.err)
		seen[a.code]++
	}
	require.Equal(t, senders*sends, seen[0]+seen[40037], "%v", seen)
}
