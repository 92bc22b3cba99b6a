// Package console is the operator's console: server-rendered pages at
// /console/ in English and Chinese, for the people who run campaigns and
// do not use curl.
//
// The console changes nothing itself. Every form it serves posts to the
// console, which turns it into the API request it stands for (a JSON body
// to a /v1 endpoint) and runs that through the API's handler in the same
// process, with the browser's session cookie and its Origin and
// Sec-Fetch-Site headers (dispatch.go): the API's authentication, CSRF
// defence, limits, validation and audit trail are the console's. The
// console adds a form token per session (csrf.go) in front of that. Its
// reads go through the API too where the API has the endpoint, and read
// the store where it has none (live runs, a run's progress).
package console

import (
	"embed"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/i18n"
)

// Prefix is the console's path.
const Prefix = "/console/"

//go:embed static
var static embed.FS

// Config configures a Console. API and Store are required.
type Config struct {
	// API is the API's handler (api.Server), through which every change
	// and most reads go.
	API http.Handler
	// Store reads what the API has no endpoint for.
	Store *campaigns.Store
	// Accounts are the configured accounts, for their time zones.
	Accounts *account.Registry
	// MonitorPath is asynqmon's path, linked from every page ("" hides
	// the link).
	MonitorPath string
	// ProgressEvery is how often a live run's progress is sent to a page
	// (ProgressEveryDefault).
	ProgressEvery time.Duration
	// Now reads the time (time.Now).
	Now    func() time.Time
	Logger *zap.Logger
}

// ProgressEveryDefault is Config.ProgressEvery's default.
const ProgressEveryDefault = time.Second

// Console is the console's pages, an http.Handler for Prefix.
type Console struct {
	cfg   Config
	mux   *http.ServeMux
	pages *pages
	cat   *i18n.Catalogue
	log   *zap.Logger
	// live samples the live runs' progress for their rates (dashboard.go).
	live *rateSampler
}

// New returns the console.
func New(cfg Config) (*Console, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = ProgressEveryDefault
	}
	p, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, mux: http.NewServeMux(), pages: p, cat: i18n.Default(), log: cfg.Logger, live: newRateSampler()}
	c.routes()
	return c, nil
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) { c.mux.ServeHTTP(w, r) }

func (c *Console) routes() {
	c.mux.Handle("GET /console/static/", http.StripPrefix("/console/", staticFiles()))
	c.mux.HandleFunc("POST /console/lang", c.setLang)
	c.mux.HandleFunc("GET /console/{$}", c.page(c.dashboard))
	c.mux.HandleFunc("GET /console/campaigns", c.page(c.campaignList))
	c.mux.HandleFunc("GET /console/campaigns/{id}", c.page(c.campaignPage))
	c.mux.HandleFunc("GET /console/campaigns/{id}/confirm/{action}", c.page(c.confirmPage))
	c.mux.HandleFunc("POST /console/campaigns/{id}/{action}", c.form(c.campaignAction))
	c.mux.HandleFunc("GET /console/campaigns/{id}/runs/{run}/progress", c.runProgress)
	c.routesMore()
	c.mux.HandleFunc("/console/", c.page(func(w http.ResponseWriter, r *http.Request, v *view) error {
		return notFound(v.L.T("error.no_page"))
	}))
}

// staticFiles serves the console's scripts and styles, cached for a day:
// their names change with their content only across versions, and a day
// bounds how long a browser keeps an old one.
func staticFiles() http.Handler {
	fs := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private, max-age=86400")
		fs.ServeHTTP(w, r)
	})
}

// setLang keeps the language a browser chose in a cookie and sends it back
// where it was.
func (c *Console) setLang(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	tag, ok := i18n.Parse(r.PostForm.Get("lang"))
	if !ok {
		http.Error(w, "lang: en or zh-CN", http.StatusBadRequest)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: i18n.CookieName, Value: tag.String(), Path: "/", MaxAge: 365 * 24 * 3600,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, backTo(r.PostForm.Get("back")), http.StatusSeeOther)
}

// backTo returns back if it is a console path, else the dashboard.
func backTo(back string) string {
	if len(back) > len(Prefix) && back[:len(Prefix)] == Prefix && !containsCtl(back) {
		return back
	}
	return Prefix
}

func containsCtl(s string) bool {
	for _, c := range s {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return true
		}
	}
	return false
}
