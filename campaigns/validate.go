package campaigns

import (
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wxmass/wxmass/wechat"
)

// Limits applied by Validate.
const (
	// InlineMaxOpenIDs is the most openids an inline audience may list;
	// larger audiences are uploaded as a file.
	InlineMaxOpenIDs = 10_000
	// NameMaxChars is the longest campaign name, in characters.
	NameMaxChars = 200
	// URLMaxBytes is the longest url, page or picurl, in bytes.
	URLMaxBytes = 2048
	// PagePathMaxBytes is the longest mini program page path, in bytes.
	PagePathMaxBytes = 1024
	// IDMaxBytes is the longest template_id, media_id, article_id or menu
	// item id, in bytes.
	IDMaxBytes = 256
	// ValidationMaxErrors is the most FieldErrors a ValidationError lists;
	// the rest are counted in Omitted.
	ValidationMaxErrors = 100
)

// FieldError is one problem with one field of a campaign.
type FieldError struct {
	// Field is the JSON path of the field, such as "template.data.thing1",
	// "audience.openids[3]" or "custom.news.articles[0].url".
	Field string `json:"field"`
	// Message says what is wrong, naming the value or character at fault
	// where that helps: fmt.Sprintf(Format, Args...).
	Message string `json:"message"`
	// Format and Args are Message as an English fmt format and its
	// arguments, for a page to translate (the format is a key of the
	// i18n catalogues' *.formats.yaml). They are not part of the JSON:
	// an API client reads Message.
	Format string `json:"-"`
	Args   []any  `json:"-"`
}

// Error returns "<field>: <message>".
func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// ValidationError is every problem Validate or Compile found in a campaign.
type ValidationError struct {
	// Errors are the problems in the order of the campaign's fields, at most
	// ValidationMaxErrors of them.
	Errors []FieldError `json:"errors"`
	// Omitted counts the problems left out of Errors.
	Omitted int `json:"omitted,omitempty"`
}

// Error lists the problems: "campaigns: invalid campaign: name: required;
// template.data.thing1: 23 characters, thing takes at most 20".
func (e *ValidationError) Error() string {
	var b strings.Builder
	b.WriteString("campaigns: invalid campaign: ")
	for i, fe := range e.Errors {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fe.Error())
	}
	if e.Omitted > 0 {
		b.WriteString("; and " + strconv.Itoa(e.Omitted) + " more")
	}
	return b.String()
}

// validator collects FieldErrors.
type validator struct {
	errs    []FieldError
	omitted int
}

// addf adds field's problem: format is a constant English fmt format,
// which the console translates, and args its arguments.
func (v *validator) addf(field, format string, args ...any) {
	if len(v.errs) >= ValidationMaxErrors {
		v.omitted++
		return
	}
	v.errs = append(v.errs, FieldError{Field: field, Message: fmt.Sprintf(format, args...), Format: format, Args: args})
}

// addReason adds field's problem r.
func (v *validator) addReason(field string, r reason) { v.addf(field, r.format, r.args...) }

// reason is a validation message that a check returns: an English fmt
// format (a constant, translated by the console) and its arguments. The
// zero reason means no problem.
type reason struct {
	format string
	args   []any
}

// reasonf returns the reason format with args.
func reasonf(format string, args ...any) reason { return reason{format: format, args: args} }

// String is the reason in English, "" for none.
func (r reason) String() string {
	if r.format == "" {
		return ""
	}
	return fmt.Sprintf(r.format, r.args...)
}

// bad reports whether r is a problem.
func (r reason) bad() bool { return r.format != "" }

// Phrase is an English phrase passed as an argument of a validation
// message (FieldError.Args), such as the characters a keyword takes: a
// page translates it as it does the message's format.
type Phrase string

func (v *validator) err() error {
	if len(v.errs) == 0 {
		return nil
	}
	return &ValidationError{Errors: v.errs, Omitted: v.omitted}
}

// ValidAppID reports whether s has the form of an appid: "wx" and 16 ASCII
// letters or digits.
func ValidAppID(s string) bool {
	if len(s) != 18 || !strings.HasPrefix(s, "wx") {
		return false
	}
	for _, r := range s[2:] {
		if !isDigit(r) && !isASCIILetter(r) {
			return false
		}
	}
	return true
}

// ValidOpenID reports whether s has the form of an openid: 20 to 64 ASCII
// letters, digits, '_' and '-'. Real openids are 28 characters; the range
// leaves room for test accounts and future formats while refusing
// spreadsheet debris (empty cells, "N/A", numbers, text with spaces).
func ValidOpenID(s string) bool {
	if len(s) < 20 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(rune(c)) && !isASCIILetter(rune(c)) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// validID reports whether s can be a campaign id: 1 to 64 letters, digits,
// '_' and '-' (it is part of Redis keys and task ids).
func validID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isDigit(rune(c)) && !isASCIILetter(rune(c)) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// Validate reports every problem with c that can be found before sending,
// as a *ValidationError whose FieldErrors name each field by its JSON path:
//
//   - id (if set): 1 to 64 letters, digits, '_' and '-'.
//   - name: required, at most NameMaxChars characters, no control
//     characters.
//   - account: an account id or appid: 1 to 64 letters, digits, '_' and
//     '-'. Whether wxmass sends for it is the API's check.
//   - state (if set): a known State. rate: a number ≥ 0.
//   - kind: template, custom or subscribe, with exactly its spec set.
//   - template and subscribe: template_id; url or page an http(s) URL
//     without variables; miniprogram with an appid and a page path (not a
//     URL); data with at least one keyword, keywords well-formed
//     (ValidKeyword), each value a text/template that refers only to
//     variables as {{.name}}, whose static value (or, with variables, whose
//     literal text) obeys CheckKeywordValue.
//   - custom: a supported msgtype and exactly its payload: text content
//     non-empty and at most TextMaxBytes bytes; image and mpnews media_id;
//     mpnewsarticle article_id; news exactly one article with a title and
//     an http(s) url; miniprogrampage title, appid, pagepath and
//     thumb_media_id; msgmenu at least one item, each with a unique id and
//     content; kf_account of the form name@account.
//   - audience: a known source; inline: 1 to InlineMaxOpenIDs openids, each
//     valid (ValidOpenID) and not repeated; tag: tag_id > 0; variables only
//     for a file audience, named, unique and not "openid"; every variable
//     the message refers to provided by the audience (followers, tag and
//     inline audiences provide none).
//   - schedule (if set): at or cron, not both; cron five standard fields
//     or a descriptor such as @daily (no seconds field, no @every), with a
//     fire time; time_zone a known IANA zone and only with cron; missed
//     skip or once.
//
// Validate does not change c and does not read the clock: use ValidateAt
// to also refuse a schedule.at in the past. Warnings lists what is allowed
// but worth knowing.
func (c *Campaign) Validate() error { return c.validate(time.Time{}) }

// ValidateAt is Validate with the checks that depend on the time now:
// schedule.at must be after now.
func (c *Campaign) ValidateAt(now time.Time) error { return c.validate(now) }

func (c *Campaign) validate(now time.Time) error {
	v := &validator{}
	if c == nil {
		v.addf("", "no campaign")
		return v.err()
	}
	c.validateHeader(v)
	m := c.buildMessage(v)
	c.validateAudience(v, m)
	c.Protection.validate(v, c.Kind)
	c.Schedule.validate(v, now)
	return v.err()
}

// Compile checks and compiles the campaign's message: it parses every text
// once and builds the parts that do not depend on the recipient. It returns
// the *ValidationError that Validate would give for the message fields
// (kind, template, custom, subscribe) if they are invalid; it does not check
// the rest of the campaign, so call Validate before storing a campaign.
// The Message does not refer to c, which may change afterwards.
func (c *Campaign) Compile() (*Message, error) {
	v := &validator{}
	m := c.buildMessage(v)
	if err := v.err(); err != nil {
		return nil, err
	}
	return m, nil
}

func (c *Campaign) validateHeader(v *validator) {
	if c.ID != "" && !validID(c.ID) {
		v.addf("id", "letters, digits, '_' and '-', at most 64")
	}
	switch name := strings.TrimSpace(c.Name); {
	case name == "":
		v.addf("name", "required")
	case utf8.RuneCountInString(c.Name) > NameMaxChars:
		v.addf("name", "%d characters, at most %d", utf8.RuneCountInString(c.Name), NameMaxChars)
	case !utf8.ValidString(c.Name) || strings.ContainsFunc(c.Name, unicode.IsControl):
		v.addf("name", "invalid UTF-8 or control characters")
	}
	switch {
	case c.Account == "":
		v.addf("account", "required: the id (or appid) of the Official Account")
	case !validID(c.Account):
		v.addf("account", "not an account id: %s is not 1 to 64 letters, digits, _ and -", quoteValue(c.Account))
	}
	if c.State != "" && !c.State.Valid() {
		v.addf("state", "unknown state %s", quoteValue(string(c.State)))
	}
	if math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0) || c.Rate < 0 {
		v.addf("rate", "must be a number of sends per second ≥ 0 (0 is the account's rate)")
	}
	if c.Priority != 0 && (c.Priority < PriorityMin || c.Priority > PriorityMax) {
		v.addf("priority", "must be 1 to 10 (0 or absent is 5), not %d", c.Priority)
	}
}

// buildMessage checks the kind and its spec and compiles the message. The
// message it returns holds the fields that were valid, so that variable
// checks can run even when other fields are wrong; it is nil if the kind is
// unknown.
func (c *Campaign) buildMessage(v *validator) *Message {
	specs := []struct {
		kind Kind
		set  bool
	}{
		{KindTemplate, c.Template != nil},
		{KindCustom, c.Custom != nil},
		{KindSubscribe, c.Subscribe != nil},
		{KindMass, c.Mass != nil},
	}
	switch c.Kind {
	case KindTemplate, KindCustom, KindSubscribe, KindMass:
	case "":
		v.addf("kind", "required: template, custom, subscribe or mass")
		return nil
	default:
		v.addf("kind", "unknown kind %s: template, custom, subscribe or mass", quoteValue(string(c.Kind)))
		return nil
	}
	for _, s := range specs {
		switch {
		case s.kind == c.Kind && !s.set:
			v.addf(string(s.kind), "required for a %s campaign", string(c.Kind))
			return nil
		case s.kind != c.Kind && s.set:
			v.addf(string(s.kind), "set on a %s campaign: set only the %s spec", string(c.Kind), string(c.Kind))
		}
	}
	b := &messageBuilder{v: v, m: &Message{kind: c.Kind}, name: c.Name}
	switch c.Kind {
	case KindTemplate:
		t := c.Template
		checkID(v, "template.template_id", t.TemplateID)
		b.m.templateID = t.TemplateID
		if t.URL != "" {
			checkURL(v, "template.url", t.URL)
		}
		b.m.link = t.URL
		b.m.mini = miniProgram(v, "template.miniprogram", t.MiniProgram)
		b.data("template.data", t.Data)
	case KindSubscribe:
		s := c.Subscribe
		checkID(v, "subscribe.template_id", s.TemplateID)
		b.m.templateID = s.TemplateID
		if s.Page != "" {
			checkURL(v, "subscribe.page", s.Page)
		}
		b.m.link = s.Page
		b.m.mini = miniProgram(v, "subscribe.miniprogram", s.MiniProgram)
		b.data("subscribe.data", s.Data)
	case KindCustom:
		b.custom(c.Custom)
	case KindMass:
		b.mass(c.Mass)
	}
	return b.finish()
}

// miniProgram checks a miniprogram object and returns a copy of it.
func miniProgram(v *validator, path string, mp *wechat.MiniProgram) *wechat.MiniProgram {
	if mp == nil {
		return nil
	}
	if !ValidAppID(mp.AppID) {
		v.addf(path+".appid", "not an appid: %s is not wx followed by 16 letters or digits", quoteValue(mp.AppID))
	}
	if mp.PagePath != "" {
		checkPagePath(v, path+".pagepath", mp.PagePath)
	}
	c := *mp
	return &c
}

// customPayloads lists the supported msgtypes with whether c has each one's
// payload.
func customPayloads(c *CustomSpec) []payload {
	return []payload{
		{wechat.MsgTypeText, c.Text != nil},
		{wechat.MsgTypeImage, c.Image != nil},
		{wechat.MsgTypeNews, c.News != nil},
		{wechat.MsgTypeMPNews, c.MPNews != nil},
		{wechat.MsgTypeMPNewsArticle, c.MPNewsArticle != nil},
		{wechat.MsgTypeMiniProgramPage, c.MiniProgramPage != nil},
		{wechat.MsgTypeMenu, c.MsgMenu != nil},
	}
}

// payload is one payload field of a message that names its payload by
// msgtype, and whether it is set.
type payload struct {
	msgType string
	set     bool
}

// checkPayloads checks that msgType is one of payloads' and that exactly
// its payload is set, naming fields under prefix ("custom", "mass"). It
// reports whether the message's payload can be compiled.
func checkPayloads(v *validator, prefix, msgType string, payloads []payload) bool {
	names := make([]string, 0, len(payloads))
	known := false
	for _, p := range payloads {
		names = append(names, p.msgType)
		known = known || p.msgType == msgType
	}
	switch {
	case msgType == "":
		v.addf(prefix+".msgtype", "required: one of %s", strings.Join(names, ", "))
		return false
	case !known:
		v.addf(prefix+".msgtype", "unsupported msgtype %s: one of %s", quoteValue(msgType), strings.Join(names, ", "))
		return false
	}
	ok := true
	for _, p := range payloads {
		switch {
		case p.msgType == msgType && !p.set:
			v.addf(prefix+"."+p.msgType, "required for msgtype %s", msgType)
			ok = false
		case p.msgType != msgType && p.set:
			v.addf(prefix+"."+p.msgType, "set on a %s message: set only the payload msgtype names", msgType)
		}
	}
	return ok
}

// custom checks and compiles a customer-service message.
func (b *messageBuilder) custom(c *CustomSpec) {
	v := b.v
	if !checkPayloads(v, "custom", c.MsgType, customPayloads(c)) {
		return
	}
	m := b.m
	m.custom.MsgType = c.MsgType
	if c.KFAccount != "" {
		name, account, ok := strings.Cut(c.KFAccount, "@")
		if !ok || name == "" || account == "" || strings.ContainsFunc(c.KFAccount, unicode.IsSpace) || len(c.KFAccount) > IDMaxBytes {
			v.addf("custom.kf_account", "not a customer-service account: name@account, such as test1@kftest")
		}
		m.custom.CustomService = &wechat.CustomServiceSender{KFAccount: c.KFAccount}
	}
	switch c.MsgType {
	case wechat.MsgTypeText:
		m.text = b.text("custom.text.content", "", c.Text.Content, checkContent)
		if m.text != nil && !m.text.text.dynamic() {
			m.custom.Text = &wechat.Text{Content: m.text.text.value}
		}
	case wechat.MsgTypeImage:
		m.custom.Image = &wechat.Media{MediaID: b.mediaRef("custom.image", c.Image, wechat.MediaImage, MediaTemporary)}
	case wechat.MsgTypeMPNews:
		checkID(v, "custom.mpnews.media_id", c.MPNews.MediaID)
		m.custom.MPNews = &wechat.Media{MediaID: c.MPNews.MediaID}
	case wechat.MsgTypeMPNewsArticle:
		checkID(v, "custom.mpnewsarticle.article_id", c.MPNewsArticle.ArticleID)
		m.custom.MPNewsArticle = &wechat.MPNewsArticle{ArticleID: c.MPNewsArticle.ArticleID}
	case wechat.MsgTypeNews:
		if len(c.News.Articles) != 1 {
			v.addf("custom.news.articles", "%d articles: exactly one is allowed (WeChat answers 45008 to more)", len(c.News.Articles))
			return
		}
		a := c.News.Articles[0]
		const p = "custom.news.articles[0]"
		m.newsTitle = b.text(p+".title", "", a.Title, checkRequired)
		m.newsDesc = b.text(p+".description", "", a.Description, checkOptional)
		if a.URL == "" {
			v.addf(p+".url", "required")
		} else {
			checkURL(v, p+".url", a.URL)
		}
		if a.PicURL != "" {
			checkURL(v, p+".picurl", a.PicURL)
		}
		if m.newsTitle != nil {
			a.Title = m.newsTitle.text.value
		}
		if m.newsDesc != nil {
			a.Description = m.newsDesc.text.value
		}
		m.custom.News = &wechat.News{Articles: []wechat.Article{a}}
	case wechat.MsgTypeMiniProgramPage:
		pg := *c.MiniProgramPage
		const p = "custom.miniprogrampage"
		m.pageTitle = b.text(p+".title", "", pg.Title, checkRequired)
		if !ValidAppID(pg.AppID) {
			v.addf(p+".appid", "not an appid: %s is not wx followed by 16 letters or digits", quoteValue(pg.AppID))
		}
		if pg.PagePath == "" {
			v.addf(p+".pagepath", "required")
		} else {
			checkPagePath(v, p+".pagepath", pg.PagePath)
		}
		checkID(v, p+".thumb_media_id", pg.ThumbMediaID)
		if m.pageTitle != nil {
			pg.Title = m.pageTitle.text.value
		}
		m.custom.MiniProgramPage = &pg
	case wechat.MsgTypeMenu:
		b.menu(c.MsgMenu)
	}
}

// menu checks and compiles a msgmenu payload.
func (b *messageBuilder) menu(mm *wechat.MsgMenu) {
	const p = "custom.msgmenu"
	m := b.m
	out := wechat.MsgMenu{List: slices.Clone(mm.List)}
	m.menuHead = b.text(p+".head_content", "", mm.HeadContent, checkOptional)
	m.menuTail = b.text(p+".tail_content", "", mm.TailContent, checkOptional)
	if len(mm.List) == 0 {
		b.v.addf(p+".list", "at least one item is required")
	}
	seen := make(map[string]int, len(mm.List))
	m.menuItems = make([]field, len(mm.List))
	for i, item := range mm.List {
		ip := p + ".list[" + strconv.Itoa(i) + "]"
		checkID(b.v, ip+".id", item.ID)
		if j, dup := seen[item.ID]; dup && item.ID != "" {
			b.v.addf(ip+".id", "duplicate of custom.msgmenu.list[%d].id", j)
		}
		seen[item.ID] = i
		if f := b.text(ip+".content", "", item.Content, checkRequired); f != nil {
			m.menuItems[i] = *f
			out.List[i].Content = f.text.value
		}
	}
	if m.menuHead != nil {
		out.HeadContent = m.menuHead.text.value
	}
	if m.menuTail != nil {
		out.TailContent = m.menuTail.text.value
	}
	m.custom.MsgMenu = &out
}

func (c *Campaign) validateAudience(v *validator, m *Message) {
	a := &c.Audience
	switch a.Source {
	case SourceInline:
		validateInline(v, a.OpenIDs)
		if c.Kind == KindMass && len(a.OpenIDs) == 1 {
			v.addf("audience.openids", "a mass send to a list needs at least 2 openids (mass/send); send one user a custom or template message")
		}
	case SourceFile, SourceFollowers:
		if len(a.OpenIDs) > 0 {
			v.addf("audience.openids", "only an inline audience lists openids")
		}
	case SourceTag:
		if len(a.OpenIDs) > 0 {
			v.addf("audience.openids", "only an inline audience lists openids")
		}
		if a.TagID <= 0 {
			v.addf("audience.tag_id", "required: the id of the tag whose members receive the message")
		}
	case SourceWindow:
		if len(a.OpenIDs) > 0 {
			v.addf("audience.openids", "only an inline audience lists openids")
		}
		if c.Kind != KindCustom {
			v.addf("audience.source", "only a custom campaign sends to the users inside their customer-service window")
		}
	case "":
		v.addf("audience.source", "required: inline, file, followers, tag or window")
	default:
		v.addf("audience.source", "unknown source %s: inline, file, followers, tag or window", quoteValue(string(a.Source)))
	}
	if a.Source != SourceTag && a.TagID != 0 {
		v.addf("audience.tag_id", "only a tag audience has a tag_id")
	}
	provided := map[string]bool{}
	if a.Source == SourceFile {
		for i, name := range a.Variables {
			path := "audience.variables[" + strconv.Itoa(i) + "]"
			switch {
			case strings.TrimSpace(name) == "":
				v.addf(path, "empty variable name")
			case strings.EqualFold(strings.TrimSpace(name), "openid"):
				v.addf(path, "openid is the recipient, not a variable")
			case provided[name]:
				v.addf(path, "duplicate variable %s", quoteValue(name))
			}
			provided[name] = true
		}
	} else if len(a.Variables) > 0 {
		v.addf("audience.variables", "only a file audience provides variables")
	}
	if m == nil {
		return
	}
	for _, f := range m.dynamic {
		for _, name := range f.text.vars {
			switch {
			case provided[name]:
			case a.Source == SourceFile:
				v.addf(f.path, "variable %s is not among audience.variables (the file's columns)", quoteValue(name))
			default:
				v.addf(f.path, "variable %s is not provided: audience source %s has no variables; use a file audience with a %s column", quoteValue(name), quoteValue(string(a.Source)), quoteValue(name))
			}
		}
	}
}

func validateInline(v *validator, ids []string) {
	switch {
	case len(ids) == 0:
		v.addf("audience.openids", "at least one openid is required")
		return
	case len(ids) > InlineMaxOpenIDs:
		v.addf("audience.openids", "%d openids, at most %d inline: upload a file instead", len(ids), InlineMaxOpenIDs)
		return
	}
	first := make(map[string]int, len(ids))
	for i, id := range ids {
		path := "audience.openids[" + strconv.Itoa(i) + "]"
		if !ValidOpenID(id) {
			v.addf(path, "invalid openid %s: 20 to 64 letters, digits, '_' and '-'", quoteValue(id))
			continue
		}
		if j, dup := first[id]; dup {
			v.addf(path, "duplicate of audience.openids[%d]", j)
			continue
		}
		first[id] = i
	}
}

// checkID checks a required identifier: template_id, media_id, article_id,
// menu item id. WeChat's are ASCII letters, digits, '_' and '-'; we accept
// any printable ASCII without spaces.
func checkID(v *validator, path, s string) {
	switch {
	case s == "":
		v.addf(path, "required")
	case len(s) > IDMaxBytes:
		v.addf(path, "%d bytes, at most %d", len(s), IDMaxBytes)
	case strings.ContainsFunc(s, func(r rune) bool { return !isASCIIGraphic(r) }):
		v.addf(path, "invalid %s: printable ASCII without spaces", quoteValue(s))
	case strings.Contains(s, "{{"):
		v.addf(path, "variables are not allowed here")
	}
}

// checkURL checks a web link: an absolute http or https URL with a host, no
// spaces or control characters, no variables.
func checkURL(v *validator, path, s string) {
	switch {
	case len(s) > URLMaxBytes:
		v.addf(path, "%d bytes, at most %d", len(s), URLMaxBytes)
		return
	case strings.Contains(s, "{{"):
		v.addf(path, "variables are not allowed in links")
		return
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) || !utf8.ValidString(s):
		v.addf(path, "spaces and control characters are not allowed: percent-encode them")
		return
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		v.addf(path, "not a URL: %s", quoteValue(s))
	case u.Scheme != "http" && u.Scheme != "https":
		v.addf(path, "not an http or https URL: %s", quoteValue(s))
	case u.Host == "":
		v.addf(path, "the URL has no host: %s", quoteValue(s))
	}
}

// checkPagePath checks a mini program page path such as
// "pages/index/index?id=1".
func checkPagePath(v *validator, path, s string) {
	switch {
	case len(s) > PagePathMaxBytes:
		v.addf(path, "%d bytes, at most %d", len(s), PagePathMaxBytes)
	case strings.Contains(s, "{{"):
		v.addf(path, "variables are not allowed in page paths")
	case strings.Contains(s, "://"):
		v.addf(path, "a mini program page path such as pages/index/index?id=1, not a URL")
	case strings.ContainsFunc(s, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) || !utf8.ValidString(s):
		v.addf(path, "spaces and control characters are not allowed: percent-encode them")
	}
}

// quoteValue quotes a value for an error message, shortened to 64
// characters, with invalid UTF-8 and control characters escaped.
func quoteValue(s string) string {
	return strconv.Quote(truncate(s, 64))
}

// Warnings lists what Validate accepts but the operator should know: the
// template keywords first and remark, which WeChat removes since
// 2023-05-04; a template with both url and miniprogram (the mini program
// wins where the client can open it); that customer-service messages reach
// only users inside their interaction window (others fail with 45015 or
// 45047) and msgmenu fails on subscription accounts; that subscribe
// notifications reach only users who subscribed (others fail with 43101).
// It does not validate c.
func (c *Campaign) Warnings() []FieldError {
	var w []FieldError
	switch {
	case c.Template != nil:
		for _, k := range []string{"first", "remark"} {
			if _, ok := c.Template.Data[k]; ok {
				w = append(w, FieldError{Field: "template.data." + k, Message: "WeChat removes first and remark from template messages since 2023-05-04"})
			}
		}
		if c.Template.URL != "" && c.Template.MiniProgram != nil {
			w = append(w, FieldError{Field: "template.url", Message: "the mini program opens where the client can open it; url is the fallback"})
		}
	case c.Custom != nil:
		w = append(w, FieldError{Field: "custom", Message: "customer-service messages reach only users who wrote to the account in the last 48 hours (at most 5 messages) or followed, clicked a menu or scanned a code in the last minute; others fail with 45015 or 45047"})
		if c.Custom.MsgType == wechat.MsgTypeMenu {
			w = append(w, FieldError{Field: "custom.msgmenu", Message: "msgmenu fails with 40200 on subscription (订阅号) accounts"})
		}
	case c.Subscribe != nil:
		w = append(w, FieldError{Field: "subscribe", Message: "subscribe notifications reach only users who subscribed to the template; others fail with 43101"})
	case c.Mass != nil:
		w = append(w, FieldError{Field: "mass", Message: "each user gets at most 4 mass messages a calendar month on a service account (1 a day on a subscription account): WeChat filters users over it; results come per batch, not per recipient"})
	}
	return w
}
