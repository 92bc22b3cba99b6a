package console

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/internal/i18n"
)

//go:embed templates/*.html
var templateFiles embed.FS

// csp is the console pages' Content-Security-Policy: scripts and styles
// only from the console's own files, no inline ones, nothing from elsewhere.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

// pages are the parsed templates: each page is the layout with the page's
// own blocks.
type pages struct {
	byName map[string]*template.Template
}

// funcs are the templates' helpers besides the view's methods.
var funcs = template.FuncMap{
	"pct": func(n, of int64) int64 {
		if of <= 0 {
			return 0
		}
		return n * 100 / of
	},
	"add": func(a, b int) int { return a + b },
	// dict makes a map of its key, value arguments, for a partial's data.
	"dict": func(kv ...any) map[string]any {
		m := make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			m[fmt.Sprint(kv[i])] = kv[i+1]
		}
		return m
	},
	"confirmable": func(action string) bool { return confirmable[action] },
}

// parsePages parses templates/*.html: layout.html and partials (_*.html)
// are shared, every other file is a page.
func parsePages() (*pages, error) {
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/_*.html")
	if err != nil {
		return nil, err
	}
	files, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	p := &pages{byName: map[string]*template.Template{}}
	for _, f := range files {
		name := path.Base(f)
		if name == "layout.html" || strings.HasPrefix(name, "_") {
			continue
		}
		t, err := template.Must(base.Clone()).ParseFS(templateFiles, f)
		if err != nil {
			return nil, err
		}
		p.byName[strings.TrimSuffix(name, ".html")] = t
	}
	return p, nil
}

// partial renders the shared template name with data.
func (p *pages) partial(w io.Writer, name string, data any) error {
	for _, t := range p.byName {
		return t.ExecuteTemplate(w, name, data)
	}
	return fmt.Errorf("no pages")
}

// TemplateNames returns the names of the parsed pages (for tests).
func (p *pages) names() []string {
	var out []string
	for n := range p.byName {
		out = append(out, n)
	}
	return out
}

// view is what every page's template gets: the request's language and
// token, and the page's own data.
type view struct {
	L *i18n.Localizer
	// Path is the request's path and query, for the language switch.
	Path string
	// Token is the form token (csrf.go).
	Token string
	// Nav names the navigation entry to mark.
	Nav string
	// Title is the page's title, translated.
	Title string
	// MonitorPath is asynqmon's path.
	MonitorPath string
	// Flash is a message from the last action, translated.
	Flash string
	// Data is the page's own data.
	Data any
	// page is the template to render.
	page string
	// loc is the time zone dates are shown in.
	loc *time.Location
	// zone is the time zone of an account's dates (Console.location).
	zone func(account string) *time.Location
}

// T translates key (see i18n.Localizer.T).
func (v *view) T(key string, args ...any) string { return v.L.T(key, args...) }

// Time shows t in the view's time zone, "" for the zero time.
func (v *view) Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	loc := v.loc
	if loc == nil {
		loc = time.Local
	}
	return t.In(loc).Format("2006-01-02 15:04:05 MST")
}

// Render names the page template and its data.
func (v *view) Render(page string, data any) error {
	v.page, v.Data = page, data
	return nil
}

// pageError is an error shown as a page with its status.
type pageError struct {
	status int
	msg    string
}

func (e *pageError) Error() string { return e.msg }

func notFound(msg string) error { return &pageError{status: http.StatusNotFound, msg: msg} }

// page wraps a page handler: it makes the view, runs h, and renders the
// page h chose (or the error page).
func (c *Console) page(h func(http.ResponseWriter, *http.Request, *view) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := c.newView(r)
		if err := h(w, r, v); err != nil {
			c.renderError(w, r, v, err)
			return
		}
		if v.page == "" {
			return // h wrote its own answer
		}
		c.render(w, v, http.StatusOK)
	}
}

// form wraps a form's post: the form token is checked first.
func (c *Console) form(h func(http.ResponseWriter, *http.Request, *view) error) http.HandlerFunc {
	return c.page(func(w http.ResponseWriter, r *http.Request, v *view) error {
		if !checkFormToken(r) {
			return &pageError{status: http.StatusForbidden, msg: v.T("error.form_token")}
		}
		return h(w, r, v)
	})
}

func (c *Console) newView(r *http.Request) *view {
	return &view{L: c.cat.Localizer(i18n.Match(r)), Path: r.URL.RequestURI(), Token: formToken(r), MonitorPath: c.cfg.MonitorPath,
		loc: c.location(""), zone: c.location}
}

func (c *Console) render(w http.ResponseWriter, v *view, status int) {
	t, ok := c.pages.byName[v.page]
	if !ok {
		c.log.Error("console: no page template", zap.String("page", v.page))
		http.Error(w, "no page "+v.page, http.StatusInternalServerError)
		return
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, "layout.html", v); err != nil {
		c.log.Error("console: render", zap.String("page", v.page), zap.Error(err))
		http.Error(w, "render "+v.page+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	writeHTML(w, v, status, b.Bytes())
}

// writeHTML answers with a page, or a part of one, in v's language.
func writeHTML(w http.ResponseWriter, v *view, status int, html []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Language", v.L.Lang())
	h.Set("Vary", "Accept-Language, Cookie")
	w.WriteHeader(status)
	_, _ = w.Write(html)
}

// errorData is the error page's data.
type errorData struct {
	Status  int
	Message string
	Detail  string
}

// renderError shows err: a page error as it is, an API error by its code
// (translated) and message, anything else as an internal error.
func (c *Console) renderError(w http.ResponseWriter, r *http.Request, v *view, err error) {
	d := errorData{Status: http.StatusInternalServerError, Message: v.T("error.internal")}
	var pe *pageError
	switch ae, isAPI := asAPIError(err); {
	case errors.As(err, &pe):
		d.Status, d.Message = pe.status, pe.msg
	case isAPI:
		d.Status, d.Message, d.Detail = ae.Status, c.apiErrorText(v, ae), ae.Message
	default:
		c.log.Error("console: page failed", zap.String("path", r.URL.Path), zap.Error(err))
		d.Detail = fmt.Sprint(err)
	}
	v.Title = v.T("error.title")
	_ = v.Render("error", d)
	c.render(w, v, d.Status)
}

// apiErrorText is the translation of an API error's code.
func (c *Console) apiErrorText(v *view, e *apiError) string {
	key := "apierr." + e.Code
	if c.cat.Has(v.L.Tag, key) {
		return v.T(key)
	}
	return v.T("apierr.other", e.Code)
}
