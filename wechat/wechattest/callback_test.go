package wechattest

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/wechat/callback"
)

const (
	cbToken = "cbtoken-5f1e"
	cbKey   = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
)

// receiver is a callback.Handler served over HTTP for the fake's pushes; it
// hands every event it accepts to events.
type receiver struct {
	srv    *httptest.Server
	events chan callback.Event
}

func startReceiver(t *testing.T, cfg callback.Config) *receiver {
	t.Helper()
	r := &receiver{events: make(chan callback.Event, 256)}
	if cfg.Token == "" {
		cfg.Token = cbToken
	}
	if cfg.OnEvent == nil {
		cfg.OnEvent = func(_ context.Context, e callback.Event) error {
			r.events <- e
			return nil
		}
	}
	h, err := callback.NewHandler(cfg)
	require.NoError(t, err)
	r.srv = httptest.NewServer(h)
	t.Cleanup(r.srv.Close)
	return r
}

// next returns the next event the receiver accepted.
func (r *receiver) next(t *testing.T) callback.Event {
	t.Helper()
	select {
	case e := <-r.events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no receipt arrived within 10s")
		return callback.Event{}
	}
}

// drain reads r's body, so that the server watches the connection and ends
// r's context when the client hangs up.
func drain(r *http.Request) { _, _ = io.Copy(io.Discard, r.Body) }

// sendTemplate sends a template message to openid and returns its msgid.
func (b *testBundle) sendTemplate(t *testing.T, tok, openid, clientMsgID string) int64 {
	t.Helper()
	m := b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(openid, clientMsgID)))
	require.Zero(t, errcode(t, m), "%v", m)
	return num(t, m, "msgid")
}

// eventually waits until cond holds, polling, for at most 10 seconds.
func eventually(t *testing.T, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, 5*time.Millisecond, msg)
}

// TestCallbackPushesReceipts: every accepted template send is followed by
// a signed plaintext TEMPLATESENDJOBFINISH with its msgid, "success" or,
// for a Blocked openid, "failed:user block"; a send answered from the
// client_msg_id window pushes nothing.
func TestCallbackPushesReceipts(t *testing.T) {
	t.Parallel()
	clock := NewManualClock(testStart())
	rcv := startReceiver(t, callback.Config{NowFunc: clock.Now})
	blocked := openID("blk")
	b := setup(t, Config{NowFunc: clock.Now, Callback: Callback{URL: rcv.srv.URL + "/wx?acct=1", Token: cbToken, Blocked: []string{blocked}}})
	tok := b.token(t)

	want := map[int64]string{}
	for _, o := range []string{openID("a"), blocked, openID("c")} {
		want[b.sendTemplate(t, tok, o, "cm-"+o)] = o
	}
	b.sendTemplate(t, tok, openID("a"), "cm-"+openID("a")) // deduped: no second receipt
	for range 3 {
		e := rcv.next(t)
		require.Equal(t, want[e.MsgID], e.FromUserName)
		require.Equal(t, ghID(AppIDDefault), e.ToUserName)
		require.Equal(t, clock.Now().Unix(), e.CreateTime)
		if e.FromUserName == blocked {
			require.Equal(t, StatusUserBlock, e.Status)
			require.Equal(t, callback.DeliveryFailed, e.Delivery)
			require.Equal(t, callback.ReasonUserBlock, e.Reason)
		} else {
			require.Equal(t, StatusSuccess, e.Status)
			require.Equal(t, callback.DeliveryDelivered, e.Delivery)
		}
		delete(want, e.MsgID)
	}
	eventually(t, func() bool { return b.srv.Stats().Receipts.Sent == 3 }, "three receipts answered")
	require.Equal(t, ReceiptStats{Queued: 3, Sent: 3, Attempts: 3}, b.srv.Stats().Receipts)
	select {
	case e := <-rcv.events:
		t.Fatalf("unexpected receipt %+v", e)
	default:
	}

	raw, ok := b.srv.LastReceipt()
	require.True(t, ok)
	u, err := url.Parse(raw.URL)
	require.NoError(t, err)
	q := u.Query()
	require.Equal(t, "1", q.Get("acct"), "the URL's own query is kept")
	require.Empty(t, q.Get("encrypt_type"))
	require.Equal(t, callback.Signature(cbToken, q.Get("timestamp"), q.Get("nonce")), q.Get("signature"))
	require.Equal(t, "text/xml", raw.ContentType)
	require.Contains(t, string(raw.Body), "<Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>")
}

// TestCallbackSafeAndCompatible: in safe mode the body carries only the
// ciphertext and the query msg_signature; in compatible mode the plaintext
// fields as well; the receiver accepts both.
func TestCallbackSafeAndCompatible(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{CallbackSafe, CallbackCompatible} {
		clock := NewManualClock(testStart())
		rcv := startReceiver(t, callback.Config{NowFunc: clock.Now, Mode: mode, AESKey: secret.New(cbKey), AppID: AppIDDefault})
		b := setup(t, Config{NowFunc: clock.Now, Callback: Callback{URL: rcv.srv.URL, Token: cbToken, AESKey: cbKey, Mode: mode}})
		o := openID("s")
		msgid := b.sendTemplate(t, b.token(t), o, "")
		e := rcv.next(t)
		require.Equal(t, msgid, e.MsgID, mode)
		require.Equal(t, o, e.FromUserName, mode)

		raw, ok := b.srv.LastReceipt()
		require.True(t, ok)
		u, err := url.Parse(raw.URL)
		require.NoError(t, err)
		q := u.Query()
		require.Equal(t, "aes", q.Get("encrypt_type"), mode)
		require.Contains(t, string(raw.Body), "<Encrypt><![CDATA[", mode)
		require.Equal(t, mode == CallbackCompatible, bytes.Contains(raw.Body, []byte("<FromUserName>")), mode)
		require.Equal(t, mode == CallbackCompatible, bytes.Contains(raw.Body, []byte("TEMPLATESENDJOBFINISH")), mode)
	}
}

// TestCallbackWrongAppIDIsRefused: a fake told to encrypt for another appid
// is refused by the receiver, and retried and counted as failed like any
// refused push.
func TestCallbackWrongAppIDIsRefused(t *testing.T) {
	t.Parallel()
	clock := NewManualClock(testStart())
	rcv := startReceiver(t, callback.Config{NowFunc: clock.Now, Mode: CallbackSafe, AESKey: secret.New(cbKey), AppID: AppIDDefault})
	b := setup(t, Config{NowFunc: clock.Now, Callback: Callback{URL: rcv.srv.URL, Token: cbToken, AESKey: cbKey, Mode: CallbackSafe, AppID: "wx00000000000other"}})
	b.sendTemplate(t, b.token(t), openID("w"), "")
	eventually(t, func() bool { return b.srv.Stats().Receipts.Failed == 1 }, "the push fails")
	require.Equal(t, ReceiptStats{Queued: 1, Failed: 1, Attempts: 1 + CallbackRetries}, b.srv.Stats().Receipts)
	require.Empty(t, rcv.events)
}

// TestCallbackRetries: a push answered with an error status, or not
// answered within Timeout, is sent again, up to CallbackRetries times.
func TestCallbackRetries(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	const failFirst = 2
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r)
		switch n := calls.Add(1); {
		case n == 1:
			// Too slow: the fake gives up on this attempt.
			select {
			case <-r.Context().Done():
			case <-hang:
			}
		case n <= failFirst:
			http.Error(w, "busy", http.StatusServiceUnavailable)
		default:
			_, _ = w.Write([]byte("success"))
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(hang) }) // before srv.Close, which waits for handlers
	b := setup(t, Config{Callback: Callback{URL: srv.URL, Token: cbToken, Timeout: 50 * time.Millisecond}})
	b.sendTemplate(t, b.token(t), openID("r"), "")
	eventually(t, func() bool { return b.srv.Stats().Receipts.Sent == 1 }, "the third attempt succeeds")
	require.Equal(t, ReceiptStats{Queued: 1, Sent: 1, Attempts: 3}, b.srv.Stats().Receipts)
	require.EqualValues(t, 3, calls.Load())
}

// TestCallbackGivesUp: a receiver that always refuses gets exactly three
// attempts per receipt, and the receipt is counted as failed.
func TestCallbackGivesUp(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	b := setup(t, Config{Callback: Callback{URL: srv.URL, Token: cbToken}})
	b.sendTemplate(t, b.token(t), openID("g"), "")
	eventually(t, func() bool { return b.srv.Stats().Receipts.Failed == 1 }, "given up")
	require.EqualValues(t, 1+CallbackRetries, calls.Load())
	require.Equal(t, ReceiptStats{Queued: 1, Failed: 1, Attempts: 3}, b.srv.Stats().Receipts)
}

// TestCallbackConcurrencyBound: no more than Concurrency pushes are in
// flight at once, and all of them arrive.
func TestCallbackConcurrencyBound(t *testing.T) {
	t.Parallel()
	const n, limit = 12, 3
	var inflight, peak, done atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r)
		cur := inflight.Add(1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		inflight.Add(-1)
		done.Add(1)
		_, _ = w.Write([]byte("success"))
	}))
	t.Cleanup(srv.Close)
	b := setup(t, Config{Callback: Callback{URL: srv.URL, Token: cbToken, Concurrency: limit}})
	tok := b.token(t)
	for i := range n {
		b.sendTemplate(t, tok, openID("c"+string(rune('a'+i))), "")
	}
	eventually(t, func() bool { return inflight.Load() == limit }, "the pool fills")
	close(release)
	eventually(t, func() bool { return b.srv.Stats().Receipts.Sent == n }, "all pushed")
	require.EqualValues(t, limit, peak.Load())
	require.EqualValues(t, n, done.Load())
}

// TestCallbackDelay: a receipt is pushed Delay/TimeScale after its send,
// not before.
func TestCallbackDelay(t *testing.T) {
	t.Parallel()
	rcv := startReceiver(t, callback.Config{TimestampWindow: -1})
	b := setup(t, Config{TimeScale: 10, Callback: Callback{URL: rcv.srv.URL, Token: cbToken, Delay: 2 * time.Second}})
	tok := b.token(t)
	start := time.Now()
	b.sendTemplate(t, tok, openID("d"), "")
	rcv.next(t)
	require.GreaterOrEqual(t, time.Since(start), 200*time.Millisecond)
}

// TestCallbackStopWaits: Stop returns only after the push in flight was
// answered; pushes queued after Stop are dropped; a Stop whose context ends
// cancels what is left and says so.
func TestCallbackStopWaits(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r)
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		_, _ = w.Write([]byte("success"))
	}))
	t.Cleanup(srv.Close)
	b := setup(t, Config{Callback: Callback{URL: srv.URL, Token: cbToken}})
	tok := b.token(t)
	b.sendTemplate(t, tok, openID("p"), "")
	<-arrived

	stopped := make(chan error, 1)
	go func() { stopped <- b.srv.Stop(context.Background()) }()
	// Stop refuses new receipts at once...
	eventually(t, func() bool {
		b.sendTemplate(t, tok, openID("q"), "")
		return b.srv.Stats().Receipts.Dropped > 0
	}, "receipts after Stop are dropped")
	// ...but waits for the one in flight.
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned %v with a push in flight", err)
	default:
	}
	close(release)
	require.NoError(t, <-stopped)
	st := b.srv.Stats().Receipts
	require.Positive(t, st.Sent)
	require.Equal(t, st.Queued, st.Sent, "what was queued before Stop was pushed before Stop returned")
	require.Positive(t, st.Dropped)
	require.NoError(t, b.srv.Stop(context.Background()), "idempotent")
	require.ErrorContains(t, b.srv.PushReceipt(t.Context(), 1, openID("x"), StatusSuccess), "stopped")

	// A receiver that never answers: Stop's context decides.
	hung := make(chan struct{}, 1)
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		drain(r)
		hung <- struct{}{}
		<-r.Context().Done()
	}))
	t.Cleanup(hang.Close)
	b2 := setup(t, Config{Callback: Callback{URL: hang.URL, Token: cbToken, Timeout: time.Minute}})
	b2.sendTemplate(t, b2.token(t), openID("h"), "")
	<-hung
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	err := b2.srv.Stop(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.EqualValues(t, 1, b2.srv.Stats().Receipts.Failed, "the cancelled push is failed, not retried")
	require.EqualValues(t, 1, b2.srv.Stats().Receipts.Attempts)

	var nilServer Server
	require.NoError(t, nilServer.Stop(context.Background()), "safe without callbacks")
}

// TestPushReceiptByHand: PushReceipt pushes one receipt on the caller's
// goroutine; LastReceipt can be replayed byte for byte; a refusal is a
// *PushError with the receiver's status.
func TestPushReceiptByHand(t *testing.T) {
	t.Parallel()
	clock := NewManualClock(testStart())
	var seen sync.Map
	var calls atomic.Int32
	rcv := startReceiver(t, callback.Config{
		NowFunc: clock.Now,
		OnEvent: func(context.Context, callback.Event) error { calls.Add(1); return nil },
		Dedupe: func(_ context.Context, key string) (bool, error) {
			_, loaded := seen.LoadOrStore(key, true)
			return !loaded, nil
		},
		Release: func(_ context.Context, key string) error { seen.Delete(key); return nil },
	})
	b := setup(t, Config{NowFunc: clock.Now, Callback: Callback{URL: rcv.srv.URL, Token: cbToken}})
	_, ok := b.srv.LastReceipt()
	require.False(t, ok)

	require.NoError(t, b.srv.PushReceipt(t.Context(), 123, openID("m"), StatusSuccess))
	require.EqualValues(t, 1, calls.Load())
	raw, ok := b.srv.LastReceipt()
	require.True(t, ok)
	resp, err := rcv.srv.Client().Post(raw.URL, raw.ContentType, bytes.NewReader(raw.Body))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.EqualValues(t, 1, calls.Load(), "the replay is deduped")

	// A stale replay is refused outright.
	clock.Advance(callback.TimestampWindowDefault + time.Minute)
	resp, err = rcv.srv.Client().Post(raw.URL, raw.ContentType, bytes.NewReader(raw.Body))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	// A receiver with another token refuses the push.
	other := startReceiver(t, callback.Config{Token: "another", NowFunc: clock.Now})
	b2 := setup(t, Config{NowFunc: clock.Now, Callback: Callback{URL: other.srv.URL, Token: cbToken}})
	err = b2.srv.PushReceipt(t.Context(), 5, openID("m"), StatusSuccess)
	var pe *PushError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, http.StatusUnauthorized, pe.StatusCode)
	require.Contains(t, pe.Body, "bad signature")
	require.Equal(t, ReceiptStats{Failed: 1, Attempts: 1}, b2.srv.Stats().Receipts)

	none := setup(t, Config{})
	require.ErrorIs(t, none.srv.PushReceipt(t.Context(), 1, openID("m"), StatusSuccess), ErrNoCallback)
	_, ok = none.srv.LastReceipt()
	require.False(t, ok)
}

// TestCallbackStatusFunc: StatusFunc decides every receipt's Status, even
// odd ones, which are escaped so that the XML stays well formed.
func TestCallbackStatusFunc(t *testing.T) {
	t.Parallel()
	clock := NewManualClock(testStart())
	rcv := startReceiver(t, callback.Config{NowFunc: clock.Now})
	b := setup(t, Config{NowFunc: clock.Now, Callback: Callback{URL: rcv.srv.URL, Token: cbToken,
		StatusFunc: func(string) string { return "failed: freq]]>limit" }}})
	b.sendTemplate(t, b.token(t), openID("f"), "")
	e := rcv.next(t)
	require.Equal(t, "failed: freq]]>limit", e.Status)
	require.Equal(t, callback.DeliveryFailed, e.Delivery)
}

// TestCallbackConfigErrors: invalid Callback fields are *ConfigError
// values naming the field, and never show the AES key.
func TestCallbackConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cb   Callback
		want string
	}{
		{Callback{Token: "t"}, "Config.Callback.URL: empty, but other Callback fields are set"},
		{Callback{URL: "ftp://x", Token: "t"}, `Config.Callback.URL: "ftp://x" is not an http or https URL`},
		{Callback{URL: "http://", Token: "t"}, "Config.Callback.URL"},
		{Callback{URL: "http://x"}, "Config.Callback.Token: empty"},
		{Callback{URL: "http://x", Token: "t", Mode: "secure"}, `Config.Callback.Mode: "secure"`},
		{Callback{URL: "http://x", Token: "t", Mode: CallbackSafe}, "Config.Callback.AESKey: empty in safe mode"},
		{Callback{URL: "http://x", Token: "t", Mode: CallbackSafe, AESKey: cbKey[:40] + "+/="}, "Config.Callback.AESKey: callback: invalid EncodingAESKey"},
		{Callback{URL: "http://x", Token: "t", AppID: "nope"}, `Config.Callback.AppID: "nope"`},
		{Callback{URL: "http://x", Token: "t", Delay: -time.Second}, "Config.Callback.Delay: -1s is negative"},
		{Callback{URL: "http://x", Token: "t", Timeout: -time.Second}, "Config.Callback.Timeout"},
		{Callback{URL: "http://x", Token: "t", Concurrency: CallbackConcurrencyMax + 1}, "Config.Callback.Concurrency"},
		{Callback{URL: "http://x", Token: "t", Blocked: []string{" "}}, "Config.Callback.Blocked[0]: empty openid"},
	} {
		_, err := New(Config{Callback: tc.cb})
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, tc.want)
		require.ErrorContains(t, err, tc.want)
		require.NotContains(t, err.Error(), cbKey[:20])
	}
}

// TestLoadConfigCallback: the YAML callback block fills Config.Callback,
// and its errors name the key and line.
func TestLoadConfigCallback(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(strings.NewReader(`
callback:
  url: http://127.0.0.1:8080/wechat/callback
  token: tok
  mode: safe
  aes_key: ` + cbKey + `
  delay: 2s
  timeout: 3s
  concurrency: 4
  blocked: [` + openID("b") + `]
`))
	require.NoError(t, err)
	require.Equal(t, Callback{
		URL: "http://127.0.0.1:8080/wechat/callback", Token: "tok", Mode: CallbackSafe, AESKey: cbKey,
		Delay: 2 * time.Second, Timeout: 3 * time.Second, Concurrency: 4, Blocked: []string{openID("b")},
	}, cfg.Callback)

	_, err = LoadConfig(strings.NewReader("callback:\n  url: http://x\n  token: t\n  mode: secure\n"))
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	require.Equal(t, 4, ce.Line)
	require.Equal(t, "callback.mode", ce.Key)
}

// TestCallbackCDATA: values with "]]>" survive the fake's XML.
func TestCallbackCDATA(t *testing.T) {
	t.Parallel()
	e, err := callback.ParseEvent(eventXML("gh_x", "o]]>1", 5, 7, "a]]>b]]>"))
	require.NoError(t, err)
	require.Equal(t, "o]]>1", e.FromUserName)
	require.Equal(t, "a]]>b]]>", e.Status)
}
