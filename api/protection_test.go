package api_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/ratelimit"
)

// shanghai is the time zone of the tests' quiet hours.
var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

// protectedAccount is the test's account (id and appid appID) with caps,
// quiet hours from 22:00 to 08:00 in Shanghai and an enforced
// customer-service window.
func protectedAccount(t *testing.T) *account.Registry {
	t.Helper()
	q, err := account.ParseQuietHours("22:00", "08:00", "Asia/Shanghai")
	require.NoError(t, err)
	reg, err := account.NewRegistry(&account.Account{AppID: appID, Default: ratelimit.Limit{Rate: 10, Burst: 1},
		Protection: account.Protection{Caps: []account.Cap{{Max: 2, Per: 24 * time.Hour}, {Max: 5, Per: 7 * 24 * time.Hour}},
			OverCap: account.OverCapSkip, Quiet: q, CSWindow: account.CSWindow{Hours: 24, Messages: 3, Enforce: true}}})
	require.NoError(t, err)
	return reg
}

// TestAccountsShowProtection: GET /v1/accounts shows each account's
// protection with its defaults: caps (per as a Go duration), over_cap,
// cap_transactional, quiet hours, the customer-service window and the
// size of its suppression list.
func TestAccountsShowProtection(t *testing.T) {
	t.Parallel()
	q, err := account.ParseQuietHours("22:30", "07:05", "Europe/Berlin")
	require.NoError(t, err)
	q.Transactional = true
	reg, err := account.NewRegistry(
		&account.Account{ID: "shop", AppID: appID, Default: ratelimit.Limit{Rate: 300, Burst: 30},
			Protection: account.Protection{Caps: []account.Cap{{Max: 2, Per: 24 * time.Hour}}, CapTransactional: true, Quiet: q,
				CSWindow: account.CSWindow{Hours: 24, Messages: 3, Enforce: true}}},
		&account.Account{ID: "news", AppID: "wx00000000000api02", Default: ratelimit.Limit{Rate: 50, Burst: 5}},
	)
	require.NoError(t, err)
	b := setup(t, func(c *api.Config) { c.Accounts = reg })
	_, err = b.store.Suppress(t.Context(), appID, false,
		campaigns.Suppression{OpenID: "oPRT0000000000000000000000001", Reason: campaigns.SuppressBlocked, At: time.Now(), Source: "receipt"},
		campaigns.Suppression{OpenID: "oPRT0000000000000000000000002", Reason: campaigns.SuppressManual, At: time.Now(), Source: "alice"})
	require.NoError(t, err)

	a := b.json(t, "GET", "/v1/accounts", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	accts := a.body["accounts"].([]any)
	require.Len(t, accts, 2)
	news, shop := accts[0].(map[string]any), accts[1].(map[string]any)
	require.Equal(t, map[string]any{
		"caps": []any{map[string]any{"max": 2.0, "per": "24h0m0s"}}, "over_cap": "defer", "cap_transactional": true,
		"quiet_hours": map[string]any{"from": "22:30", "to": "07:05", "time_zone": "Europe/Berlin", "transactional": true},
		"cs_window":   map[string]any{"hours": 24.0, "messages": 3.0, "enforce": true}, "suppressed": 2.0,
	}, shop["protection"])
	require.Equal(t, map[string]any{
		"caps": []any{}, "over_cap": "defer", "cap_transactional": false,
		"cs_window": map[string]any{"hours": 48.0, "messages": 5.0, "enforce": false}, "suppressed": 0.0,
	}, news["protection"], "the defaults, and no quiet hours")
}

// TestRunStatusProtection: a run's status, its report and its page count
// the recipients the protection held back, from the run's counters
// (recorded through the store as the send path records them) and its
// deferred set: skipped as suppressed, capped, outside the window,
// deferred at least once by a cap and by a rest, deferred now with the
// first due time. A run the protection held back nothing of has no
// protection object, and its page no protection table.
func TestRunStatusProtection(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, shanghai)
	b := setup(t, func(c *api.Config) { c.Now = func() time.Time { return now } })
	ctx := t.Context()
	openids := []string{"oPRT0000000000000000000000001", "oPRT0000000000000000000000002", "oPRT0000000000000000000000003",
		"oPRT0000000000000000000000004", "oPRT0000000000000000000000005", "oPRT0000000000000000000000006"}
	a := b.json(t, "POST", "/v1/campaigns", `{"name":"protected","account":"`+appID+`","kind":"custom","custom":{"msgtype":"text","text":{"content":"您好"}},
		"audience":{"source":"inline","openids":["`+strings.Join(openids, `","`)+`"]}}`)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	require.Equal(t, http.StatusAccepted, b.json(t, "POST", "/v1/campaigns/"+id+"/start", "").status)
	path := "/v1/campaigns/" + id + "/runs/1"

	a = b.json(t, "GET", path, "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.NotContains(t, a.body, "protection", "nothing held back yet")
	require.NotContains(t, b.raw(t, path+"/report.html").body, `id="protection"`)

	c, err := b.store.Get(ctx, id)
	require.NoError(t, err)
	since := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	_, err = b.store.RecordAll(ctx, c, 1,
		campaigns.Settle{OpenID: openids[0], Mode: campaigns.RecordUnanswered, Outcome: campaigns.SuppressedOutcome(campaigns.Suppression{
			OpenID: openids[0], Reason: campaigns.SuppressBlocked, Code: 48002, At: since})},
		campaigns.Settle{OpenID: openids[1], Mode: campaigns.RecordUnanswered, Outcome: campaigns.Outcome{Status: campaigns.OutcomeSkipped,
			Class: campaigns.ClassCapped, Detail: "over the account's frequency cap"}},
		campaigns.Settle{OpenID: openids[2], Mode: campaigns.RecordUnanswered, Outcome: campaigns.Outcome{Status: campaigns.OutcomeSkipped,
			Class: campaigns.ClassWindow, Detail: "outside the customer-service window: no interaction recorded"}})
	require.NoError(t, err)
	due := now.Add(time.Hour)
	_, err = b.store.Unbegin(ctx, c, 1, openids[3], false, &campaigns.Deferral{Reason: campaigns.DeferCap, Until: due}, nil, campaigns.RecordPlain)
	require.NoError(t, err)
	_, err = b.store.Unbegin(ctx, c, 1, openids[4], false, &campaigns.Deferral{Reason: campaigns.DeferRest, Until: now.Add(4 * time.Hour)}, nil, campaigns.RecordPlain)
	require.NoError(t, err)
	// Deferred once, and due already: counted as deferred, not now.
	_, err = b.store.Unbegin(ctx, c, 1, openids[5], false, &campaigns.Deferral{Reason: campaigns.DeferCap, Until: now.Add(-time.Minute)}, nil, campaigns.RecordPlain)
	require.NoError(t, err)

	want := map[string]any{"suppressed": 1.0, "capped": 1.0, "outside_window": 1.0,
		"deferred": map[string]any{"cap": 2.0, "rest": 1.0}, "deferred_now": 2.0, "next_due": due.UTC().Format(time.RFC3339)}
	a = b.json(t, "GET", path, "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, want, a.body["protection"])
	a = b.json(t, "GET", path+"/report", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, want, a.body["protection"])
	page := b.raw(t, path+"/report.html").body
	for _, row := range []string{
		`<tr data-protection="suppressed"><td>skipped: on the account's suppression list</td><td>1</td></tr>`,
		`<tr data-protection="capped"><td>skipped: over a frequency cap</td><td>1</td></tr>`,
		`<tr data-protection="outside_window"><td>skipped: outside the customer-service window</td><td>1</td></tr>`,
		`<tr data-protection="deferred_cap"><td>deferred at least once: over a frequency cap</td><td>2</td></tr>`,
		`<tr data-protection="deferred_rest"><td>deferred at least once: WeChat asked to leave the user alone (43117)</td><td>1</td></tr>`,
		`<tr data-protection="deferred_now"><td>deferred now, the first due at ` + due.UTC().Format("2006-01-02 15:04:05 MST") + `</td><td>2</td></tr>`,
	} {
		require.Contains(t, page, row)
	}

	// Once the run has finished, nothing waits: deferred_now is 0, the
	// counts stay.
	_, err = b.store.RecordAll(ctx, c, 1,
		campaigns.Settle{OpenID: openids[3], Outcome: campaigns.Outcome{Status: campaigns.OutcomeSent}},
		campaigns.Settle{OpenID: openids[4], Outcome: campaigns.Outcome{Status: campaigns.OutcomeSent}},
		campaigns.Settle{OpenID: openids[5], Outcome: campaigns.Outcome{Status: campaigns.OutcomeSent}})
	require.NoError(t, err)
	a = b.json(t, "GET", path, "")
	require.Equal(t, "completed", a.body["state"], a.raw)
	require.Equal(t, map[string]any{"suppressed": 1.0, "capped": 1.0, "outside_window": 1.0,
		"deferred": map[string]any{"cap": 2.0, "rest": 1.0}, "deferred_now": 0.0}, a.body["protection"])
	require.NotContains(t, b.raw(t, path+"/report.html").body, `data-protection="deferred_now"`)
}

// TestRunStatusQuietHours: while the account's quiet hours (22:00 to 08:00
// in Shanghai, by the server's clock) hold a running run, its status and
// page say waiting quiet_hours with since and until; a campaign's own
// quiet hours that follow extend the wait; a transactional send does not
// wait for quiet hours that spare transactional sends; an open circuit
// breaker comes first; outside the hours nothing waits.
func TestRunStatusQuietHours(t *testing.T) {
	t.Parallel()
	clock := &fixedClock{t: time.Date(2026, 12, 7, 23, 30, 0, 0, shanghai)}
	late := &lateBreakers{}
	b := setup(t, func(c *api.Config) {
		c.Accounts = protectedAccount(t)
		c.Now = clock.now
		c.Breakers = late
	})
	br := ratelimit.NewBreakers(b.rdb)
	late.br = br
	id := b.startCustom(t)
	path := "/v1/campaigns/" + id + "/runs/1"

	waiting := func(path string) map[string]any {
		t.Helper()
		a := b.json(t, "GET", path, "")
		require.Equal(t, http.StatusOK, a.status, a.raw)
		w, _ := a.body["waiting"].(map[string]any)
		return w
	}
	require.Equal(t, map[string]any{"reason": "quiet_hours", "since": "2026-12-07T14:00:00Z", "until": "2026-12-08T00:00:00Z"}, waiting(path))
	page := b.raw(t, path+"/report.html").body
	require.Contains(t, page, `data-reason="quiet_hours">waiting for the quiet hours to end at 2026-12-08 00:00:00 UTC (on since 2026-12-07 14:00:00 UTC)`)

	// A campaign whose own quiet hours follow the account's: one wait.
	a := b.json(t, "POST", "/v1/campaigns", `{"name":"own quiet","account":"`+appID+`","kind":"custom","custom":{"msgtype":"text","text":{"content":"您好"}},
		"protection":{"quiet_hours":{"from":"07:30","to":"09:15","time_zone":"Asia/Shanghai"}},
		"audience":{"source":"inline","openids":["oTX0000000000000000000000001","oTX0000000000000000000000002"]}}`)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	own := a.body["id"].(string)
	require.Equal(t, http.StatusAccepted, b.json(t, "POST", "/v1/campaigns/"+own+"/start", "").status)
	require.Equal(t, map[string]any{"reason": "quiet_hours", "since": "2026-12-07T14:00:00Z", "until": "2026-12-08T01:15:00Z"},
		waiting("/v1/campaigns/"+own+"/runs/1"))

	// A transactional send: the account's quiet hours spare it.
	a = b.json(t, "POST", "/v1/messages", `{"name":"otp","account":"`+appID+`","kind":"custom","custom":{"msgtype":"text","text":{"content":"123456"}},
		"audience":{"source":"inline","openids":["oTX0000000000000000000000001"]}}`)
	require.Equal(t, http.StatusAccepted, a.status, a.raw)
	require.Nil(t, waiting("/v1/campaigns/"+a.body["campaign"].(string)+"/runs/1"))

	// WeChat unreachable too: that reason first.
	_, opened, err := br.Open(context.Background(), appID, time.Minute)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"reason": "wechat_unreachable", "since": opened.UTC().Format(time.RFC3339Nano)}, waiting(path))
	_, _, err = br.Close(context.Background(), appID)
	require.NoError(t, err)

	// A paused run waits for its resume, not for the hours.
	require.Equal(t, http.StatusOK, b.json(t, "POST", "/v1/campaigns/"+own+"/pause", "").status)
	require.Nil(t, waiting("/v1/campaigns/"+own+"/runs/1"))

	clock.set(time.Date(2026, 12, 8, 12, 0, 0, 0, shanghai))
	require.Nil(t, waiting(path), "outside the quiet hours")
	require.NotContains(t, b.raw(t, path+"/report.html").body, "quiet hours")
}

// fixedClock is a clock the test sets.
type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fixedClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
