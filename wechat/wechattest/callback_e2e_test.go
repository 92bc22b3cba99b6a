package wechattest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/callback"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// staticToken is a TokenSource holding one access_token.
type staticToken string

func (s staticToken) Token(context.Context) (string, error)    { return string(s), nil }
func (s staticToken) Invalidate(context.Context, string) error { return nil }

// TestReceiptsEndToEnd: template messages sent through the fake lead to
// safe-mode TEMPLATESENDJOBFINISH pushes that callback.Handler verifies,
// decrypts and dedupes, and that ApplyReceipt turns into delivered and
// failed outcomes whose counters add up. A push replayed byte for byte, or
// pushed again, changes nothing; forged ones get 401 and change nothing.
func TestReceiptsEndToEnd(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	const (
		token = "e2e-callback-token"
		key   = "Zq8XrT3vLmN0pWd5YbK2sHc7JfG4aE9uQiR1oVxMn6B"
	)
	rc := redistest.Client(t, redistest.DBDefault)
	r := rdb.New(rc, redistest.Prefix(t, rc))
	require.NoError(t, r.CreateCampaign(ctx, "c1", []byte(`{}`), "draft", time.Now()))
	run, err := r.StartRun(ctx, "c1", "running", "running", 3, r.Keys().Audience("c1"), "draft")
	require.NoError(t, err)

	// The receiver, as serve wires it: OnEvent applies receipts, Dedupe is
	// FirstDelivery. OnEvent waits until the worker's outcome records
	// exist, which a real receipt (seconds after the send) always finds.
	seeded := make(chan struct{})
	results := make(chan rdb.ReceiptResult, 16)
	var calls atomic.Int32
	h, err := callback.NewHandler(callback.Config{
		Token: token, AESKey: secret.New(key), AppID: wechattest.AppIDDefault, Mode: callback.ModeSafe,
		OnEvent: func(ctx context.Context, e callback.Event) error {
			calls.Add(1)
			if !e.IsReceipt() {
				return nil
			}
			select {
			case <-seeded:
			case <-ctx.Done():
				return ctx.Err()
			}
			res, err := r.ApplyReceipt(ctx, e.MsgID, e.FromUserName, e.Delivery == callback.DeliveryDelivered, e.Reason)
			if err != nil {
				return err
			}
			results <- res
			return nil
		},
		Dedupe: func(ctx context.Context, key string) (bool, error) {
			return r.FirstDelivery(ctx, key, 10*time.Minute)
		},
		Release: r.ForgetDelivery,
	})
	require.NoError(t, err)
	recv := httptest.NewServer(h)
	t.Cleanup(recv.Close)

	openids := make([]string, 3)
	for i := range openids {
		openids[i] = fmt.Sprintf("oE2E%024d", i)
	}
	fake := wechattest.Start(t, wechattest.Config{Callback: wechattest.Callback{
		URL: recv.URL + "/wechat/callback", Token: token, AESKey: key, Mode: wechattest.CallbackSafe,
		Blocked: []string{openids[1]},
	}})

	// The worker: send, then record "sent" with the msgid.
	client := wechat.New(wechat.WithBaseURLs(fake.URL()), wechat.WithHTTPClient(&http.Client{Transport: wechat.NewTransport(4)}))
	t.Cleanup(client.CloseIdleConnections)
	at, err := client.StableToken(ctx, wechattest.AppIDDefault, secret.New(wechattest.SecretDefault), false)
	require.NoError(t, err)
	msgids := map[string]int64{}
	var settles []rdb.Settle
	for _, o := range openids {
		msgid, err := client.SendTemplate(ctx, staticToken(at.Token), &wechat.TemplateMessage{
			ToUser: o, TemplateID: wechattest.TemplateIDDefault, ClientMsgID: "c1:1:" + o,
			Data: map[string]wechat.TemplateValue{"thing1": {Value: "订单已发货"}},
		})
		require.NoError(t, err)
		msgids[o] = msgid
		settles = append(settles, rdb.Settle{OpenID: o, Outcome: rdb.Outcome{Status: rdb.OutcomeSent, MsgID: msgid}})
	}
	_, err = r.RecordOutcomes(ctx, "c1", run, "completed", settles...)
	require.NoError(t, err)
	close(seeded)

	for range openids {
		select {
		case res := <-results:
			require.True(t, res.Found)
			require.True(t, res.Changed, "%+v", res)
			require.Equal(t, "c1", res.Campaign)
			require.Equal(t, run, res.Run)
		case <-time.After(10 * time.Second):
			t.Fatal("receipts did not arrive within 10s")
		}
	}
	for i, o := range openids {
		out, ok, err := r.GetOutcome(ctx, "c1", run, o)
		require.NoError(t, err)
		require.True(t, ok)
		require.Equal(t, msgids[o], out.MsgID)
		if i == 1 {
			require.Equal(t, rdb.OutcomeFailed, out.Status)
			require.Equal(t, rdb.ClassReceipt, out.Class)
			require.Equal(t, callback.ReasonUserBlock, out.Detail)
		} else {
			require.Equal(t, rdb.OutcomeDelivered, out.Status)
		}
	}
	want := map[string]int64{
		"total": 3, "delivered": 2, "failed": 1, "sent": 0, "class:receipt": 1, "receipt:user block": 1,
	}
	checkCounters := func() {
		t.Helper()
		rec, err := r.GetRun(ctx, "c1", run)
		require.NoError(t, err)
		for k, v := range want {
			require.Equal(t, v, rec.Counters[k], k)
		}
	}
	checkCounters()
	require.Eventually(t, func() bool { return fake.Stats().Receipts.Sent == 3 }, 10*time.Second, 5*time.Millisecond)
	require.EqualValues(t, 3, calls.Load())

	post := func(rawURL string, body []byte) (int, string) {
		t.Helper()
		resp, err := recv.Client().Post(rawURL, "text/xml", bytes.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}

	// Replayed byte for byte: answered success, handled once.
	raw, ok := fake.LastReceipt()
	require.True(t, ok)
	status, body := post(raw.URL, raw.Body)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "success", body)
	// Pushed again as a new request (WeChat's retry): deduped too.
	require.NoError(t, fake.PushReceipt(ctx, msgids[openids[0]], openids[0], wechattest.StatusUserBlock))
	require.EqualValues(t, 3, calls.Load(), "replays never reach OnEvent")
	// And past the dedupe, the outcome's state refuses a second change.
	res, err := r.ApplyReceipt(ctx, msgids[openids[0]], openids[0], false, "user block")
	require.NoError(t, err)
	require.False(t, res.Changed)
	checkCounters()

	// Forged: a guessed signature, or a ciphertext swapped under a valid
	// signature.
	u, err := url.Parse(raw.URL)
	require.NoError(t, err)
	q := u.Query()
	q.Set("signature", callback.Signature("guessed", q.Get("timestamp"), q.Get("nonce")))
	u.RawQuery = q.Encode()
	status, body = post(u.String(), raw.Body)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "bad signature", body)

	other, err := callback.NewCrypter(key, wechattest.AppIDDefault)
	require.NoError(t, err)
	forged, err := other.Encrypt([]byte(strings.Replace(string(mustDecrypt(t, other, raw.Body)), "success", "failed:user block", 1)))
	require.NoError(t, err)
	swapped := bytes.Replace(raw.Body, encryptOf(t, raw.Body), []byte(forged), 1)
	status, body = post(raw.URL, swapped)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "bad msg_signature", body)

	require.EqualValues(t, 3, calls.Load(), "forgeries never reach OnEvent")
	checkCounters()
}

// encryptOf returns the <Encrypt> content of a push body.
func encryptOf(t *testing.T, body []byte) []byte {
	t.Helper()
	_, rest, ok := bytes.Cut(body, []byte("<Encrypt><![CDATA["))
	require.True(t, ok)
	enc, _, ok := bytes.Cut(rest, []byte("]]>"))
	require.True(t, ok)
	return enc
}

func mustDecrypt(t *testing.T, c *callback.Crypter, body []byte) []byte {
	t.Helper()
	msg, err := c.Decrypt(string(encryptOf(t, body)))
	require.NoError(t, err)
	return msg
}
