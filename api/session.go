package api

import (
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"html/template"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/i18n"
)

// Browser sessions: a person logs in with an API key once (the login page,
// or POST /v1/session) and the browser then proves it with a cookie, which
// SameSite=Strict keeps off requests other sites start. Sessions live in
// Redis (campaigns.Store), so every serve process of a fleet accepts them,
// and only while their key is still accepted.

// Defaults and names of browser sessions.
const (
	// SessionTTLDefault is how long a browser session lasts
	// (Config.SessionTTL).
	SessionTTLDefault = 12 * time.Hour
	// SessionCookie is the name of the session cookie.
	SessionCookie = "wxmass_session"
	// LoginNextDefault is where the login page sends a browser that logged
	// in, unless it came from another page behind the key.
	LoginNextDefault = "/console/"
	// maxFormBytes bounds the login form.
	maxFormBytes = 64 << 10
)

//go:embed assets/login.html
var loginHTML string

var (
	loginPage = template.Must(template.New("login").Parse(loginHTML))
	loginCSP  = pageCSP(loginPage, loginData{})
)

// sessionRoutes registers the session endpoints and the login page. They
// are not behind the key: they are where a browser shows it.
func (s *Server) sessionRoutes() {
	s.mux.HandleFunc("POST /v1/session", s.plain(s.createSession))
	s.mux.HandleFunc("DELETE /v1/session", s.plain(s.deleteSession))
	s.mux.HandleFunc("/v1/session", s.plain(func(w http.ResponseWriter, r *http.Request) *Error {
		w.Header().Set("Allow", "POST, DELETE")
		return apiError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "", "%s /v1/session: use POST (log in) or DELETE (log out)", r.Method)
	}))
	s.mux.HandleFunc("GET /login", s.loginForm)
	s.mux.HandleFunc("POST /login", s.limited(s.login))
	s.mux.HandleFunc("POST /logout", s.limited(s.logout))
}

// limited serves h after the per-address limits (limits.go), without the
// key check.
func (s *Server) limited(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.admitAddress(w, r) {
			h(w, r)
		}
	}
}

// plain serves h without the key check, after the per-address limits.
func (s *Server) plain(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.admitAddress(w, r) {
			return
		}
		if e := h(w, r); e != nil {
			if e.status >= 500 {
				s.log.Error("api request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.String("error", e.Message))
			}
			writeError(w, e)
		}
	}
}

// sessionAnswer is the answer to POST /v1/session.
type sessionAnswer struct {
	// Key is the name of the key the session proves.
	Key       string    `json:"key"`
	ExpiresAt time.Time `json:"expires_at"`
}

// createSession logs a browser in: the key comes in the JSON body
// ({"key": "..."}) or, with no body, as a Bearer key.
func (s *Server) createSession(w http.ResponseWriter, r *http.Request) *Error {
	if e := checkBodyType(r); e != nil {
		return e
	}
	var key, field string
	if r.ContentLength != 0 {
		var body struct {
			Key string `json:"key"`
		}
		if e := decodeJSON(w, r, s.cfg.MaxBodyBytes, &body); e != nil {
			return e
		}
		if body.Key == "" {
			return apiError(http.StatusBadRequest, CodeInvalidField, "key", "send the API key to log in with as {\"key\": \"...\"}")
		}
		key, field = body.Key, "key"
	} else {
		scheme, k, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		if !strings.EqualFold(scheme, "Bearer") {
			return apiError(http.StatusUnauthorized, CodeUnauthorized, "Authorization",
				"send the API key to log in with as {\"key\": \"...\"} or as Authorization: Bearer <key>")
		}
		key, field = strings.TrimSpace(k), "Authorization"
	}
	name, ok := s.cfg.Keys.Lookup(key)
	if !ok {
		s.spendAuthFailure(r)
		return apiError(http.StatusUnauthorized, CodeUnauthorized, field, "that is not an API key of this server")
	}
	exp, e := s.startSession(w, r, key, name)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusCreated, sessionAnswer{Key: name, ExpiresAt: exp})
	return nil
}

// deleteSession logs a browser out: its session ends on every process and
// its cookie is cleared. Without a session it just clears the cookie.
func (s *Server) deleteSession(w http.ResponseWriter, r *http.Request) *Error {
	if e := checkBodyType(r); e != nil {
		return e
	}
	if e := s.endSession(w, r); e != nil {
		return e
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// startSession makes a session for the key named name and sets its
// cookie; it returns when the session expires.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, key, name string) (time.Time, *Error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return time.Time{}, apiError(http.StatusInternalServerError, CodeInternal, "", "make a session token: %s", err.Error())
	}
	token := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.cfg.Now().UTC().Truncate(time.Second)
	digest := sha256.Sum256([]byte(key))
	sess := campaigns.Session{KeyName: name, KeyDigest: hex.EncodeToString(digest[:]), Created: now, Expires: now.Add(s.cfg.SessionTTL)}
	if err := s.cfg.Store.CreateSession(r.Context(), token, sess); err != nil {
		return time.Time{}, storeError(err)
	}
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: token, Path: "/",
		MaxAge:   int(s.cfg.SessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: overTLS(r),
	})
	s.log.Info("session started", zap.String("key", name), zap.Time("expires", sess.Expires))
	return sess.Expires, nil
}

// endSession deletes r's session, if any, and clears its cookie.
func (s *Server) endSession(w http.ResponseWriter, r *http.Request) *Error {
	c, err := r.Cookie(SessionCookie)
	if err == nil && validToken(c.Value) {
		if err := s.cfg.Store.DeleteSession(r.Context(), c.Value); err != nil {
			return storeError(err)
		}
		s.log.Info("session ended")
	}
	clearSessionCookie(w, r)
	return nil
}

// sessionCheck is what a request's session cookie proves.
type sessionCheck struct {
	// found is set for a valid session, proving p; sess is its record.
	found bool
	p     Principal
	sess  campaigns.Session
	// stale is set when the request carried a session cookie that no
	// longer proves anything (expired, logged out, or its key no longer
	// accepted), so that it can be cleared.
	stale bool
}

// session checks r's session cookie.
func (s *Server) session(r *http.Request) (sessionCheck, *Error) {
	c, err := r.Cookie(SessionCookie)
	if err != nil || c.Value == "" {
		return sessionCheck{}, nil
	}
	if !validToken(c.Value) {
		return sessionCheck{stale: true}, nil
	}
	ctx := r.Context()
	sess, err := s.cfg.Store.Session(ctx, c.Value)
	if errors.Is(err, campaigns.ErrSessionNotFound) {
		return sessionCheck{stale: true}, nil
	}
	if err != nil {
		s.log.Error("read session", zap.Error(err))
		return sessionCheck{}, apiError(http.StatusServiceUnavailable, CodeUnavailable, "", "sessions cannot be checked now: redis does not answer")
	}
	d, err := hex.DecodeString(sess.KeyDigest)
	name, ok := "", false
	if err == nil && len(d) == sha256.Size {
		name, ok = s.cfg.Keys.lookupDigest([sha256.Size]byte(d))
	}
	if !ok || !s.cfg.Now().Before(sess.Expires) {
		// Its key was removed, or Redis has not dropped it yet.
		if err := s.cfg.Store.DeleteSession(ctx, c.Value); err != nil {
			s.log.Warn("delete ended session", zap.Error(err))
		}
		return sessionCheck{stale: true}, nil
	}
	return sessionCheck{found: true, p: Principal{Key: name, Via: ViaSession}, sess: sess}, nil
}

// validToken reports whether t has the form of a session token (32 bytes,
// base64url without padding), so that junk never reaches Redis.
func validToken(t string) bool {
	if len(t) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(t)
	return err == nil && len(b) == 32
}

// overTLS reports whether the browser reached the server over TLS: the
// connection, or a TLS-terminating proxy that says so. (A forged header can
// only make the cookie stricter.)
func overTLS(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: overTLS(r)})
}

// loginData fills assets/login.html, in the language of L (English when
// nil: the page's CSP hashes are taken from a rendering with zero data,
// and its inline style is the same in every language).
type loginData struct {
	L    *i18n.Localizer
	Next string
	// Error is the message key of the error to show (login.yaml).
	Error string
	TTL   string
	// Name and Expires are the key and end of the browser's session, when
	// it has one.
	Name    string
	Expires string
}

// T translates key (internal/i18n, login.yaml) into d's language.
func (d loginData) T(key string, args ...any) string {
	if d.L == nil {
		return i18n.Default().Localizer(i18n.English).T(key, args...)
	}
	return d.L.T(key, args...)
}

// Lang is the page's language, for <html lang>.
func (d loginData) Lang() string {
	if d.L == nil {
		return i18n.English.String()
	}
	return d.L.Lang()
}

// loginLocalizer is the login page's language for r: the console's
// choice (its cookie) or Accept-Language, else English.
func loginLocalizer(r *http.Request) *i18n.Localizer {
	return i18n.Default().Localizer(i18n.Match(r))
}

// loginForm is the login page; a browser with a session sees whose it is
// and a logout button.
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	d := loginData{L: loginLocalizer(r), Next: safeNext(r.URL.Query().Get("next"))}
	sc, e := s.session(r)
	if e != nil {
		writeError(w, e)
		return
	}
	if sc.stale {
		clearSessionCookie(w, r)
	}
	if sc.found {
		d.Name, d.Expires = sc.p.Key, sc.sess.Expires.Format(time.RFC3339)
	}
	s.renderLogin(w, http.StatusOK, d)
}

// login is the login form's post: a right key sets the session cookie and
// sends the browser on (303) to next; a wrong one shows the form again
// with 401.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/x-www-form-urlencoded" {
		writeError(w, apiError(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Type",
			"POST /login takes the login form (application/x-www-form-urlencoded), not %q; scripts use POST /v1/session", clip(r.Header.Get("Content-Type"))))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		writeError(w, apiError(http.StatusBadRequest, CodeInvalidField, "", "the login form cannot be read: %s", err.Error()))
		return
	}
	d := loginData{L: loginLocalizer(r), Next: safeNext(r.PostForm.Get("next"))}
	key := strings.TrimSpace(r.PostForm.Get("key"))
	name, ok := s.cfg.Keys.Lookup(key)
	if !ok {
		if key != "" {
			s.spendAuthFailure(r)
		}
		d.Error = "login.error.bad_key"
		if key == "" {
			d.Error = "login.error.no_key"
		}
		s.renderLogin(w, http.StatusUnauthorized, d)
		return
	}
	if _, e := s.startSession(w, r, key, name); e != nil {
		writeError(w, e)
		return
	}
	http.Redirect(w, r, d.Next, http.StatusSeeOther)
}

// logout is the logout button's post: the session ends and the browser
// goes back to the login page.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if e := s.endSession(w, r); e != nil {
		writeError(w, e)
		return
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (s *Server) renderLogin(w http.ResponseWriter, status int, d loginData) {
	d.TTL = s.cfg.SessionTTL.String()
	setPageHeaders(w.Header(), loginCSP)
	w.Header().Set("Content-Language", d.Lang())
	w.Header().Add("Vary", "Accept-Language, Cookie")
	w.WriteHeader(status)
	if err := loginPage.Execute(w, d); err != nil {
		s.log.Warn("render login page", zap.Error(err))
	}
}

// safeNext returns next if it is a path on this server ("/..." but not
// "//host" or "/\host", which browsers read as another host), else
// LoginNextDefault: the login page sends browsers nowhere else.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsRune(next, '\\') {
		return LoginNextDefault
	}
	for _, c := range next {
		if c < 0x20 || c == 0x7f {
			// Browsers drop tabs and newlines: "/\t/evil" would be "//evil".
			return LoginNextDefault
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return LoginNextDefault
	}
	return next
}
