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
