package api

import (
	"mime"
	"net/http"
	"strings"
)

// PagesPrefix is where MountPages' handlers live: the operator's console.
const PagesPrefix = "/console/"

// MountPages serves h at pattern (under PagesPrefix) behind the same
// credentials as the API (a browser session, or a key) and its CSRF
// defence, and lets its state changes post HTML forms
// (application/x-www-form-urlencoded and multipart/form-data), which the
// API itself refuses: h is a set of pages whose forms change state only
// through the API (console.Console), and it checks a form token of its own
// besides. Call it before serving.
func (s *Server) MountPages(pattern string, h http.Handler) {
	_, path, ok := strings.Cut(pattern, " ")
	if !ok {
		path = pattern
	}
	if !strings.HasPrefix(path, PagesPrefix) && path+"/" != PagesPrefix {
		panic("api: MountPages outside " + PagesPrefix + ": " + pattern)
	}
	s.handle(pattern, func(w http.ResponseWriter, r *http.Request) *Error {
		h.ServeHTTP(w, r)
		return nil
	})
}

// pageForms reports whether r posts an HTML form to a page of MountPages.
func pageForms(r *http.Request) bool {
	if !strings.HasPrefix(r.URL.Path, PagesPrefix) {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && (mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data")
}
