package api

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// queryParams are the query parameters of the endpoints that take any, by
// route pattern. Every other /v1 endpoint takes none. No endpoint takes a
// list: a parameter given twice is refused rather than cut to its first
// value.
var queryParams = map[string][]string{
	"GET /v1/campaigns": {"state", "account", "q", "limit", "offset"},
	"GET /v1/media":     {"limit", "offset"},
	"POST /v1/campaigns/{id}/runs/{run}/report-link": {"ttl"},
	"GET /v1/campaigns/{id}/runs/{run}/outcomes.csv": {"status", "errcode"},
	"GET /v1/campaigns/{id}/events":                  {"limit", "before"},
	"GET /v1/accounts/{account}/events":              {"limit", "before"},
	"GET /v1/accounts/{account}/suppressions":        {"cursor", "limit"},
}

// checkQuery refuses, for the /v1 endpoint of route pattern, a query
// string that does not parse, a parameter the endpoint does not take and a
// parameter given more than once: 400 invalid_field naming the parameter.
// Other patterns (the operators' tools mounted beside the API, which have
// their own parameters) are not checked.
func checkQuery(pattern string, r *http.Request) *Error {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok || !strings.HasPrefix(path, "/v1/") || r.URL.RawQuery == "" {
		return nil
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return apiError(http.StatusBadRequest, CodeInvalidField, "", "the query string does not parse: %s", err.Error())
	}
	allowed := queryParams[pattern]
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !slices.Contains(allowed, name) {
			takes := "takes no query parameter"
			if len(allowed) > 0 {
				takes = "takes only " + strings.Join(allowed, ", ")
			}
			return apiError(http.StatusBadRequest, CodeInvalidField, name, "unknown query parameter %q: %s %s %s", name, method, path, takes)
		}
	}
	for _, name := range names {
		if n := len(q[name]); n > 1 {
			return apiError(http.StatusBadRequest, CodeInvalidField, name, "query parameter %s is given %s times: give it once", name, strconv.Itoa(n))
		}
	}
	return nil
}
