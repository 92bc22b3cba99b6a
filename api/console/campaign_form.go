package console

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/wechat"
)

// The campaign form: a new campaign, or a draft's edit, one form per kind.
// The form is turned into a campaigns.Campaign, which the console
// validates itself (campaigns.Campaign.Validate, the API's own rules) for
// structured errors it can translate and show next to each field, and
// which it always sends to the API (POST /v1/campaigns or PUT
// /v1/campaigns/{id}): the API decides. An API refusal the local
// validation did not predict (an unknown account, media) is shown at the
// top by its translated code and its message.

// formDone are the flashes of the form's saves (done.created, done.saved).
var formDone = map[string]bool{"created": true, "saved": true}

// dataRowsMin is how many data rows the form shows at least.
const dataRowsMin = 6

// formKinds are the kinds the form makes, in the order of its select.
var formKinds = []campaigns.Kind{campaigns.KindTemplate, campaigns.KindCustom, campaigns.KindSubscribe, campaigns.KindMass}

// formSources are the audience sources the form offers.
var formSources = []campaigns.AudienceSource{campaigns.SourceFile, campaigns.SourceInline, campaigns.SourceFollowers,
	campaigns.SourceTag, campaigns.SourceWindow}

// The custom and mass msgtypes the form edits; a campaign whose message is
// of another msgtype keeps it as it is while its other fields are edited.
var (
	formCustomTypes = []string{wechat.MsgTypeText, wechat.MsgTypeNews, wechat.MsgTypeMPNews}
	formMassTypes   = []string{wechat.MassTypeText, wechat.MassTypeMPNews}
)

// formValues are the form's fields as typed.
type formValues struct {
	Name, Account, Kind, Rate string
	RequireTest               bool
	Source, OpenIDs, TagID    string
	Variables                 string
	// Template and subscribe.
	TemplateID, URL, MiniAppID, MiniPagePath string
	Rows                                     []dataRow
	// Custom.
	CustomType, CustomText                string
	NewsTitle, NewsDesc, NewsURL, NewsPic string
	CustomMediaID                         string
	// Mass.
	MassType, MassText, MassMediaID string
	PreviewOpenID                   string
}

// dataRow is one key/value row of template or subscribe data.
type dataRow struct{ Key, Value string }

// fieldState is one form element's errors, translated.
type fieldState struct {
	// ErrID is the id of the element's error paragraph.
	ErrID string
	Msgs  []string
}

// formData is the campaign form's page.
type formData struct {
	// ID is the draft's id; "" for a new campaign.
	ID       string
	F        formValues
	Kinds    []campaigns.Kind
	Sources  []campaigns.AudienceSource
	Accounts []string
	// CustomTypes and MassTypes are the msgtypes the selects offer.
	CustomTypes, MassTypes []string
	// Top are the errors shown above the form: those of no field, and the
	// API's refusals that the local validation did not predict.
	Top []string
	// fields are the errors by element id.
	fields  map[string]*fieldState
	Preview *preview
	// Previewing: the page answers the preview button; nothing was saved
	// or meant to be.
	Previewing bool
}

// Action is the form's URL.
func (d *formData) Action() string {
	if d.ID == "" {
		return "/console/campaigns/new"
	}
	return "/console/campaigns/" + url.PathEscape(d.ID) + "/edit"
}

// E returns element id's state: its error paragraph's id and messages.
func (d *formData) E(id string) fieldState {
	if s, ok := d.fields[id]; ok {
		return *s
	}
	return fieldState{ErrID: "err-" + strings.TrimPrefix(id, "f-")}
}

// Invalid reports whether the form has any error.
func (d *formData) Invalid() bool { return len(d.Top) > 0 || len(d.fields) > 0 }

// spec is the JSON name of the kind's spec ("template", ...).
func (f *formValues) spec() string { return f.Kind }

// newForm returns the form of a new campaign of kind.
func (c *Console) newForm(kind string) *formData {
	if !slices.Contains(formKinds, campaigns.Kind(kind)) {
		kind = string(campaigns.KindTemplate)
	}
	f := formValues{Kind: kind, Source: string(campaigns.SourceFile), CustomType: wechat.MsgTypeText, MassType: wechat.MassTypeText}
	if ids := c.accountIDs(); len(ids) > 0 {
		f.Account = ids[0]
	}
	return c.formOf(f, "")
}

// formOf returns the form page's data with values f.
func (c *Console) formOf(f formValues, id string) *formData {
	for len(f.Rows) < dataRowsMin {
		f.Rows = append(f.Rows, dataRow{})
	}
	// A message of a msgtype the form does not edit keeps its msgtype.
	withType := func(types []string, t string) []string {
		if t == "" || slices.Contains(types, t) {
			return types
		}
		return append(slices.Clone(types), t)
	}
	return &formData{ID: id, F: f, Kinds: formKinds, Sources: formSources, Accounts: c.accountIDs(),
		CustomTypes: withType(formCustomTypes, f.CustomType), MassTypes: withType(formMassTypes, f.MassType),
		fields: map[string]*fieldState{}}
}

// valuesOf returns the form values of a stored campaign.
func valuesOf(cp *campaigns.Campaign) formValues {
	f := formValues{Name: cp.Name, Account: cp.Account, Kind: string(cp.Kind), RequireTest: cp.RequireTest,
		Source: string(cp.Audience.Source), OpenIDs: strings.Join(cp.Audience.OpenIDs, "\n"),
		Variables: strings.Join(cp.Audience.Variables, ", "), CustomType: wechat.MsgTypeText, MassType: wechat.MassTypeText}
	if cp.Rate != 0 {
		f.Rate = strconv.FormatFloat(cp.Rate, 'f', -1, 64)
	}
	if cp.Audience.TagID != 0 {
		f.TagID = strconv.FormatInt(cp.Audience.TagID, 10)
	}
	rows := func(data map[string]string) {
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			f.Rows = append(f.Rows, dataRow{Key: k, Value: data[k]})
		}
	}
	mini := func(mp *wechat.MiniProgram) {
		if mp != nil {
			f.MiniAppID, f.MiniPagePath = mp.AppID, mp.PagePath
		}
	}
	switch {
	case cp.Template != nil:
		t := cp.Template
		f.TemplateID, f.URL = t.TemplateID, t.URL
		mini(t.MiniProgram)
		rows(t.Data)
	case cp.Subscribe != nil:
		s := cp.Subscribe
		f.TemplateID, f.URL = s.TemplateID, s.Page
		mini(s.MiniProgram)
		rows(s.Data)
	case cp.Custom != nil:
		cs := cp.Custom
		f.CustomType = cs.MsgType
		switch {
		case cs.Text != nil:
			f.CustomText = cs.Text.Content
		case cs.News != nil && len(cs.News.Articles) > 0:
			a := cs.News.Articles[0]
			f.NewsTitle, f.NewsDesc, f.NewsURL, f.NewsPic = a.Title, a.Description, a.URL, a.PicURL
		case cs.MPNews != nil:
			f.CustomMediaID = cs.MPNews.MediaID
		}
	case cp.Mass != nil:
		m := cp.Mass
		f.MassType = m.MsgType
		switch {
		case m.Text != nil:
			f.MassText = m.Text.Content
		case m.MPNews != nil:
			f.MassMediaID = m.MPNews.MediaID
		}
	}
	return f
}

// readForm reads the posted form's values.
func readForm(r *http.Request) formValues {
	p := r.PostForm
	g := func(k string) string { return strings.TrimSpace(p.Get(k)) }
	f := formValues{Name: g("name"), Account: g("account"), Kind: g("kind"), Rate: g("rate"), RequireTest: p.Get("require_test") != "",
		Source: g("audience_source"), OpenIDs: p.Get("openids"), TagID: g("tag_id"), Variables: g("variables"),
		TemplateID: g("template_id"), URL: g("url"), MiniAppID: g("mini_appid"), MiniPagePath: g("mini_pagepath"),
		CustomType: g("custom_msgtype"), CustomText: p.Get("custom_text"),
		NewsTitle: p.Get("news_title"), NewsDesc: p.Get("news_description"), NewsURL: g("news_url"), NewsPic: g("news_picurl"),
		CustomMediaID: g("custom_media_id"), MassType: g("mass_msgtype"), MassText: p.Get("mass_text"), MassMediaID: g("mass_media_id"),
		PreviewOpenID: g("preview_openid")}
	for i := 0; ; i++ {
		k, v := "data_key_"+strconv.Itoa(i), "data_value_"+strconv.Itoa(i)
		if !p.Has(k) && !p.Has(v) {
			break
		}
		f.Rows = append(f.Rows, dataRow{Key: strings.TrimSpace(p.Get(k)), Value: p.Get(v)})
	}
	return f
}

// campaignOf builds the campaign the form stands for. base is the stored
// draft (nil for a new campaign): what the form does not show (schedule,
// priority, protection, a message of a msgtype the form does not edit)
// is kept from it.
func campaignOf(f formValues, base *campaigns.Campaign) *campaigns.Campaign {
	var cp campaigns.Campaign
	if base != nil {
		cp = *base
	}
	// The store sets these; the API refuses them in a request.
	cp.ID, cp.State, cp.TestedAt, cp.TestedDigest = "", "", nil, ""
	cp.CreatedAt, cp.UpdatedAt = time.Time{}, time.Time{}
	cp.Name, cp.Account, cp.Kind, cp.RequireTest = f.Name, f.Account, campaigns.Kind(f.Kind), f.RequireTest
	cp.Rate = 0
	if f.Rate != "" {
		// A rate that is not a number is sent as -1, which the validation
		// refuses with its message for the field.
		rate, err := strconv.ParseFloat(f.Rate, 64)
		if err != nil || math.IsNaN(rate) || math.IsInf(rate, 0) {
			rate = -1
		}
		cp.Rate = rate
	}
	cp.Audience = campaigns.AudienceSpec{Source: campaigns.AudienceSource(f.Source)}
	switch cp.Audience.Source {
	case campaigns.SourceInline:
		for _, line := range strings.Split(f.OpenIDs, "\n") {
			if id := strings.TrimSpace(line); id != "" {
				cp.Audience.OpenIDs = append(cp.Audience.OpenIDs, id)
			}
		}
	case campaigns.SourceTag:
		tag, err := strconv.ParseInt(f.TagID, 10, 64)
		if err != nil {
			tag = -1
		}
		cp.Audience.TagID = tag
	}
	data := func() map[string]string {
		m := map[string]string{}
		for _, row := range f.Rows {
			if row.Key != "" || strings.TrimSpace(row.Value) != "" {
				m[row.Key] = row.Value
			}
		}
		return m
	}
	mini := func() *wechat.MiniProgram {
		if f.MiniAppID == "" && f.MiniPagePath == "" {
			return nil
		}
		return &wechat.MiniProgram{AppID: f.MiniAppID, PagePath: f.MiniPagePath}
	}
	var old struct {
		custom *campaigns.CustomSpec
		mass   *campaigns.MassSpec
	}
	if base != nil {
		old.custom, old.mass = base.Custom, base.Mass
	}
	cp.Template, cp.Custom, cp.Subscribe, cp.Mass = nil, nil, nil, nil
	switch cp.Kind {
	case campaigns.KindTemplate:
		cp.Template = &campaigns.TemplateSpec{TemplateID: f.TemplateID, URL: f.URL, MiniProgram: mini(), Data: data()}
	case campaigns.KindSubscribe:
		cp.Subscribe = &campaigns.SubscribeSpec{TemplateID: f.TemplateID, Page: f.URL, MiniProgram: mini(), Data: data()}
	case campaigns.KindCustom:
		cs := &campaigns.CustomSpec{MsgType: f.CustomType}
		switch f.CustomType {
		case wechat.MsgTypeText:
			cs.Text = &wechat.Text{Content: f.CustomText}
		case wechat.MsgTypeNews:
			cs.News = &wechat.News{Articles: []wechat.Article{{Title: f.NewsTitle, Description: f.NewsDesc, URL: f.NewsURL, PicURL: f.NewsPic}}}
		case wechat.MsgTypeMPNews:
			cs.MPNews = &wechat.Media{MediaID: f.CustomMediaID}
		default:
			if old.custom != nil && old.custom.MsgType == f.CustomType {
				c := *old.custom
				cs = &c
			}
		}
		if old.custom != nil && cs.KFAccount == "" {
			cs.KFAccount = old.custom.KFAccount
		}
		cp.Custom = cs
	case campaigns.KindMass:
		ms := &campaigns.MassSpec{MsgType: f.MassType}
		switch f.MassType {
		case wechat.MassTypeText:
			ms.Text = &wechat.Text{Content: f.MassText}
		case wechat.MassTypeMPNews:
			ms.MPNews = &campaigns.MassNewsSpec{MediaID: f.MassMediaID}
		default:
			if old.mass != nil && old.mass.MsgType == f.MassType {
				m := *old.mass
				ms = &m
			}
		}
		if old.mass != nil {
			ms.SendIgnoreReprint = old.mass.SendIgnoreReprint
		}
		cp.Mass = ms
	}
	if cp.Audience.Source == campaigns.SourceFile {
		cp.Audience.Variables = splitList(f.Variables)
		if len(cp.Audience.Variables) == 0 {
			// The file's columns are the message's variables unless the
			// form names them.
			if m, err := cp.Compile(); err == nil {
				cp.Audience.Variables = m.Variables()
			}
		}
	}
	return &cp
}

// splitList splits a list typed with commas, spaces or line breaks.
func splitList(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '，' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// element returns the form element that shows the errors of a field path
// of the campaign, for the form's kind, and the path its error paragraph
// is named by; false when no element does.
func (d *formData) element(path string) (string, string, bool) {
	spec := d.F.spec()
	exact := map[string]string{
		"name": "f-name", "account": "f-account", "kind": "f-kind", "rate": "f-rate", "require_test": "f-require-test",
		"audience.source": "f-audience-source", "audience.openids": "f-openids", "audience.tag_id": "f-tag-id",
		"audience.variables": "f-variables",
	}
	switch spec {
	case "template", "subscribe":
		link := "url"
		if spec == "subscribe" {
			link = "page"
		}
		for k, v := range map[string]string{"template_id": "f-template-id", link: "f-url", "miniprogram": "f-mini-appid",
			"miniprogram.appid": "f-mini-appid", "miniprogram.pagepath": "f-mini-pagepath", "data": "f-data-key-0"} {
			exact[spec+"."+k] = v
		}
	case "custom":
		const a = "custom.news.articles[0]"
		for k, v := range map[string]string{"custom.msgtype": "f-custom-msgtype", "custom.text": "f-custom-text",
			"custom.text.content": "f-custom-text", "custom.news": "f-news-title", "custom.news.articles": "f-news-title",
			a + ".title": "f-news-title", a + ".description": "f-news-description", a + ".url": "f-news-url",
			a + ".picurl": "f-news-picurl", "custom.mpnews": "f-custom-media-id", "custom.mpnews.media_id": "f-custom-media-id"} {
			exact[k] = v
		}
	case "mass":
		for k, v := range map[string]string{"mass.msgtype": "f-mass-msgtype", "mass.text": "f-mass-text",
			"mass.text.content": "f-mass-text", "mass.mpnews": "f-mass-media-id", "mass.mpnews.media_id": "f-mass-media-id"} {
			exact[k] = v
		}
	}
	if id, ok := exact[path]; ok {
		return id, path, true
	}
	switch {
	case strings.HasPrefix(path, "audience.openids["):
		return "f-openids", "audience.openids", true
	case strings.HasPrefix(path, "audience.variables["):
		return "f-variables", "audience.variables", true
	}
	if key, ok := strings.CutPrefix(path, spec+".data."); ok && (spec == "template" || spec == "subscribe") {
		for i, row := range d.F.Rows {
			if row.Key == key {
				return "f-data-value-" + strconv.Itoa(i), path, true
			}
		}
	}
	return "", "", false
}

// errID is the id of the error paragraph of a field path: "err-" and the
// path with '.', '[' and ']' as '-'.
func errID(path string) string {
	s := strings.NewReplacer(".", "-", "[", "-", "]", "").Replace(path)
	return "err-" + strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '-'
	}, s)
}

// addError shows msg next to the element of the field path, or at the top.
func (d *formData) addError(path, msg string) {
	id, canon, ok := d.element(path)
	if !ok {
		if path != "" {
			msg = path + ": " + msg
		}
		d.Top = append(d.Top, msg)
		return
	}
	s, ok := d.fields[id]
	if !ok {
		s = &fieldState{ErrID: errID(canon)}
		d.fields[id] = s
	}
	if path != canon && strings.HasPrefix(path, canon+"[") {
		msg = strings.TrimPrefix(path, canon) + ": " + msg
	}
	s.Msgs = append(s.Msgs, msg)
}

// fieldMessage is a validation error in the view's language.
func fieldMessage(v *view, fe campaigns.FieldError) string {
	if fe.Format == "" {
		return fe.Message
	}
	args := make([]any, len(fe.Args))
	for i, a := range fe.Args {
		if p, ok := a.(campaigns.Phrase); ok {
			a = v.T(string(p))
		}
		args[i] = a
	}
	return v.T(fe.Format, args...)
}

// validateLocal validates cp as the API will (at now), and shows its
// errors in the view's language next to their fields. It returns the
// errors.
func (d *formData) validateLocal(v *view, cp *campaigns.Campaign, now time.Time) []campaigns.FieldError {
	var ve *campaigns.ValidationError
	if !errors.As(cp.ValidateAt(now), &ve) {
		return nil
	}
	for _, fe := range ve.Errors {
		d.addError(fe.Field, fieldMessage(v, fe))
	}
	if ve.Omitted > 0 {
		d.Top = append(d.Top, v.T("form.omitted", ve.Omitted))
	}
	return ve.Errors
}

// showAPIError shows the API's refusal of the campaign where the local
// validation did not already.
func (c *Console) showAPIError(v *view, d *formData, err error, local []campaigns.FieldError) {
	ae, ok := asAPIError(err)
	if !ok {
		d.Top = append(d.Top, v.T("error.internal"))
		c.log.Error("console: save campaign", zap.Error(err))
		return
	}
	predicted := len(local) > 0 && ae.Status == http.StatusUnprocessableEntity
	for _, fe := range ae.Errors {
		if !slices.ContainsFunc(local, func(l campaigns.FieldError) bool { return l.Field == fe.Field && l.Message == fe.Message }) {
			predicted = false
		}
	}
	if predicted {
		return
	}
	d.Top = append(d.Top, c.apiErrorText(v, ae)+" "+ae.Message)
	for _, fe := range ae.Errors {
		if fe.Field != ae.Field || fe.Message != ae.Message {
			d.Top = append(d.Top, fe.Field+": "+fe.Message)
		}
	}
}

// newCampaignPage is GET /console/campaigns/new.
func (c *Console) newCampaignPage(w http.ResponseWriter, r *http.Request, v *view) error {
	d := c.newForm(r.URL.Query().Get("kind"))
	d.Preview = c.preview(r, v, campaignOf(d.F, nil), "", "")
	return c.renderForm(w, v, d, http.StatusOK)
}

// editCampaignPage is GET /console/campaigns/{id}/edit: a draft's form.
func (c *Console) editCampaignPage(w http.ResponseWriter, r *http.Request, v *view) error {
	cp, err := c.draft(r, v)
	if err != nil {
		return err
	}
	d := c.formOf(valuesOf(cp), cp.ID)
	if k := r.URL.Query().Get("kind"); slices.Contains(formKinds, campaigns.Kind(k)) {
		d.F.Kind = k
	}
	d.Preview = c.preview(r, v, cp, cp.ID, "")
	return c.renderForm(w, v, d, http.StatusOK)
}

// draft reads the campaign of the path's id, which must be a draft.
func (c *Console) draft(r *http.Request, v *view) (*campaigns.Campaign, error) {
	var row campaignRow
	if err := c.get(r, "/v1/campaigns/"+url.PathEscape(r.PathValue("id")), nil, &row); err != nil {
		return nil, err
	}
	if row.State != campaigns.StateDraft {
		return nil, &pageError{status: http.StatusConflict, msg: v.T("form.not_draft", v.T("state."+string(row.State)))}
	}
	cp := row.Campaign
	return &cp, nil
}

// saveNew is POST /console/campaigns/new.
func (c *Console) saveNew(w http.ResponseWriter, r *http.Request, v *view) error {
	return c.save(w, r, v, nil)
}

// saveEdit is POST /console/campaigns/{id}/edit.
func (c *Console) saveEdit(w http.ResponseWriter, r *http.Request, v *view) error {
	var row campaignRow
	if err := c.get(r, "/v1/campaigns/"+url.PathEscape(r.PathValue("id")), nil, &row); err != nil {
		return err
	}
	base := row.Campaign
	return c.save(w, r, v, &base)
}

// save validates the posted form and, unless it asks for a preview, sends
// the campaign to the API; base is the stored draft of an edit.
func (c *Console) save(w http.ResponseWriter, r *http.Request, v *view, base *campaigns.Campaign) error {
	f := readForm(r)
	id := ""
	if base != nil {
		id = base.ID
	}
	d := c.formOf(f, id)
	cp := campaignOf(f, base)
	local := d.validateLocal(v, cp, c.cfg.Now())
	if r.PostForm.Get("op") == "preview" {
		d.Previewing = true
		d.Preview = c.preview(r, v, cp, id, f.PreviewOpenID)
		return c.renderForm(w, v, d, http.StatusOK)
	}
	var (
		a   *answer
		err error
	)
	if base == nil {
		a, err = c.call(r, http.MethodPost, "/v1/campaigns", nil, cp, "")
	} else {
		a, err = c.call(r, http.MethodPut, "/v1/campaigns/"+url.PathEscape(id), nil, cp, "")
	}
	if err != nil {
		c.showAPIError(v, d, err, local)
		if len(d.Top) == 0 && len(d.fields) == 0 {
			d.Top = append(d.Top, v.T("error.internal"))
		}
		d.Preview = c.preview(r, v, cp, id, f.PreviewOpenID)
		status := http.StatusUnprocessableEntity
		if ae, ok := asAPIError(err); ok {
			status = ae.Status
		}
		return c.renderForm(w, v, d, status)
	}
	done := "saved"
	if base == nil {
		var out struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(a.Body, &out); err != nil || out.ID == "" {
			return fmt.Errorf("read the created campaign: %w", err)
		}
		id, done = out.ID, "created"
	}
	http.Redirect(w, r, "/console/campaigns/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
	return nil
}

// renderForm renders the form page with status.
func (c *Console) renderForm(w http.ResponseWriter, v *view, d *formData, status int) error {
	if d.ID == "" {
		v.Nav, v.Title = "new", v.T("form.title.new")
	} else {
		v.Nav, v.Title = "campaigns", v.T("form.title.edit", d.F.Name)
	}
	if err := v.Render("campaign_form", d); err != nil {
		return err
	}
	c.render(w, v, status)
	v.page = "" // written
	return nil
}
