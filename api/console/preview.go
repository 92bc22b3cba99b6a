package console

import (
	"errors"
	"net/http"
	"slices"
	"strings"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/wechat"
)

// preview is a campaign's message as a recipient sees it, rendered by the
// functions the worker sends with (campaigns.Message's Render*), with one
// recipient's variables.
type preview struct {
	// Kind is how the message shows: "card" (template, subscribe),
	// "bubble" (custom) or "mass".
	Kind string
	// MsgType is a custom or mass message's msgtype.
	MsgType string
	// Title, Rows, Link and Mini are a card's template id, data, url (or
	// page) and mini program.
	Title string
	Rows  []dataRow
	Link  string
	Mini  string
	// Text is a text message's content; News a news message's article;
	// MediaID the media a message names.
	Text    string
	News    *wechat.Article
	MediaID string
	// OpenID is the recipient whose variables the message is rendered
	// with; "" when it has none.
	OpenID string
	// Placeholders: the message's variables are shown as {{.name}}, for
	// want of a recipient.
	Placeholders bool
	// Note says, translated, why the recipient asked for was not used.
	Note string
	// Err says, translated, why there is no preview.
	Err string
}

// preview renders cp's message for the recipient as (or, when as is "",
// the first recipient of the audience with the message's variables). id
// is the stored campaign whose audience holds the variables; "" for a new
// campaign, whose variables show as placeholders.
func (c *Console) preview(r *http.Request, v *view, cp *campaigns.Campaign, id, as string) *preview {
	p := &preview{}
	msg, err := cp.Compile()
	if err != nil {
		p.Err = v.T("preview.invalid")
		return p
	}
	used := msg.Variables()
	var vars map[string]string
	to := ""
	switch {
	case len(used) == 0:
	case id != "" && cp.Audience.Source == campaigns.SourceFile && c.cfg.Store != nil:
		stored := *cp
		stored.ID = id
		openid, vs, err := c.cfg.Store.TestVariables(r.Context(), &stored, msg, as)
		switch {
		case err == nil:
			to, vars = openid, vs
		case errors.Is(err, campaigns.ErrTestAs):
			p.Note = v.T("preview.as_refused", as)
		case errors.Is(err, campaigns.ErrEmptyAudience):
			p.Note = v.T("preview.no_recipient")
		default:
			c.log.Error("console: preview variables", zap.String("campaign_id", id), zap.Error(err))
			p.Note = v.T("preview.no_recipient")
		}
	case as != "":
		p.Note = v.T("preview.no_audience")
	}
	if len(used) > 0 && vars == nil {
		vars = make(map[string]string, len(used))
		for _, name := range used {
			vars[name] = "{{." + name + "}}"
		}
		p.Placeholders = true
	}
	p.OpenID = to
	if err := p.render(msg, to, vars); err != nil {
		c.log.Info("console: preview", zap.String("campaign_id", id), zap.Error(err))
		p.Err = v.T("preview.failed")
	}
	return p
}

// render fills p with msg rendered for openid with vars.
func (p *preview) render(msg *campaigns.Message, openid string, vars map[string]string) error {
	card := func(templateID, link string, mini *wechat.MiniProgram, data map[string]wechat.TemplateValue) {
		p.Kind, p.Title, p.Link = "card", templateID, link
		if mini != nil {
			p.Mini = strings.TrimSpace(mini.AppID + " " + mini.PagePath)
		}
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p.Rows = append(p.Rows, dataRow{Key: k, Value: data[k].Value})
		}
	}
	switch msg.Kind() {
	case campaigns.KindTemplate:
		m, err := msg.RenderTemplate(openid, vars, "")
		if err != nil {
			return err
		}
		card(m.TemplateID, m.URL, m.MiniProgram, m.Data)
	case campaigns.KindSubscribe:
		m, err := msg.RenderSubscribe(openid, vars)
		if err != nil {
			return err
		}
		card(m.TemplateID, m.Page, m.MiniProgram, m.Data)
	case campaigns.KindCustom:
		m, err := msg.RenderCustom(openid, vars)
		if err != nil {
			return err
		}
		p.Kind, p.MsgType = "bubble", m.MsgType
		switch {
		case m.Text != nil:
			p.Text = m.Text.Content
		case m.News != nil && len(m.News.Articles) > 0:
			a := m.News.Articles[0]
			p.News = &a
		case m.MPNews != nil:
			p.MediaID = m.MPNews.MediaID
		case m.Image != nil:
			p.MediaID = m.Image.MediaID
		}
	case campaigns.KindMass:
		m, err := msg.RenderMass("")
		if err != nil {
			return err
		}
		p.Kind, p.MsgType = "mass", m.MsgType
		switch {
		case m.Text != nil:
			p.Text = m.Text.Content
		case m.MPNews != nil:
			p.MediaID = m.MPNews.MediaID
		}
	}
	return nil
}
