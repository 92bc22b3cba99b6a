package campaigns

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"text/template/parse"
	"unicode"
	"unicode/utf8"

	"github.com/wxmass/wxmass/wechat"
)

// TextMaxBytes is the longest text.content of a customer-service text
// message, in bytes, after rendering.
const TextMaxBytes = 2048

// ErrWrongKind is returned by a Render method called on a Message of another
// kind, such as RenderCustom on a template campaign's message.
var ErrWrongKind = errors.New("campaigns: message is of another kind")

// ErrMissingVariable is matched (with errors.Is) by the *MissingVariableError
// a Render method returns when vars lacks a variable the message uses.
var ErrMissingVariable = errors.New("campaigns: missing variable")

// MissingVariableError is returned by the Render methods when vars has no
// entry for a variable the message refers to. A missing variable is never
// rendered as an empty string.
type MissingVariableError struct {
	// Field is the message field that refers to the variable, such as
	// "template.data.thing1".
	Field string
	// Variable is the variable's name.
	Variable string
}

// Error returns "campaigns: <field>: missing variable "<name>"".
func (e *MissingVariableError) Error() string {
	return "campaigns: " + e.Field + ": missing variable " + strconv.Quote(e.Variable)
}

// Is reports whether target is ErrMissingVariable.
func (e *MissingVariableError) Is(target error) bool { return target == ErrMissingVariable }

// RecipientError is a recipient whose variables would make a message WeChat
// refuses, found by Message.CheckRecipient.
type RecipientError struct {
	// Field is the message field at fault, such as "template.data.thing1".
	Field string
	// Variables are the variables the field refers to, in order of use.
	Variables []string
	// Value is the field's rendered value; it is empty when a variable is
	// missing. It is not truncated.
	Value string
	// Reason says what is wrong with the value.
	Reason string
}

// Error returns "campaigns: <field> (from <variables>): <reason>".
func (e *RecipientError) Error() string {
	return "campaigns: " + e.Field + " (from " + strings.Join(e.Variables, ", ") + "): " + e.Reason
}

// fieldCheck checks a text field's value. A partial value is the literal
// text around the variables of a field that has some. It returns "" or the
// reason the value is refused.
type fieldCheck func(s string, partial bool) reason

// part is a piece of a compiled text: literal text, or a variable when name
// is set.
type part struct {
	lit  string
	name string
}

// text is a compiled text field. A static text has no parts and is always
// value; a dynamic one is rendered from its parts for each recipient.
type text struct {
	value  string
	parts  []part
	vars   []string // distinct variables in order of first use
	litLen int      // bytes of literal text in parts
}

func (t *text) dynamic() bool { return t.parts != nil }

// literal returns the literal text of t without its variables.
func (t *text) literal() string {
	if !t.dynamic() {
		return t.value
	}
	var b strings.Builder
	b.Grow(t.litLen)
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.lit)
		}
	}
	return b.String()
}

// renderStackParts is how many variable values render keeps on the stack.
const renderStackParts = 8

// render returns the text for one recipient, or the name of the first
// missing variable. A static text is returned as compiled, without copying.
func (t *text) render(vars map[string]string) (string, string) {
	if !t.dynamic() {
		return t.value, ""
	}
	if len(t.parts) == 1 { // the whole value is one variable
		v, ok := vars[t.parts[0].name]
		if !ok {
			return "", t.parts[0].name
		}
		return v, ""
	}
	var stack [renderStackParts]string
	vals := stack[:0]
	n := t.litLen
	for _, p := range t.parts {
		if p.name == "" {
			continue
		}
		v, ok := vars[p.name]
		if !ok {
			return "", p.name
		}
		n += len(v)
		vals = append(vals, v)
	}
	var b strings.Builder
	b.Grow(n)
	i := 0
	for _, p := range t.parts {
		if p.name == "" {
			b.WriteString(p.lit)
			continue
		}
		b.WriteString(vals[i])
		i++
	}
	return b.String(), ""
}

// parseText compiles s, a Go text/template that may only refer to variables
// as {{.name}}: no functions, pipelines, actions ({{if}}, {{range}},
// {{with}}, {{template}}, ...), dot, $variables or nested fields
// ({{.a.b}}). Trim markers ({{- .name -}}) and comments work as in
// text/template. It returns the reason s is refused.
func parseText(s string) (text, reason) {
	if !strings.Contains(s, "{{") {
		return text{value: s}, reason{}
	}
	const name = "value"
	tmpl, err := template.New(name).Parse(s)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "template: "+name+":")
		return text{}, reasonf("not a valid template: %s", msg)
	}
	for _, other := range tmpl.Templates() {
		if other.Name() != name {
			return text{}, reasonf("not a valid template: {{define}} and {{block}} are not allowed")
		}
	}
	var t text
	if tmpl.Tree == nil || tmpl.Tree.Root == nil {
		return text{value: ""}, reason{}
	}
	for _, n := range tmpl.Tree.Root.Nodes {
		switch n := n.(type) {
		case *parse.TextNode:
			if k := len(t.parts); k > 0 && t.parts[k-1].name == "" {
				t.parts[k-1].lit += string(n.Text)
			} else {
				t.parts = append(t.parts, part{lit: string(n.Text)})
			}
			t.litLen += len(n.Text)
		case *parse.ActionNode:
			v, reason := variableOf(n)
			if reason.bad() {
				return text{}, reason
			}
			t.parts = append(t.parts, part{name: v})
			if !slices.Contains(t.vars, v) {
				t.vars = append(t.vars, v)
			}
		case *parse.CommentNode:
		default:
			return text{}, reasonf("only variable references such as {{.name}} are allowed, not %s", describeNode(n))
		}
	}
	if len(t.vars) == 0 { // only text and comments
		return text{value: t.literal()}, reason{}
	}
	return t, reason{}
}

// variableOf returns the variable of an action {{.name}}, or the reason the
// action is something else.
func variableOf(n *parse.ActionNode) (string, reason) {
	p := n.Pipe
	if p != nil && len(p.Decl) == 0 && len(p.Cmds) == 1 && len(p.Cmds[0].Args) == 1 {
		if f, ok := p.Cmds[0].Args[0].(*parse.FieldNode); ok {
			if len(f.Ident) == 1 {
				return f.Ident[0], reason{}
			}
			return "", reasonf("nested fields such as %s are not allowed: use {{.name}}", truncate(n.String(), 40))
		}
	}
	return "", reasonf("only variable references such as {{.name}} are allowed, not %s", truncate(n.String(), 40))
}

// describeNode names a template node that is not allowed.
func describeNode(n parse.Node) string {
	switch n.(type) {
	case *parse.IfNode:
		return "{{if}}"
	case *parse.RangeNode:
		return "{{range}}"
	case *parse.WithNode:
		return "{{with}}"
	case *parse.TemplateNode:
		return "{{template}}"
	case *parse.BreakNode:
		return "{{break}}"
	case *parse.ContinueNode:
		return "{{continue}}"
	}
	return truncate(n.String(), 40)
}

// field is one text field of a message.
type field struct {
	path  string // JSON path in the campaign, such as "template.data.thing1"
	key   string // the data keyword, for template and subscribe data
	text  text
	check fieldCheck
}

// Message is a campaign's message compiled for rendering: every text is
// parsed once and the parts that do not depend on the recipient are built
// once. Build it with Campaign.Compile.
//
// A Message is immutable and safe for concurrent use. The messages its
// Render methods return share their unchanging parts (static values, the
// mini program, static payloads) with each other and must be treated as
// read-only.
type Message struct {
	kind Kind
	vars []string

	// template and subscribe
	templateID string
	link       string // template url or subscribe page
	mini       *wechat.MiniProgram
	data       []field

	// custom: the static message, and the fields rendered into its copies
	custom    wechat.CustomMessage
	text      *field
	newsTitle *field
	newsDesc  *field
	pageTitle *field
	menuHead  *field
	menuTail  *field
	menuItems []field
	customDyn bool // some custom field has variables

	// mass: the message without its clientmsgid
	mass *wechat.MassMessage

	// files are the stored files the message refers to (media.go);
	// unresolved is set until WithMedia gave them their media_ids.
	files      []MediaFile
	unresolved bool

	dynamic []*field // every field with variables, for CheckRecipient
}

// Kind returns the kind of the message.
func (m *Message) Kind() Kind { return m.kind }

// Variables returns the names of the variables the message refers to,
// sorted. The caller may modify the slice.
func (m *Message) Variables() []string { return slices.Clone(m.vars) }

// RenderTemplate returns the template message for one recipient, with
// clientMsgID as its client_msg_id. vars must hold every variable in
// Variables; values are inserted as they are, without escaping (JSON
// encoding is the client's job). Static values are not rendered again.
//
// It returns a *MissingVariableError for a missing variable and an error
// wrapping ErrWrongKind if the message is not a template message. It does
// not apply CheckKeywordValue: CheckRecipient does that when the audience is
// ingested.
func (m *Message) RenderTemplate(openid string, vars map[string]string, clientMsgID string) (*wechat.TemplateMessage, error) {
	if m.kind != KindTemplate {
		return nil, fmt.Errorf("%w: %s message rendered as template", ErrWrongKind, m.kind)
	}
	data, err := m.renderData(vars)
	if err != nil {
		return nil, err
	}
	return &wechat.TemplateMessage{
		ToUser:      openid,
		TemplateID:  m.templateID,
		URL:         m.link,
		MiniProgram: m.mini,
		ClientMsgID: clientMsgID,
		Data:        data,
	}, nil
}

// RenderSubscribe returns the subscribe notification for one recipient. It
// behaves like RenderTemplate.
func (m *Message) RenderSubscribe(openid string, vars map[string]string) (*wechat.SubscribeMessage, error) {
	if m.kind != KindSubscribe {
		return nil, fmt.Errorf("%w: %s message rendered as subscribe", ErrWrongKind, m.kind)
	}
	data, err := m.renderData(vars)
	if err != nil {
		return nil, err
	}
	return &wechat.SubscribeMessage{
		ToUser:      openid,
		TemplateID:  m.templateID,
		Page:        m.link,
		MiniProgram: m.mini,
		Data:        data,
	}, nil
}

func (m *Message) renderData(vars map[string]string) (map[string]wechat.TemplateValue, error) {
	data := make(map[string]wechat.TemplateValue, len(m.data))
	for i := range m.data {
		f := &m.data[i]
		v, missing := f.text.render(vars)
		if missing != "" {
			return nil, &MissingVariableError{Field: f.path, Variable: missing}
		}
		data[f.key] = wechat.TemplateValue{Value: v}
	}
	return data, nil
}

// RenderCustom returns the customer-service message for one recipient. It
// behaves like RenderTemplate; only the payload fields with variables are
// built anew, the rest is shared with the compiled message. A message that
// refers to stored files renders only once WithMedia resolved them (else
// an error wrapping ErrMediaUnresolved).
func (m *Message) RenderCustom(openid string, vars map[string]string) (*wechat.CustomMessage, error) {
	if m.kind != KindCustom {
		return nil, fmt.Errorf("%w: %s message rendered as custom", ErrWrongKind, m.kind)
	}
	if m.unresolved {
		return nil, m.unresolvedError()
	}
	out := new(wechat.CustomMessage)
	*out = m.custom
	out.ToUser = openid
	if !m.customDyn {
		return out, nil
	}
	var r renderer
	r.vars = vars
	switch {
	case m.text != nil && m.text.text.dynamic():
		out.Text = &wechat.Text{Content: r.render(m.text)}
	case m.newsTitle != nil && (m.newsTitle.text.dynamic() || m.newsDesc.text.dynamic()):
		a := m.custom.News.Articles[0]
		a.Title = r.render(m.newsTitle)
		a.Description = r.render(m.newsDesc)
		out.News = &wechat.News{Articles: []wechat.Article{a}}
	case m.pageTitle != nil && m.pageTitle.text.dynamic():
		p := *m.custom.MiniProgramPage
		p.Title = r.render(m.pageTitle)
		out.MiniProgramPage = &p
	case m.menuHead != nil:
		menu := *m.custom.MsgMenu
		menu.HeadContent = r.render(m.menuHead)
		menu.TailContent = r.render(m.menuTail)
		menu.List = slices.Clone(menu.List)
		for i := range m.menuItems {
			menu.List[i].Content = r.render(&m.menuItems[i])
		}
		out.MsgMenu = &menu
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

// renderer renders several fields and keeps the first missing variable.
type renderer struct {
	vars map[string]string
	err  error
}

func (r *renderer) render(f *field) string {
	if r.err != nil {
		return ""
	}
	v, missing := f.text.render(r.vars)
	if missing != "" {
		r.err = &MissingVariableError{Field: f.path, Variable: missing}
	}
	return v
}

// CheckRecipient reports whether the message rendered with vars is one
// WeChat accepts: every field with variables is rendered and checked by the
// field's rule (CheckKeywordValue for template and subscribe data; for a
// text message, a non-empty content of at most TextMaxBytes bytes; required
// titles and menu items not empty). Static fields were checked by
// Campaign.Validate and are skipped, so a message without variables accepts
// any vars.
//
// It returns nil or a *RecipientError naming the first field at fault, also
// when a variable is missing. It is meant for audience ingest (as
// AudienceOptions.Check), so that a value WeChat would refuse is a line
// error when the file is uploaded, not a failed send. It is safe for
// concurrent use.
func (m *Message) CheckRecipient(vars map[string]string) error {
	for _, f := range m.dynamic {
		v, missing := f.text.render(vars)
		if missing != "" {
			return &RecipientError{Field: f.path, Variables: f.text.vars, Reason: "variable " + strconv.Quote(missing) + " is missing"}
		}
		if reason := f.check(v, false); reason.bad() {
			return &RecipientError{Field: f.path, Variables: f.text.vars, Value: v, Reason: reason.String()}
		}
	}
	return nil
}

// Checks of custom message fields. Text may hold line breaks and tabs but
// no other control characters.

func checkContent(s string, partial bool) reason {
	switch {
	case !utf8.ValidString(s):
		return reasonf("invalid UTF-8")
	case partial && len(s) > TextMaxBytes:
		return reasonf("the text around the variables has %d bytes, at most %d", len(s), TextMaxBytes)
	case len(s) > TextMaxBytes:
		return reasonf("%d bytes, at most %d", len(s), TextMaxBytes)
	case !partial && strings.TrimSpace(s) == "":
		return reasonf("must not be empty")
	}
	return checkControl(s)
}

func checkRequired(s string, partial bool) reason {
	switch {
	case !utf8.ValidString(s):
		return reasonf("invalid UTF-8")
	case !partial && strings.TrimSpace(s) == "":
		return reasonf("must not be empty")
	}
	return checkControl(s)
}

func checkOptional(s string, _ bool) reason {
	if !utf8.ValidString(s) {
		return reasonf("invalid UTF-8")
	}
	return checkControl(s)
}

// checkControl refuses control characters other than line breaks and tabs.
func checkControl(s string) reason {
	for _, r := range s {
		if r != '\n' && r != '\r' && r != '\t' && unicode.IsControl(r) {
			return reasonf("control character %s is not allowed", describeRune(r))
		}
	}
	return reason{}
}

func checkKeyword(key string) fieldCheck {
	rule := ruleFor(key)
	return func(s string, partial bool) reason { return rule.check(s, partial) }
}

// messageBuilder compiles a campaign's message, reporting problems to a
// validator.
type messageBuilder struct {
	v    *validator
	m    *Message
	name string // the campaign's name: the title of a video it uploads
}

// text parses the value of a field, checks its static value or its literal
// text, and returns it; it returns nil if the value is refused.
func (b *messageBuilder) text(path, key, value string, check fieldCheck) *field {
	t, reason := parseText(value)
	if reason.bad() {
		b.v.addReason(path, reason)
		return nil
	}
	if reason := check(t.literal(), t.dynamic()); reason.bad() {
		b.v.addReason(path, reason)
		return nil
	}
	return &field{path: path, key: key, text: t, check: check}
}

// data compiles template or subscribe data: keywords in sorted order.
func (b *messageBuilder) data(prefix string, data map[string]string) {
	if len(data) == 0 {
		b.v.addf(prefix, "at least one keyword is required")
		return
	}
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b.m.data = make([]field, 0, len(keys))
	for _, k := range keys {
		path := prefix + "." + k
		if !ValidKeyword(k) {
			b.v.addf(path, "not a template keyword: a letter, letters and underscores, then digits, such as thing1 or character_string2")
			continue
		}
		if f := b.text(path, k, data[k], checkKeyword(k)); f != nil {
			b.m.data = append(b.m.data, *f)
		}
	}
}

// finish collects the fields with variables and the variables, and returns
// the message.
func (b *messageBuilder) finish() *Message {
	m := b.m
	var all []*field
	for i := range m.data {
		all = append(all, &m.data[i])
	}
	all = append(all, m.text, m.newsTitle, m.newsDesc, m.pageTitle, m.menuHead, m.menuTail)
	for i := range m.menuItems {
		all = append(all, &m.menuItems[i])
	}
	for _, f := range all {
		if f == nil || !f.text.dynamic() {
			continue
		}
		m.dynamic = append(m.dynamic, f)
		if m.kind == KindCustom {
			m.customDyn = true
		}
		for _, name := range f.text.vars {
			if !slices.Contains(m.vars, name) {
				m.vars = append(m.vars, name)
			}
		}
	}
	slices.Sort(m.vars)
	return m
}

// truncate shortens s to at most n runes, adding "…" when it cut.
func truncate(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j] + "…"
		}
		i++
	}
	return s
}
