package callback_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/wechat/callback"
)

// testNow is the handler's clock in these tests.
var testNow = time.Unix(1_773_000_000, 0)

const testOpenID = "oia2TjuEGTNoeX76QEjQNrcURxG8"

// testBundle is a Handler served over real HTTP, with the events it passed
// to OnEvent, an in-memory Dedupe and ClaimRequest, and the refusals it
// reported.
type testBundle struct {
	srv     *httptest.Server
	cfg     callback.Config
	logs    *observer.ObservedLogs
	mu      sync.Mutex
	events  []callback.Event
	fail    error // OnEvent's answer
	seen    map[string]bool
	dedupe  int               // Dedupe calls
	claims  map[string]string // ClaimRequest's record: key -> state|digest
	refused map[string]int    // RefusedFunc's reports
}

// setup serves a handler for cfg, whose zero fields get the test's token,
// keys, appid, clock, OnEvent and Dedupe.
func setup(t *testing.T, cfg callback.Config) *testBundle {
	t.Helper()
	b := &testBundle{seen: map[string]bool{}, claims: map[string]string{}, refused: map[string]int{}}
	if cfg.Token == "" {
		cfg.Token = testToken
	}
	if cfg.AppID == "" {
		cfg.AppID = testAppID
	}
	if cfg.AESKey.IsZero() && cfg.Mode != "" && cfg.Mode != callback.ModePlain {
		cfg.AESKey = secret.New(testKey)
	}
	if cfg.NowFunc == nil {
		cfg.NowFunc = func() time.Time { return testNow }
	}
	if cfg.OnEvent == nil {
		cfg.OnEvent = func(_ context.Context, e callback.Event) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.events = append(b.events, e)
			return b.fail
		}
	}
	if cfg.Dedupe == nil {
		cfg.Dedupe = func(_ context.Context, key string) (bool, error) {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.dedupe++
			if b.seen[key] {
				return false, nil
			}
			b.seen[key] = true
			return true, nil
		}
		cfg.Release = func(_ context.Context, key string) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			delete(b.seen, key)
			return nil
		}
	}
	if cfg.ClaimRequest == nil {
		// As rdb.ClaimPush, without leases: a processing claim stays busy.
		cfg.ClaimRequest = func(_ context.Context, key, digest string, _, _ time.Duration) (callback.Claim, error) {
			b.mu.Lock()
			defer b.mu.Unlock()
			cur, ok := b.claims[key]
			if !ok {
				b.claims[key] = "p|" + digest
				return callback.ClaimFirst, nil
			}
			state, d, _ := strings.Cut(cur, "|")
			switch {
			case d != digest:
				return callback.ClaimReplay, nil
			case state == "d":
				return callback.ClaimDone, nil
			case state == "p":
				return callback.ClaimBusy, nil
			}
			b.claims[key] = "p|" + digest
			return callback.ClaimFirst, nil
		}
		cfg.SettleRequest = func(_ context.Context, key, digest string, processed bool) error {
			b.mu.Lock()
			defer b.mu.Unlock()
			if b.claims[key] == "p|"+digest {
				state := "r"
				if processed {
					state = "d"
				}
				b.claims[key] = state + "|" + digest
			}
			return nil
		}
	}
	if cfg.RefusedFunc == nil {
		cfg.RefusedFunc = func(reason string) {
			b.mu.Lock()
			defer b.mu.Unlock()
			b.refused[reason]++
		}
	}
	core, logs := observer.New(zap.DebugLevel)
	cfg.Logger = zap.New(core)
	h, err := callback.NewHandler(cfg)
	require.NoError(t, err)
	b.srv = httptest.NewServer(h)
	t.Cleanup(b.srv.Close)
	b.cfg, b.logs = cfg, logs
	return b
}

func (b *testBundle) received() []callback.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]callback.Event(nil), b.events...)
}

func (b *testBundle) dedupeCalls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dedupe
}

// refusals returns the reasons RefusedFunc reported, with their counts.
func (b *testBundle) refusals() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.refused)
}

func (b *testBundle) setFail(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fail = err
}

// signed returns the query of a push signed with token at time at.
func signed(token string, at time.Time, nonce string) url.Values {
	ts := strconv.FormatInt(at.Unix(), 10)
	return url.Values{"signature": {callback.Signature(token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}}
}

// nonces makes each encrypted push's nonce unique, as WeChat's are.
var nonces atomic.Int64

// encrypted returns the query and body of a safe-mode push of msg.
func encrypted(t *testing.T, c *callback.Crypter, token string, at time.Time, msg string) (url.Values, string) {
	t.Helper()
	enc := mustEncrypt(t, c, msg)
	q := signed(token, at, strconv.FormatInt(5812+nonces.Add(1), 10))
	q.Set("encrypt_type", "aes")
	q.Set("msg_signature", callback.Signature(token, q.Get("timestamp"), q.Get("nonce"), enc))
	q.Set("openid", testOpenID)
	return q, "<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>"
}

func (b *testBundle) do(t *testing.T, method string, q url.Values, body string) (int, string, http.Header) {
	t.Helper()
	var rd io.Reader
	if method == http.MethodPost {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, b.srv.URL+"/wechat/callback?"+q.Encode(), rd)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "text/xml")
	resp, err := b.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(raw), resp.Header
}

func (b *testBundle) post(t *testing.T, q url.Values, body string) (int, string) {
	t.Helper()
	status, raw, _ := b.do(t, http.MethodPost, q, body)
	return status, raw
}

// TestHandlerVerifiesURL: WeChat's documented URL check is answered with
// echostr verbatim; a wrong signature gets 401 and no echo.
func TestHandlerVerifiesURL(t *testing.T) {
	t.Parallel()
	b := setup(t, callback.Config{Token: "AAAAA", NowFunc: func() time.Time { return time.Unix(1714036504, 0) }})
	q := url.Values{
		"signature": {"f464b24fc39322e44b38aa78f5edd27bd1441696"}, "echostr": {"4375120948345356249"},
		"timestamp": {"1714036504"}, "nonce": {"1514711492"},
	}
	status, body, h := b.do(t, http.MethodGet, q, "")
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "4375120948345356249", body)
	require.Equal(t, "text/plain; charset=utf-8", h.Get("Content-Type"))

	q.Set("echostr", "<b>&weird echo</b>")
	_, body, _ = b.do(t, http.MethodGet, q, "")
	require.Equal(t, "<b>&weird echo</b>", body, "verbatim")

	q.Set("signature", strings.Repeat("0", 40))
	status, body, _ = b.do(t, http.MethodGet, q, "")
	require.Equal(t, http.StatusUnauthorized, status)
	require.NotContains(t, body, "echo")

	q = signed("AAAAA", time.Unix(1714036504, 0), "1")
	status, body, _ = b.do(t, http.MethodGet, q, "")
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, body, "missing echostr")

	status, _, h = b.do(t, http.MethodPut, q, "")
	require.Equal(t, http.StatusMethodNotAllowed, status)
	require.Equal(t, "GET, POST", h.Get("Allow"))
}

// TestHandlerPlainPost: a signed plaintext receipt reaches OnEvent once,
// parsed, and is answered "success"; OnEvent's context ends within
// EventTimeout.
func TestHandlerPlainPost(t *testing.T) {
	t.Parallel()
	deadline := make(chan time.Duration, 1)
	var b *testBundle
	b = setup(t, callback.Config{OnEvent: func(ctx context.Context, e callback.Event) error {
		d, ok := ctx.Deadline()
		require.True(t, ok)
		deadline <- time.Until(d)
		b.mu.Lock()
		defer b.mu.Unlock()
		b.events = append(b.events, e)
		return nil
	}})
	status, body := b.post(t, signed(testToken, testNow, "77"), receiptXML(testOpenID, 200163836, "failed: user block", testNow.Unix()))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "success", body)
	require.Equal(t, []callback.Event{{
		ToUserName: "gh_7f083739789a", FromUserName: testOpenID, CreateTime: testNow.Unix(),
		MsgType: "event", Event: "TEMPLATESENDJOBFINISH", MsgID: 200163836, Status: "failed: user block",
		Delivery: callback.DeliveryFailed, Reason: "user block",
	}}, b.received())
	d := <-deadline
	require.Positive(t, d)
	require.LessOrEqual(t, d, callback.EventTimeoutDefault)
}

// TestHandlerDedupesReplay: the same push sent again (WeChat's retry, or a
// replay of the captured request) is answered "success" without calling
// OnEvent again; a different msgid is a new event.
func TestHandlerDedupesReplay(t *testing.T) {
	t.Parallel()
	b := setup(t, callback.Config{})
	q := signed(testToken, testNow, "1")
	body := receiptXML(testOpenID, 42, "success", testNow.Unix())
	for range 3 {
		status, resp := b.post(t, q, body)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "success", resp)
	}
	require.Len(t, b.received(), 1)
	status, _ := b.post(t, signed(testToken, testNow, "2"), receiptXML(testOpenID, 43, "success", testNow.Unix()))
	require.Equal(t, http.StatusOK, status)
	require.Len(t, b.received(), 2)
}

// TestHandlerRetriesFailedEvent: an OnEvent error answers 500 and gives the
// dedupe key back, so WeChat's retry is processed.
func TestHandlerRetriesFailedEvent(t *testing.T) {
	t.Parallel()
	b := setup(t, callback.Config{})
	b.setFail(errors.New("redis down"))
	q := signed(testToken, testNow, "1")
	body := receiptXML(testOpenID, 42, "success", testNow.Unix())
	status, resp := b.post(t, q, body)
	require.Equal(t, http.StatusInternalServerError, status)
	require.NotContains(t, resp, "redis down", "internal errors stay in the log")
	b.setFail(nil)
	status, _ = b.post(t, q, body)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, b.received(), 2, "the retry reached OnEvent")
	status, _ = b.post(t, q, body)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, b.received(), 2, "and was then recorded")

	// A failing Dedupe answers 500 and calls nothing.
	b2 := setup(t, callback.Config{
		Dedupe:  func(context.Context, string) (bool, error) { return false, errors.New("down") },
		Release: func(context.Context, string) error { return nil },
	})
	status, _ = b2.post(t, q, body)
	require.Equal(t, http.StatusInternalServerError, status)
	require.Empty(t, b2.received())
}

// TestHandlerRefusesBadSignatures: a forged, missing or wrongly keyed
// signature, and a timestamp outside the window either way, get 401 with a
// short reason, and neither Dedupe nor OnEvent is called.
func TestHandlerRefusesBadSignatures(t *testing.T) {
	t.Parallel()
	b := setup(t, callback.Config{})
	body := receiptXML(testOpenID, 42, "success", testNow.Unix())
	forged := signed(testToken, testNow, "1")
	forged.Set("signature", callback.Signature("guessed-token", forged.Get("timestamp"), "1"))
	tamperedNonce := signed(testToken, testNow, "1")
	tamperedNonce.Set("nonce", "2")
	for name, tc := range map[string]struct {
		q    url.Values
		want string
	}{
		"forged":         {forged, "bad signature"},
		"other nonce":    {tamperedNonce, "bad signature"},
		"missing":        {url.Values{"timestamp": {"1"}, "nonce": {"1"}}, "missing signature, timestamp or nonce"},
		"no query":       {url.Values{}, "missing signature, timestamp or nonce"},
		"stale":          {signed(testToken, testNow.Add(-callback.TimestampWindowDefault-time.Second), "1"), "timestamp outside the 5m0s window"},
		"future":         {signed(testToken, testNow.Add(callback.TimestampWindowDefault+time.Second), "1"), "timestamp outside the 5m0s window"},
		"bad timestamp":  {url.Values{"signature": {callback.Signature(testToken, "soon", "1")}, "timestamp": {"soon"}, "nonce": {"1"}}, "timestamp is not a number"},
		"upper-case sig": {url.Values{"signature": {strings.ToUpper(callback.Signature(testToken, "x", "1"))}, "timestamp": {"x"}, "nonce": {"1"}}, "timestamp is not a number"},
	} {
		status, resp := b.post(t, tc.q, body)
		require.Equal(t, http.StatusUnauthorized, status, name)
		require.Equal(t, tc.want, strings.TrimSpace(resp), name)
	}
	require.Empty(t, b.received())
	require.Zero(t, b.dedupeCalls())

	// Inside the window either way is accepted.
	status, _ := b.post(t, signed(testToken, testNow.Add(-callback.TimestampWindowDefault+time.Second), "1"), body)
	require.Equal(t, http.StatusOK, status)
}

// TestHandlerSafeMode: an encrypted push decrypts and reaches OnEvent; a
// plaintext push, a tampered ciphertext, a missing msg_signature and a
// ciphertext for another appid are refused and call nothing.
func TestHandlerSafeMode(t *testing.T) {
	t.Parallel()
	b := setup(t, callback.Config{Mode: callback.ModeSafe})
	c := newCrypter(t, testKey, testAppID)
	q, body := encrypted(t, c, testToken, testNow, receiptXML(testOpenID, 9, "success", testNow.Unix()))
	status, resp := b.post(t, q, body)
	require.Equal(t, http.StatusOK, status, resp)
	require.Equal(t, "success", resp)
	got := b.received()
	require.Len(t, got, 1)
	require.Equal(t, int64(9), got[0].MsgID)
	require.Equal(t, callback.DeliveryDelivered, got[0].Delivery)

	refused := func(q url.Values, body string, wantStatus int, wantReason string) {
		t.Helper()
		status, resp := b.post(t, q, body)
		require.Equal(t, wantStatus, status, resp)
		require.Contains(t, resp, wantReason)
	}
	refused(signed(testToken, testNow, "3"), receiptXML(testOpenID, 10, "success", testNow.Unix()), http.StatusBadRequest, "plaintext push refused in safe mode")

	q, body = encrypted(t, c, testToken, testNow, receiptXML(testOpenID, 11, "success", testNow.Unix()))
	tampered := strings.Replace(body, "<Encrypt><![CDATA[", "<Encrypt><![CDATA[AAAA", 1)
	refused(q, tampered, http.StatusUnauthorized, "bad msg_signature")
	noMsgSig := url.Values{}
	for k, v := range q {
		noMsgSig[k] = v
	}
	noMsgSig.Del("msg_signature")
	refused(noMsgSig, body, http.StatusUnauthorized, "missing msg_signature")
	refused(q, "<xml><ToUserName>gh</ToUserName></xml>", http.StatusBadRequest, "without <Encrypt>")

	// Signed correctly, encrypted with the right key, but for another
	// account: refused.
	other := newCrypter(t, testKey, "wx00000000000fake2")
	q, body = encrypted(t, other, testToken, testNow, receiptXML(testOpenID, 12, "success", testNow.Unix()))
	refused(q, body, http.StatusForbidden, "another appid")

	// A key we do not have: the ciphertext is garbage to us.
	q, body = encrypted(t, newCrypter(t, testOldKey, testAppID), testToken, testNow, receiptXML(testOpenID, 13, "success", testNow.Unix()))
	refused(q, body, http.StatusBadRequest, "invalid ciphertext")

	// Encrypted garbage that is not a push.
	q, body = encrypted(t, c, testToken, testNow, "hello")
	refused(q, body, http.StatusBadRequest, "decrypted push")

	q.Set("encrypt_type", "rsa")
	refused(q, body, http.StatusBadRequest, `unsupported encrypt_type "rsa"`)

	require.Len(t, b.received(), 1, "nothing refused reached OnEvent")
}

// TestHandlerModes: compatible mode accepts plaintext and encrypted pushes;
// plain mode refuses encrypted ones; a previous key still decrypts.
func TestHandlerModes(t *testing.T) {
	t.Parallel()
	b := setup(t, callback.Config{Mode: callback.ModeCompatible, PreviousAESKey: secret.New(testOldKey)})
	status, _ := b.post(t, signed(testToken, testNow, "1"), receiptXML(testOpenID, 1, "success", testNow.Unix()))
	require.Equal(t, http.StatusOK, status)
	q, body := encrypted(t, newCrypter(t, testKey, testAppID), testToken, testNow, receiptXML(testOpenID, 2, "success", testNow.Unix()))
	status, _ = b.post(t, q, body)
	require.Equal(t, http.StatusOK, status)
	q, body = encrypted(t, newCrypter(t, testOldKey, testAppID), testToken, testNow, receiptXML(testOpenID, 3, "success", testNow.Unix()))
	status, _ = b.post(t, q, body)
	require.Equal(t, http.StatusOK, status, "the previous key decrypts")
	require.Len(t, b.received(), 3)

	plain := setup(t, callback.Config{Mode: callback.ModePlain, AESKey: secret.New(testKey)})
	status, resp := plain.post(t, q, body)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, resp, "encrypted push refused in plain mode")
	require.Empty(t, plain.received())
}

// TestHandlerOfficialPythonSample: the compatible-mode push of WeChat's
// official Python sample passes the handler (its msg_signature and
// ciphertext are published; the plain signature is computed, as the sample
// gives none).
func TestHandlerOfficialPythonSample(t *testing.T) {
	t.Parallel()
	b := setup(t, callback.Config{
		Token: "spamtest", AESKey: secret.New("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"), AppID: "wx2c2769f8efd9abc2",
		Mode: callback.ModeCompatible, NowFunc: func() time.Time { return time.Unix(1409735669, 0) },
	})
	const enc = "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE="
	body := "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>"
	q := url.Values{
		"timestamp": {"1409735669"}, "nonce": {"1320562132"}, "encrypt_type": {"aes"},
		"msg_signature": {"5d197aaffba7e9b25a30732f161a50dee96bd5fa"},
		"signature":     {callback.Signature("spamtest", "1409735669", "1320562132")},
	}
	status, resp := b.post(t, q, body)
	require.Equal(t, http.StatusOK, status, resp)
	got := b.received()
	require.Len(t, got, 1)
	require.Equal(t, "oyORnuP8q7ou2gfYjqLzSIWZf0rs", got[0].FromUserName)
	require.Equal(t, int64(6054768590064713728), got[0].MsgID)
}

// TestHandlerRefusesBadBodies: oversize bodies get 413 and malformed ones
// 400 naming the problem; nothing is called.
func TestHandlerRefusesBadBodies(t *testing.T) {
	t.Parallel()
	b := setup(t, callback.Config{MaxBodyBytes: 1024})
	q := signed(testToken, testNow, "1")
	status, resp := b.post(t, q, "<xml>"+strings.Repeat(" ", 2048)+"</xml>")
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	require.Contains(t, resp, "body larger than 1024 bytes")

	for body, want := range map[string]string{
		"":                                       "empty body",
		"{\"MsgType\":\"event\"}":                "malformed push",
		"<xml><ToUserName>gh</ToUserName></xml>": "missing <FromUserName>",
		strings.Replace(receiptXML(testOpenID, 1, "success", 1), "<CreateTime>1</CreateTime>", "<CreateTime>x</CreateTime>", 1): `<CreateTime> "x"`,
	} {
		status, resp := b.post(t, q, body)
		require.Equal(t, http.StatusBadRequest, status, body)
		require.Contains(t, resp, want, body)
	}
	require.Empty(t, b.received())
	require.Zero(t, b.dedupeCalls())
}

// TestHandlerLogsNoSecrets: the handler's logs carry masked openids and
// never the token, the keys or a raw openid.
func TestHandlerLogsNoSecrets(t *testing.T) {
	t.Parallel()
	b := setup(t, callback.Config{Mode: callback.ModeSafe})
	q, body := encrypted(t, newCrypter(t, testKey, testAppID), testToken, testNow, receiptXML(testOpenID, 5, "failed:user block", testNow.Unix()))
	status, _ := b.post(t, q, body)
	require.Equal(t, http.StatusOK, status)
	b.setFail(errors.New("boom"))
	q, body = encrypted(t, newCrypter(t, testKey, testAppID), testToken, testNow, receiptXML(testOpenID, 6, "success", testNow.Unix()))
	status, _ = b.post(t, q, body)
	require.Equal(t, http.StatusInternalServerError, status)
	status, _ = b.post(t, signed("forged", testNow, "1"), body)
	require.Equal(t, http.StatusUnauthorized, status)

	entries := b.logs.All()
	require.NotEmpty(t, entries)
	masked := false
	for _, e := range entries {
		line := e.Message + fmt.Sprint(e.ContextMap())
		for _, s := range []string{testToken, testKey[:12], testOpenID, q.Get("signature")} {
			require.NotContains(t, line, s)
		}
		if e.ContextMap()["openid"] == "oia2…RxG8" {
			masked = true
		}
	}
	require.True(t, masked, "events are logged with the masked openid")
}

// TestNewHandlerConfigErrors: invalid configurations name the field and
// never show a key.
func TestNewHandlerConfigErrors(t *testing.T) {
	t.Parallel()
	on := func(context.Context, callback.Event) error { return nil }
	for want, cfg := range map[string]callback.Config{
		"Config.Token: empty":   {OnEvent: on},
		"Config.OnEvent: nil":   {Token: "t"},
		`Config.Mode: "secure"`: {Token: "t", OnEvent: on, Mode: "secure"},
		"Config.AESKey: empty":  {Token: "t", OnEvent: on, Mode: callback.ModeSafe},
		"Config.Release: nil":   {Token: "t", OnEvent: on, Dedupe: func(context.Context, string) (bool, error) { return true, nil }},
		"Config.AESKey/AppID":   {Token: "t", OnEvent: on, Mode: callback.ModeSafe, AESKey: secret.New(testKey[:40] + "!!!"), AppID: testAppID},
		"Config.PreviousAESKey": {Token: "t", OnEvent: on, Mode: callback.ModeSafe, AESKey: secret.New(testKey), PreviousAESKey: secret.New(testOldKey[:42]), AppID: testAppID},
		"callback: empty appid": {Token: "t", OnEvent: on, Mode: callback.ModeCompatible, AESKey: secret.New(testKey)},
	} {
		_, err := callback.NewHandler(cfg)
		require.ErrorContains(t, err, want)
		require.NotContains(t, err.Error(), testKey[:20])
		require.NotContains(t, err.Error(), testOldKey[:20])
	}
	cfg := callback.Config{}.WithDefaults()
	require.Equal(t, callback.ModePlain, cfg.Mode)
	require.Equal(t, callback.TimestampWindowDefault, cfg.TimestampWindow)
	require.Equal(t, callback.EventTimeoutDefault, cfg.EventTimeout)
	require.EqualValues(t, callback.MaxBodyBytesDefault, cfg.MaxBodyBytes)
	require.NotNil(t, cfg.NowFunc)
	require.NotNil(t, cfg.Logger)
}
