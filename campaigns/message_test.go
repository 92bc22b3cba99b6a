package campaigns

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat"
)

func compile(t testing.TB, c *Campaign) *Message {
	t.Helper()
	require.NoError(t, c.Validate())
	m, err := c.Compile()
	require.NoError(t, err)
	return m
}

// sameString reports whether a and b share their bytes: a static value that
// was not rendered again.
func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

func TestRenderTemplate(t *testing.T) {
	t.Parallel()

	c := templateCampaign()
	c.Template.MiniProgram = &wechat.MiniProgram{AppID: testMiniAppID, PagePath: "pages/o?id=1&x=2"}
	m := compile(t, c)
	require.Equal(t, KindTemplate, m.Kind())
	require.Equal(t, []string{"name", "order"}, m.Variables())

	vars := map[string]string{"name": `<b>"Tom" & 'Jerry'</b>`, "order": "A&B<1>", "unused": "x"}
	got, err := m.RenderTemplate(testOpenID(1), vars, "c1:r1:abc")
	require.NoError(t, err)
	require.Equal(t, &wechat.TemplateMessage{
		ToUser:      testOpenID(1),
		TemplateID:  "TPL_ORDER_SHIPPED",
		URL:         "https://example.com/orders?id=1&from=wx",
		MiniProgram: &wechat.MiniProgram{AppID: testMiniAppID, PagePath: "pages/o?id=1&x=2"},
		ClientMsgID: "c1:r1:abc",
		Data: map[string]wechat.TemplateValue{
			"thing1":            {Value: `<b>"Tom" & 'Jerry'</b>，您的订单已发货`},
			"character_string2": {Value: "A&B<1>"},
			"amount3":           {Value: "¥39.80"},
			"time4":             {Value: "2026-03-01 12:00"},
		},
	}, got)

	// Static values are the compiled strings, not copies.
	again, err := m.RenderTemplate(testOpenID(2), map[string]string{"name": "x", "order": "y"}, "")
	require.NoError(t, err)
	require.True(t, sameString(got.Data["amount3"].Value, again.Data["amount3"].Value))
	require.True(t, sameString(got.Data["time4"].Value, again.Data["time4"].Value))
	require.Same(t, got.MiniProgram, again.MiniProgram, "the mini program is shared")
	// A value that is one variable is the variable's string itself.
	require.True(t, sameString(again.Data["character_string2"].Value, "y") || again.Data["character_string2"].Value == "y")

	// Values are data, never templates themselves.
	lit, err := m.RenderTemplate(testOpenID(3), map[string]string{"name": "{{.order}}", "order": "{{"}, "")
	require.NoError(t, err)
	require.Equal(t, "{{.order}}，您的订单已发货", lit.Data["thing1"].Value)
	require.Equal(t, "{{", lit.Data["character_string2"].Value)

	// Each render has its own data map.
	got.Data["thing1"] = wechat.TemplateValue{Value: "changed"}
	require.Equal(t, "x，您的订单已发货", again.Data["thing1"].Value)
}

func TestRenderMissingVariable(t *testing.T) {
	t.Parallel()

	m := compile(t, templateCampaign())
	for _, vars := range []map[string]string{nil, {"name": "x"}, {"order": "x", "Name": "y"}} {
		_, err := m.RenderTemplate(testOpenID(1), vars, "")
		require.ErrorIs(t, err, ErrMissingVariable)
		var mv *MissingVariableError
		require.True(t, errors.As(err, &mv))
		require.NotEmpty(t, mv.Variable)
		require.True(t, strings.HasPrefix(mv.Field, "template.data."))
		require.Contains(t, err.Error(), mv.Field+": missing variable")
	}
	_, err := m.RenderTemplate(testOpenID(1), map[string]string{"order": "x"}, "")
	require.EqualError(t, err, `campaigns: template.data.thing1: missing variable "name"`)

	// An empty value is a value, not a missing variable.
	got, err := m.RenderTemplate(testOpenID(1), map[string]string{"name": "", "order": ""}, "")
	require.NoError(t, err)
	require.Equal(t, "，您的订单已发货", got.Data["thing1"].Value)
}

func TestRenderWrongKind(t *testing.T) {
	t.Parallel()

	tm := compile(t, templateCampaign())
	_, err := tm.RenderCustom(testOpenID(1), nil)
	require.ErrorIs(t, err, ErrWrongKind)
	_, err = tm.RenderSubscribe(testOpenID(1), nil)
	require.ErrorIs(t, err, ErrWrongKind)
	cm := compile(t, customCampaign(wechat.MsgTypeText))
	_, err = cm.RenderTemplate(testOpenID(1), nil, "")
	require.ErrorIs(t, err, ErrWrongKind)
}

func TestRenderSubscribe(t *testing.T) {
	t.Parallel()

	m := compile(t, subscribeCampaign())
	got, err := m.RenderSubscribe(testOpenID(3), map[string]string{"name": "张三&李四"})
	require.NoError(t, err)
	require.Equal(t, &wechat.SubscribeMessage{
		ToUser:      testOpenID(3),
		TemplateID:  "SUB_ORDER_SHIPPED",
		Page:        "https://example.com/p",
		MiniProgram: &wechat.MiniProgram{AppID: testMiniAppID, PagePath: "pages/index?id=1"},
		Data:        map[string]wechat.TemplateValue{"thing1": {Value: "张三&李四"}, "phrase2": {Value: "已发货"}},
	}, got)
	_, err = m.RenderSubscribe(testOpenID(3), map[string]string{})
	require.ErrorIs(t, err, ErrMissingVariable)
}

func TestRenderCustom(t *testing.T) {
	t.Parallel()

	vars := map[string]string{"name": "Tom & <Jerry>"}
	tests := []struct {
		msgtype string
		want    wechat.CustomMessage
	}{
		{wechat.MsgTypeText, wechat.CustomMessage{Text: &wechat.Text{Content: `Tom & <Jerry>, see <a href="https://example.com/?a=1&b=2">here</a>`}}},
		{wechat.MsgTypeImage, wechat.CustomMessage{Image: &wechat.Media{MediaID: "MEDIA_ID_1"}}},
		{wechat.MsgTypeNews, wechat.CustomMessage{News: &wechat.News{Articles: []wechat.Article{{Title: "Hi Tom & <Jerry>", Description: "news", URL: "https://example.com/a", PicURL: "https://example.com/p.png"}}}}},
		{wechat.MsgTypeMPNews, wechat.CustomMessage{MPNews: &wechat.Media{MediaID: "MEDIA_ID_2"}}},
		{wechat.MsgTypeMPNewsArticle, wechat.CustomMessage{MPNewsArticle: &wechat.MPNewsArticle{ArticleID: "ARTICLE_ID"}}},
		{wechat.MsgTypeMiniProgramPage, wechat.CustomMessage{MiniProgramPage: &wechat.MiniProgramPage{Title: "Tom & <Jerry>'s page", AppID: testMiniAppID, PagePath: "pages/index/index?id=1", ThumbMediaID: "THUMB"}}},
		{wechat.MsgTypeMenu, wechat.CustomMessage{MsgMenu: &wechat.MsgMenu{HeadContent: "Tom & <Jerry>, how was it?", List: []wechat.MsgMenuItem{{ID: "101", Content: "good"}, {ID: "102", Content: "bad"}}, TailContent: "thanks"}}},
	}
	for _, tt := range tests {
		t.Run(tt.msgtype, func(t *testing.T) {
			t.Parallel()
			c := customCampaign(tt.msgtype)
			c.Custom.KFAccount = "kf1@example"
			m := compile(t, c)
			got, err := m.RenderCustom(testOpenID(4), vars)
			require.NoError(t, err)
			want := tt.want
			want.ToUser = testOpenID(4)
			want.MsgType = tt.msgtype
			want.CustomService = &wechat.CustomServiceSender{KFAccount: "kf1@example"}
			require.Equal(t, &want, got)
			require.NoError(t, got.Validate(), "the wechat client accepts it")

			other, err := m.RenderCustom(testOpenID(5), map[string]string{"name": "Ann"})
			require.NoError(t, err)
			require.Equal(t, testOpenID(4), got.ToUser, "renders do not share the envelope")
			require.Same(t, got.CustomService, other.CustomService)

			if len(m.Variables()) > 0 {
				_, err = m.RenderCustom(testOpenID(4), nil)
				var mv *MissingVariableError
				require.True(t, errors.As(err, &mv))
				require.Equal(t, "name", mv.Variable)
				require.True(t, strings.HasPrefix(mv.Field, "custom."+tt.msgtype+"."), mv.Field)
			}
		})
	}
}

func TestRenderCustomStatic(t *testing.T) {
	t.Parallel()

	c := customCampaign(wechat.MsgTypeText)
	c.Custom.Text.Content = "static & <b>"
	m := compile(t, c)
	require.Empty(t, m.Variables())
	a, err := m.RenderCustom(testOpenID(1), nil)
	require.NoError(t, err)
	b, err := m.RenderCustom(testOpenID(2), nil)
	require.NoError(t, err)
	require.Same(t, a.Text, b.Text, "a static payload is built once")
	require.Equal(t, "static & <b>", a.Text.Content)
	require.Nil(t, a.CustomService)

	// The compiled message does not share memory with the campaign.
	c.Custom.Text.Content = "changed"
	d, err := m.RenderCustom(testOpenID(3), nil)
	require.NoError(t, err)
	require.Equal(t, "static & <b>", d.Text.Content)
}

func TestCompileCopiesTheCampaign(t *testing.T) {
	t.Parallel()

	c := customCampaign(wechat.MsgTypeMenu)
	m := compile(t, c)
	c.Custom.MsgMenu.List[0].Content = "changed"
	c.Custom.MsgMenu.List[0].ID = "999"

	tc := templateCampaign()
	tc.Template.MiniProgram = &wechat.MiniProgram{AppID: testMiniAppID}
	tm := compile(t, tc)
	tc.Template.MiniProgram.AppID = "wxchangedchanged00"
	tc.Template.Data["amount3"] = "¥1"

	got, err := m.RenderCustom(testOpenID(1), map[string]string{"name": "x"})
	require.NoError(t, err)
	require.Equal(t, wechat.MsgMenuItem{ID: "101", Content: "good"}, got.MsgMenu.List[0])
	tgot, err := tm.RenderTemplate(testOpenID(1), map[string]string{"name": "x", "order": "y"}, "")
	require.NoError(t, err)
	require.Equal(t, testMiniAppID, tgot.MiniProgram.AppID)
	require.Equal(t, "¥39.80", tgot.Data["amount3"].Value)
}

func TestRenderJSON(t *testing.T) {
	t.Parallel()

	// The rendered message is the body the client sends; HTML characters
	// stay as they are for the client's encoder to handle.
	m := compile(t, templateCampaign())
	got, err := m.RenderTemplate("oDEMO0000000000000000000001A", map[string]string{"name": "A&B", "order": "X-1"}, "k")
	require.NoError(t, err)
	require.Equal(t, "A&B，您的订单已发货", got.Data["thing1"].Value)
	b, err := json.Marshal(got)
	require.NoError(t, err)
	require.JSONEq(t, `{"touser":"oDEMO0000000000000000000001A","template_id":"TPL_ORDER_SHIPPED","url":"https://example.com/orders?id=1&from=wx","client_msg_id":"k",
		"data":{"thing1":{"value":"A&B，您的订单已发货"},"character_string2":{"value":"X-1"},"amount3":{"value":"¥39.80"},"time4":{"value":"2026-03-01 12:00"}}}`, string(b))
}

func TestParseText(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in      string
		static  string   // for static texts
		render  string   // with name=N, city=C
		vars    []string // for dynamic texts
		refused string
	}{
		{in: "plain", static: "plain"},
		{in: "", static: ""},
		{in: "{ not a template }", static: "{ not a template }"},
		{in: "a {{/* note */}} b", static: "a  b"},
		{in: "a {{- /* note */ -}} b", static: "ab"},
		{in: "{{.name}}", render: "N", vars: []string{"name"}},
		{in: "{{ .name }}!", render: "N!", vars: []string{"name"}},
		{in: "{{.name}}/{{.city}}/{{.name}}", render: "N/C/N", vars: []string{"name", "city"}},
		{in: "x {{- .name -}} y", render: "xNy", vars: []string{"name"}},
		{in: "{{.姓名}}", render: "", vars: []string{"姓名"}},
		{in: "{{.name", refused: "not a valid template"},
		{in: "{{.name}", refused: "not a valid template"},
		{in: "{{.Name.x}}", refused: "nested fields"},
		{in: "{{len .name}}", refused: "only variable references"},
		{in: "{{html .name}}", refused: "only variable references"},
		{in: "{{.name | urlquery}}", refused: "only variable references"},
		{in: "{{if .a}}{{else}}{{end}}", refused: "{{if}}"},
		{in: "{{range $i, $v := .a}}{{end}}", refused: "{{range}}"},
		{in: "{{break}}", refused: "not a valid template"},
		{in: `{{define "a"}}x{{end}}{{.name}}`, refused: "{{define}}"},
		{in: "{{nil}}", refused: "only variable references"},
		{in: "{{1}}", refused: "only variable references"},
	}
	for _, tt := range tests {
		got, r := parseText(tt.in)
		reason := r.String()
		if tt.refused != "" {
			require.Contains(t, reason, tt.refused, tt.in)
			continue
		}
		require.Empty(t, reason, tt.in)
		if tt.vars == nil {
			require.False(t, got.dynamic(), tt.in)
			require.Equal(t, tt.static, got.value)
			continue
		}
		require.Equal(t, tt.vars, got.vars, tt.in)
		s, missing := got.render(map[string]string{"name": "N", "city": "C", "姓名": ""})
		require.Empty(t, missing)
		require.Equal(t, tt.render, s, tt.in)
	}
}

func TestCheckRecipient(t *testing.T) {
	t.Parallel()

	tm := compile(t, templateCampaign())
	text := compile(t, customCampaign(wechat.MsgTypeText))
	menu := compile(t, customCampaign(wechat.MsgTypeMenu))
	static := templateCampaign()
	static.Template.Data = map[string]string{"thing1": "已发货"}
	static.Audience = AudienceSpec{Source: SourceFollowers}
	sm := compile(t, static)

	tests := []struct {
		name   string
		m      *Message
		vars   map[string]string
		field  string
		reason string
	}{
		{"ok", tm, map[string]string{"name": "张三", "order": "A-1"}, "", ""},
		{"thing at the limit", tm, map[string]string{"name": strings.Repeat("名", 12), "order": "A-1"}, "", ""}, // 12 + 8 = 20
		{"thing too long", tm, map[string]string{"name": strings.Repeat("名", 13), "order": "A-1"}, "template.data.thing1", "21 characters, thing takes at most 20"},
		{"newline in a variable", tm, map[string]string{"name": "a\nb", "order": "A-1"}, "template.data.thing1", "line breaks"},
		{"chinese order", tm, map[string]string{"name": "x", "order": "订单1"}, "template.data.character_string2", "no Chinese"},
		{"empty order", tm, map[string]string{"name": "x", "order": ""}, "template.data.character_string2", "must not be empty"},
		{"missing", tm, map[string]string{"order": "A-1"}, "template.data.thing1", `variable "name" is missing`},
		{"static message", sm, nil, "", ""},
		{"text ok with newline", text, map[string]string{"name": "a\nb"}, "", ""},
		{"text too long", text, map[string]string{"name": strings.Repeat("x", 2048)}, "custom.text.content", "bytes, at most 2048"},
		{"menu ok", menu, map[string]string{"name": ""}, "", ""},
		{"menu missing", menu, map[string]string{}, "custom.msgmenu.head_content", "is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.m.CheckRecipient(tt.vars)
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			var re *RecipientError
			require.True(t, errors.As(err, &re), "%v", err)
			require.Equal(t, tt.field, re.Field)
			require.Contains(t, re.Reason, tt.reason)
			require.NotEmpty(t, re.Variables)
			require.Contains(t, err.Error(), tt.field+" (from ")
		})
	}

	err := tm.CheckRecipient(map[string]string{"name": strings.Repeat("名", 13), "order": "A-1"})
	var re *RecipientError
	require.True(t, errors.As(err, &re))
	require.Equal(t, []string{"name"}, re.Variables)
	require.Equal(t, strings.Repeat("名", 13)+"，您的订单已发货", re.Value)
}

func TestRenderConcurrent(t *testing.T) {
	t.Parallel()

	m := compile(t, templateCampaign())
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				name := fmt.Sprintf("n%d-%d", g, i)
				got, err := m.RenderTemplate(testOpenID(i), map[string]string{"name": name, "order": "A"}, "")
				if err != nil || got.Data["thing1"].Value != name+"，您的订单已发货" {
					t.Errorf("render %s: %v %v", name, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkRenderTemplate(b *testing.B) {
	openid := "oDEMO0000000000000000000001A"
	for _, bc := range []struct {
		name string
		data map[string]string
	}{
		{"static", map[string]string{"thing1": "您的订单已发货", "amount2": "¥39.80", "time3": "2026-03-01 12:00", "character_string4": "A-1"}},
		{"one_var", map[string]string{"thing1": "{{.name}}", "amount2": "¥39.80", "time3": "2026-03-01 12:00", "character_string4": "A-1"}},
		{"mixed", map[string]string{"thing1": "{{.name}}，您的订单已发货", "amount2": "¥{{.amount}}", "time3": "2026-03-01 12:00", "character_string4": "{{.order}}"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c := templateCampaign()
			c.Template.Data = bc.data
			c.Audience = AudienceSpec{Source: SourceFile, Variables: []string{"name", "amount", "order"}}
			m := compile(b, c)
			vars := map[string]string{"name": "张三", "amount": "39.80", "order": "A-20260301-0001"}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := m.RenderTemplate(openid, vars, "c1:1:0123456789abcdef"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCheckRecipient(b *testing.B) {
	m := compile(b, templateCampaign())
	vars := map[string]string{"name": "张三", "order": "A-20260301-0001"}
	b.ReportAllocs()
	for b.Loop() {
		if err := m.CheckRecipient(vars); err != nil {
			b.Fatal(err)
		}
	}
}

func ExampleCampaign_Compile() {
	c := &Campaign{
		Name:    "order shipped",
		Account: "wx00000000000fake1",
		Kind:    KindTemplate,
		Template: &TemplateSpec{
			TemplateID: "TPL_ORDER_SHIPPED",
			Data: map[string]string{
				"thing1":  "{{.name}}，您的订单已发货",
				"amount2": "¥39.80",
			},
		},
		Audience: AudienceSpec{Source: SourceFile, Variables: []string{"name"}},
	}
	if err := c.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	m, err := c.Compile()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Variables())
	fmt.Println(m.CheckRecipient(map[string]string{"name": "一个非常非常非常非常长的名字"}))

	msg, err := m.RenderTemplate("oDEMO0000000000000000000001A", map[string]string{"name": "张三"}, "c1:1:ab12")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(msg.Data["thing1"].Value, msg.Data["amount2"].Value)

	_, err = m.RenderTemplate("oDEMO0000000000000000000001A", map[string]string{}, "c1:1:ab12")
	fmt.Println(err)
	// Output:
	// [name]
	// campaigns: template.data.thing1 (from name): 22 characters, thing takes at most 20
	// 张三，您的订单已发货 ¥39.80
	// campaigns: template.data.thing1: missing variable "name"
}
