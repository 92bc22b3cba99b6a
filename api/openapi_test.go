package api_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/api"
)

// notYetRouted are operations the document describes before the code that
// serves them has landed: each must be unrouted, and leaves this list the
// day it is routed.
var notYetRouted = []string{}

// notYetCoded are error codes the document lists before api/errors.go has
// their constants.
var notYetCoded = []string{}

// TestOpenAPIDocument: the document loads as OpenAPI 3.1 with every
// reference resolved and every example matching its schema; it is served
// without a key; it describes every route of the server and nothing else,
// and its error codes are the API's.
func TestOpenAPIDocument(t *testing.T) {
	t.Parallel()
	c, err := loadContract()
	require.NoError(t, err)
	require.Equal(t, "3.1.0", c.doc.OpenAPI)

	b := setup(t)
	res := b.send(t, "GET", "/v1/openapi.json", "", "", "Authorization", "")
	defer res.Body.Close()
	served, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "application/json; charset=utf-8", res.Header.Get("Content-Type"))
	require.Equal(t, api.OpenAPI(), served, "the document the tests check against is the one served")
	a := b.json(t, "POST", "/v1/openapi.json", "", invalid, "another method")
	require.Equal(t, http.StatusMethodNotAllowed, a.status, a.raw)
	require.Equal(t, "GET", a.header.Get("Allow"))

	var described []string
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			described = append(described, method+" "+path)
		}
	}
	slices.Sort(described)
	routed := b.srv.Routes()
	for _, op := range notYetRouted {
		require.Contains(t, described, op)
		require.NotContains(t, routed, op, "%s is routed now: take it off notYetRouted", op)
		routed = append(routed, op)
	}
	slices.Sort(routed)
	require.Equal(t, routed, described, "the routes of api.Server and the operations of api/openapi.yaml")

	var enum []string
	for _, v := range c.doc.Components.Schemas["ErrorCode"].Value.Enum {
		enum = append(enum, v.(string))
	}
	slices.Sort(enum)
	codes := append(errorCodes(t), notYetCoded...)
	slices.Sort(codes)
	require.Equal(t, codes, enum, "the Code constants of api/errors.go and the ErrorCode enum")
}

// errorCodes reads the values of the Code constants of api/errors.go.
func errorCodes(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	require.NoError(t, err)
	var codes []string
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i >= len(vs.Values) || !strings.HasPrefix(name.Name, "Code") {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					v, err := strconv.Unquote(lit.Value)
					require.NoError(t, err)
					codes = append(codes, v)
				}
			}
		}
	}
	require.NotEmpty(t, codes)
	return codes
}

// TestOpenAPIExamples: the document's example campaigns and message are
// accepted by the server as they are (but for the account, which names
// this test's).
func TestOpenAPIExamples(t *testing.T) {
	t.Parallel()
	c, err := loadContract()
	require.NoError(t, err)
	b := setup(t)
	for _, ex := range []struct {
		path   string
		status int
		kinds  []string
	}{
		{"/v1/campaigns", http.StatusCreated, []string{"template", "custom", "subscribe"}},
		{"/v1/messages", http.StatusAccepted, nil},
	} {
		op := c.doc.Paths.Value(ex.path).Post
		examples := op.RequestBody.Value.Content.Get("application/json").Examples
		require.NotEmpty(t, examples, ex.path)
		var kinds []string
		for name, e := range examples {
			v := e.Value.Value.(map[string]any)
			kinds = append(kinds, v["kind"].(string))
			v["account"] = appID
			body, err := json.Marshal(v)
			require.NoError(t, err)
			a := b.json(t, "POST", ex.path, string(body))
			require.Equal(t, ex.status, a.status, "example %s of %s: %s", name, ex.path, a.raw)
		}
		for _, k := range ex.kinds {
			require.Contains(t, kinds, k, "%s has an example of each kind", ex.path)
		}
	}
}

// recorder collects the mismatches the checks report, for the tests of the
// checks themselves.
type recorder struct {
	mu   sync.Mutex
	errs []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func (r *recorder) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.errs, "\n")
}

// sendChecked sends a request through client, checked against c (nil: the
// package's contract), and returns what the checks reported.
func sendChecked(t *testing.T, c *contract, method, url, body string, header ...string) string {
	t.Helper()
	rec := &recorder{}
	ctx, header := withCheck(t.Context(), &check{r: rec, c: c}, header)
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+testKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := client.Do(req)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	return rec.all()
}

// TestContractCatchesMismatches: the checks that every test's traffic goes
// through fail on a server that answers what the document does not say, on
// a request outside the contract that is not marked so (and on a mark that
// is stale), and on a document with one schema changed.
func TestContractCatchesMismatches(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := b.json(t, "POST", "/v1/campaigns", inlineCampaign)
	require.Equal(t, http.StatusCreated, created.status, created.raw)
	id := created.body["id"].(string)

	// A server that answers GET /v1/campaigns/{id} as told.
	fake := func(t *testing.T, status int, contentType, body string, header ...string) string {
		t.Helper()
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i+1 < len(header); i += 2 {
				w.Header().Set(header[i], header[i+1])
			}
			w.Header().Set("Content-Type", contentType)
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
		}))
		t.Cleanup(hs.Close)
		return sendChecked(t, nil, "GET", hs.URL+"/v1/campaigns/"+id, "")
	}
	const notFound = `{"error":{"code":"not_found","message":"no such campaign","field":"id"}}`
	for _, tc := range []struct {
		name        string
		status      int
		contentType string
		body        string
		header      []string
		want        string // in the report; "" for none
	}{
		{"the real answer", 200, "application/json", created.raw, nil, ""},
		{"a documented error", 404, "application/json", notFound, nil, ""},
		{"an undocumented field", 200, "application/json", strings.Replace(created.raw, `"latest_run":0`, `"latest_run":0,"colour":"red"`, 1), nil, "/colour"},
		{"a field of the wrong type", 200, "application/json", strings.Replace(created.raw, `"latest_run":0`, `"latest_run":"0"`, 1), nil, "/latest_run"},
		{"a required field missing", 200, "application/json", strings.Replace(created.raw, `,"latest_run":0`, ``, 1), nil, "latest_run"},
		{"an undocumented status", 418, "application/json", notFound, nil, "status is not supported"},
		{"an undocumented content type", 200, "text/plain", "ok", nil, `content type "text/plain"`},
		{"two JSON values", 200, "application/json", created.raw + created.raw, nil, "not one JSON value"},
		{"the error code of another status", 404, "application/json", strings.Replace(notFound, "not_found", "invalid_state", 1), nil, "/error/code"},
		{"an unknown error code", 404, "application/json", strings.Replace(notFound, "not_found", "gone", 1), nil, "/error/code"},
		{"an error without its message", 404, "application/json", `{"error":{"code":"not_found"}}`, nil, "message"},
		{"a 401 without its challenge", 401, "application/json", `{"error":{"code":"unauthorized","message":"no key"}}`, nil, "WWW-Authenticate"},
		{"a 401 with its challenge", 401, "application/json", `{"error":{"code":"unauthorized","message":"no key"}}`, []string{"WWW-Authenticate", "Bearer"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fake(t, tc.status, tc.contentType, tc.body, tc.header...)
			if tc.want == "" {
				require.Empty(t, got)
				return
			}
			require.Contains(t, got, "breaks the contract")
			require.Contains(t, got, tc.want)
		})
	}

	t.Run("requests", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, path, body string
			header                   []string
			want                     string
		}{
			{"in the contract", "GET", "/v1/campaigns?limit=10", "", nil, ""},
			{"an unknown field", "POST", "/v1/campaigns", strings.Replace(inlineCampaign, `"kind"`, `"colour":"red","kind"`, 1), nil, "/colour"},
			{"an unknown field, marked", "POST", "/v1/campaigns", strings.Replace(inlineCampaign, `"kind"`, `"colour":"red","kind"`, 1), []string{invalid, "an unknown field"}, ""},
			{"a query parameter out of range", "GET", "/v1/campaigns?limit=500", "", nil, `parameter "limit"`},
			{"a header too long", "POST", "/v1/campaigns", inlineCampaign, []string{"Idempotency-Key", strings.Repeat("k", 256)}, `"Idempotency-Key"`},
			{"an undescribed method", "PATCH", "/v1/campaigns/" + id, "", nil, "method not allowed"},
			{"a stale mark", "GET", "/v1/campaigns", "", []string{invalid, "no reason"}, "but the contract takes it"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := sendChecked(t, nil, tc.method, b.url+tc.path, tc.body, tc.header...)
				if tc.want == "" {
					require.Empty(t, got)
					return
				}
				require.Contains(t, got, tc.want)
			})
		}
	})

	t.Run("a document with one schema changed", func(t *testing.T) {
		var doc map[string]any
		require.NoError(t, json.Unmarshal(api.OpenAPI(), &doc))
		stored := doc["components"].(map[string]any)["schemas"].(map[string]any)["StoredFields"].(map[string]any)
		stored["properties"].(map[string]any)["latest_run"] = map[string]any{"type": "string"}
		raw, err := json.Marshal(doc)
		require.NoError(t, err)
		changed, err := newContract(raw)
		require.NoError(t, err)

		require.Empty(t, sendChecked(t, nil, "GET", b.url+"/v1/campaigns/"+id, ""), "the served document")
		got := sendChecked(t, changed, "GET", b.url+"/v1/campaigns/"+id, "")
		require.Contains(t, got, "breaks the contract")
		require.Contains(t, got, "/latest_run")
	})
}

// TestEveryRequestIsChecked: no test of the package sends a request but
// through client, whose checks need the request's test.
func TestEveryRequestIsChecked(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*_test.go")
	require.NoError(t, err)
	banned := map[string]bool{"DefaultClient": true, "Get": true, "Post": true, "PostForm": true, "Head": true}
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if pkg, ok := sel.X.(*ast.Ident); ok && pkg.Name == "http" && banned[sel.Sel.Name] {
					t.Errorf("%s: http.%s sends a request unchecked: use b.send, b.json, b.do or client", name, sel.Sel.Name)
				}
			}
			return true
		})
	}
}
