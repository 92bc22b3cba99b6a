package api_test

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/ratelimit"
)

// suppressPath is the suppression list of the test's account, by appid.
const suppressPath = "/v1/accounts/" + appID + "/suppressions"

// addedMetrics records what the API counts as added to suppression lists.
type addedMetrics struct {
	mu sync.Mutex
	n  map[string]int // by "account/reason"
}

func (m *addedMetrics) SuppressionsAdded(account, reason string, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.n[account+"/"+reason] += n
}

func (m *addedMetrics) get(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n[key]
}

// suppressBundle is a server with the test's account (id and appid
// appID), alice's and bob's keys, its log observed and its metrics
// recorded.
type suppressBundle struct {
	*testBundle
	logs    *observer.ObservedLogs
	metrics *addedMetrics
}

func suppressSetup(t *testing.T, mutate ...func(*api.Config)) *suppressBundle {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	m := &addedMetrics{n: map[string]int{}}
	reg, err := account.NewRegistry(&account.Account{AppID: appID, Default: ratelimit.Limit{Rate: 10, Burst: 1}})
	require.NoError(t, err)
	b := setup(t, append([]func(*api.Config){func(c *api.Config) {
		ks := &api.KeySet{}
		require.NoError(t, ks.AddNamed("alice", aliceKey))
		require.NoError(t, ks.AddNamed("bob", bobKey))
		require.NoError(t, ks.AddNamed("test", testKey))
		c.Keys = ks
		c.Logger = zap.New(core)
		c.Accounts = reg
		c.Metrics = m
	}}, mutate...)...)
	return &suppressBundle{testBundle: b, logs: logs, metrics: m}
}

// errMessage is the message of an error answer.
func (a answer) errMessage() string {
	e, _ := a.body["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

// openid is the test's n-th openid.
func openid(n int) string { return fmt.Sprintf("oSUP%024d", n) }

// auditLines returns the fields of the audit log lines of action.
func (b *suppressBundle) auditLines(action string) []map[string]any {
	var out []map[string]any
	for _, e := range b.logs.FilterMessage("audit").All() {
		f := e.ContextMap()
		if f["action"] == action {
			out = append(out, f)
		}
	}
	return out
}

// entry reads one entry of the list through the store.
func (b *suppressBundle) entry(t *testing.T, o string) (campaigns.Suppression, bool) {
	t.Helper()
	es, on, err := b.store.Suppressions(t.Context(), appID, []string{o})
	require.NoError(t, err)
	return es[0], on[0]
}

// TestSuppressAddGetRemove: POST adds openids as manual entries with the
// note and the key's name (a duplicate counts once; a user on the list for
// a WeChat reason is updated to manual); GET reads one (code only when an
// errcode added it), 404 not_suppressed for a user not on it; DELETE
// removes any entry, 404 the second time; bad bodies are refused naming
// the field and store nothing; each change is an audit log line with its
// counts and no raw openid, and the additions are counted in the metrics.
func TestSuppressAddGetRemove(t *testing.T) {
	t.Parallel()
	b := suppressSetup(t)
	ctx := t.Context()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	_, err := b.store.Suppress(ctx, appID, false, campaigns.Suppression{OpenID: openid(9), Reason: campaigns.SuppressUnfollowed,
		Code: 43004, At: at, Source: "c0123456789ab:1"})
	require.NoError(t, err)

	a := b.do(t, "GET", suppressPath+"/"+openid(9), "", "", as(bobKey)...)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, map[string]any{"openid": openid(9), "reason": "unfollowed", "code": 43004.0, "at": "2026-12-01T09:00:00Z",
		"source": "c0123456789ab:1", "note": ""}, a.body)

	body := `{"openids":["` + openid(1) + `","` + openid(2) + `","` + openid(1) + `","` + openid(9) + `"],"note":"asked by phone, ticket 4411"}`
	a = b.do(t, "POST", suppressPath, "application/json", body, as(aliceKey)...)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, map[string]any{"added": 2.0, "updated": 1.0}, a.body, "a duplicate counts once; the unfollowed user is updated")
	require.Equal(t, 2, b.metrics.get(appID+"/manual"))

	a = b.json(t, "GET", suppressPath+"/"+openid(1), "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, "manual", a.body["reason"])
	require.Equal(t, "alice", a.body["source"], "the key's name")
	require.Equal(t, "asked by phone, ticket 4411", a.body["note"])
	require.NotContains(t, a.body, "code", "no errcode added it")
	e, on := b.entry(t, openid(9))
	require.True(t, on)
	require.Equal(t, campaigns.SuppressManual, e.Reason, "an operator's entry replaces WeChat's")

	a = b.json(t, "GET", suppressPath+"/"+openid(3), "")
	require.Equal(t, http.StatusNotFound, a.status, a.raw)
	require.Equal(t, api.CodeNotSuppressed, a.errCode())
	require.Equal(t, "openid", a.errField())
	a = b.json(t, "GET", suppressPath+"/not-an-openid", "", invalid, "not an openid")
	require.Equal(t, http.StatusBadRequest, a.status, a.raw)
	require.Equal(t, "openid", a.errField())
	a = b.json(t, "GET", "/v1/accounts/nope/suppressions/"+openid(1), "")
	require.Equal(t, http.StatusNotFound, a.status, a.raw)
	require.Equal(t, api.CodeNotFound, a.errCode())
	require.Equal(t, "account", a.errField())

	many := make([]string, api.SuppressAddMax+1)
	for i := range many {
		many[i] = `"` + openid(100+i) + `"`
	}
	for _, tc := range []struct {
		name, body, field, msg string
		mark                   string
	}{
		{"no openids", `{"note":"x"}`, "openids", "openids is required", invalid},
		{"empty openids", `{"openids":[]}`, "openids", "openids is required", invalid},
		{"a bad openid", `{"openids":["` + openid(4) + `","N/A"]}`, "openids[1]", `"N/A" is not an openid`, invalid},
		{"too many", `{"openids":[` + strings.Join(many, ",") + `]}`, "openids", "10001 openids, at most 10000", invalid},
		{"a long note", `{"openids":["` + openid(4) + `"],"note":"` + strings.Repeat("长", 201) + `"}`, "note", "201 characters, at most 200", invalid},
		{"a note of two lines", `{"openids":["` + openid(4) + `"],"note":"a\nb"}`, "note", "a control character", beyondSchema},
	} {
		a := b.json(t, "POST", suppressPath, tc.body, tc.mark, tc.name)
		require.Equal(t, http.StatusUnprocessableEntity, a.status, "%s: %s", tc.name, a.raw)
		require.Equal(t, api.CodeInvalidField, a.errCode(), tc.name)
		require.Equal(t, tc.field, a.errField(), tc.name)
		require.Contains(t, a.errMessage(), tc.msg, tc.name)
	}
	a = b.json(t, "POST", suppressPath, `{"openids":["`+openid(4)+`"],"reason":"blocked"}`, invalid, "an unknown field")
	require.Equal(t, http.StatusBadRequest, a.status, a.raw)
	require.Equal(t, api.CodeUnknownField, a.errCode())
	_, on = b.entry(t, openid(4))
	require.False(t, on, "a refused request stores nothing")
	a = b.json(t, "POST", "/v1/accounts/nope/suppressions", `{"openids":["`+openid(4)+`"]}`)
	require.Equal(t, http.StatusNotFound, a.status, a.raw)

	res := b.send(t, "DELETE", suppressPath+"/"+openid(9), "", "", as(bobKey)...)
	res.Body.Close()
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	_, on = b.entry(t, openid(9))
	require.False(t, on)
	a = b.do(t, "DELETE", suppressPath+"/"+openid(9), "", "", as(bobKey)...)
	require.Equal(t, http.StatusNotFound, a.status, a.raw)
	require.Equal(t, api.CodeNotSuppressed, a.errCode())
	a = b.json(t, "GET", suppressPath, "")
	require.EqualValues(t, 2, a.body["total"])

	adds := b.auditLines("suppress_add")
	require.NotEmpty(t, adds)
	require.Equal(t, "alice", adds[0]["key"])
	require.Equal(t, appID, adds[0]["account"])
	require.EqualValues(t, 200, adds[0]["status"])
	require.EqualValues(t, 2, adds[0]["added"])
	require.EqualValues(t, 1, adds[0]["updated"])
	removes := b.auditLines("suppress_remove")
	require.Len(t, removes, 2)
	require.EqualValues(t, 204, removes[0]["status"])
	require.EqualValues(t, 1, removes[0]["removed"])
	require.Equal(t, "oSUP…0009", removes[0]["openid"], "masked")
	require.EqualValues(t, 404, removes[1]["status"])
	require.Equal(t, api.CodeNotSuppressed, removes[1]["code"])
	require.EqualValues(t, 0, removes[1]["removed"])
	for _, e := range b.logs.All() {
		for _, v := range e.ContextMap() {
			s, _ := v.(string)
			require.NotContains(t, s, "oSUP000000", "no raw openid in the log: %v", e.ContextMap())
		}
	}
}

// TestSuppressList: the list is paged by its opaque cursor, each entry
// listed once over the pages with the list's size; bad parameters are
// refused naming them.
func TestSuppressList(t *testing.T) {
	t.Parallel()
	b := suppressSetup(t)
	a := b.json(t, "GET", suppressPath, "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, map[string]any{"entries": []any{}, "next_cursor": "", "total": 0.0}, a.body)

	// More than Redis keeps compactly (hash-max-listpack-entries: 128 by
	// default, often 512), so that it pages.
	const n = 1200
	var want []string
	var entries []campaigns.Suppression
	for i := range n {
		want = append(want, openid(i))
		entries = append(entries, campaigns.Suppression{OpenID: openid(i), Reason: campaigns.SuppressBlocked, Code: 48002, At: time.Now(), Source: "receipt"})
	}
	_, err := b.store.Suppress(t.Context(), appID, false, entries...)
	require.NoError(t, err)
	var got []string
	cursor, pages := "", 0
	for {
		q := "?limit=100"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		a := b.json(t, "GET", suppressPath+q, "")
		require.Equal(t, http.StatusOK, a.status, a.raw)
		require.EqualValues(t, n, a.body["total"])
		for _, e := range a.body["entries"].([]any) {
			m := e.(map[string]any)
			require.Equal(t, "blocked", m["reason"])
			require.EqualValues(t, 48002, m["code"])
			got = append(got, m["openid"].(string))
		}
		pages++
		require.Less(t, pages, 100)
		if cursor = a.body["next_cursor"].(string); cursor == "" {
			break
		}
	}
	require.Greater(t, pages, 1, "it paged")
	slices.Sort(got)
	require.Equal(t, want, slices.Compact(got))

	for _, tc := range []struct{ query, field, mark, why string }{
		{"?limit=0", "limit", invalid, "below the minimum"},
		{"?limit=1001", "limit", invalid, "above the maximum"},
		{"?cursor=abc", "cursor", invalid, ""},
		{"?offset=3", "offset", beyondSchema, "not a parameter of the endpoint"},
	} {
		a := b.json(t, "GET", suppressPath+tc.query, "", tc.mark, tc.why)
		require.Equal(t, http.StatusBadRequest, a.status, "%s: %s", tc.query, a.raw)
		require.Equal(t, tc.field, a.errField(), tc.query)
	}
}

// TestSuppressImport: a CSV body adds its valid lines as manual entries
// (header, notes, quoted commas, blank lines, CRLF and a BOM all read);
// each bad line is reported by number and skipped; a body with no valid
// line, or a bad header, is refused 422 naming the line with the report,
// and nothing already stored changes; a body that is not text/csv is 415;
// more than SuppressImportMax openids is 413 and stores nothing.
func TestSuppressImport(t *testing.T) {
	t.Parallel()
	b := suppressSetup(t)
	ctx := t.Context()
	_, err := b.store.Suppress(ctx, appID, false, campaigns.Suppression{OpenID: openid(5), Reason: campaigns.SuppressRefused, Code: 43101,
		At: time.Now(), Source: "c0123456789ab:1"})
	require.NoError(t, err)
	importPath := suppressPath + "/import"

	body := "\xEF\xBB\xBFopenid,note\r\n" + // 1: the header, after a BOM
		openid(1) + ",asked by phone\r\n" + // 2
		"\r\n" + // 3: blank
		openid(2) + "\n" + // 4: no note
		openid(3) + `,"complained, twice"` + "\n" + // 5: a quoted comma
		"N/A,x\n" + // 6: not an openid
		openid(1) + ",again\n" + // 7: a duplicate
		openid(4) + ",a,b\n" + // 8: too many fields
		openid(6) + ",\xff\xfe\n" + // 9: not UTF-8
		openid(7) + `,"open` + "\n" + // 10: a quote never closed
		openid(8) + "," + strings.Repeat("x", 201) + "\n" + // 11: a long note
		"  " + openid(5) + "  ,  was refused  \n" // 12: on the list already, spaces trimmed
	a := b.do(t, "PUT", importPath, "text/csv", body, as(bobKey)...)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.EqualValues(t, 3, a.body["added"], a.raw)
	require.EqualValues(t, 1, a.body["updated"], a.raw)
	require.EqualValues(t, 6, a.body["bad"], a.raw)
	bad := map[int]string{}
	for _, l := range a.body["bad_lines"].([]any) {
		m := l.(map[string]any)
		bad[int(m["line"].(float64))] = m["error"].(string)
	}
	require.Len(t, bad, 6, a.raw)
	require.Contains(t, bad[6], `"N/A" is not an openid`)
	require.Equal(t, "openid: duplicate of line 2", bad[7])
	require.Contains(t, bad[8], "3 fields: want openid, or openid,note")
	require.Contains(t, bad[9], "invalid UTF-8")
	require.Contains(t, bad[10], "not valid CSV")
	require.Contains(t, bad[11], "note: 201 characters, at most 200")
	for o, note := range map[string]string{openid(1): "asked by phone", openid(2): "", openid(3): "complained, twice", openid(5): "was refused"} {
		e, on := b.entry(t, o)
		require.True(t, on, o)
		require.Equal(t, campaigns.SuppressManual, e.Reason, o)
		require.Equal(t, "bob", e.Source, o)
		require.Equal(t, note, e.Note, o)
	}
	for _, o := range []string{openid(4), openid(6), openid(7), openid(8)} {
		_, on := b.entry(t, o)
		require.False(t, on, "bad line of %s skipped", o)
	}
	require.Equal(t, 3, b.metrics.get(appID+"/manual"))

	// No header.
	a = b.do(t, "PUT", importPath, "text/csv", openid(10)+"\n"+openid(11)+",vip\n", as(bobKey)...)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, map[string]any{"added": 2.0, "updated": 0.0, "bad": 0.0, "bad_lines": []any{}}, a.body)

	// Refused as a whole: nothing changes.
	before, err := b.store.CountSuppressions(ctx, appID)
	require.NoError(t, err)
	_, err = b.store.Suppress(ctx, appID, false, campaigns.Suppression{OpenID: openid(12), Reason: campaigns.SuppressBlocked, At: time.Now(), Source: "receipt"})
	require.NoError(t, err)
	before++
	for _, tc := range []struct{ name, body, field, msg string }{
		{"no valid line", "openid\n\nN/A\n" + openid(12) + ",a,b\n", "line 3", `no valid line: line 3: openid: "N/A" is not an openid`},
		{"a bad header", "openid,reason\n" + openid(12) + ",x\n", "line 1", `header: "openid,reason": the columns are openid and, optionally, note`},
		{"only a header", "openid,note\n\n", "", "the body has no openid"},
	} {
		a := b.do(t, "PUT", importPath, "text/csv", tc.body, as(bobKey)...)
		require.Equal(t, http.StatusUnprocessableEntity, a.status, "%s: %s", tc.name, a.raw)
		require.Equal(t, api.CodeInvalidField, a.errCode(), tc.name)
		require.Equal(t, tc.field, a.errField(), tc.name)
		require.Contains(t, a.errMessage(), tc.msg, tc.name)
		require.Contains(t, a.errMessage(), "nothing was stored", tc.name)
		require.Contains(t, a.body, "report", tc.name)
	}
	n, err := b.store.CountSuppressions(ctx, appID)
	require.NoError(t, err)
	require.Equal(t, before, n)
	e, _ := b.entry(t, openid(12))
	require.Equal(t, campaigns.SuppressBlocked, e.Reason, "the entry stored before is as it was")

	a = b.do(t, "PUT", importPath, "text/plain", openid(13)+"\n", as(bobKey, invalid, "not text/csv")...)
	require.Equal(t, http.StatusUnsupportedMediaType, a.status, a.raw)
	a = b.do(t, "PUT", importPath, "text/csv", "", as(bobKey, invalid, "no body")...)
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)

	var big strings.Builder
	for i := range api.SuppressImportMax + 1 {
		big.WriteString(openid(1000 + i))
		big.WriteByte('\n')
	}
	a = b.do(t, "PUT", importPath, "text/csv", big.String(), as(bobKey)...)
	require.Equal(t, http.StatusRequestEntityTooLarge, a.status, a.raw)
	require.Contains(t, a.raw, "more than 100000 openids")
	n, err = b.store.CountSuppressions(ctx, appID)
	require.NoError(t, err)
	require.Equal(t, before, n, "nothing was stored")

	imports := b.auditLines("suppress_import")
	require.Len(t, imports, 8)
	require.Equal(t, "bob", imports[0]["key"])
	require.EqualValues(t, 3, imports[0]["added"])
	require.EqualValues(t, 1, imports[0]["updated"])
	require.EqualValues(t, 6, imports[0]["bad"])
	require.EqualValues(t, 422, imports[2]["status"])
	require.Equal(t, api.CodeInvalidField, imports[2]["code"])
	require.EqualValues(t, 0, imports[2]["added"])
}

// TestSuppressImportBodyLimit: an import larger than the upload limit is
// 413 and stores nothing.
func TestSuppressImportBodyLimit(t *testing.T) {
	t.Parallel()
	b := suppressSetup(t, func(c *api.Config) { c.MaxUploadBytes = 100 })
	a := b.do(t, "PUT", suppressPath+"/import", "text/csv", openid(1)+"\n"+openid(2)+"\n"+openid(3)+"\n"+openid(4)+"\n", as(bobKey)...)
	require.Equal(t, http.StatusRequestEntityTooLarge, a.status, a.raw)
	require.Equal(t, api.CodeBodyTooLarge, a.errCode())
	n, err := b.store.CountSuppressions(t.Context(), appID)
	require.NoError(t, err)
	require.Zero(t, n)
}

// TestSuppressExport: the whole list, over several pages, as CSV with a
// header; the errcode is a number; text cells a spreadsheet would run as
// formulas get a leading quote.
func TestSuppressExport(t *testing.T) {
	t.Parallel()
	b := suppressSetup(t)
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	entries := []campaigns.Suppression{
		{OpenID: "-SUP000000000000000000000001", Reason: campaigns.SuppressManual, At: at, Source: "=cmd", Note: `=HYPERLINK("http://evil.example/","x")`},
		{OpenID: openid(2), Reason: campaigns.SuppressManual, At: at, Source: "alice", Note: "+1+cmd"},
		{OpenID: openid(3), Reason: campaigns.SuppressManual, At: at, Source: "@bob", Note: "-2+3"},
		{OpenID: openid(4), Reason: campaigns.SuppressManual, At: at, Source: "alice", Note: "\t=1+1"},
		{OpenID: openid(5), Reason: campaigns.SuppressInvalid, Code: 40003, At: at, Source: "c0123456789ab:2", Note: "a=b, c"},
	}
	for i := range 1500 {
		entries = append(entries, campaigns.Suppression{OpenID: openid(100 + i), Reason: campaigns.SuppressUnfollowed, Code: 43004, At: at, Source: "event"})
	}
	_, err := b.store.Suppress(t.Context(), appID, false, entries...)
	require.NoError(t, err)

	res := b.send(t, "GET", suppressPath+"/export", "", "")
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "text/csv; charset=utf-8", res.Header.Get("Content-Type"))
	require.Equal(t, `attachment; filename="`+appID+`-suppressions.csv"`, res.Header.Get("Content-Disposition"))
	rows, err := csv.NewReader(res.Body).ReadAll()
	require.NoError(t, err)
	require.Equal(t, []string{"openid", "reason", "code", "at", "source", "note"}, rows[0])
	byOpenID := map[string][]string{}
	for _, row := range rows[1:] {
		byOpenID[row[0]] = row
	}
	require.Len(t, byOpenID, len(entries), "every entry, over several pages")
	require.Len(t, rows, len(entries)+1, "each once")
	row := byOpenID["'-SUP000000000000000000000001"]
	require.NotNil(t, row, "an openid that begins with - is neutralised")
	require.Equal(t, "'=cmd", row[4])
	require.Equal(t, `'=HYPERLINK("http://evil.example/","x")`, row[5])
	require.Equal(t, "'+1+cmd", byOpenID[openid(2)][5])
	require.Equal(t, "'@bob", byOpenID[openid(3)][4])
	require.Equal(t, "'-2+3", byOpenID[openid(3)][5])
	require.Equal(t, "'\t=1+1", byOpenID[openid(4)][5])
	require.Equal(t, []string{openid(5), "invalid", "40003", "2026-12-01T09:00:00Z", "c0123456789ab:2", "a=b, c"}, byOpenID[openid(5)])
	require.Equal(t, "", byOpenID[openid(2)][2], "no errcode: an empty cell")
	for _, row := range rows[1:] {
		for i, cell := range row {
			if cell != "" && i != 2 {
				require.NotContains(t, "=+-@\t\r", cell[:1], "cell %q of %v", cell, row)
			}
		}
	}
	a := b.json(t, "GET", "/v1/accounts/nope/suppressions/export", "")
	require.Equal(t, http.StatusNotFound, a.status, a.raw)
}

// TestSuppressPathsBesideOpenID: the import and export paths share their
// shape with .../suppressions/{openid}: another method on them is 405
// with their own Allow header, not a request about a user named "export".
func TestSuppressPathsBesideOpenID(t *testing.T) {
	t.Parallel()
	b := suppressSetup(t)
	for _, tc := range []struct{ method, path, allow string }{
		{"POST", suppressPath + "/export", "GET"},
		{"DELETE", suppressPath + "/export", "GET"},
		{"GET", suppressPath + "/import", "PUT"},
		{"DELETE", suppressPath + "/import", "PUT"},
		{"PUT", suppressPath + "/" + openid(1), "GET, DELETE"},
		{"PATCH", suppressPath, "GET, POST"},
	} {
		a := b.json(t, tc.method, tc.path, "", invalid, "another method")
		require.Equal(t, http.StatusMethodNotAllowed, a.status, "%s %s: %s", tc.method, tc.path, a.raw)
		require.Equal(t, tc.allow, a.header.Get("Allow"), "%s %s", tc.method, tc.path)
	}
	require.Empty(t, b.auditLines("suppress_remove"), "refused before the handler")
}
