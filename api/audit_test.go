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

	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/internal/rdb"
)

const (
	aliceKey = "alice-key-0123456789abcdef"
	bobKey   = "bob-key-0123456789abcdef"
)

// auditSetup is setup with two named keys, alice's and bob's, and the
// API's log observed.
func auditSetup(t *testing.T) (*testBundle, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	b := setup(t, func(c *api.Config) {
		ks := &api.KeySet{}
		require.NoError(t, ks.AddNamed("alice", aliceKey))
		require.NoError(t, ks.AddNamed("bob", bobKey))
		c.Keys = ks
		c.Logger = zap.New(core)
	})
	return b, logs
}

// as returns the header arguments of b.do that make the request with key.
func as(key string, more ...string) []string {
	return append([]string{"Authorization", "Bearer " + key}, more...)
}

// wantEvent is what an event of the trail must say.
type wantEvent struct {
	key, action string
	run         int
	status      int
	code        string
	requestID   string
}

// events reads the whole audit trail of campaign id through the API, page
// by page, newest first.
func (b *testBundle) events(t *testing.T, id string, limit int) []map[string]any {
	t.Helper()
	var out []map[string]any
	before := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 100)
		q := fmt.Sprintf("?limit=%d", limit)
		if before != "" {
			q += "&before=" + before
		}
		a := b.do(t, "GET", "/v1/campaigns/"+id+"/events"+q, "", "", as(aliceKey)...)
		require.Equal(t, http.StatusOK, a.status, a.raw)
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

// TestAuditTrail: every state-changing request on a campaign is in its
// trail with the name of the key that made it, refused ones too; the trail
// is read back through the API, newest first, page by page.
func TestAuditTrail(t *testing.T) {
	t.Parallel()
	b, logs := auditSetup(t)
	began := time.Now().Add(-time.Second)
	var want []wantEvent
	// step makes a request as key and notes the event it must leave.
	step := func(key, action, method, path, contentType, body string, status int, header ...string) answer {
		t.Helper()
		a := b.do(t, method, path, contentType, body, as(key, header...)...)
		require.Equal(t, status, a.status, "%s: %s", action, a.raw)
		rid := a.header.Get("X-Request-Id")
		require.NotEmpty(t, rid, "%s: every answer has a request id", action)
		w := wantEvent{key: map[string]string{aliceKey: "alice", bobKey: "bob"}[key], action: action, status: status, requestID: rid}
		if status >= 400 {
			w.code = a.errCode()
		}
		if run, ok := a.body["run"].(float64); ok {
			w.run = int(run)
		}
		want = append(want, w)
		return a
	}
	campaign := strings.Replace(templateCampaign, `"audience":`, `"schedule":{"cron":"0 9 * * 1"},"audience":`, 1)
	a := step(aliceKey, "create", "POST", "/v1/campaigns", "application/json", campaign, http.StatusCreated, "X-Request-Id", "op-42.create")
	require.Equal(t, "op-42.create", a.header.Get("X-Request-Id"), "a sane request id is kept")
	id := a.body["id"].(string)
	path := "/v1/campaigns/" + id
	step(bobKey, "update", "PUT", path, "application/json", strings.Replace(campaign, `"会员日"`, `"会员日 2"`, 1), http.StatusOK)
	step(aliceKey, "upload", "PUT", path+"/audience", "text/csv", "name,city\nAnn,x\n", http.StatusUnprocessableEntity)
	step(aliceKey, "upload", "PUT", path+"/audience", "text/csv",
		"openid,name\noTX0000000000000000000000001,Ann\noTX0000000000000000000000002,Bob\n", http.StatusOK)
	step(bobKey, "schedule", "POST", path+"/schedule", "", "", http.StatusOK, "X-Request-Id", "not sane: spaces")
	require.NotEqual(t, "not sane: spaces", want[len(want)-1].requestID, "an insane request id is replaced")
	step(aliceKey, "unschedule", "POST", path+"/unschedule", "", "", http.StatusOK)
	step(bobKey, "start", "POST", path+"/start", "", "", http.StatusAccepted)
	step(aliceKey, "pause", "POST", path+"/pause", "", "", http.StatusOK)
	step(bobKey, "resume", "POST", path+"/resume", "", "", http.StatusOK)
	// A worker settles run 1: one sent, one failed.
	_, err := b.rdb.RecordOutcomes(t.Context(), id, 1, "completed",
		rdb.Settle{OpenID: "oTX0000000000000000000000001", Outcome: rdb.Outcome{Status: rdb.OutcomeSent, MsgID: 5}},
		rdb.Settle{OpenID: "oTX0000000000000000000000002", Outcome: rdb.Outcome{Status: rdb.OutcomeFailed, Code: 45015, Class: "recipient"}})
	require.NoError(t, err)
	step(aliceKey, "pause", "POST", path+"/pause", "", "", http.StatusConflict)
	require.Equal(t, api.CodeInvalidState, want[len(want)-1].code, "a finished campaign is not paused")
	a = step(bobKey, "retry", "POST", path+"/runs/1/retry", "", "", http.StatusAccepted)
	require.EqualValues(t, 2, a.body["run"], "the retry started run 2")
	step(aliceKey, "cancel", "POST", path+"/cancel", "", "", http.StatusOK)
	step(bobKey, "report-link", "POST", path+"/runs/1/report-link", "", "", http.StatusOK)
	want[len(want)-1].run = 1 // the run it names

	// A transactional send is a campaign of its own, with its own trail.
	msg := `{"name":"order 1001","account":"` + appID + `","kind":"template",
	 "template":{"template_id":"TPL1","data":{"thing1":"订单1001已发货"}},
	 "audience":{"source":"inline","openids":["oTX0000000000000000000000009"]}}`
	sent := b.do(t, "POST", "/v1/messages", "application/json", msg, as(bobKey, "Idempotency-Key", "order-1001")...)
	require.Equal(t, http.StatusAccepted, sent.status, sent.raw)
	replay := b.do(t, "POST", "/v1/messages", "application/json", msg, as(bobKey, "Idempotency-Key", "order-1001")...)
	require.Equal(t, "true", replay.header.Get("Idempotent-Replayed"))
	// Requests that name no stored campaign leave no trail: only a log line.
	require.Equal(t, http.StatusNotFound, b.do(t, "POST", "/v1/campaigns/cnothere00000/pause", "", "", as(aliceKey)...).status)
	require.Equal(t, http.StatusUnprocessableEntity, b.do(t, "POST", "/v1/campaigns", "application/json", `{"name":"x"}`,
		as(aliceKey, invalid, "a campaign without kind or audience")...).status)
	// Reads are not audited.
	require.Equal(t, http.StatusOK, b.do(t, "GET", path, "", "", as(bobKey)...).status)

	for _, limit := range []int{50, 3} {
		got := b.events(t, id, limit)
		require.Len(t, got, len(want), "limit %d", limit)
		var last time.Time
		for i, e := range got {
			w := want[len(want)-1-i] // newest first
			name := fmt.Sprintf("event %d (%s)", i, w.action)
			require.Equal(t, w.action, e["action"], name)
			require.Equal(t, w.key, e["key"], name)
			require.Equal(t, "bearer", e["via"], name)
			require.Equal(t, id, e["campaign"], name)
			require.EqualValues(t, w.status, e["status"], name)
			require.Equal(t, w.requestID, e["request_id"], name)
			require.Equal(t, "127.0.0.1", e["remote"], name)
			if w.run == 0 {
				require.NotContains(t, e, "run", name)
			} else {
				require.EqualValues(t, w.run, e["run"], name)
			}
			if w.code == "" {
				require.NotContains(t, e, "code", name)
			} else {
				require.Equal(t, w.code, e["code"], name)
			}
			at, err := time.Parse("2006-01-02T15:04:05.000Z07:00", e["at"].(string))
			require.NoError(t, err, "%s: at is RFC 3339 with milliseconds: %v", name, e["at"])
			require.True(t, at.After(began) && at.Before(time.Now().Add(time.Second)), "%s at %v", name, at)
			if i > 0 {
				require.False(t, at.After(last), "%s: newest first", name)
			}
			last = at
		}
	}
	// The actions of the trail, newest first, with their keys.
	var trail []string
	for _, e := range b.events(t, id, 50) {
		trail = append(trail, fmt.Sprintf("%s:%s:%v", e["key"], e["action"], e["status"]))
	}
	require.Equal(t, []string{"bob:report-link:200", "alice:cancel:200", "bob:retry:202", "alice:pause:409", "bob:resume:200",
		"alice:pause:200", "bob:start:202", "alice:unschedule:200", "bob:schedule:200", "alice:upload:200", "alice:upload:422",
		"bob:update:200", "alice:create:201"}, trail)
	require.Equal(t, "invalid_audience", b.events(t, id, 50)[10]["code"], "an error answer the handler wrote itself has its code")

	sendID := sent.body["campaign"].(string)
	se := b.events(t, sendID, 50)
	require.Len(t, se, 1, "the replayed send did nothing and is not in the trail")
	require.Equal(t, "send", se[0]["action"])
	require.Equal(t, "bob", se[0]["key"])
	require.EqualValues(t, 1, se[0]["run"])
	require.EqualValues(t, 202, se[0]["status"])

	// One "audit" log line per state-changing request, refused and
	// trail-less ones included, with no key and no openid.
	audits := logs.FilterMessage("audit").All()
	require.Len(t, audits, len(want)+4, "the trail's requests, the send and its replay, the 404 and the failed create")
	for _, l := range audits {
		require.Equal(t, zapcore.InfoLevel, l.Level)
		line := fmt.Sprint(l.ContextMap())
		for _, secret := range []string{aliceKey, bobKey, "oTX0000000000000000000000001", "oTX0000000000000000000000009"} {
			require.NotContains(t, line, secret)
		}
	}
	byID := map[string]map[string]any{}
	for _, l := range audits {
		byID[l.ContextMap()["request_id"].(string)] = l.ContextMap()
	}
	first := byID["op-42.create"]
	require.Equal(t, "create", first["action"])
	require.Equal(t, "alice", first["key"])
	require.Equal(t, id, first["campaign_id"])
	require.EqualValues(t, 201, first["status"])
	require.Equal(t, true, first["stored"])
	missing := byID[lastRequestID(t, audits, 2)]
	require.Equal(t, "pause", missing["action"])
	require.Equal(t, "cnothere00000", missing["campaign_id"])
	require.EqualValues(t, 404, missing["status"])
	require.Equal(t, "not_found", missing["code"])
	require.Equal(t, false, missing["stored"], "no trail for a campaign that does not exist")
	failed := byID[lastRequestID(t, audits, 1)]
	require.Equal(t, "create", failed["action"])
	require.NotContains(t, failed, "campaign_id", "a failed create has no campaign")
	require.Equal(t, "invalid_campaign", failed["code"])
	require.Equal(t, true, byID[lastRequestID(t, audits, 3)]["replayed"])
}

// lastRequestID is the request id of the n-th audit line from the end.
func lastRequestID(t *testing.T, lines []observer.LoggedEntry, n int) string {
	t.Helper()
	require.GreaterOrEqual(t, len(lines), n)
	return lines[len(lines)-n].ContextMap()["request_id"].(string)
}

// TestAuditEventsEndpoint: the trail's endpoint checks its parameters,
// needs a key, and answers 404 for an unknown campaign; every answer has a
// request id.
func TestAuditEventsEndpoint(t *testing.T) {
	t.Parallel()
	b, _ := auditSetup(t)
	a := b.do(t, "POST", "/v1/campaigns", "application/json", inlineCampaign, as(aliceKey)...)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	path := "/v1/campaigns/" + id + "/events"

	a = b.do(t, "GET", path, "", "", as(bobKey, "X-Request-Id", "trace-1")...)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Len(t, a.body["events"], 1)
	require.NotContains(t, a.body, "next_before", "one page")
	require.Equal(t, "trace-1", a.header.Get("X-Request-Id"), "reads carry the request id too")

	for _, tt := range []struct {
		query, field string
	}{
		{"?limit=0", "limit"}, {"?limit=201", "limit"}, {"?limit=x", "limit"},
		{"?before=x", "before"}, {"?before=1-2-3", "before"},
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
	for _, missing := range []string{"cnothere00000", "not-an-id"} {
		header := as(bobKey)
		if missing == "not-an-id" {
			header = as(bobKey, invalid, "not a campaign id")
		}
		a := b.do(t, "GET", "/v1/campaigns/"+missing+"/events", "", "", header...)
		require.Equal(t, http.StatusNotFound, a.status, a.raw)
		require.Equal(t, api.CodeNotFound, a.errCode())
	}
	a = b.do(t, "GET", path, "", "", "Authorization", "Bearer nope-0123456789abcdef")
	require.Equal(t, http.StatusUnauthorized, a.status)
	require.Len(t, a.header.Get("X-Request-Id"), 26, "a refused request has a made-up id too")
	a = b.do(t, "POST", path, "", "", as(bobKey, invalid, "no such method")...)
	require.Equal(t, http.StatusMethodNotAllowed, a.status)
	require.Equal(t, "GET", a.header.Get("Allow"))
}
