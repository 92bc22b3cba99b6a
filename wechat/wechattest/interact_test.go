package wechattest

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/wechat/callback"
)

// sendText sends a customer-service text message to openid and returns
// the answer.
func (b *testBundle) sendText(t *testing.T, tok, openid string) map[string]any {
	t.Helper()
	return b.send(t, nameCustomSend, tok, mustJSON(t, customBody(openid, "text", map[string]any{"content": "hi"})))
}

// requireErr checks an answer's errcode and that its errmsg starts with
// WeChat's text for it.
func requireErr(t *testing.T, m map[string]any, code int, msgAndArgs ...any) {
	t.Helper()
	require.Equal(t, code, errcode(t, m), msgAndArgs...)
	msg, _ := m["errmsg"].(string)
	require.True(t, strings.HasPrefix(msg, errmsg(code)+" rid: "), "errmsg %q of %d", msg, code)
}

// TestCSWindowMessage: a user's message opens 48 hours with 5 messages:
// 47 hours later five sends are accepted and the sixth answers 45047; at
// 49 hours the window is closed (45015). A backdated message counts from
// its own time. Without any interaction custom/send answers 45015.
func TestCSWindowMessage(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{CSWindow: true})
	tok := b.token(t)
	u := openID("csmsg")

	requireErr(t, b.sendText(t, tok, u), 45015, "no interaction yet")
	_, _, ok := b.srv.CSWindow("", u)
	require.False(t, ok)

	start := b.clock.Now()
	require.NoError(t, b.srv.Interact(AppIDDefault, u, InteractMessage, time.Time{}))
	end, left, ok := b.srv.CSWindow(AppIDDefault, u)
	require.True(t, ok)
	require.Equal(t, start.Add(CSMessageWindow), end)
	require.Equal(t, CSMessageCount, left)

	b.clock.Advance(47 * time.Hour)
	tok = b.token(t) // The old one expired.
	for i := range CSMessageCount {
		require.Zero(t, errcode(t, b.sendText(t, tok, u)), "send %d", i+1)
	}
	requireErr(t, b.sendText(t, tok, u), 45047, "the sixth")
	_, left, ok = b.srv.CSWindow("", u)
	require.True(t, ok)
	require.Zero(t, left)

	b.clock.Advance(2 * time.Hour) // 49 h after the message.
	tok = b.token(t)
	requireErr(t, b.sendText(t, tok, u), 45015, "after 48 h")
	_, _, ok = b.srv.CSWindow("", u)
	require.False(t, ok)

	ds := b.srv.DeliveriesTo(u)
	require.Len(t, ds, CSMessageCount, "refused sends are not deliveries")
	for _, d := range ds {
		require.Equal(t, nameCustomSend, d.API)
		require.Equal(t, AppIDDefault, d.AppID)
		require.Equal(t, start.Add(47*time.Hour), d.Time)
	}

	// Backdated messages: 47 h ago still open, 49 h ago closed.
	recent, old := openID("cs47"), openID("cs49")
	now := b.clock.Now()
	require.NoError(t, b.srv.Interact("", recent, InteractMessage, now.Add(-47*time.Hour)))
	require.NoError(t, b.srv.Interact("", old, InteractMessage, now.Add(-49*time.Hour)))
	require.Zero(t, errcode(t, b.sendText(t, tok, recent)))
	requireErr(t, b.sendText(t, tok, old), 45015)
}

// TestCSWindowEvent: a menu click opens a minute with 3 messages (the
// fourth answers 45047); 61 seconds after it the window is closed. A
// follow and a QR scan open the same.
func TestCSWindowEvent(t *testing.T) {
	t.Parallel()
	for _, kind := range []Interaction{InteractClick, InteractFollow, InteractScan} {
		t.Run(kind.String(), func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{CSWindow: true})
			tok := b.token(t)
			u, v := openID("ev1"+kind.String()), openID("ev2"+kind.String())
			require.NoError(t, b.srv.Interact("", u, kind, time.Time{}))
			require.NoError(t, b.srv.Interact("", v, kind, time.Time{}))
			for i := range CSEventCount {
				b.clock.Advance(10 * time.Second)
				require.Zero(t, errcode(t, b.sendText(t, tok, u)), "send %d", i+1)
			}
			requireErr(t, b.sendText(t, tok, u), 45047)

			require.Zero(t, errcode(t, b.sendText(t, tok, v)))
			b.clock.Advance(31 * time.Second) // 61 s after the interaction
			requireErr(t, b.sendText(t, tok, v), 45015)
			require.Len(t, b.srv.DeliveriesTo(v), 1)
		})
	}
}

// TestCSWindowKeepsTheMoreGenerous: a click inside a message's window with
// messages left keeps the message's window; once its messages are used up,
// a click opens its own.
func TestCSWindowKeepsTheMoreGenerous(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{CSWindow: true})
	tok := b.token(t)
	u := openID("generous")
	require.NoError(t, b.srv.Interact("", u, InteractMessage, time.Time{}))
	msgEnd := b.clock.Now().Add(CSMessageWindow)
	for range 2 {
		require.Zero(t, errcode(t, b.sendText(t, tok, u)))
	}
	require.NoError(t, b.srv.Interact("", u, InteractClick, time.Time{}))
	end, left, ok := b.srv.CSWindow("", u)
	require.True(t, ok)
	require.Equal(t, msgEnd, end, "the message's window is kept")
	require.Equal(t, CSMessageCount-2, left)
	for range left {
		require.Zero(t, errcode(t, b.sendText(t, tok, u)))
	}
	requireErr(t, b.sendText(t, tok, u), 45047)

	b.clock.Advance(time.Hour)
	require.NoError(t, b.srv.Interact("", u, InteractClick, time.Time{}))
	end, left, ok = b.srv.CSWindow("", u)
	require.True(t, ok)
	require.Equal(t, b.clock.Now().Add(CSEventWindow), end)
	require.Equal(t, CSEventCount, left)
	require.Zero(t, errcode(t, b.sendText(t, tok, u)))

	// A message after a click's window: the message's is more generous.
	require.NoError(t, b.srv.Interact("", u, InteractMessage, time.Time{}))
	_, left, _ = b.srv.CSWindow("", u)
	require.Equal(t, CSMessageCount, left)
}

// TestCSWindowUnfollowFollow: an unfollow closes the window; a follow opens
// a new one of 3 messages.
func TestCSWindowUnfollowFollow(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{CSWindow: true})
	tok := b.token(t)
	u := openID("unf")
	require.NoError(t, b.srv.Interact("", u, InteractMessage, time.Time{}))
	require.Zero(t, errcode(t, b.sendText(t, tok, u)))
	require.NoError(t, b.srv.Interact("", u, InteractUnfollow, time.Time{}))
	_, _, ok := b.srv.CSWindow("", u)
	require.False(t, ok)
	requireErr(t, b.sendText(t, tok, u), 45015)

	b.clock.Advance(time.Minute)
	require.NoError(t, b.srv.Interact("", u, InteractFollow, time.Time{}))
	for range CSEventCount {
		require.Zero(t, errcode(t, b.sendText(t, tok, u)))
	}
	requireErr(t, b.sendText(t, tok, u), 45047)
}

// TestCSWindowOffByDefault: without Config.CSWindow custom/send needs no
// interaction, but the windows are still tracked.
func TestCSWindowOffByDefault(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tok := b.token(t)
	u := openID("off")
	for range CSMessageCount + 1 {
		require.Zero(t, errcode(t, b.sendText(t, tok, u)))
	}
	require.NoError(t, b.srv.Interact("", u, InteractClick, time.Time{}))
	_, left, ok := b.srv.CSWindow("", u)
	require.True(t, ok)
	require.Equal(t, CSEventCount, left)
}

// TestCSWindowConcurrent: concurrent sends inside a window get exactly its
// count.
func TestCSWindowConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{CSWindow: true})
	tok := b.token(t)
	u := openID("conc")
	require.NoError(t, b.srv.Interact("", u, InteractMessage, time.Time{}))
	codes := make(chan int, 12)
	var wg sync.WaitGroup
	for range cap(codes) {
		wg.Go(func() {
			m := b.send(t, nameCustomSend, tok, mustJSON(t, customBody(u, "text", map[string]any{"content": "hi"})))
			codes <- errcode(t, m)
		})
	}
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	require.Equal(t, map[int]int{0: CSMessageCount, 45047: cap(codes) - CSMessageCount}, count)
}

// TestUnfollowWithRequireFollower: with RequireFollower an unfollowed user
// gets 43004 on template/send and subscribe/bizsend and 45015 on
// custom/send, and leaves user/get (whose cursor still accepts them); a
// follow brings them back at their place; a new user's follow (by a scan)
// adds them at the end. Other accounts keep their followers.
func TestUnfollowWithRequireFollower(t *testing.T) {
	t.Parallel()
	const two = "wx0000000000000two"
	b := setup(t, Config{
		Accounts:        []Account{{AppID: AppIDDefault, Secret: SecretDefault}, {AppID: two, Secret: "two"}},
		Followers:       3,
		RequireFollower: true,
		PageSize:        2,
	})
	tok := b.token(t)
	m := b.stableToken(t, two, "two", false)
	tok2, _ := m["access_token"].(string)
	all := b.srv.FollowerOpenIDs()
	require.Len(t, all, 3)
	f := all[1]
	require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(f, "")))))

	require.NoError(t, b.srv.Interact("", f, InteractUnfollow, time.Time{}))
	requireErr(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(f, ""))), 43004)
	requireErr(t, b.send(t, nameBizSend, tok, mustJSON(t, bizBody(f))), 43004)
	requireErr(t, b.sendText(t, tok, f), 45015)
	require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok2, mustJSON(t, templateBody(f, "")))), "the other account's follower")
	require.Equal(t, []string{all[0], all[2]}, b.srv.FollowerOpenIDs())
	require.Len(t, b.srv.DeliveriesTo(f), 2, "one per account, none refused")

	userGet := func(tok, next string) map[string]any {
		path := "/cgi-bin/user/get?access_token=" + url.QueryEscape(tok)
		if next != "" {
			path += "&next_openid=" + url.QueryEscape(next)
		}
		m := b.get(t, path)
		require.Zero(t, errcode(t, m), "%v", m)
		return m
	}
	p1 := userGet(tok, "")
	require.EqualValues(t, 2, num(t, p1, "total"))
	require.Equal(t, []string{all[0], all[2]}, openIDs(t, p1))
	require.Equal(t, []string{all[2]}, openIDs(t, userGet(tok, f)), "a cursor on a user who left")
	require.EqualValues(t, 3, num(t, userGet(tok2, ""), "total"))

	require.NoError(t, b.srv.Interact("", f, InteractFollow, time.Time{}))
	require.Equal(t, all, b.srv.FollowerOpenIDs())
	require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(f, "")))))

	n := openID("newcomer")
	requireErr(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(n, ""))), 43004)
	require.NoError(t, b.srv.Interact("", n, InteractScan, time.Time{}))
	require.Equal(t, append(append([]string(nil), all...), n), b.srv.FollowerOpenIDs())
	require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(n, "")))))
	last := userGet(tok, all[2])
	require.EqualValues(t, 4, num(t, last, "total"))
	require.Equal(t, []string{n}, openIDs(t, last))

	// A newcomer who leaves again.
	require.NoError(t, b.srv.Interact(two, n, InteractFollow, time.Time{}))
	require.NoError(t, b.srv.Interact("", n, InteractUnfollow, time.Time{}))
	require.Equal(t, all, b.srv.FollowerOpenIDs())
	require.EqualValues(t, 3, num(t, userGet(tok, ""), "total"))
	require.EqualValues(t, 4, num(t, userGet(tok2, ""), "total"))
	require.Zero(t, num(t, userGet(tok, all[2]), "count"), "the newcomer's place is skipped")
}

// TestInteractErrors: bad arguments are errors naming them, and record
// nothing.
func TestInteractErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	u := openID("bad")
	require.ErrorContains(t, b.srv.Interact("wx0000000000nobody", u, InteractMessage, time.Time{}), `app_id "wx0000000000nobody": no such account`)
	require.ErrorContains(t, b.srv.Interact("", "nope", InteractMessage, time.Time{}), `openid "nope": not an openid`)
	require.ErrorContains(t, b.srv.Interact("", u, Interaction(9), time.Time{}), "interaction 9: not one of message, click, follow, scan, unfollow")
	require.ErrorContains(t, b.srv.Interact("", u, 0, time.Time{}), "interaction 0")
	require.Zero(t, b.srv.Stats().Interactions.Recorded)
	require.Equal(t, "Interaction(9)", Interaction(9).String())
	require.ErrorIs(t, b.srv.PushInteraction(t.Context(), "", u, InteractMessage, time.Time{}), ErrNoCallback)
	_, _, ok := b.srv.CSWindow("", u)
	require.False(t, ok, "nothing recorded without a callback")
}

// pushCapture is a callback URL that keeps every push and answers with
// answer.
type pushCapture struct {
	srv    *httptest.Server
	mu     sync.Mutex
	pushes []capturedPush
	answer func(w http.ResponseWriter)
}

type capturedPush struct {
	query url.Values
	body  []byte
}

func startCapture(t *testing.T, answer func(w http.ResponseWriter)) *pushCapture {
	t.Helper()
	c := &pushCapture{answer: answer}
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.pushes = append(c.pushes, capturedPush{query: r.URL.Query(), body: body})
		c.mu.Unlock()
		c.answer(w)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

func (c *pushCapture) last(t *testing.T) capturedPush {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	require.NotEmpty(t, c.pushes)
	return c.pushes[len(c.pushes)-1]
}

// parsePush verifies a captured push's signatures and parses it with
// wxmass's own callback.ParseEvent, decrypting it first in safe mode.
func parsePush(t *testing.T, p capturedPush, mode string) (callback.Event, string) {
	t.Helper()
	q := p.query
	require.Equal(t, callback.Signature(cbToken, q.Get("timestamp"), q.Get("nonce")), q.Get("signature"))
	plain := p.body
	if mode == CallbackSafe {
		var env struct {
			ToUserName string `xml:"ToUserName"`
			Encrypt    string `xml:"Encrypt"`
			From       string `xml:"FromUserName"`
		}
		require.NoError(t, xml.Unmarshal(p.body, &env))
		require.Empty(t, env.From, "safe mode carries only the ciphertext")
		require.Equal(t, "aes", q.Get("encrypt_type"))
		require.Equal(t, callback.Signature(cbToken, q.Get("timestamp"), q.Get("nonce"), env.Encrypt), q.Get("msg_signature"))
		cr, err := callback.NewCrypter(cbKey, AppIDDefault)
		require.NoError(t, err)
		plain, err = cr.Decrypt(env.Encrypt)
		require.NoError(t, err)
	}
	e, err := callback.ParseEvent(plain)
	require.NoError(t, err, "%s", plain)
	require.Equal(t, e.FromUserName, q.Get("openid"))
	return e, string(plain)
}

// TestPushInteraction: every kind of interaction is pushed as WeChat does
// and parses with callback.ParseEvent in plain and safe mode, with the
// account's gh id, the user, the (backdated) time, MsgType and Event; a
// scan by a non-follower is a subscribe with qrscene_, by a follower a
// SCAN. wxmass's callback.Handler accepts every push.
func TestPushInteraction(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{CallbackPlain, CallbackSafe} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			capture := startCapture(t, func(w http.ResponseWriter) { _, _ = io.WriteString(w, "success") })
			cfg := Config{Callback: Callback{URL: capture.srv.URL + "/wx", Token: cbToken, Mode: mode}}
			if mode != CallbackPlain {
				cfg.Callback.AESKey = cbKey
			}
			b := setup(t, cfg)
			u := openID("push" + mode)
			at := b.clock.Now().Add(-90 * time.Minute)
			cases := []struct {
				kind             Interaction
				msgType, event   string
				contains, absent []string
			}{
				{InteractMessage, "text", "", []string{"<Content><![CDATA[hello]]></Content>", "<MsgId>"}, []string{"<Event>"}},
				{InteractClick, "event", "CLICK", []string{"<EventKey><![CDATA[KEY]]></EventKey>"}, nil},
				{InteractScan, "event", "subscribe", []string{"<EventKey><![CDATA[qrscene_123]]></EventKey>", "<Ticket>"}, nil},
				{InteractScan, "event", "SCAN", []string{"<EventKey><![CDATA[123]]></EventKey>", "<Ticket>"}, nil},
				{InteractUnfollow, "event", "unsubscribe", nil, []string{"<EventKey>"}},
				{InteractFollow, "event", "subscribe", nil, []string{"<EventKey>"}},
			}
			for i, tc := range cases {
				require.NoError(t, b.srv.PushInteraction(t.Context(), "", u, tc.kind, at), "case %d", i)
				e, plain := parsePush(t, capture.last(t), mode)
				require.Equal(t, ghID(AppIDDefault), e.ToUserName, "case %d", i)
				require.Equal(t, u, e.FromUserName)
				require.Equal(t, at.Unix(), e.CreateTime, "CreateTime is the interaction's time")
				require.Equal(t, tc.msgType, e.MsgType, "case %d", i)
				require.Equal(t, tc.event, e.Event, "case %d", i)
				require.Equal(t, tc.kind == InteractMessage, e.MsgID != 0, "case %d", i)
				for _, s := range tc.contains {
					require.Contains(t, plain, s, "case %d", i)
				}
				for _, s := range tc.absent {
					require.NotContains(t, plain, s, "case %d", i)
				}
			}
			require.Equal(t, InteractionStats{Recorded: int64(len(cases)), Pushed: int64(len(cases))}, b.srv.Stats().Interactions)
			require.Equal(t, ReceiptStats{}, b.srv.Stats().Receipts, "interactions are not receipts")
			_, ok := b.srv.LastReceipt()
			require.False(t, ok)

			// The same pushes through wxmass's callback handler.
			rcfg := callback.Config{NowFunc: b.clock.Now, Mode: mode}
			if mode != CallbackPlain {
				rcfg.AESKey, rcfg.AppID = secret.New(cbKey), AppIDDefault
			}
			rcv := startReceiver(t, rcfg)
			cfg.NowFunc = b.clock.Now
			cfg.Callback.URL = rcv.srv.URL
			b2 := setup(t, cfg)
			v := openID("handler" + mode)
			for _, kind := range []Interaction{InteractMessage, InteractFollow, InteractClick, InteractScan, InteractUnfollow} {
				require.NoError(t, b2.srv.PushInteraction(t.Context(), AppIDDefault, v, kind, time.Time{}), kind.String())
				e := rcv.next(t)
				require.Equal(t, v, e.FromUserName)
				require.Equal(t, b.clock.Now().Unix(), e.CreateTime)
			}
		})
	}
}

// TestPushInteractionAnswers: a push counts as pushed only when answered
// HTTP 200 with "success" or nothing; otherwise PushInteraction returns a
// *PushError, and the interaction is recorded all the same.
func TestPushInteractionAnswers(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		body   string
		ok     bool
	}{
		{"success", 200, "success", true},
		{"success and newline", 200, "success\n", true},
		{"empty", 200, "", true},
		{"other text", 200, "ok", false},
		{"passive reply", 200, "<xml><MsgType>text</MsgType></xml>", false},
		{"500", 500, "success", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			capture := startCapture(t, func(w http.ResponseWriter) {
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			b := setup(t, Config{CSWindow: true, Callback: Callback{URL: capture.srv.URL, Token: cbToken}})
			u := openID("ans")
			err := b.srv.PushInteraction(t.Context(), "", u, InteractMessage, time.Time{})
			st := b.srv.Stats().Interactions
			if tc.ok {
				require.NoError(t, err)
				require.Equal(t, InteractionStats{Recorded: 1, Pushed: 1}, st)
			} else {
				var pe *PushError
				require.ErrorAs(t, err, &pe)
				require.Equal(t, tc.status, pe.StatusCode)
				require.Equal(t, InteractionStats{Recorded: 1, PushFailed: 1}, st)
			}
			_, _, ok := b.srv.CSWindow("", u)
			require.True(t, ok, "recorded whatever the answer")
		})
	}
}

// TestPushInteractionAfterStop: after Stop nothing is pushed or recorded.
func TestPushInteractionAfterStop(t *testing.T) {
	t.Parallel()
	capture := startCapture(t, func(w http.ResponseWriter) {})
	b := setup(t, Config{Callback: Callback{URL: capture.srv.URL, Token: cbToken}})
	require.NoError(t, b.srv.Stop(context.Background()))
	err := b.srv.PushInteraction(t.Context(), "", openID("stopped"), InteractFollow, time.Time{})
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrNoCallback))
	require.Zero(t, b.srv.Stats().Interactions.Recorded)
}
