package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/api"
)

// TestQueryParameters: a /v1 endpoint refuses a query parameter it does not
// take and one given twice (none takes a list), naming it, and does
// nothing; tools mounted beside the API keep their own parameters.
func TestQueryParameters(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *api.Config) {
		c.Mount = map[string]http.Handler{"/tool": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"query":"` + r.URL.RawQuery + `"}`))
		})}
	})
	a := b.json(t, "POST", "/v1/campaigns", inlineCampaign)
	id := a.body["id"].(string)
	runs := "/v1/campaigns/" + id + "/runs/1"

	for _, tt := range []struct {
		method, path, field, msg string
	}{
		{"GET", "/v1/campaigns?limit=1&limit=2", "limit", "query parameter limit is given 2 times: give it once"},
		{"GET", "/v1/campaigns?state=draft&state=running", "state", "query parameter state is given 2 times"},
		{"GET", "/v1/campaigns?offset=0&offset=0", "offset", "given 2 times"},
		{"GET", "/v1/campaigns?colour=red&limit=5", "colour", `unknown query parameter "colour": GET /v1/campaigns takes only state, account, q, limit, offset`},
		{"GET", "/v1/campaigns?Limit=5", "Limit", `unknown query parameter "Limit"`},
		{"GET", "/v1/campaigns/" + id + "?verbose=1", "verbose", `unknown query parameter "verbose": GET /v1/campaigns/{id} takes no query parameter`},
		{"POST", "/v1/campaigns/" + id + "/start?now=1", "now", `POST /v1/campaigns/{id}/start takes no query parameter`},
		{"GET", runs + "/outcomes.csv?status=failed&status=sent", "status", "query parameter status is given 2 times"},
		{"GET", runs + "/outcomes.csv?code=43004", "code", "takes only status, errcode"},
		{"POST", runs + "/report-link?ttl=1h&ttl=2h", "ttl", "query parameter ttl is given 2 times"},
		{"GET", "/v1/campaigns?limit=%zz", "", "the query string does not parse"},
	} {
		a := b.json(t, tt.method, tt.path, "")
		require.Equal(t, http.StatusBadRequest, a.status, "%s %s: %s", tt.method, tt.path, a.raw)
		require.Equal(t, api.CodeInvalidField, a.errCode(), a.raw)
		require.Equal(t, tt.field, a.errField(), a.raw)
		require.Contains(t, a.body["error"].(map[string]any)["message"], tt.msg)
	}
	a = b.json(t, "GET", "/v1/campaigns/"+id, "")
	require.Equal(t, "draft", a.body["state"], "a refused start started nothing")

	a = b.json(t, "GET", "/v1/campaigns?state=draft&limit=5&offset=0", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	a = b.json(t, "GET", "/tool?x=1&x=2", "", notAPI, "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, "x=1&x=2", a.body["query"])
}
