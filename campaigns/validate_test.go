package campaigns

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat"
)

const (
	testAppID     = "wx00000000000fake1"
	testMiniAppID = "wx1234567890abcdef"
)

func testOpenID(n int) string { return fmt.Sprintf("oAAAAAAAAAAAAAAAAAAAAAAA%04d", n) }

func testOpenIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("oBBBBBBBBBBBBBBBBBBBBBB%05d", i)
	}
	return ids
}

// templateCampaign is a valid template campaign with a file audience that
// provides name and order.
func templateCampaign() *Campaign {
	return &Campaign{
		Name: "order shipped", Account: testAppID, Kind: KindTemplate,
		Template: &TemplateSpec{
			TemplateID: "TPL_ORDER_SHIPPED",
			URL:        "https://example.com/orders?id=1&from=wx",
			Data: map[string]string{
				"thing1":            "{{.name}}，您的订单已发货",
				"character_string2": "{{.order}}",
				"amount3":           "¥39.80",
				"time4":             "2026-03-01 12:00",
			},
		},
		Audience: AudienceSpec{Source: SourceFile, Variables: []string{"name", "order"}},
	}
}

func subscribeCampaign() *Campaign {
	return &Campaign{
		Name: "reminder", Account: testAppID, Kind: KindSubscribe,
		Subscribe: &SubscribeSpec{
			TemplateID:  "SUB_ORDER_SHIPPED",
			Page:        "https://example.com/p",
			MiniProgram: &wechat.MiniProgram{AppID: testMiniAppID, PagePath: "pages/index?id=1"},
			Data:        map[string]string{"thing1": "{{.name}}", "phrase2": "已发货"},
		},
		Audience: AudienceSpec{Source: SourceFile, Variables: []string{"name"}},
	}
}

// customCampaign is a valid customer-service campaign of msgtype, with a
// file audience that provides name.
func customCampaign(msgtype string) *Campaign {
	s := &CustomSpec{MsgType: msgtype}
	switch msgtype {
	case wechat.MsgTypeText:
		s.Text = &wechat.Text{Content: "{{.name}}, see <a href=\"https://example.com/?a=1&b=2\">here</a>"}
	case wechat.MsgTypeImage:
		s.Image = &MediaRef{MediaID: "MEDIA_ID_1"}
	case wechat.MsgTypeNews:
		s.News = &wechat.News{Articles: []wechat.Article{{Title: "Hi {{.name}}", Description: "news", URL: "https://example.com/a", PicURL: "https://example.com/p.png"}}}
	case wechat.MsgTypeMPNews:
		s.MPNews = &wechat.Media{MediaID: "MEDIA_ID_2"}
	case wechat.MsgTypeMPNewsArticle:
		s.MPNewsArticle = &wechat.MPNewsArticle{ArticleID: "ARTICLE_ID"}
	case wechat.MsgTypeMiniProgramPage:
		s.MiniProgramPage = &wechat.MiniProgramPage{Title: "{{.name}}'s page", AppID: testMiniAppID, PagePath: "pages/index/index?id=1", ThumbMediaID: "THUMB"}
	case wechat.MsgTypeMenu:
		s.MsgMenu = &wechat.MsgMenu{HeadContent: "{{.name}}, how was it?", List: []wechat.MsgMenuItem{{ID: "101", Content: "good"}, {ID: "102", Content: "bad"}}, TailContent: "thanks"}
	}
	return &Campaign{
		Name: "cs " + msgtype, Account: testAppID, Kind: KindCustom, Custom: s,
		Audience: AudienceSpec{Source: SourceFile, Variables: []string{"name"}},
	}
}

func TestValidateOK(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		c    *Campaign
	}{
		{"template", templateCampaign()},
		{"template inline static", func() *Campaign {
			c := templateCampaign()
			c.Template.Data = map[string]string{"thing1": "您的订单已发货", "first": "很长很长的开头，WeChat 会删掉它，所以不限长度", "remark": ""}
			c.Template.MiniProgram = &wechat.MiniProgram{AppID: testMiniAppID}
			c.Audience = AudienceSpec{Source: SourceInline, OpenIDs: testOpenIDs(InlineMaxOpenIDs)}
			return c
		}()},
		{"template followers, a comment and trim markers", func() *Campaign {
			c := templateCampaign()
			c.Template.Data = map[string]string{"thing1": "已发货 {{- /* no variables */ -}} ！"}
			c.Audience = AudienceSpec{Source: SourceFollowers}
			return c
		}()},
		{"subscribe", subscribeCampaign()},
		{"subscribe tag", func() *Campaign {
			c := subscribeCampaign()
			c.Subscribe.Data = map[string]string{"thing1": "hello"}
			c.Audience = AudienceSpec{Source: SourceTag, TagID: 2}
			return c
		}()},
		{"text of 2048 bytes", func() *Campaign {
			c := customCampaign(wechat.MsgTypeText)
			c.Custom.Text.Content = strings.Repeat("中", 682) + "ab" // 2048 bytes
			c.Custom.KFAccount = "test1@kftest"
			return c
		}()},
		{"text with newlines", func() *Campaign {
			c := customCampaign(wechat.MsgTypeText)
			c.Custom.Text.Content = "line 1\nline 2 {{.name}}"
			return c
		}()},
		{"rate", func() *Campaign {
			c := templateCampaign()
			c.Rate = 12.5
			c.ID = "c_01-x"
			c.State = StateDraft
			return c
		}()},
	}
	for _, mt := range []string{wechat.MsgTypeText, wechat.MsgTypeImage, wechat.MsgTypeNews, wechat.MsgTypeMPNews, wechat.MsgTypeMPNewsArticle, wechat.MsgTypeMiniProgramPage, wechat.MsgTypeMenu} {
		tests = append(tests, struct {
			name string
			c    *Campaign
		}{"custom " + mt, customCampaign(mt)})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.NoError(t, tt.c.Validate())
			_, err := tt.c.Compile()
			require.NoError(t, err)
		})
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()

	tpl := func(f func(c *Campaign)) func() *Campaign {
		return func() *Campaign { c := templateCampaign(); f(c); return c }
	}
	data := func(key, value string) func() *Campaign {
		return tpl(func(c *Campaign) { c.Template.Data[key] = value })
	}
	sub := func(f func(c *Campaign)) func() *Campaign {
		return func() *Campaign { c := subscribeCampaign(); f(c); return c }
	}
	cs := func(mt string, f func(c *Campaign, s *CustomSpec)) func() *Campaign {
		return func() *Campaign { c := customCampaign(mt); f(c, c.Custom); return c }
	}
	audience := func(a AudienceSpec) func() *Campaign {
		return tpl(func(c *Campaign) {
			c.Template.Data = map[string]string{"thing1": "static"}
			c.Audience = a
		})
	}

	noOrder := func(a AudienceSpec) func() *Campaign {
		return tpl(func(c *Campaign) {
			c.Template.Data["character_string2"] = "A-1"
			c.Audience = a
		})
	}

	tests := []struct {
		name  string
		c     func() *Campaign
		field string
		want  string
	}{
		// The campaign itself.
		{"bad id", tpl(func(c *Campaign) { c.ID = "a:b" }), "id", "letters, digits"},
		{"no name", tpl(func(c *Campaign) { c.Name = "  " }), "name", "required"},
		{"long name", tpl(func(c *Campaign) { c.Name = strings.Repeat("名", 201) }), "name", "201 characters, at most 200"},
		{"control in name", tpl(func(c *Campaign) { c.Name = "a\x00b" }), "name", "control characters"},
		{"no account", tpl(func(c *Campaign) { c.Account = "" }), "account", "required"},
		{"bad account", tpl(func(c *Campaign) { c.Account = "wx 123" }), "account", "not an account id"},
		{"bad state", tpl(func(c *Campaign) { c.State = "sending" }), "state", `unknown state "sending"`},
		{"negative rate", tpl(func(c *Campaign) { c.Rate = -1 }), "rate", "≥ 0"},
		{"NaN rate", tpl(func(c *Campaign) { c.Rate = math.NaN() }), "rate", "≥ 0"},
		{"infinite rate", tpl(func(c *Campaign) { c.Rate = math.Inf(1) }), "rate", "≥ 0"},
		{"priority above 10", tpl(func(c *Campaign) { c.Priority = 11 }), "priority", "1 to 10"},
		{"negative priority", tpl(func(c *Campaign) { c.Priority = -1 }), "priority", "not -1"},

		// Kind and spec.
		{"no kind", tpl(func(c *Campaign) { c.Kind = "" }), "kind", "required"},
		{"unknown kind", tpl(func(c *Campaign) { c.Kind = "broadcast" }), "kind", `unknown kind "broadcast"`},
		{"no spec", tpl(func(c *Campaign) { c.Template = nil }), "template", "required for a template campaign"},
		{"two specs", tpl(func(c *Campaign) { c.Custom = customCampaign(wechat.MsgTypeText).Custom }), "custom", "set on a template campaign"},

		// Template spec.
		{"no template_id", tpl(func(c *Campaign) { c.Template.TemplateID = "" }), "template.template_id", "required"},
		{"bad template_id", tpl(func(c *Campaign) { c.Template.TemplateID = "TPL 1" }), "template.template_id", "printable ASCII without spaces"},
		{"ftp url", tpl(func(c *Campaign) { c.Template.URL = "ftp://example.com/x" }), "template.url", "not an http or https URL"},
		{"relative url", tpl(func(c *Campaign) { c.Template.URL = "/orders/1" }), "template.url", "not an http or https URL"},
		{"url without host", tpl(func(c *Campaign) { c.Template.URL = "https:///x" }), "template.url", "no host"},
		{"url with space", tpl(func(c *Campaign) { c.Template.URL = "https://example.com/a b" }), "template.url", "spaces"},
		{"url with variable", tpl(func(c *Campaign) { c.Template.URL = "https://example.com/{{.order}}" }), "template.url", "variables are not allowed"},
		{"long url", tpl(func(c *Campaign) { c.Template.URL = "https://example.com/" + strings.Repeat("a", 2048) }), "template.url", "at most 2048"},
		{"bad mini appid", tpl(func(c *Campaign) { c.Template.MiniProgram = &wechat.MiniProgram{AppID: "x"} }), "template.miniprogram.appid", "not an appid"},
		{"url as pagepath", tpl(func(c *Campaign) {
			c.Template.MiniProgram = &wechat.MiniProgram{AppID: testMiniAppID, PagePath: "https://example.com"}
		}), "template.miniprogram.pagepath", "not a URL"},
		{"pagepath with space", tpl(func(c *Campaign) {
			c.Template.MiniProgram = &wechat.MiniProgram{AppID: testMiniAppID, PagePath: "pages/a b"}
		}), "template.miniprogram.pagepath", "spaces"},
		{"no data", tpl(func(c *Campaign) { c.Template.Data = nil }), "template.data", "at least one keyword"},
		{"bad keyword", data("thing 1", "x"), "template.data.thing 1", "not a template keyword"},
		{"keyword with .DATA", data("thing1.DATA", "x"), "template.data.thing1.DATA", "not a template keyword"},

		// Template values: the template language.
		{"unclosed action", data("thing1", "{{.name"), "template.data.thing1", "not a valid template"},
		{"function call", data("thing1", `{{printf "%s" .name}}`), "template.data.thing1", "only variable references such as {{.name}} are allowed"},
		{"pipeline", data("thing1", `{{.name | printf "%s"}}`), "template.data.thing1", "only variable references"},
		{"if", data("thing1", "{{if .name}}a{{end}}"), "template.data.thing1", "not {{if}}"},
		{"range", data("thing1", "{{range .name}}a{{end}}"), "template.data.thing1", "not {{range}}"},
		{"with", data("thing1", "{{with .name}}a{{end}}"), "template.data.thing1", "not {{with}}"},
		{"template", data("thing1", `{{template "x"}}`), "template.data.thing1", "not {{template}}"},
		{"define", data("thing1", `{{define "x"}}y{{end}}`), "template.data.thing1", "{{define}}"},
		{"block", data("thing1", `{{block "x" .}}y{{end}}`), "template.data.thing1", "{{define}} and {{block}}"},
		{"nested field", data("thing1", "{{.name.first}}"), "template.data.thing1", "nested fields such as {{.name.first}}"},
		{"dot", data("thing1", "{{.}}"), "template.data.thing1", "not {{.}}"},
		{"declaration", data("thing1", "{{$x := .name}}"), "template.data.thing1", "only variable references"},
		{"dollar", data("thing1", "{{$}}"), "template.data.thing1", "only variable references"},
		{"constant", data("thing1", `{{"x"}}`), "template.data.thing1", "only variable references"},

		// Template values: WeChat's field rules.
		{"static too long", data("thing1", strings.Repeat("长", 21)), "template.data.thing1", "21 characters, thing takes at most 20"},
		{"literal too long", data("thing1", "{{.name}}"+strings.Repeat("长", 21)), "template.data.thing1", "the text around the variables has 21 characters, thing takes at most 20"},
		{"static newline", data("thing1", "a\nb"), "template.data.thing1", "line breaks are not allowed"},
		{"literal newline", data("thing1", "{{.name}}\n已发货"), "template.data.thing1", "line breaks are not allowed"},
		{"newline in remark", data("remark", "a\r\nb"), "template.data.remark", "line breaks"},
		{"chinese in character_string", data("character_string2", "订单{{.order}}"), "template.data.character_string2", "no Chinese"},
		{"bad amount", data("amount3", "39.80"), "template.data.amount3", "is not an amount"},
		{"bad time", data("time4", "noon"), "template.data.time4", "is not allowed"},
		{"empty thing", data("thing1", ""), "template.data.thing1", "must not be empty"},

		// Variables against the audience.
		{"variable not in file", data("thing1", "{{.nmae}}"), "template.data.thing1", `variable "nmae" is not among audience.variables`},
		{"variable with followers", noOrder(AudienceSpec{Source: SourceFollowers}), "template.data.thing1", `variable "name" is not provided: audience source "followers" has no variables; use a file audience with a "name" column`},
		{"variable with tag", noOrder(AudienceSpec{Source: SourceTag, TagID: 100}), "template.data.thing1", `variable "name" is not provided: audience source "tag"`},
		{"variable with inline", noOrder(AudienceSpec{Source: SourceInline, OpenIDs: testOpenIDs(1)}), "template.data.thing1", `variable "name" is not provided: audience source "inline"`},
		{"custom variable with followers", cs(wechat.MsgTypeText, func(c *Campaign, _ *CustomSpec) { c.Audience = AudienceSpec{Source: SourceFollowers} }), "custom.text.content", `variable "name" is not provided`},

		// Audience.
		{"no source", audience(AudienceSpec{}), "audience.source", "required"},
		{"unknown source", audience(AudienceSpec{Source: "crm"}), "audience.source", `unknown source "crm"`},
		{"empty inline", audience(AudienceSpec{Source: SourceInline}), "audience.openids", "at least one openid"},
		{"bad openid", audience(AudienceSpec{Source: SourceInline, OpenIDs: []string{testOpenID(1), "abc"}}), "audience.openids[1]", `invalid openid "abc"`},
		{"openid with space", audience(AudienceSpec{Source: SourceInline, OpenIDs: []string{testOpenID(1) + " "}}), "audience.openids[0]", "invalid openid"},
		{"duplicate openid", audience(AudienceSpec{Source: SourceInline, OpenIDs: []string{testOpenID(1), testOpenID(2), testOpenID(1)}}), "audience.openids[2]", "duplicate of audience.openids[0]"},
		{"too many inline", audience(AudienceSpec{Source: SourceInline, OpenIDs: testOpenIDs(InlineMaxOpenIDs + 1)}), "audience.openids", "10001 openids, at most 10000 inline: upload a file instead"},
		{"no tag_id", audience(AudienceSpec{Source: SourceTag}), "audience.tag_id", "required"},
		{"tag_id on followers", audience(AudienceSpec{Source: SourceFollowers, TagID: 5}), "audience.tag_id", "only a tag audience"},
		{"openids on followers", audience(AudienceSpec{Source: SourceFollowers, OpenIDs: testOpenIDs(1)}), "audience.openids", "only an inline audience"},
		{"openids on file", audience(AudienceSpec{Source: SourceFile, OpenIDs: testOpenIDs(1)}), "audience.openids", "only an inline audience"},
		{"variables on tag", audience(AudienceSpec{Source: SourceTag, TagID: 3, Variables: []string{"name"}}), "audience.variables", "only a file audience"},
		{"empty variable", audience(AudienceSpec{Source: SourceFile, Variables: []string{"name", " "}}), "audience.variables[1]", "empty variable name"},
		{"openid variable", audience(AudienceSpec{Source: SourceFile, Variables: []string{"OpenID"}}), "audience.variables[0]", "openid is the recipient"},
		{"duplicate variable", audience(AudienceSpec{Source: SourceFile, Variables: []string{"a", "b", "a"}}), "audience.variables[2]", `duplicate variable "a"`},

		// Custom spec.
		{"no msgtype", cs(wechat.MsgTypeText, func(_ *Campaign, s *CustomSpec) { s.MsgType = "" }), "custom.msgtype", "required: one of text, image, news"},
		{"voice", cs(wechat.MsgTypeText, func(_ *Campaign, s *CustomSpec) { s.MsgType = "voice" }), "custom.msgtype", `unsupported msgtype "voice"`},
		{"missing payload", cs(wechat.MsgTypeText, func(_ *Campaign, s *CustomSpec) { s.Text = nil }), "custom.text", "required for msgtype text"},
		{"extra payload", cs(wechat.MsgTypeText, func(_ *Campaign, s *CustomSpec) { s.Image = &MediaRef{MediaID: "x"} }), "custom.image", "set on a text message"},
		{"bad kf_account", cs(wechat.MsgTypeText, func(_ *Campaign, s *CustomSpec) { s.KFAccount = "kf1" }), "custom.kf_account", "name@account"},
		{"empty text", cs(wechat.MsgTypeText, func(_ *Campaign, s *CustomSpec) { s.Text.Content = " " }), "custom.text.content", "must not be empty"},
		{"long text", cs(wechat.MsgTypeText, func(_ *Campaign, s *CustomSpec) { s.Text.Content = strings.Repeat("中", 683) }), "custom.text.content", "2049 bytes, at most 2048"},
		{"long text literal", cs(wechat.MsgTypeText, func(_ *Campaign, s *CustomSpec) { s.Text.Content = "{{.name}}" + strings.Repeat("a", 2049) }), "custom.text.content", "the text around the variables has 2049 bytes"},
		{"text control character", cs(wechat.MsgTypeText, func(_ *Campaign, s *CustomSpec) { s.Text.Content = "a\x00b" }), "custom.text.content", "control character U+0000"},
		{"menu control character", cs(wechat.MsgTypeMenu, func(_ *Campaign, s *CustomSpec) { s.MsgMenu.TailContent = "\x1b[31m" }), "custom.msgmenu.tail_content", "control character U+001B"},
		{"text bad template", cs(wechat.MsgTypeText, func(_ *Campaign, s *CustomSpec) { s.Text.Content = "{{if .name}}x{{end}}" }), "custom.text.content", "{{if}}"},
		{"no media_id", cs(wechat.MsgTypeImage, func(_ *Campaign, s *CustomSpec) { s.Image.MediaID = "" }), "custom.image.media_id", "required"},
		{"variable media_id", cs(wechat.MsgTypeMPNews, func(_ *Campaign, s *CustomSpec) { s.MPNews.MediaID = "{{.name}}" }), "custom.mpnews.media_id", "variables are not allowed"},
		{"no article_id", cs(wechat.MsgTypeMPNewsArticle, func(_ *Campaign, s *CustomSpec) { s.MPNewsArticle.ArticleID = "" }), "custom.mpnewsarticle.article_id", "required"},
		{"no articles", cs(wechat.MsgTypeNews, func(_ *Campaign, s *CustomSpec) { s.News.Articles = nil }), "custom.news.articles", "0 articles: exactly one"},
		{"two articles", cs(wechat.MsgTypeNews, func(_ *Campaign, s *CustomSpec) {
			s.News.Articles = append(s.News.Articles, s.News.Articles[0])
		}), "custom.news.articles", "2 articles: exactly one is allowed (WeChat answers 45008 to more)"},
		{"no article title", cs(wechat.MsgTypeNews, func(_ *Campaign, s *CustomSpec) { s.News.Articles[0].Title = "" }), "custom.news.articles[0].title", "must not be empty"},
		{"no article url", cs(wechat.MsgTypeNews, func(_ *Campaign, s *CustomSpec) { s.News.Articles[0].URL = "" }), "custom.news.articles[0].url", "required"},
		{"bad picurl", cs(wechat.MsgTypeNews, func(_ *Campaign, s *CustomSpec) { s.News.Articles[0].PicURL = "p.png" }), "custom.news.articles[0].picurl", "not an http or https URL"},
		{"card without title", cs(wechat.MsgTypeMiniProgramPage, func(_ *Campaign, s *CustomSpec) { s.MiniProgramPage.Title = "" }), "custom.miniprogrampage.title", "must not be empty"},
		{"card bad appid", cs(wechat.MsgTypeMiniProgramPage, func(_ *Campaign, s *CustomSpec) { s.MiniProgramPage.AppID = "wx!" }), "custom.miniprogrampage.appid", "not an appid"},
		{"card no pagepath", cs(wechat.MsgTypeMiniProgramPage, func(_ *Campaign, s *CustomSpec) { s.MiniProgramPage.PagePath = "" }), "custom.miniprogrampage.pagepath", "required"},
		{"card no thumb", cs(wechat.MsgTypeMiniProgramPage, func(_ *Campaign, s *CustomSpec) { s.MiniProgramPage.ThumbMediaID = "" }), "custom.miniprogrampage.thumb_media_id", "required"},
		{"empty menu", cs(wechat.MsgTypeMenu, func(_ *Campaign, s *CustomSpec) { s.MsgMenu.List = nil }), "custom.msgmenu.list", "at least one item"},
		{"menu item without id", cs(wechat.MsgTypeMenu, func(_ *Campaign, s *CustomSpec) { s.MsgMenu.List[0].ID = "" }), "custom.msgmenu.list[0].id", "required"},
		{"menu duplicate id", cs(wechat.MsgTypeMenu, func(_ *Campaign, s *CustomSpec) { s.MsgMenu.List[1].ID = "101" }), "custom.msgmenu.list[1].id", "duplicate of custom.msgmenu.list[0].id"},
		{"menu item without content", cs(wechat.MsgTypeMenu, func(_ *Campaign, s *CustomSpec) { s.MsgMenu.List[1].Content = "" }), "custom.msgmenu.list[1].content", "must not be empty"},

		// Subscribe spec.
		{"subscribe no template_id", sub(func(c *Campaign) { c.Subscribe.TemplateID = "" }), "subscribe.template_id", "required"},
		{"subscribe page path", sub(func(c *Campaign) { c.Subscribe.Page = "pages/index" }), "subscribe.page", "not an http or https URL"},
		{"subscribe mini appid", sub(func(c *Campaign) { c.Subscribe.MiniProgram.AppID = "" }), "subscribe.miniprogram.appid", "not an appid"},
		{"subscribe no data", sub(func(c *Campaign) { c.Subscribe.Data = map[string]string{} }), "subscribe.data", "at least one keyword"},
		{"subscribe bad phrase", sub(func(c *Campaign) { c.Subscribe.Data["phrase2"] = "shipped" }), "subscribe.data.phrase2", "phrase takes Chinese characters"},
		{"subscribe template on subscribe", sub(func(c *Campaign) { c.Template = templateCampaign().Template }), "template", "set on a subscribe campaign"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := tt.c()
			err := c.Validate()
			require.Error(t, err)
			var ve *ValidationError
			require.True(t, errors.As(err, &ve))
			require.Contains(t, plainErrors(ve.Errors), FieldError{Field: tt.field, Message: fieldMessage(t, ve, tt.field)})
			require.Contains(t, fieldMessage(t, ve, tt.field), tt.want)
			require.Contains(t, err.Error(), tt.field+": ")
			require.Len(t, ve.Errors, 1, "only the broken field is reported: %v", err)
		})
	}
}

// fieldMessage returns the message of the FieldError for field.
func fieldMessage(t *testing.T, ve *ValidationError, field string) string {
	t.Helper()
	for _, fe := range ve.Errors {
		if fe.Field == field {
			return fe.Message
		}
	}
	require.Failf(t, "no error for field", "%s in %v", field, ve)
	return ""
}

func TestValidateReportsEveryField(t *testing.T) {
	t.Parallel()

	c := templateCampaign()
	c.Name = ""
	c.Account = "wx?"
	c.Template.Data["thing1"] = strings.Repeat("x", 30)
	c.Template.Data["time4"] = "{{.missing}}"
	c.Audience.Variables = []string{"name"}
	err := c.Validate()
	var ve *ValidationError
	require.True(t, errors.As(err, &ve))
	var fields []string
	for _, fe := range ve.Errors {
		fields = append(fields, fe.Field)
	}
	require.Equal(t, []string{"name", "account", "template.data.thing1", "template.data.character_string2", "template.data.time4"}, fields)
	require.True(t, strings.HasPrefix(err.Error(), "campaigns: invalid campaign: name: required; account: not an account id"), err.Error())
}

func TestValidationErrorCap(t *testing.T) {
	t.Parallel()

	ids := make([]string, 150)
	for i := range ids {
		ids[i] = fmt.Sprintf("bad%d", i)
	}
	c := templateCampaign()
	c.Template.Data = map[string]string{"thing1": "x"}
	c.Audience = AudienceSpec{Source: SourceInline, OpenIDs: ids}
	err := c.Validate()
	var ve *ValidationError
	require.True(t, errors.As(err, &ve))
	require.Len(t, ve.Errors, ValidationMaxErrors)
	require.Equal(t, 50, ve.Omitted)
	require.Equal(t, "audience.openids[99]", ve.Errors[99].Field)
	require.True(t, strings.HasSuffix(err.Error(), "; and 50 more"))
}

func TestValidateNil(t *testing.T) {
	t.Parallel()

	var c *Campaign
	require.Error(t, c.Validate())
}

func TestCompileChecksOnlyTheMessage(t *testing.T) {
	t.Parallel()

	c := templateCampaign()
	c.Name = ""
	c.Audience = AudienceSpec{}
	m, err := c.Compile()
	require.NoError(t, err, "Compile leaves the name and audience to Validate")
	require.Equal(t, []string{"name", "order"}, m.Variables())

	c.Template.Data["thing1"] = "{{.name"
	_, err = c.Compile()
	var ve *ValidationError
	require.True(t, errors.As(err, &ve))
	require.Equal(t, "template.data.thing1", ve.Errors[0].Field)
}

func TestWarnings(t *testing.T) {
	t.Parallel()

	c := templateCampaign()
	require.Empty(t, c.Warnings())
	c.Template.Data["first"] = "hello"
	c.Template.Data["remark"] = "bye"
	c.Template.MiniProgram = &wechat.MiniProgram{AppID: testMiniAppID}
	require.NoError(t, c.Validate(), "first and remark are accepted")
	var fields []string
	for _, w := range c.Warnings() {
		fields = append(fields, w.Field)
	}
	require.Equal(t, []string{"template.data.first", "template.data.remark", "template.url"}, fields)
	require.Contains(t, c.Warnings()[0].Message, "2023-05-04")

	w := customCampaign(wechat.MsgTypeMenu).Warnings()
	require.Len(t, w, 2)
	require.Contains(t, w[0].Message, "45015")
	require.Contains(t, w[1].Message, "40200")
	require.Contains(t, subscribeCampaign().Warnings()[0].Message, "43101")
}

func TestValidOpenIDAndAppID(t *testing.T) {
	t.Parallel()

	for _, s := range []string{"oDEMO0000000000000000000001A", "o6_bmjrPTlm6_2sgVt7hMZOPfL2M", strings.Repeat("a", 20), strings.Repeat("-", 64)} {
		require.True(t, ValidOpenID(s), s)
	}
	for _, s := range []string{"", strings.Repeat("a", 19), strings.Repeat("a", 65), "oDEMO000000000000000000 01A", "oDEMO0000000000000000000001é", "N/A", "oDEMO00000000000000000,00001A"} {
		require.False(t, ValidOpenID(s), s)
	}
	for _, s := range []string{"wx00000000000fake1", "wx1234567890abcdef", "wxABCDEF1234567890"} {
		require.True(t, ValidAppID(s), s)
	}
	for _, s := range []string{"", "wx", "wx1234567890abcde", "wx1234567890abcdef0", "gh_1234567890abcdef", "wx1234567890abcde_"} {
		require.False(t, ValidAppID(s), s)
	}
}

// plainErrors returns errs with only their JSON fields (Field and Message).
func plainErrors(errs []FieldError) []FieldError {
	out := make([]FieldError, len(errs))
	for i, e := range errs {
		out[i] = FieldError{Field: e.Field, Message: e.Message}
	}
	return out
}
