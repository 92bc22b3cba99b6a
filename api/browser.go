package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/wxmass/wxmass/internal/httpserve"
)

// What keeps a browser that holds wxmass's credentials from being used
// against it by another site (issue 12: a cross-site form post cancelled a
// campaign with the Basic credentials the browser kept for /monitoring):
//
//   - Every request but GET, HEAD and OPTIONS goes through Go's
//     http.CrossOriginProtection (Sec-Fetch-Site, else Origin against Host):
//     a request from another origin, another port of the same host
//     included, gets 403 cross_origin. Tools that send neither header are
//     not browsers and pass.
//   - A state change behind the key takes no body or an application/json
//     one: the form types a page can post across sites without asking
//     (urlencoded, multipart, text/plain) get 415.
//   - Basic auth, which browsers send by themselves, only reads. A browser
//     writes with a session (session.go): a SameSite=Strict cookie.
//   - Every answer carries nosniff, X-Frame-Options DENY, Referrer-Policy
//     no-referrer and a Content-Security-Policy; pages get theirs from
//     pageCSP.

// cspCommon is the part of the Content-Security-Policy every page shares;
// pageCSP adds what each page needs.
const cspCommon = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"

// cspNotAPage is the policy of answers that are not pages (JSON, CSV,
// metrics): they load nothing and are framed nowhere.
const cspNotAPage = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// setSecurityHeaders sets the security headers of every answer of the
// server; a page replaces the Content-Security-Policy with its own
// (setPageHeaders).
func setSecurityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", cspNotAPage)
}

// setPageHeaders sets the headers of an HTML page whose policy is csp.
// Pages are not cached: they show live state, and the login page a
// session.
func setPageHeaders(h http.Header, csp string) {
	setSecurityHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("Cache-Control", "no-store")
}

var (
	inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
	inlineStyle  = regexp.MustCompile(`(?s)<style>(.*?)</style>`)
)

// pageCSP returns the Content-Security-Policy of the page page renders
// (with data, once, at start): cspCommon, and its inline <script> and
// <style> elements allowed by their SHA-256, nothing else inline. Those
// elements must hold no template action, so that every page sends what
// was hashed here (html/template drops JavaScript comments, so the source
// itself cannot be hashed); TestSecurityHeaders checks it.
func pageCSP(page *template.Template, data any) string {
	var b bytes.Buffer
	if err := page.Execute(&b, data); err != nil {
		panic("api: render " + page.Name() + " page: " + err.Error())
	}
	hashes := func(re *regexp.Regexp) string {
		var out []string
		for _, m := range re.FindAllSubmatch(b.Bytes(), -1) {
			sum := sha256.Sum256(m[1])
			out = append(out, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		}
		if len(out) == 0 {
			return "'none'"
		}
		return strings.Join(out, " ")
	}
	return cspCommon + "; script-src " + hashes(inlineScript) + "; style-src " + hashes(inlineStyle)
}

// newCrossOriginProtection returns the CSRF defence of the whole API,
// answering a refused request with the API's error shape.
func newCrossOriginProtection() *http.CrossOriginProtection {
	c := http.NewCrossOriginProtection()
	c.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpserve.Refuse(w, r)
		writeError(w, crossOriginError(r))
	}))
	return c
}

// crossOriginError names what gave a cross-origin request away.
func crossOriginError(r *http.Request) *Error {
	const how = "change state from wxmass's own pages (log in at /login), or without a browser (Authorization: Bearer <key>)"
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return apiError(http.StatusForbidden, CodeCrossOrigin, "Sec-Fetch-Site",
			"%s %s refused: a cross-origin request (Sec-Fetch-Site: %q); %s", r.Method, r.URL.Path, clip(site), how)
	}
	return apiError(http.StatusForbidden, CodeCrossOrigin, "Origin",
		"%s %s refused: a cross-origin request (Origin %q is not %q); %s", r.Method, r.URL.Path, clip(r.Header.Get("Origin")), clip(r.Host), how)
}

// clip keeps a request's header short in an answer.
func clip(s string) string {
	if len(s) <= 100 {
		return s
	}
	cut := 100
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// reading reports whether r only reads: the methods Basic auth may use.
func reading(r *http.Request) bool { return r.Method == http.MethodGet || r.Method == http.MethodHead }

// ownBodyType are the routes whose bodies are not JSON: they check their
// Content-Type themselves.
var ownBodyType = map[string]bool{"PUT /v1/campaigns/{id}/audience": true, "POST /v1/media": true,
	"PUT /v1/accounts/{account}/suppressions/import": true}

// checkBodyType refuses a state change whose body is not JSON: it takes no
// body (and no Content-Type, or application/json), or an application/json
// one. This keeps a body a page could post across sites without a
// preflight (a form: urlencoded, multipart, text/plain) from ever being
// read as a request.
func checkBodyType(r *http.Request) *Error {
	if reading(r) || r.Method == http.MethodOptions || ownBodyType[r.Pattern] || pageForms(r) {
		return nil
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if r.ContentLength == 0 {
			return nil
		}
		return apiError(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Type",
			"%s %s: a body needs Content-Type: application/json", r.Method, r.URL.Path)
	}
	if mt, _, err := mime.ParseMediaType(ct); err == nil && mt == "application/json" {
		return nil
	}
	return apiError(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Type",
		"%s %s takes no body or an application/json one, not Content-Type %q", r.Method, r.URL.Path, clip(ct))
}

// admit authenticates a request behind the API key and applies the
// browser rules. It answers a refused request itself and returns false.
// Credentials, strongest first: a Bearer key, a browser's session cookie
// (which wins over the Basic credentials the same browser may also send),
// then Basic, for reading only.
func (s *Server) admit(w http.ResponseWriter, r *http.Request) (Principal, bool) {
	p, ok := s.authenticate(r)
	if !ok || p.Via != ViaBearer {
		sc, e := s.session(r)
		if e != nil {
			writeError(w, e)
			return Principal{}, false
		}
		switch {
		case sc.found:
			p, ok = sc.p, true
		case sc.stale:
			clearSessionCookie(w, r)
		}
		if !ok {
			s.authFailed(w, r) // limits.go: counted, and the body is not read
			s.refuseUnauthenticated(w, r, sc.stale)
			return Principal{}, false
		}
	}
	if p.Via == ViaBasic && !reading(r) {
		httpserve.Refuse(w, r)
		w.Header().Add("WWW-Authenticate", `Bearer realm="wxmass"`)
		writeError(w, apiError(http.StatusUnauthorized, CodeUnauthorized, "Authorization",
			"Basic auth only reads (GET): to %s %s, log in at /login for a browser session, or send Authorization: Bearer <key>", r.Method, r.URL.Path))
		return Principal{}, false
	}
	if e := checkBodyType(r); e != nil {
		httpserve.Refuse(w, r)
		writeError(w, e)
		return Principal{}, false
	}
	return p, true
}

// refuseUnauthenticated answers a request without valid credentials: a
// person's browser opening a page is sent to the login page; others get
// 401 with the challenges (Basic lets tools read; a browser whose session
// ended is not asked for Basic credentials again).
func (s *Server) refuseUnauthenticated(w http.ResponseWriter, r *http.Request, stale bool) {
	if wantsPage(r) {
		http.Redirect(w, r, "/login?"+url.Values{"next": {r.URL.RequestURI()}}.Encode(), http.StatusSeeOther)
		return
	}
	msg := "send a valid API key as Authorization: Bearer <key>, or log in at /login in a browser"
	if stale {
		msg = "your browser session has ended: log in again at /login, or send a valid API key as Authorization: Bearer <key>"
	} else {
		w.Header().Add("WWW-Authenticate", `Basic realm="wxmass", charset="UTF-8"`)
	}
	w.Header().Add("WWW-Authenticate", `Bearer realm="wxmass"`)
	writeError(w, apiError(http.StatusUnauthorized, CodeUnauthorized, "Authorization", "%s", msg))
}

// wantsPage reports whether r is a browser opening one of the pages behind
// the key (the asynqmon UI, a report page) without credentials: it is
// better sent to the login page than asked for Basic credentials. JSON
// endpoints, and tools (which send Authorization, or no Accept: text/html),
// get the 401.
func wantsPage(r *http.Request) bool {
	if !reading(r) || r.Header.Get("Authorization") != "" || !strings.Contains(r.Header.Get("Accept"), "text/html") {
		return false
	}
	return !strings.HasPrefix(r.URL.Path, "/v1/") || strings.HasSuffix(r.URL.Path, "/report.html")
}
