package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/monitoring"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/callback"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// fixedToken is a TokenSource holding one access_token.
type fixedToken string

func (s fixedToken) Token(context.Context) (string, error)    { return string(s), nil }
func (s fixedToken) Invalidate(context.Context, string) error { return nil }

// receiverBundle is serve's callback receiver for account "shop" over real
// HTTP, with real Redis, its metrics, the fake WeChat pushing receipts to
// it, and a template campaign whose run has three recipients.
type receiverBundle struct {
	mode, token, aesKey string
	store               *campaigns.Store
	reg                 *prometheus.Registry
	fake                *wechattest.Server
	client              *wechat.Client
	token0              fixedToken
	c                   *campaigns.Campaign
	run                 int
	url                 string // the receiver's URL
	alice, bob, carol   string
}

func setupReceiver(t *testing.T, mode string) *receiverBundle {
	t.Helper()
	b := &receiverBundle{mode: mode, token: "replay-callback-token", aesKey: "Zq8XrT3vLmN0pWd5YbK2sHc7JfG4aE9uQiR1oVxMn6B",
		alice: fmt.Sprintf("oALC%024d", 1), bob: fmt.Sprintf("oBOB%024d", 2), carol: fmt.Sprintf("oCRL%024d", 3)}
	rc := redistest.Client(t, redistest.DBCmd)
	r := rdb.New(rc, redistest.Prefix(t, rc))
	b.store = campaigns.NewStore(r)
	cb := &account.CallbackSpec{Mode: mode, Token: secret.New(b.token)}
	if mode != callback.ModePlain {
		cb.AESKey = secret.New(b.aesKey)
	}
	spec := account.Spec{ID: "shop", AppID: wechattest.AppIDDefault, Secret: secret.New(wechattest.SecretDefault),
		TokenAPI: account.TokenAPIStable, Callback: cb,
		Limits: map[string]ratelimit.Limit{wechat.APITemplateSend: {Rate: 10, Burst: 1}}}
	hub, err := account.NewHub(account.HubConfig{WeChat: wechat.New(), RDB: r}, []account.Spec{spec})
	require.NoError(t, err)
	b.reg = prometheus.NewRegistry()
	metrics, err := monitoring.NewMetrics(b.reg)
	require.NoError(t, err)
	a := &app{log: zap.NewNop()}
	cr, err := a.newCallbackRouter("/wechat/callback", hub, r, metrics)
	require.NoError(t, err)
	srv := httptest.NewServer(cr)
	t.Cleanup(srv.Close)
	b.url = srv.URL + "/wechat/callback/shop"

	fcb := wechattest.Callback{URL: b.url, Token: b.token, Mode: mode}
	if mode != callback.ModePlain {
		fcb.AESKey = b.aesKey
	}
	b.fake = wechattest.Start(t, wechattest.Config{Callback: fcb})
	b.client = wechat.New(wechat.WithBaseURLs(b.fake.URL()), wechat.WithHTTPClient(&http.Client{Transport: wechat.NewTransport(4)}))
	t.Cleanup(b.client.CloseIdleConnections)
	at, err := b.client.StableToken(t.Context(), wechattest.AppIDDefault, secret.New(wechattest.SecretDefault), false)
	require.NoError(t, err)
	b.token0 = fixedToken(at.Token)

	b.c = &campaigns.Campaign{Name: "receipts", Account: "shop", Kind: campaigns.KindTemplate,
		Template: &campaigns.TemplateSpec{TemplateID: wechattest.TemplateIDDefault, Data: map[string]string{"thing1": "订单已发货"}},
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceInline, OpenIDs: []string{b.alice, b.bob, b.carol}}}
	require.NoError(t, b.store.Create(t.Context(), b.c))
	b.run, err = b.store.StartRun(t.Context(), b.c)
	require.NoError(t, err)
	return b
}

// send sends openid its template message through the fake and records it
// sent with the msgid, as the worker does; the fake then pushes its
// receipt.
func (b *receiverBundle) send(t *testing.T, openid string) int64 {
	t.Helper()
	msgid, err := b.client.SendTemplate(t.Context(), b.token0, &wechat.TemplateMessage{
		ToUser: openid, TemplateID: wechattest.TemplateIDDefault, ClientMsgID: b.c.ID + ":1:" + openid,
		Data: map[string]wechat.TemplateValue{"thing1": {Value: "订单已发货"}},
	})
	require.NoError(t, err)
	b.recordSent(t, openid, msgid)
	return msgid
}

func (b *receiverBundle) recordSent(t *testing.T, openid string, msgid int64) {
	t.Helper()
	_, err := b.store.Record(t.Context(), b.c, b.run, openid, campaigns.Outcome{Status: campaigns.OutcomeSent, MsgID: msgid}, campaigns.RecordPlain)
	require.NoError(t, err)
}

// outcome returns openid's status and detail.
func (b *receiverBundle) outcome(t *testing.T, openid string) string {
	t.Helper()
	o, ok, err := b.store.Outcome(t.Context(), b.c.ID, b.run, openid)
	require.NoError(t, err)
	if !ok {
		return ""
	}
	if o.Detail != "" {
		return o.Status + ": " + o.Detail
	}
	return o.Status
}

func (b *receiverBundle) counters(t *testing.T) map[string]int64 {
	t.Helper()
	rec, err := b.store.Run(t.Context(), b.c.ID, b.run)
	require.NoError(t, err)
	return rec.Counters
}

// refused returns the non-zero counts of wxmass_callback_refused_total of account shop by reason,
// as /metrics shows it.
func (b *receiverBundle) refused(t *testing.T) map[string]int {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(b.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	out := map[string]int{}
	re := regexp.MustCompile(`(?m)^wxmass_callback_refused_total\{account="shop",reason="([a-z_]+)"\} (\d+)$`)
	for _, m := range re.FindAllStringSubmatch(rec.Body.String(), -1) {
		n, err := strconv.Atoi(m[2])
		require.NoError(t, err)
		if n != 0 {
			out[m[1]] = n
		}
	}
	return out
}

// refusalSeries returns how many reasons the refusal counter of "shop"
// exports, zero or not.
func (b *receiverBundle) refusalSeries(t *testing.T) int {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(b.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return len(regexp.MustCompile(`(?m)^wxmass_callback_refused_total\{account="shop",`).FindAllString(rec.Body.String(), -1))
}

// post sends a push to the receiver.
func (b *receiverBundle) post(t *testing.T, rawURL string, body []byte) (int, string) {
	t.Helper()
	res, err := http.Post(rawURL, "text/xml", bytes.NewReader(body))
	require.NoError(t, err)
	defer res.Body.Close()
	answer, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, strings.TrimSpace(string(answer))
}

// crypter is the account's.
func (b *receiverBundle) crypter(t *testing.T) *callback.Crypter {
	t.Helper()
	c, err := callback.NewCrypter(b.aesKey, wechattest.AppIDDefault)
	require.NoError(t, err)
	return c
}

// signedPush builds a push of event signed with the account's token (and
// encrypted in safe mode) with a fresh timestamp and nonce, as WeChat
// would, or anyone holding the token.
func (b *receiverBundle) signedPush(t *testing.T, event string, nonce string) (string, []byte) {
	t.Helper()
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	q := url.Values{"signature": {callback.Signature(b.token, ts, nonce)}, "timestamp": {ts}, "nonce": {nonce}}
	body := []byte(event)
	if b.mode == callback.ModeSafe {
		enc, err := b.crypter(t).Encrypt(body)
		require.NoError(t, err)
		q.Set("encrypt_type", "aes")
		q.Set("msg_signature", callback.Signature(b.token, ts, nonce, enc))
		body = []byte("<xml><ToUserName><![CDATA[gh_x]]></ToUserName><Encrypt><![CDATA[" + enc + "]]></Encrypt></xml>")
	}
	return b.url + "?" + q.Encode(), body
}

// receiptEvent is a TEMPLATESENDJOBFINISH push's XML.
func receiptEvent(from string, msgid int64, status string) string {
	return fmt.Sprintf(`<xml><ToUserName><![CDATA[gh_x]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName>`+
		`<CreateTime>%d</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>`+
		`<MsgID>%d</MsgID><Status><![CDATA[%s]]></Status></xml>`, from, time.Now().Unix(), msgid, status)
}

// The attacks of issue 12 against serve's callback receiver, over HTTP
// with real signatures (and AES in safe mode), real Redis and real metrics:
// a captured push's query sent again with another body (another user's
// receipt, a failure), and a validly signed receipt whose FromUserName is
// not its msgid's recipient, change no outcome and are counted in
// wxmass_callback_refused_total; WeChat's honest retry still answers
// success with one effect, and a push whose first processing failed is
// processed when WeChat pushes it again.
func TestCallbackReceiverRefusesReplays(t *testing.T) {
	for _, mode := range []string{callback.ModePlain, callback.ModeSafe} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			b := setupReceiver(t, mode)
			ctx := t.Context()

			// Alice's message and its receipt, through the fake.
			b.send(t, b.alice)
			pollUntil(t, 10*time.Second, 10*time.Millisecond, func() bool { return b.outcome(t, b.alice) == campaigns.OutcomeDelivered },
				"alice's receipt is not applied: %s %+v", b.outcome(t, b.alice), b.fake.Stats().Receipts)
			captured, ok := b.fake.LastReceipt()
			require.True(t, ok)
			// Bob's message was sent; its receipt has not come yet.
			const bobMsgID = int64(7_000_000_000_001)
			b.recordSent(t, b.bob, bobMsgID)
			before := b.counters(t)
			require.Equal(t, campaigns.OutcomeSent, b.outcome(t, b.bob))
			require.Equal(t, map[string]int{}, b.refused(t))
			require.Equal(t, len(callback.RefusedReasons), b.refusalSeries(t), "every reason's counter exists at 0 before the first refusal")

			// 1. Alice's captured query with Bob's failure as the body.
			forged := receiptEvent(b.bob, bobMsgID, "failed:user block")
			switch mode {
			case callback.ModePlain:
				status, answer := b.post(t, captured.URL, []byte(forged))
				require.Equal(t, http.StatusForbidden, status, answer)
				require.Equal(t, "signature already used with another body", answer)
				require.Equal(t, map[string]int{callback.RefusedReplay: 1}, b.refused(t))
			case callback.ModeSafe:
				// A new ciphertext fails msg_signature; the captured one in
				// another envelope is a replay.
				enc, err := b.crypter(t).Encrypt([]byte(forged))
				require.NoError(t, err)
				status, _ := b.post(t, captured.URL, []byte("<xml><Encrypt><![CDATA["+enc+"]]></Encrypt></xml>"))
				require.Equal(t, http.StatusUnauthorized, status)
				status, answer := b.post(t, captured.URL, bytes.Replace(captured.Body, []byte("<ToUserName>"), []byte(" <ToUserName>"), 1))
				require.Equal(t, http.StatusForbidden, status, answer)
				require.Equal(t, map[string]int{callback.RefusedBadSignature: 1, callback.RefusedReplay: 1}, b.refused(t))
			}
			require.Equal(t, campaigns.OutcomeSent, b.outcome(t, b.bob), "bob's outcome did not change")
			require.Equal(t, campaigns.OutcomeDelivered, b.outcome(t, b.alice))
			require.Equal(t, before, b.counters(t))

			// 2. WeChat's retry of Alice's push, byte for byte: success, no
			// second effect.
			status, answer := b.post(t, captured.URL, captured.Body)
			require.Equal(t, http.StatusOK, status)
			require.Equal(t, "success", answer)
			require.Equal(t, before, b.counters(t))

			// 3. A validly signed receipt from Alice about Bob's msgid:
			// answered success (WeChat must not retry it forever), counted,
			// and nothing changes; pushed again, it is not counted twice.
			mismatchURL, mismatchBody := b.signedPush(t, receiptEvent(b.alice, bobMsgID, "failed:user block"), "4242")
			for range 2 {
				status, answer = b.post(t, mismatchURL, mismatchBody)
				require.Equal(t, http.StatusOK, status, answer)
				require.Equal(t, "success", answer)
			}
			require.Equal(t, campaigns.OutcomeSent, b.outcome(t, b.bob), "bob's outcome did not change")
			require.Equal(t, campaigns.OutcomeDelivered, b.outcome(t, b.alice))
			require.Equal(t, before, b.counters(t))
			require.Equal(t, 1, b.refused(t)[callback.RefusedReceiptMismatch])

			// Bob's own receipt still applies.
			bobURL, bobBody := b.signedPush(t, receiptEvent(b.bob, bobMsgID, "failed:user block"), "4343")
			status, _ = b.post(t, bobURL, bobBody)
			require.Equal(t, http.StatusOK, status)
			require.Equal(t, "failed: user block", b.outcome(t, b.bob))

			// 4. Carol's receipt overtakes the record of her send: its
			// processing fails (500) and the request is released; WeChat's
			// push of the same request is processed once recorded, and her
			// query still refuses another body.
			const carolMsgID = int64(7_000_000_000_003)
			var pe *wechattest.PushError
			require.ErrorAs(t, b.fake.PushReceipt(ctx, carolMsgID, b.carol, wechattest.StatusSuccess), &pe)
			require.Equal(t, http.StatusInternalServerError, pe.StatusCode)
			carol, ok := b.fake.LastReceipt()
			require.True(t, ok)
			b.recordSent(t, b.carol, carolMsgID)
			if mode == callback.ModePlain {
				status, _ = b.post(t, carol.URL, []byte(receiptEvent(b.carol, carolMsgID, "failed:user block")))
				require.Equal(t, http.StatusForbidden, status)
			}
			require.Equal(t, campaigns.OutcomeSent, b.outcome(t, b.carol))
			status, answer = b.post(t, carol.URL, carol.Body)
			require.Equal(t, http.StatusOK, status, answer)
			require.Equal(t, campaigns.OutcomeDelivered, b.outcome(t, b.carol))

			c := b.counters(t)
			require.EqualValues(t, 3, c["total"])
			require.EqualValues(t, 2, c["delivered"])
			require.EqualValues(t, 1, c["failed"])
			require.Zero(t, c["sent"])
			got := b.refused(t)
			require.Equal(t, 1, got[callback.RefusedReceiptMismatch])
			require.NotContains(t, got, callback.RefusedInProgress)
		})
	}
}
