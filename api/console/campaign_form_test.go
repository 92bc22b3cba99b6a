package console_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// templateForm is the new-campaign form filled in for a template campaign
// with an inline audience.
func templateForm(tok string) url.Values {
	return url.Values{
		"csrf": {tok}, "op": {"save"},
		"name": {"双十二 会员日"}, "account": {"shop"}, "kind": {"template"}, "rate": {"5"}, "require_test": {"1"},
		"audience_source": {"inline"}, "openids": {"oCON000000000000000000000001\r\n\r\n oCON000000000000000000000002 \r\n"},
		"template_id": {"TPL_ORDER_SHIPPED"}, "url": {"https://example.com/orders"},
		"mini_appid": {""}, "mini_pagepath": {""},
		"data_key_0": {"thing1"}, "data_value_0": {"订单已发货"},
		"data_key_1": {"character_string2"}, "data_value_1": {"SN20261212"},
		"data_key_2": {""}, "data_value_2": {""},
		"data_key_3": {""}, "data_value_3": {""},
		"data_key_4": {""}, "data_value_4": {""},
		"data_key_5": {""}, "data_value_5": {""},
	}
}

// total is how many campaigns the API lists.
func (b *bundle) total(t *testing.T) float64 {
	t.Helper()
	status, out := b.apiJSON(t, "GET", "/v1/campaigns", nil)
	require.Equal(t, http.StatusOK, status, "%v", out)
	return out["total"].(float64)
}

// fieldError returns the text of the error paragraph id, and checks that
// the input named by its id describes itself with it.
func fieldError(t *testing.T, p page, input, id string) string {
	t.Helper()
	m := regexp.MustCompile(`<p class="field-error" id="` + regexp.QuoteMeta(id) + `">([^<]*)</p>`).FindStringSubmatch(p.body)
	require.NotNil(t, m, "the page has the error paragraph %s:\n%s", id, p.body)
	in := regexp.MustCompile(`<(?:input|textarea|select) id="` + regexp.QuoteMeta(input) + `"[^>]*>`).FindString(p.body)
	require.NotEmpty(t, in, "the page has the input %s", input)
	require.Contains(t, in, id, "the input %s is described by its error", input)
	require.Contains(t, in, `aria-invalid="true"`)
	return html.UnescapeString(m[1])
}

var campaignPathRE = regexp.MustCompile(`^/console/campaigns/([A-Za-z0-9_-]+)$`)

// TestCampaignFormCreatesTemplate: a template campaign typed into the form
// is what the API then shows.
func TestCampaignFormCreatesTemplate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	form := b.get(t, "/console/campaigns/new", "en")
	require.Equal(t, http.StatusOK, form.status, form.body)
	for _, id := range []string{"f-name", "f-account", "f-kind", "f-rate", "f-require-test", "f-audience-source", "f-openids",
		"f-template-id", "f-url", "f-data-key-5", "f-data-value-5", "save", "preview", "f-preview-openid"} {
		require.Contains(t, form.body, `id="`+id+`"`)
	}
	require.Contains(t, form.body, `id="preview-error"`, "an empty form has no message to preview yet")

	done := b.post(t, "/console/campaigns/new", templateForm(token(t, form)))
	require.Equal(t, http.StatusOK, done.status, done.body)
	m := campaignPathRE.FindStringSubmatch(done.url.Path)
	require.NotNil(t, m, "the save goes to the campaign's page: %s", done.url)
	require.Contains(t, done.body, "Campaign created.")
	require.Contains(t, done.body, `id="preview-card"`, "a draft's page previews its message")

	_, c := b.apiJSON(t, "GET", "/v1/campaigns/"+m[1], nil)
	require.Equal(t, "双十二 会员日", c["name"])
	require.Equal(t, "shop", c["account"])
	require.Equal(t, "template", c["kind"])
	require.Equal(t, 5.0, c["rate"])
	require.Equal(t, true, c["require_test"])
	require.Equal(t, "draft", c["state"])
	require.Equal(t, map[string]any{"source": "inline", "openids": []any{"oCON000000000000000000000001", "oCON000000000000000000000002"}}, c["audience"])
	require.Equal(t, map[string]any{"template_id": "TPL_ORDER_SHIPPED", "url": "https://example.com/orders",
		"data": map[string]any{"thing1": "订单已发货", "character_string2": "SN20261212"}}, c["template"])
	for _, k := range []string{"custom", "subscribe", "mass"} {
		require.NotContains(t, c, k)
	}
}

// TestCampaignFormFieldErrors: a value WeChat's rule refuses and an empty
// template id are shown next to their fields, in English and in Chinese,
// and nothing is created until they are fixed.
func TestCampaignFormFieldErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tt := range []struct {
		lang, tooLong, required, letters, banner string
	}{
		{"en", "25 characters, thing takes at most 20", "required",
			"character '订' (U+8BA2) at position 1 is not allowed: letter takes letters A-Z and a-z", "The campaign was not saved"},
		{"zh-CN", "25 个字符，thing 最多 20 个字符", "必填", "字符 '订' (U+8BA2)（第 1 个）不允许：letter 只能填写字母 A-Z 和 a-z", "活动未保存"},
	} {
		form := b.get(t, "/console/campaigns/new", tt.lang)
		bad := templateForm(token(t, form))
		bad.Set("data_value_0", strings.Repeat("订", 25))
		bad.Set("template_id", "")
		bad.Set("data_key_2", "letter3")
		bad.Set("data_value_2", "订单")
		p := b.postLang(t, "/console/campaigns/new", bad, tt.lang)
		require.Equal(t, http.StatusUnprocessableEntity, p.status, p.body)
		require.Equal(t, "/console/campaigns/new", p.url.Path)
		require.Contains(t, p.body, tt.banner)
		require.Equal(t, tt.tooLong, fieldError(t, p, "f-data-value-0", "err-template-data-thing1"), tt.lang)
		require.Equal(t, tt.required, fieldError(t, p, "f-template-id", "err-template-template_id"), tt.lang)
		require.Equal(t, tt.letters, fieldError(t, p, "f-data-value-2", "err-template-data-letter3"), "the phrase argument is translated too")
		require.Contains(t, p.body, `value="`+strings.Repeat("订", 25)+`"`, "the form keeps what was typed")
		require.NotContains(t, p.body, `id="top-errors"`, "the API's refusal was predicted: nothing at the top")
		require.Zero(t, b.total(t), "nothing is created")
	}

	// An account the API does not know is not the local validation's: it
	// is shown at the top by the API's code, translated, and its message.
	form := b.get(t, "/console/campaigns/new", "zh-CN")
	unknown := templateForm(token(t, form))
	unknown.Set("account", "other")
	p := b.postLang(t, "/console/campaigns/new", unknown, "zh-CN")
	require.Equal(t, http.StatusUnprocessableEntity, p.status, p.body)
	require.Contains(t, p.body, `id="top-errors"`)
	require.Contains(t, p.body, "wxmass sends for no account")
	require.Zero(t, b.total(t))

	fixed := templateForm(token(t, form))
	done := b.postLang(t, "/console/campaigns/new", fixed, "zh-CN")
	require.Equal(t, http.StatusOK, done.status, done.body)
	require.Regexp(t, campaignPathRE, done.url.Path)
	require.Contains(t, done.body, "活动已创建。")
	require.Equal(t, 1.0, b.total(t))
}

// TestCampaignFormEditsDraft: the edit form shows the draft as stored and
// saves what is changed, keeping what the form does not show.
func TestCampaignFormEditsDraft(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.newCampaign(t, "草稿")
	status, _ := b.apiJSON(t, "PUT", "/v1/campaigns/"+id, map[string]any{
		"name": "草稿", "account": "shop", "kind": "template", "priority": 8,
		"template": map[string]any{"template_id": "TPL_ORDER_SHIPPED", "data": map[string]any{"thing1": "订单已发货"}},
		"audience": map[string]any{"source": "inline", "openids": []string{"oCON000000000000000000000001", "oCON000000000000000000000002"}},
	})
	require.Equal(t, http.StatusOK, status)

	page := b.get(t, "/console/campaigns/"+id, "en")
	require.Contains(t, page.body, `href="/console/campaigns/`+id+`/edit"`, "the campaign page links the edit form")
	form := b.get(t, "/console/campaigns/"+id+"/edit", "en")
	require.Equal(t, http.StatusOK, form.status, form.body)
	require.Contains(t, form.body, `id="f-name" name="name" type="text" value="草稿"`)
	require.Contains(t, form.body, `id="f-data-key-0" name="data_key_0" type="text" value="thing1"`)
	require.Contains(t, form.body, "oCON000000000000000000000002")

	edit := templateForm(token(t, form))
	edit.Set("name", "草稿 v2")
	edit.Set("data_value_0", "订单已签收")
	edit.Set("openids", "oCON000000000000000000000003\noCON000000000000000000000004")
	done := b.post(t, "/console/campaigns/"+id+"/edit", edit)
	require.Equal(t, http.StatusOK, done.status, done.body)
	require.Equal(t, "/console/campaigns/"+id, done.url.Path)
	require.Contains(t, done.body, "Saved.")

	_, c := b.apiJSON(t, "GET", "/v1/campaigns/"+id, nil)
	require.Equal(t, "草稿 v2", c["name"])
	require.Equal(t, "draft", c["state"])
	require.Equal(t, 8.0, c["priority"], "what the form does not show is kept")
	require.Equal(t, map[string]any{"thing1": "订单已签收", "character_string2": "SN20261212"}, c["template"].(map[string]any)["data"])
	require.Equal(t, []any{"oCON000000000000000000000003", "oCON000000000000000000000004"}, c["audience"].(map[string]any)["openids"])
}

// TestCampaignFormEditRefusedWhenRunning: a running campaign's edit form
// says why it cannot be edited, and a post of it changes nothing.
func TestCampaignFormEditRefusedWhenRunning(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.newCampaign(t, "running")
	status, out := b.apiJSON(t, "POST", "/v1/campaigns/"+id+"/start", nil)
	require.Equal(t, http.StatusAccepted, status, "%v", out)

	for lang, says := range map[string]string{"en": "Only a draft can be edited; this campaign is Running.", "zh-CN": "只能编辑草稿"} {
		p := b.get(t, "/console/campaigns/"+id+"/edit", lang)
		require.Equal(t, http.StatusConflict, p.status, p.body)
		require.Contains(t, p.body, says)
	}
	tok := token(t, b.get(t, "/console/campaigns/"+id, "en"))
	edit := templateForm(tok)
	edit.Set("name", "changed while running")
	p := b.post(t, "/console/campaigns/"+id+"/edit", edit)
	require.Equal(t, http.StatusConflict, p.status, p.body)
	require.Contains(t, p.body, `id="top-errors"`)
	require.Contains(t, p.body, "Not possible in the campaign&#39;s present state.")
	_, c := b.apiJSON(t, "GET", "/v1/campaigns/"+id, nil)
	require.Equal(t, "running", c["name"])
}

// TestCampaignFormPreviewWithRecipient: the preview renders the message
// with the chosen recipient's variables from the uploaded audience.
func TestCampaignFormPreviewWithRecipient(t *testing.T) {
	t.Parallel()
	b := setup(t)
	status, out := b.apiJSON(t, "POST", "/v1/campaigns", map[string]any{
		"name": "变量", "account": "shop", "kind": "template",
		"template": map[string]any{"template_id": "TPL_HELLO", "url": "https://example.com/hi", "data": map[string]any{"thing1": "{{.name}}，您好"}},
		"audience": map[string]any{"source": "file", "variables": []string{"name"}},
	})
	require.Equal(t, http.StatusCreated, status, "%v", out)
	id := out["id"].(string)
	b.uploadAPI(t, id, "openid,name\noCON000000000000000000000001,张三\noCON000000000000000000000002,李四\n")

	form := b.get(t, "/console/campaigns/"+id+"/edit", "zh-CN")
	require.Equal(t, http.StatusOK, form.status, form.body)
	require.Contains(t, form.body, `id="preview-card"`)
	require.Contains(t, form.body, "张三，您好", "without a choice, the first recipient's variables")

	p := b.post(t, "/console/campaigns/"+id+"/edit", url.Values{
		"csrf": {token(t, form)}, "op": {"preview"}, "preview_openid": {"oCON000000000000000000000002"},
		"name": {"变量"}, "account": {"shop"}, "kind": {"template"}, "audience_source": {"file"}, "variables": {"name"},
		"template_id": {"TPL_HELLO"}, "url": {"https://example.com/hi"},
		"data_key_0": {"thing1"}, "data_value_0": {"{{.name}}，您好"},
	})
	require.Equal(t, http.StatusOK, p.status, p.body)
	card := regexp.MustCompile(`(?s)<article class="preview" id="preview-card".*?</article>`).FindString(p.body)
	require.Contains(t, card, "TPL_HELLO")
	require.Contains(t, card, "李四，您好")
	require.NotContains(t, card, "张三")
	require.Contains(t, card, `id="preview-details"`)
	require.Contains(t, p.body, "oCON000000000000000000000002")

	page := b.get(t, "/console/campaigns/"+id, "en")
	require.Contains(t, page.body, "张三，您好", "the draft's page previews it too")
	_, c := b.apiJSON(t, "GET", "/v1/campaigns/"+id, nil)
	require.Equal(t, "变量", c["name"], "a preview saves nothing")

	// A custom campaign previews as a bubble.
	custom := b.get(t, "/console/campaigns/new?kind=custom", "en")
	require.Contains(t, custom.body, `id="f-custom-text"`)
	bp := b.post(t, "/console/campaigns/new", url.Values{"csrf": {token(t, custom)}, "op": {"preview"}, "kind": {"custom"},
		"custom_msgtype": {"text"}, "custom_text": {"欢迎回来"}, "name": {"x"}, "account": {"shop"}, "audience_source": {"followers"}})
	require.Equal(t, http.StatusOK, bp.status, bp.body)
	require.Regexp(t, `id="preview-bubble"[^>]*>\s*<p class="bubble">欢迎回来</p>`, bp.body)
	require.Zero(t, b.total(t)-1, "a preview creates nothing")
}

// postLang posts a form from a page in lang.
func (b *bundle) postLang(t *testing.T, path string, form url.Values, lang string) page {
	t.Helper()
	req, err := http.NewRequest("POST", b.url+path, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.url)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Accept-Language", lang)
	return b.do(t, req)
}

// uploadAPI stores a CSV audience through the API.
func (b *bundle) uploadAPI(t *testing.T, id, csv string) {
	t.Helper()
	req, err := http.NewRequest("PUT", b.url+"/v1/campaigns/"+id+"/audience", strings.NewReader(csv))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "text/csv")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
}

// TestCampaignFormOtherKinds: a subscribe, a custom and a mass campaign
// typed into the form are what the API then shows.
func TestCampaignFormOtherKinds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tt := range []struct {
		kind string
		form url.Values
		want map[string]any
	}{
		{"subscribe", url.Values{"template_id": {"SUB_NOTICE"}, "url": {"https://example.com/notice"},
			"data_key_0": {"thing1"}, "data_value_0": {"系统维护通知"}, "data_key_1": {"time2"}, "data_value_1": {"2026-12-08 02:00"}},
			map[string]any{"template_id": "SUB_NOTICE", "page": "https://example.com/notice",
				"data": map[string]any{"thing1": "系统维护通知", "time2": "2026-12-08 02:00"}}},
		{"custom", url.Values{"custom_msgtype": {"text"}, "custom_text": {"欢迎回来！"}},
			map[string]any{"msgtype": "text", "text": map[string]any{"content": "欢迎回来！"}}},
		{"mass", url.Values{"mass_msgtype": {"mpnews"}, "mass_media_id": {"DRAFT_MEDIA_ID"}},
			map[string]any{"msgtype": "mpnews", "mpnews": map[string]any{"media_id": "DRAFT_MEDIA_ID"}}},
	} {
		form := b.get(t, "/console/campaigns/new?kind="+tt.kind, "en")
		require.Equal(t, http.StatusOK, form.status, form.body)
		f := tt.form
		f.Set("csrf", token(t, form))
		f.Set("op", "save")
		f.Set("name", tt.kind+" campaign")
		f.Set("account", "shop")
		f.Set("kind", tt.kind)
		f.Set("audience_source", "followers")
		done := b.post(t, "/console/campaigns/new", f)
		require.Equal(t, http.StatusOK, done.status, done.body)
		m := campaignPathRE.FindStringSubmatch(done.url.Path)
		require.NotNil(t, m, "%s: %s", tt.kind, done.url)
		_, c := b.apiJSON(t, "GET", "/v1/campaigns/"+m[1], nil)
		require.Equal(t, tt.kind, c["kind"])
		require.Equal(t, tt.want, c[tt.kind], tt.kind)
		require.Equal(t, map[string]any{"source": "followers"}, c["audience"])
	}
}
