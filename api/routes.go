package api

import (
	"net/http"
	"slices"
	"strings"
)

// routeMux is the server's http.ServeMux, which remembers the patterns it
// was given so that the routes can be compared with the OpenAPI document.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func newRouteMux() *routeMux { return &routeMux{ServeMux: http.NewServeMux()} }

// Handle registers h for pattern, as http.ServeMux.Handle does.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, h)
}

// HandleFunc registers h for pattern, as http.ServeMux.HandleFunc does.
func (m *routeMux) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.HandleFunc(pattern, h)
}

// Routes returns the server's endpoints as "METHOD /path" with {name}
// wildcards, as the OpenAPI document (OpenAPI) names them, sorted. Patterns
// without a method (the answers to other methods and unknown paths, and
// Config.Mount's handlers) are not endpoints of the API and are left out.
func (s *Server) Routes() []string {
	var out []string
	for _, p := range s.mux.patterns {
		method, path, ok := strings.Cut(p, " ")
		if !ok || method == "" || !strings.HasPrefix(path, "/") {
			continue
		}
		out = append(out, method+" "+path)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Paths that differ only in their last segment, a literal in one and a
// wildcard in the other (".../suppressions/export" and
// ".../suppressions/{openid}"), share their other methods' answers:
// http.ServeMux cannot register a fallback for every method of the literal
// path beside a route of the wildcard's ("/x/export" and "GET /x/{id}"
// overlap, and neither is more specific). So the literal path gets no
// fallback of its own (besideWildcard), and the wildcard's routes and
// fallback answer a request that names the literal by its methods
// (besideLiterals).

// methodNotAllowed answers a method that path does not take: 405 with the
// Allow header.
func methodNotAllowed(w http.ResponseWriter, r *http.Request, path string, methods []string) *Error {
	w.Header().Set("Allow", strings.Join(methods, ", "))
	return apiError(http.StatusMethodNotAllowed, CodeMethodNotAllowed, "", "%s %s: use %s", r.Method, path, strings.Join(methods, " or "))
}

// lastSegment splits path at its last slash.
func lastSegment(path string) (dir, last string) {
	i := strings.LastIndexByte(path, '/')
	return path[:i], path[i+1:]
}

func isWildcard(seg string) bool { return strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") }

// besideWildcard reports whether path ends in a literal segment where
// another path of allow has a wildcard.
func besideWildcard(path string, allow map[string][]string) bool {
	dir, last := lastSegment(path)
	if isWildcard(last) {
		return false
	}
	for p := range allow {
		if d, l := lastSegment(p); d == dir && isWildcard(l) {
			return true
		}
	}
	return false
}

// besideLiterals returns h for the routes of path; when path ends in a
// wildcard, a request whose last segment is a literal path of allow beside
// it (read when the request comes: allow is complete by then) is answered
// 405 with that path's methods.
func besideLiterals(path string, allow map[string][]string, h handler) handler {
	dir, last := lastSegment(path)
	if !isWildcard(last) {
		return h
	}
	name := strings.TrimSuffix(strings.TrimPrefix(last, "{"), "}")
	return func(w http.ResponseWriter, r *http.Request) *Error {
		lit := dir + "/" + r.PathValue(name)
		if methods, ok := allow[lit]; ok {
			return methodNotAllowed(w, r, lit, methods)
		}
		return h(w, r)
	}
}
