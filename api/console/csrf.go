package console

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
)

// The API refuses a cross-origin state change before the console sees it
// (http.CrossOriginProtection reads Sec-Fetch-Site and Origin). Its forms
// carry a token besides, for browsers that send neither header: the
// digest of the browser's session cookie, which a page on another site
// cannot read (HttpOnly) and which changes with every session.

// formTokenField is the form field that carries the token.
const formTokenField = "csrf"

// sessionCookie is the API's session cookie (api.SessionCookie).
const sessionCookie = "wxmass_session"

// formToken returns r's form token, "" when r has no session cookie (a
// request with an API key, which a browser on another site cannot send).
func formToken(r *http.Request) string {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(ck.Value))
	m.Write([]byte("wxmass console form"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkFormToken reports whether r's form carries r's token.
func checkFormToken(r *http.Request) bool {
	want := formToken(r)
	if want == "" {
		return r.Header.Get("Authorization") != ""
	}
	got := r.FormValue(formTokenField)
	return hmac.Equal([]byte(got), []byte(want))
}
