package wechattest

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRuntimeControlBadBodies: bad bodies of /fake/terminal,
// /fake/receipt-status and /fake/interact answer 400 naming the field and
// change nothing; other methods 405.
func TestRuntimeControlBadBodies(t *testing.T) {
	t.Parallel()
	capture := startCapture(t, func(w http.ResponseWriter) {})
	b := setup(t, Config{Callback: Callback{URL: capture.srv.URL, Token: cbToken}})
	u := openID("ctlbad")
	for _, tc := range []struct{ path, body, want string }{
		{"terminal", ``, "decode terminal: json offset 0"},
		{"terminal", `[]`, "decode terminal: array, not an object"},
		{"terminal", `{"errcode":43004}`, "openid: missing"},
		{"terminal", `{"openid":"x","errcode":43004}`, `openid: "x" is not an openid`},
		{"terminal", `{"openid":7,"errcode":43004}`, "openid: number, not a string"},
		{"terminal", `{"openid":"` + u + `"}`, "errcode: missing"},
		{"terminal", `{"openid":"` + u + `","errcode":"43004"}`, "errcode: string, not an integer"},
		{"terminal", `{"openid":"` + u + `","errcode":43004.5}`, "errcode: 43004.5 is not an errcode"},
		{"terminal", `{"openid":"` + u + `","errcode":1e3}`, "errcode: 1e3 is not an errcode"},
		{"terminal", `{"openid":"` + u + `","errcode":43004,"code":1}`, `decode terminal: unknown field "code"`},
		{"terminal", `{"OpenID":"` + u + `","errcode":43004}`, `unknown field "OpenID"`},
		{"terminal", `{"openid":"` + u + `","errcode":1,"errcode":2}`, "duplicate object key"},
		{"terminal", "{\"openid\":\"\xff\",\"errcode\":1}", "decode terminal: invalid UTF-8"},
		{"receipt-status", `{"openid":"` + u + `"}`, "status: missing"},
		{"receipt-status", `{"openid":"` + u + `","status":null}`, "status: null, not a string"},
		{"receipt-status", `{"status":"success"}`, "openid: missing"},
		{"receipt-status", `{"openid":"` + u + `","status":"success","x":1}`, `decode receipt status: unknown field "x"`},
		{"interact", `{"kind":"message"}`, "openid: missing"},
		{"interact", `{"openid":"` + u + `"}`, "kind: missing"},
		{"interact", `{"openid":"` + u + `","kind":"like"}`, `kind: "like" is not one of message, click, follow, scan, unfollow`},
		{"interact", `{"openid":"` + u + `","kind":"message","app_id":"wx0000000000nobody"}`, `app_id: "wx0000000000nobody" is not an account`},
		{"interact", `{"openid":"` + u + `","kind":"message","at":"yesterday"}`, `at: "yesterday" is not an RFC 3339 time`},
		{"interact", `{"openid":"` + u + `","kind":"message","at":1700000000}`, "at: number, not a string"},
		{"interact", `{"openid":"` + u + `","kind":"message","push":"yes"}`, "push: string, not a boolean"},
		{"interact", `{"openid":"` + u + `","kind":"message","user":"x"}`, `decode interact: unknown field "user"`},
	} {
		status, raw := b.do(t, http.MethodPost, "/fake/"+tc.path, tc.body)
		require.Equal(t, http.StatusBadRequest, status, "%s %s", tc.path, tc.body)
		require.Contains(t, decode(t, raw)["error"], tc.want, "%s %s", tc.path, tc.body)
	}
	require.Empty(t, b.srv.Terminal())
	require.Zero(t, b.srv.Stats().Interactions.Recorded)
	for _, path := range []string{"terminal", "receipt-status", "interact"} {
		status, _ := b.do(t, http.MethodGet, "/fake/"+path, "")
		require.Equal(t, http.StatusMethodNotAllowed, status, path)
	}

	none := setup(t, Config{})
	status, raw := none.do(t, http.MethodPost, "/fake/interact", `{"openid":"`+u+`","kind":"message","push":true}`)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, decode(t, raw)["error"], "push: true, but the fake has no Callback.URL")
	require.Zero(t, none.srv.Stats().Interactions.Recorded)
}

// TestInteractEndpoint: POST /fake/interact records an interaction (by
// default for the first account, now), backdated by "at", and pushes it
// with "push"; a push the callback refuses answers 502 but is recorded.
func TestInteractEndpoint(t *testing.T) {
	t.Parallel()
	refuse := make(chan bool, 1)
	capture := startCapture(t, func(w http.ResponseWriter) {
		select {
		case <-refuse:
			_, _ = io.WriteString(w, "no thanks")
		default:
			_, _ = io.WriteString(w, "success")
		}
	})
	b := setup(t, Config{CSWindow: true, Callback: Callback{URL: capture.srv.URL, Token: cbToken}})
	tok := b.token(t)
	u := openID("ctlint")

	at := b.clock.Now().Add(-47 * time.Hour)
	require.Equal(t, map[string]any{"ok": true},
		b.post(t, "/fake/interact", `{"openid":"`+u+`","kind":"message","at":"`+at.Format(time.RFC3339)+`"}`))
	end, left, ok := b.srv.CSWindow(AppIDDefault, u)
	require.True(t, ok)
	require.True(t, at.Add(CSMessageWindow).Equal(end), "end %v", end)
	require.Equal(t, CSMessageCount, left)
	require.Zero(t, errcode(t, b.sendText(t, tok, u)))
	require.Zero(t, b.srv.Stats().Interactions.Pushed, "not pushed without push")

	b.post(t, "/fake/interact", `{"app_id":"`+AppIDDefault+`","openid":"`+u+`","kind":"unfollow","push":true}`)
	e, _ := parsePush(t, capture.last(t), CallbackPlain)
	require.Equal(t, "unsubscribe", e.Event)
	require.Equal(t, b.clock.Now().Unix(), e.CreateTime)
	requireErr(t, b.sendText(t, tok, u), 45015)

	refuse <- true
	status, raw := b.do(t, http.MethodPost, "/fake/interact", `{"openid":"`+u+`","kind":"follow","push":true}`)
	require.Equal(t, http.StatusBadGateway, status)
	require.True(t, strings.Contains(decode(t, raw)["error"].(string), `"no thanks"`), "%s", raw)
	require.Zero(t, errcode(t, b.sendText(t, tok, u)), "the follow is recorded")
	require.Equal(t, InteractionStats{Recorded: 3, Pushed: 1, PushFailed: 1}, b.srv.Stats().Interactions)
}
