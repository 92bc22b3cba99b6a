package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// accountAuditSetup is the mass operations' bundle (a WeChat client and
// the accounts appID and ghostAppID) with the account of appID named
// "shop", alice's and bob's keys, and the API's log observed.
func accountAuditSetup(t *testing.T) (*massOpsBundle, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	b := setupMassOps(t, wechattest.MassConfig{}, func(c *api.Config) {
		ks := &api.KeySet{}
		require.NoError(t, ks.AddNamed("alice", aliceKey))
		require.NoError(t, ks.AddNamed("bob", bobKey))
		c.Keys = ks
		c.Logger = zap.New(core)
		var accts []*account.Account
		for _, a := range c.Accounts.All() {
			named := *a
			if named.AppID == appID {
				named.ID = "shop"
			}
			accts = append(accts, &named)
		}
		require.NoError(t, c.Accounts.Replace(accts...))
	})
	return b, logs
}

// accountEvents reads the whole audit trail of account (by id or appid)
// through the API, page by page, newest first.
func (b *testBundle) accountEvents(t *testing.T, account string, limit int) []map[string]any {
	t.Helper()
	var out []map[string]any
	before := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100)
		q := fmt.Sprintf("?limit=%d", limit)
		if before != "" {
			q += "&before=" + before
		}
		a := b.do(t, "GET", "/v1/accounts/"+account+"/events"+q, "", "", as(bobKey)...)
		require.Equal(t, http.StatusOK, a.status, a.raw)
		for _, o := range []string{openid(1), openid(2), openid(3)} {
			require.NotContains(t, a.raw, o, "no raw openid in the trail")
		}
		evs := a.body["events"].([]any)
		require.LessOrEqual(t, len(evs), limit)
		for _, e := range evs {
			out = append(out, e.(map[string]any))
		}
		next, ok := a.body["next_before"].(string)
		if !ok {
			return out
		}
		require.Len(t, evs, limit, "only the last page is short")
		before = next
	}
}

// TestAccountAuditTrail: the changes of an account's suppression list (an
// add, an add of one user, a remove, a refused remove, an import, a
// refused add) and of its mass-send speed are in the account's trail,
// under its appid, whichever name the request used, with the key's name,
// the counts, the openid of one user masked and the answer, newest first,
// page by page; requests on an account the server does not have leave
// nothing in Redis, and campaign trails are not touched.
func TestAccountAuditTrail(t *testing.T) {
	t.Parallel()
	b, logs := accountAuditSetup(t)
	ctx := t.Context()
	began := time.Now().Add(-time.Second)
	const list = "/v1/accounts/shop/suppressions"
	byAppID := "/v1/accounts/" + appID + "/suppressions"

	type want struct {
		key, action string
		status      int
		code        string
		openid      string
		counts      map[string]any
		requestID   string
	}
	var wants []want
	step := func(key, method, path, contentType, body string, status int, w want, header ...string) {
		t.Helper()
		w.key = map[string]string{aliceKey: "alice", bobKey: "bob"}[key]
		w.status = status
		if status == http.StatusNoContent {
			res := b.send(t, method, path, contentType, body, as(key, header...)...)
			res.Body.Close()
			require.Equal(t, status, res.StatusCode, "%s %s", method, path)
			w.requestID = res.Header.Get("X-Request-Id")
		} else {
			a := b.do(t, method, path, contentType, body, as(key, header...)...)
			require.Equal(t, status, a.status, "%s %s: %s", method, path, a.raw)
			w.requestID = a.header.Get("X-Request-Id")
			if status >= 400 {
				w.code = a.errCode()
			}
		}
		require.NotEmpty(t, w.requestID)
		wants = append(wants, w)
	}
	step(aliceKey, "POST", list, "application/json", `{"openids":["`+openid(1)+`","`+openid(2)+`"],"note":"ticket 1"}`, http.StatusOK,
		want{action: "suppress_add", counts: map[string]any{"added": 2.0, "updated": 0.0}})
	step(bobKey, "POST", byAppID, "application/json", `{"openids":["`+openid(3)+`","`+openid(3)+`"]}`, http.StatusOK,
		want{action: "suppress_add", openid: "oSUP…0003", counts: map[string]any{"added": 1.0, "updated": 0.0}})
	step(aliceKey, "DELETE", list+"/"+openid(1), "", "", http.StatusNoContent,
		want{action: "suppress_remove", openid: "oSUP…0001", counts: map[string]any{"removed": 1.0}})
	step(bobKey, "DELETE", byAppID+"/"+openid(1), "", "", http.StatusNotFound,
		want{action: "suppress_remove", openid: "oSUP…0001", counts: map[string]any{"removed": 0.0}})
	require.Equal(t, api.CodeNotSuppressed, wants[len(wants)-1].code)
	step(aliceKey, "PUT", list+"/import", "text/csv", "openid,note\n"+openid(2)+",again\n"+openid(4)+"\nN/A\n", http.StatusOK,
		want{action: "suppress_import", counts: map[string]any{"added": 1.0, "updated": 1.0, "bad": 1.0}})
	step(bobKey, "PUT", "/v1/accounts/shop/mass-speed", "application/json", `{"speed":3}`, http.StatusOK,
		want{action: "mass_speed", counts: map[string]any{"speed": 3.0}})
	step(aliceKey, "POST", list, "application/json", `{"openids":["N/A"]}`, http.StatusUnprocessableEntity,
		want{action: "suppress_add"}, invalid, "not an openid")
	require.Equal(t, api.CodeInvalidField, wants[len(wants)-1].code, "a refused request on the account is in its trail")

	// Requests on an account the server does not have: 404, and nothing in
	// Redis.
	for _, r := range []struct{ method, path, contentType, body string }{
		{"POST", "/v1/accounts/nope/suppressions", "application/json", `{"openids":["` + openid(5) + `"]}`},
		{"DELETE", "/v1/accounts/nope/suppressions/" + openid(5), "", ""},
		{"PUT", "/v1/accounts/nope/suppressions/import", "text/csv", openid(5) + "\n"},
		{"PUT", "/v1/accounts/nope/mass-speed", "application/json", `{"speed":1}`},
	} {
		a := b.do(t, r.method, r.path, r.contentType, r.body, as(aliceKey)...)
		require.Equal(t, http.StatusNotFound, a.status, "%s %s: %s", r.method, r.path, a.raw)
		require.Equal(t, "account", a.errField())
	}
	var trails []string
	iter := b.rdb.Client().Scan(ctx, 0, b.prefix+"*:audit", 100).Iterator()
	for iter.Next(ctx) {
		trails = append(trails, iter.Val())
	}
	require.NoError(t, iter.Err())
	require.Equal(t, []string{b.rdb.Keys().AccountAudit(appID)}, trails, "one trail, the known account's, under its appid")

	for _, name := range []string{"shop", appID} {
		for _, limit := range []int{50, 2} {
			got := b.accountEvents(t, name, limit)
			require.Len(t, got, len(wants), "%s, limit %d", name, limit)
			var last time.Time
			for i, e := range got {
				w := wants[len(wants)-1-i] // newest first
				what := fmt.Sprintf("%s, limit %d, event %d (%s)", name, limit, i, w.action)
				require.Equal(t, w.action, e["action"], what)
				require.Equal(t, w.key, e["key"], what)
				require.Equal(t, "bearer", e["via"], what)
				require.Equal(t, "shop", e["account"], what, "the account's id, whichever name the request used")
				require.NotContains(t, e, "campaign", what)
				require.EqualValues(t, w.status, e["status"], what)
				require.Equal(t, w.requestID, e["request_id"], what)
				require.Equal(t, "127.0.0.1", e["remote"], what)
				if w.code == "" {
					require.NotContains(t, e, "code", what)
				} else {
					require.Equal(t, w.code, e["code"], what)
				}
				if w.openid == "" {
					require.NotContains(t, e, "openid", what)
				} else {
					require.Equal(t, w.openid, e["openid"], what)
				}
				if w.counts == nil {
					require.NotContains(t, e, "counts", what)
				} else {
					require.Equal(t, w.counts, e["counts"], what)
				}
				at, err := time.Parse("2006-01-02T15:04:05.000Z07:00", e["at"].(string))
				require.NoError(t, err, what)
				require.True(t, at.After(began) && at.Before(time.Now().Add(time.Second)), "%s at %v", what, at)
				if i > 0 {
					require.False(t, at.After(last), "%s: newest first", what)
				}
				last = at
			}
		}
	}
	require.Empty(t, b.accountEvents(t, ghostAppID, 50), "another account's trail is its own")

	// The log lines say where each event went.
	var stored, unstored int
	for _, l := range logs.FilterMessage("audit").All() {
		f := l.ContextMap()
		if f["stored"] == true {
			stored++
			require.Equal(t, "shop", f["account"], "%v", f)
		} else {
			unstored++
		}
		require.NotContains(t, fmt.Sprint(f), "oSUP000000", "no raw openid in the log")
	}
	require.Equal(t, len(wants), stored)
	require.Equal(t, 4, unstored, "the unknown account's requests are only logged")
}

// TestAccountEventsEndpoint: the account trail's endpoint checks its
// parameters as the campaign trail's does, answers 404 naming account for
// an account the server does not have, and a page with no events for an
// account without any.
func TestAccountEventsEndpoint(t *testing.T) {
	t.Parallel()
	b, _ := accountAuditSetup(t)
	path := "/v1/accounts/shop/events"

	a := b.do(t, "GET", path, "", "", as(bobKey)...)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, map[string]any{"events": []any{}}, a.body, "no events yet")
	a = b.do(t, "POST", "/v1/accounts/shop/suppressions", "application/json", `{"openids":["`+openid(1)+`"]}`, as(aliceKey)...)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	a = b.do(t, "GET", path, "", "", as(bobKey)...)
	require.Len(t, a.body["events"], 1)
	require.NotContains(t, a.body, "next_before", "one page")

	for _, tt := range []struct {
		query, field string
	}{
		{"?limit=0", "limit"}, {"?limit=201", "limit"}, {"?limit=x", "limit"},
		{"?before=x", "before"}, {"?before=1-2-3", "before"}, {"?cursor=1", "cursor"},
	} {
		header := as(bobKey)
		if tt.field == "limit" {
			header = as(bobKey, invalid, "limit out of the documented range")
		}
		a := b.do(t, "GET", path+tt.query, "", "", header...)
		require.Equal(t, http.StatusBadRequest, a.status, "%s: %s", tt.query, a.raw)
		require.Equal(t, api.CodeInvalidField, a.errCode(), tt.query)
		require.Equal(t, tt.field, a.errField(), tt.query)
	}
	a = b.do(t, "GET", "/v1/accounts/nope/events", "", "", as(bobKey)...)
	require.Equal(t, http.StatusNotFound, a.status, a.raw)
	require.Equal(t, api.CodeNotFound, a.errCode())
	require.Equal(t, "account", a.errField())
	require.True(t, strings.Contains(a.errMessage(), "shop"), "the message names the accounts there are: %s", a.errMessage())
	a = b.do(t, "GET", path, "", "", "Authorization", "Bearer nope-0123456789abcdef")
	require.Equal(t, http.StatusUnauthorized, a.status)
	a = b.do(t, "POST", path, "", "", as(bobKey, invalid, "no such method")...)
	require.Equal(t, http.StatusMethodNotAllowed, a.status)
	require.Equal(t, "GET", a.header.Get("Allow"))
}
