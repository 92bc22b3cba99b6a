package console_test

import (
	"bytes"
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"mime/multipart"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// postRoutes returns the console's POST routes as its Go code registers
// them (every "POST /console/..." pattern of the package's files), so a
// route added later is attacked too.
func postRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	var out []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(gotoken.NewFileSet(), f, nil, 0)
		require.NoError(t, err)
		ast.Inspect(af, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == gotoken.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && strings.HasPrefix(s, "POST /console/") {
					out = append(out, strings.TrimPrefix(s, "POST "))
				}
			}
			return true
		})
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// suppressedID is on the account's suppression list before the attack.
const suppressedID = "oSUP000000000000000000000001"

var wildcard = regexp.MustCompile(`\{([a-zA-Z_]+)(\.\.\.)?\}`)

// expand fills a route's wildcards: {id} with each of ids, {action} with
// each action a campaign can be asked for, {run} with 1, {account} with
// the account, {openid} with a suppressed user, {$} with nothing and any
// other with its own name.
func expand(route string, ids []string) []string {
	out := []string{strings.ReplaceAll(route, "{$}", "")}
	for {
		m := wildcard.FindStringSubmatchIndex(out[0])
		if m == nil {
			return out
		}
		name := out[0][m[2]:m[3]]
		var vals []string
		switch name {
		case "id":
			vals = ids
		case "action":
			vals = []string{"start", "pause", "resume", "cancel", "unschedule", "delete", "schedule", "retry", "test", "audience", "edit"}
		case "run":
			vals = []string{"1"}
		case "account":
			vals = []string{"shop"}
		case "openid":
			vals = []string{suppressedID}
		default:
			vals = []string{name}
		}
		var next []string
		for _, p := range out {
			m := wildcard.FindStringIndex(p)
			for _, v := range vals {
				next = append(next, p[:m[0]]+url.PathEscape(v)+p[m[1]:])
			}
		}
		out = next
	}
}

// TestCrossOriginPostsRefused: a page of another site, or of another port
// of the console's host (same-site: the SameSite=Strict session cookie goes
// along), that posts a form to any of the console's POST routes with the
// victim's session cookie, and even with the victim's valid form token, is
// refused with 403, and nothing changes: the API shows both campaigns (a
// draft and a running one) and the suppression list as they were, and
// there is no other campaign.
func TestCrossOriginPostsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	draft := b.newCampaign(t, "草稿")
	running := b.newCampaign(t, "进行中")
	status, out := b.apiJSON(t, "POST", "/v1/campaigns/"+running+"/start", nil)
	require.Equal(t, http.StatusAccepted, status, "%v", out)
	status, out = b.apiJSON(t, "POST", "/v1/accounts/shop/suppressions", map[string]any{"openids": []string{suppressedID}})
	require.Less(t, status, 300, "%v", out)
	snapshot := func() map[string]map[string]any {
		t.Helper()
		got := map[string]map[string]any{}
		for _, id := range []string{draft, running} {
			status, c := b.apiJSON(t, "GET", "/v1/campaigns/"+id, nil)
			require.Equal(t, http.StatusOK, status)
			got[id] = c
		}
		_, list := b.apiJSON(t, "GET", "/v1/campaigns", nil)
		got["list"] = map[string]any{"total": list["total"]}
		status, sup := b.apiJSON(t, "GET", "/v1/accounts/shop/suppressions", nil)
		require.Equal(t, http.StatusOK, status, "%v", sup)
		got["suppressions"] = sup
		return got
	}
	before := snapshot()
	require.Equal(t, "draft", before[draft]["state"])
	require.Equal(t, "running", before[running]["state"])

	routes := postRoutes(t)
	require.Contains(t, routes, "/console/campaigns/{id}/{action}")
	require.Contains(t, routes, "/console/lang")
	tok := token(t, b.get(t, "/console/campaigns/"+draft, "en"))
	u, err := url.Parse(b.url)
	require.NoError(t, err)
	otherPort := "http://" + u.Hostname() + ":1"
	attackers := []struct{ name, origin, site string }{
		{"cross-site", "http://evil.example", "cross-site"},
		{"same-site, another port", otherPort, "same-site"},
		{"cross-site, an old browser without Sec-Fetch-Site", "http://evil.example", ""},
	}
	form := url.Values{"csrf": {tok}, "lang": {"zh-CN"}, "openids": {"oEVIL000000000000000000000001"}, "back": {"/console/"}, "name": {"evil"}, "account": {"shop"},
		"kind": {"template"}, "template_id": {"TPL_ORDER_SHIPPED"}, "at": {"2030-01-01T00:00"}}
	posts := 0
	for _, route := range routes {
		for _, path := range expand(route, []string{draft, running}) {
			for _, a := range attackers {
				for _, enc := range []string{"urlencoded", "multipart"} {
					body, ctype := encodeForm(t, form, enc)
					req, err := http.NewRequest("POST", b.url+path, body)
					require.NoError(t, err)
					req.Header.Set("Content-Type", ctype)
					req.Header.Set("Accept", "text/html")
					req.Header.Set("Origin", a.origin)
					if a.site != "" {
						req.Header.Set("Sec-Fetch-Site", a.site)
						req.Header.Set("Sec-Fetch-Mode", "navigate")
					}
					p := b.do(t, req)
					require.Equal(t, http.StatusForbidden, p.status, "%s %s form from %s to %s: %.300s", a.name, enc, a.origin, path, p.body)
					require.Equal(t, path, p.url.Path, "no redirect: %s", path)
					posts++
				}
			}
		}
	}
	t.Logf("%d routes, %d cross-origin posts refused", len(routes), posts)
	require.Equal(t, before, snapshot(), "a refused post changed something")
	// The language switch did not set its cookie either.
	require.Contains(t, b.get(t, "/console/", "en").body, `<html lang="en">`)

	// The same form from the console's own page works: the token is good.
	ok := b.post(t, "/console/campaigns/"+running+"/pause", url.Values{"csrf": {tok}})
	require.Equal(t, http.StatusOK, ok.status, ok.body)
	_, c := b.apiJSON(t, "GET", "/v1/campaigns/"+running, nil)
	require.Equal(t, "paused", c["state"])
}

func encodeForm(t *testing.T, form url.Values, enc string) (*bytes.Buffer, string) {
	t.Helper()
	if enc == "urlencoded" {
		return bytes.NewBufferString(form.Encode()), "application/x-www-form-urlencoded"
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, vs := range form {
		for _, v := range vs {
			require.NoError(t, mw.WriteField(k, v))
		}
	}
	fw, err := mw.CreateFormFile("file", "audience.txt")
	require.NoError(t, err)
	_, err = fw.Write([]byte("oEVIL000000000000000000000001\n"))
	require.NoError(t, err)
	require.NoError(t, mw.Close())
	return &buf, mw.FormDataContentType()
}
