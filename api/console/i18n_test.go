package console

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template/parse"
	"unicode"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/i18n"
)

// The console's "no untranslated string" tests: every human-visible text
// of a template comes from the catalogues (TestTemplatesHaveNoLiteralText),
// and every key the templates and the Go code ask for is in both languages
// (TestTranslationKeysExist). internal/i18n's tests check that the two
// catalogues match each other.

// action stands for a template action ({{...}}) in a template's text as
// the checker sees it: a character that is not a letter.
const action = "\uE000"

// textAttrs are the attributes a person reads (or a screen reader says).
var textAttrs = map[string]bool{"placeholder": true, "title": true, "aria-label": true, "alt": true, "aria-placeholder": true,
	"aria-roledescription": true, "aria-valuetext": true}

// untranslated returns the problems of template source src: a text with a
// letter outside {{...}} (after removing tags, comments, entities,
// whitespace, digits and punctuation), or a text attribute (textAttrs, and
// the value of an input button) that is not made of actions.
func untranslated(name, src string) ([]string, error) {
	trees, err := parseTrees(name, src)
	if err != nil {
		return nil, err
	}
	var problems []string
	for _, tn := range slices.Sorted(maps.Keys(trees)) {
		tr := trees[tn]
		if tr.Root == nil {
			continue
		}
		var b strings.Builder
		flatten(&b, tr.Root)
		for _, p := range checkHTML(b.String()) {
			problems = append(problems, fmt.Sprintf("%s: {{define %q}}: %s", name, tn, p))
		}
	}
	return problems, nil
}

// parseTrees parses src as text/template (and html/template) does, without
// needing its functions: the page's tree and one per {{define}}.
func parseTrees(name, src string) (map[string]*parse.Tree, error) {
	t := parse.New(name)
	t.Mode = parse.SkipFuncCheck
	trees := map[string]*parse.Tree{}
	if _, err := t.Parse(src, "", "", trees); err != nil {
		return nil, err
	}
	return trees, nil
}

// flatten writes n's text with every action, and each branch's start and
// end, as the action character: both branches of an {{if}} follow each
// other, as HTML each is whole.
func flatten(b *strings.Builder, n parse.Node) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			flatten(b, c)
		}
	case *parse.TextNode:
		b.Write(n.Text)
	case *parse.IfNode:
		flattenBranch(b, &n.BranchNode)
	case *parse.RangeNode:
		flattenBranch(b, &n.BranchNode)
	case *parse.WithNode:
		flattenBranch(b, &n.BranchNode)
	case *parse.CommentNode:
	default: // actions, {{template}}, {{break}}, {{continue}}
		b.WriteString(action)
	}
}

func flattenBranch(b *strings.Builder, n *parse.BranchNode) {
	b.WriteString(action)
	flatten(b, n.List)
	b.WriteString(action)
	flatten(b, n.ElseList)
	b.WriteString(action)
}

var entity = regexp.MustCompile(`&(#[0-9]+|#[xX][0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9]*);`)

// checkHTML scans a template's flattened HTML: its texts and its tags'
// text attributes.
func checkHTML(s string) []string {
	var problems []string
	var text strings.Builder
	flushText := func() {
		if t := text.String(); hasLetter(t) {
			problems = append(problems, fmt.Sprintf("literal text %q: put it in the catalogues and use {{$.T \"key\"}}", shown(t)))
		}
		text.Reset()
	}
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "<!--"):
			flushText()
			end := strings.Index(s[i+4:], "-->")
			if end < 0 {
				return append(problems, "a comment without its end")
			}
			i += 4 + end + 3
		case s[i] == '<' && i+1 < len(s) && (isASCIILetter(s[i+1]) || s[i+1] == '/' || s[i+1] == '!'):
			flushText()
			tag, attrs, n := scanTag(s[i:])
			i += n
			for _, a := range attrs {
				if textAttr(tag, a, attrs) && hasLetter(a.val) {
					problems = append(problems, fmt.Sprintf("<%s %s=%q>: literal text in a visible attribute, use {{$.T \"key\"}}", tag, a.name, shown(a.val)))
				}
			}
			if tag == "script" || tag == "style" {
				end := strings.Index(strings.ToLower(s[i:]), "</"+tag)
				if end < 0 {
					return append(problems, "<"+tag+"> without its end")
				}
				i += end
			}
		default:
			text.WriteByte(s[i])
			i++
		}
	}
	flushText()
	return problems
}

// hasLetter reports whether s has a letter once the actions and entities
// are taken out (digits, punctuation, symbols and spaces are no words).
func hasLetter(s string) bool {
	s = entity.ReplaceAllString(strings.ReplaceAll(s, action, " "), " ")
	for _, r := range s {
		if unicode.IsLetter(r) {
			return true
		}
	}
	return false
}

func shown(s string) string {
	s = strings.Join(strings.Fields(strings.ReplaceAll(s, action, "{{…}}")), " ")
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

type attr struct{ name, val string }

// textAttr reports whether a is an attribute a person reads: textAttrs, or
// the value of a button.
func textAttr(tag string, a attr, all []attr) bool {
	if textAttrs[a.name] {
		return true
	}
	// A button's value is what it submits, not what it shows (its
	// content); an input button shows its value.
	if a.name != "value" || tag != "input" {
		return false
	}
	for _, o := range all {
		if o.name == "type" {
			switch strings.ToLower(o.val) {
			case "submit", "button", "reset":
				return true
			}
		}
	}
	return false
}

func isASCIILetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// scanTag reads the tag at the start of s: its name (lower case, "" for a
// <!doctype>), its attributes, and its length.
func scanTag(s string) (string, []attr, int) {
	i := 1
	if i < len(s) && (s[i] == '/' || s[i] == '!') {
		i++
	}
	start := i
	for i < len(s) && !isSpace(s[i]) && s[i] != '>' && s[i] != '/' {
		i++
	}
	name := strings.ToLower(s[start:i])
	if s[1] == '!' || s[1] == '/' {
		name = ""
	}
	var attrs []attr
	for i < len(s) && s[i] != '>' {
		if isSpace(s[i]) || s[i] == '/' {
			i++
			continue
		}
		ns := i
		for i < len(s) && !isSpace(s[i]) && s[i] != '=' && s[i] != '>' && s[i] != '/' {
			i++
		}
		a := attr{name: strings.ToLower(s[ns:i])}
		if i < len(s) && s[i] == '=' {
			i++
			if i < len(s) && (s[i] == '"' || s[i] == '\'') {
				q := s[i]
				end := strings.IndexByte(s[i+1:], q)
				if end < 0 {
					end = len(s) - i - 1
				}
				a.val = s[i+1 : i+1+end]
				i += end + 2
			} else {
				vs := i
				for i < len(s) && !isSpace(s[i]) && s[i] != '>' {
					i++
				}
				a.val = s[vs:i]
			}
		}
		attrs = append(attrs, a)
	}
	return name, attrs, min(i+1, len(s))
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' }

// templateSources are the console's templates as they are embedded.
func templateSources(t *testing.T) map[string]string {
	t.Helper()
	files, err := fs.Glob(templateFiles, "templates/*.html")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	out := map[string]string{}
	for _, f := range files {
		raw, err := fs.ReadFile(templateFiles, f)
		require.NoError(t, err)
		out[f] = string(raw)
	}
	return out
}

// TestTemplatesHaveNoLiteralText: no template of the console has a word
// outside {{...}}, in its text or in an attribute a person reads.
func TestTemplatesHaveNoLiteralText(t *testing.T) {
	t.Parallel()
	for name, src := range templateSources(t) {
		problems, err := untranslated(name, src)
		require.NoError(t, err)
		require.Empty(t, problems, "untranslated text in %s", name)
	}
}

// TestUntranslatedFindsLiteralText: the checker finds a literal word where
// a person would read it, and passes what is not one.
func TestUntranslatedFindsLiteralText(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		src  string
		want []string // substrings of the problems, in order
	}{
		{src: `{{define "content"}}<p>{{$.T "list.none"}} · 42 — {{.N}}%&nbsp;&#8594;</p><!-- a note for developers -->{{end}}`},
		{src: `<p class="muted" id="x-1" data-kind="template">{{.T "k"}}</p><input type="hidden" name="lang" value="zh-CN"><option value="draft">{{.T "s"}}</option>`},
		{src: `<input placeholder="{{$.T "list.search"}}" aria-label="{{.T "a"}}"><button name="op" value="save">{{.T "b"}}</button><img alt="">`},
		{src: `<p>Hello {{.Name}}</p>`, want: []string{`literal text "Hello {{…}}"`}},
		{src: `{{define "content"}}{{if .X}}<a href="/">{{.T "a"}}</a>{{else}}<span>None</span>{{end}}{{end}}`, want: []string{`"None"`}},
		{src: `<p>{{.T "a"}}</p><p>会员日</p>`, want: []string{`"会员日"`}},
		{src: `<input id="q" placeholder="Search by name">`, want: []string{`placeholder="Search by name"`}},
		{src: `<a href="/" title="{{.T "x"}} more" aria-label="Close">x</a>`, want: []string{`title=`, `aria-label="Close"`, `"x"`}},
		{src: `<input type="submit" value="Send"><input type="text" value="not shown as a label">`, want: []string{`value="Send"`}},
	} {
		got, err := untranslated("made-up.html", tc.src)
		require.NoError(t, err, tc.src)
		require.Len(t, got, len(tc.want), "%s: %q", tc.src, got)
		for i, w := range tc.want {
			require.Contains(t, got[i], w, tc.src)
		}
	}
}

// keyUse is a key a template or the Go code asks for: a constant, or a
// pattern with %s where a value goes in (printf "state.%s" .State).
type keyUse struct {
	key     string
	pattern bool
	where   string
}

// templateKeys returns the keys src's translations ask for ({{.T "key"}},
// {{$.T "key"}}, {{$v.T (printf "state.%s" .State)}}), and the uses it
// cannot read (a key in a variable).
func templateKeys(name, src string) ([]keyUse, []string, error) {
	trees, err := parseTrees(name, src)
	if err != nil {
		return nil, nil, err
	}
	var uses []keyUse
	var unread []string
	var walk func(parse.Node)
	walk = func(n parse.Node) {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return
			}
			for _, c := range n.Nodes {
				walk(c)
			}
		case *parse.ActionNode:
			walk(n.Pipe)
		case *parse.TemplateNode:
			walk(n.Pipe)
		case *parse.IfNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.RangeNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.WithNode:
			walk(n.Pipe)
			walk(n.List)
			walk(n.ElseList)
		case *parse.PipeNode:
			if n == nil {
				return
			}
			for _, c := range n.Cmds {
				walk(c)
			}
		case *parse.CommandNode:
			for i, a := range n.Args {
				walk(a)
				if !isT(a) {
					continue
				}
				if i+1 >= len(n.Args) {
					unread = append(unread, n.String())
					continue
				}
				switch k := n.Args[i+1].(type) {
				case *parse.StringNode:
					uses = append(uses, keyUse{key: k.Text, where: name + ": " + n.String()})
				case *parse.PipeNode:
					if f, ok := printfFormat(k); ok {
						uses = append(uses, keyUse{key: f, pattern: true, where: name + ": " + n.String()})
						continue
					}
					unread = append(unread, name+": "+n.String())
				default:
					unread = append(unread, name+": "+n.String())
				}
			}
		}
	}
	for _, tr := range trees {
		walk(tr.Root)
	}
	return uses, unread, nil
}

// isT reports whether n names a view's T method: .T, $.T, $v.T, .V.T.
func isT(n parse.Node) bool {
	switch n := n.(type) {
	case *parse.FieldNode:
		return n.Ident[len(n.Ident)-1] == "T"
	case *parse.VariableNode:
		return len(n.Ident) > 1 && n.Ident[len(n.Ident)-1] == "T"
	case *parse.ChainNode:
		return len(n.Field) > 0 && n.Field[len(n.Field)-1] == "T"
	}
	return false
}

// printfFormat returns the format of (printf "format" args...).
func printfFormat(p *parse.PipeNode) (string, bool) {
	if len(p.Cmds) != 1 || len(p.Cmds[0].Args) < 2 {
		return "", false
	}
	id, ok := p.Cmds[0].Args[0].(*parse.IdentifierNode)
	if !ok || id.Ident != "printf" {
		return "", false
	}
	s, ok := p.Cmds[0].Args[1].(*parse.StringNode)
	if !ok {
		return "", false
	}
	return s.Text, true
}

// goKeys returns the keys the package's Go code (its files in dir, tests
// left out) asks for: T("key"), v.T("key"), v.L.T("key"), and patterns
// from a key built with +: v.T("done." + action) is "done.%s".
func goKeys(t *testing.T, dir string) []keyUse {
	t.Helper()
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	require.NoError(t, err)
	var uses []keyUse
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		require.NoError(t, err)
		ast.Inspect(af, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			switch fn := call.Fun.(type) {
			case *ast.SelectorExpr:
				if fn.Sel.Name != "T" {
					return true
				}
			case *ast.Ident:
				if fn.Name != "T" {
					return true
				}
			default:
				return true
			}
			key, lit := goKey(call.Args[0])
			if key == "" || !strings.Contains(key, ".") && !lit {
				return true // a key in a variable: not read here
			}
			uses = append(uses, keyUse{key: key, pattern: !lit, where: fset.Position(call.Pos()).String()})
			return true
		})
	}
	return uses
}

// goKey returns the key e spells: its text if it is a literal, else a
// pattern with %s for each part that is not.
func goKey(e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return "", false
		}
		s, err := strconv.Unquote(e.Value)
		if err != nil {
			return "", false
		}
		return s, true
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return "", false
		}
		l, _ := goKey(e.X)
		r, _ := goKey(e.Y)
		if l == "" {
			l = "%s"
		}
		if r == "" {
			r = "%s"
		}
		return l + r, false
	case *ast.ParenExpr:
		return goKey(e.X)
	}
	return "", false
}

// stringConsts returns the values of file's string constants whose names
// start with prefix (the API's error codes, its waiting reasons).
func stringConsts(t *testing.T, file, prefix string) []string {
	t.Helper()
	af, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	require.NoError(t, err)
	var out []string
	for _, d := range af.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, sp := range gd.Specs {
			vs := sp.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if !strings.HasPrefix(n.Name, prefix) || i >= len(vs.Values) {
					continue
				}
				if v, ok := goKey(vs.Values[i]); ok {
					out = append(out, v)
				}
			}
		}
	}
	require.NotEmpty(t, out, "%s has no %s constants", file, prefix)
	return out
}

// keySets are the values that go into each key pattern the console
// builds: a new pattern needs its value set here.
func keySets(t *testing.T) map[string][]string {
	t.Helper()
	var states, actions []string
	for _, s := range allStates {
		states = append(states, string(s))
		actions = append(actions, actionsFor(s)...)
	}
	confirms := slices.Sorted(maps.Keys(confirmable))
	actions = append(actions, confirms...)
	kinds := []string{string(campaigns.KindTemplate), string(campaigns.KindCustom), string(campaigns.KindSubscribe), string(campaigns.KindMass)}
	return map[string][]string{
		"state.%s":               states, // a campaign's states, which include a run's
		"kind.%s":                kinds,
		"action.%s":              actions,
		"confirm.%s.title":       confirms,
		"confirm.%s.what":        confirms,
		"done.%s":                confirms,
		"outcome.%s":             campaigns.OutcomeStatuses,
		"waiting.%s":             stringConsts(t, filepath.Join("..", "waiting.go"), "waitingReason"),
		"apierr.%s":              stringConsts(t, filepath.Join("..", "errors.go"), "Code"),
		"dash.paused.%s":         stringConsts(t, filepath.Join("..", "..", "ratelimit", "errors.go"), "Pause"),
		"form.source.%s":         strs(formSources),
		"acct.over_cap.%s":       {campaigns.OverCapDefer, campaigns.OverCapSkip},
		"ops.retry.class.%s":     retryClasses,
		"ops.schedule.missed.%s": strs([]campaigns.Missed{campaigns.MissedSkip, campaigns.MissedOnce}),
		"sup.reason.%s":          stringConsts(t, filepath.Join("..", "..", "internal", "rdb", "protect.go"), "Suppress"),
		"sup.done.%s":            slices.Sorted(maps.Keys(supDone)),
	}
}

func strs[S ~string](xs []S) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}

// TestTranslationKeysExist: every key the templates and the Go code ask
// for is in the English and the Chinese catalogue, and so is every key a
// pattern makes from its known values (every state, kind, action,
// outcome, waiting reason and API error code).
func TestTranslationKeysExist(t *testing.T) {
	t.Parallel()
	cat := i18n.Default()
	var uses []keyUse
	for name, src := range templateSources(t) {
		u, unread, err := templateKeys(name, src)
		require.NoError(t, err)
		for _, x := range unread {
			t.Logf("a key this test cannot read (in a variable): %s", x)
		}
		uses = append(uses, u...)
	}
	require.NotEmpty(t, uses)
	goUses := goKeys(t, ".")
	require.NotEmpty(t, goUses)
	uses = append(uses, goUses...)
	// The API's error codes are all shown translated (renderError).
	uses = append(uses, keyUse{key: "apierr.%s", pattern: true, where: "apiErrorText"}, keyUse{key: "apierr.other", where: "apiErrorText"})

	sets := keySets(t)
	checked := 0
	var unknown []string
	has := func(key, where string) {
		t.Helper()
		for _, tag := range i18n.Tags {
			ok := cat.Has(tag, key) || tag == i18n.English && cat.IsFormat(key)
			require.True(t, ok, "%s: key %q is not in the %s catalogue (internal/i18n/locales/%s)", where, key, tag, tag)
		}
		checked++
	}
	for _, u := range uses {
		if !u.pattern {
			has(u.key, u.where)
			continue
		}
		vals, ok := sets[u.key]
		if !ok {
			unknown = append(unknown, fmt.Sprintf("%s: %q", u.where, u.key))
			continue
		}
		for _, v := range vals {
			has(fmt.Sprintf(u.key, v), u.where+" with "+v)
		}
	}
	require.Empty(t, unknown, "key patterns without a value set in keySets (i18n_test.go): add the values each takes")
	t.Logf("%d key uses, %d keys checked in both languages", len(uses), checked)
}

// TestKeyReaders: the readers find constant and built keys where the
// console writes them.
func TestKeyReaders(t *testing.T) {
	t.Parallel()
	uses, unread, err := templateKeys("x.html", `{{define "a"}}{{$.T "a.b" 1}}{{.T (printf "state.%s" .S)}}{{$v := .V}}{{$v.T "c"}}{{if .X}}{{.L.T "d"}}{{end}}{{$.T .Key}}{{end}}`)
	require.NoError(t, err)
	var keys []string
	for _, u := range uses {
		keys = append(keys, fmt.Sprintf("%s %v", u.key, u.pattern))
	}
	require.ElementsMatch(t, []string{"a.b false", "state.%s true", "c false", "d false"}, keys)
	require.Len(t, unread, 1)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x.go"), []byte(`package x
func f(v view, action string) {
	v.T("error.no_page")
	v.L.T("confirm."+action+".title", 1)
	T("done." + action)
	v.T(action)
}`), 0o644))
	var got []string
	for _, u := range goKeys(t, dir) {
		got = append(got, fmt.Sprintf("%s %v", u.key, u.pattern))
	}
	require.ElementsMatch(t, []string{"error.no_page false", "confirm.%s.title true", "done.%s true"}, got)
}
