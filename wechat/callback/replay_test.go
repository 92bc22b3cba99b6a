package callback_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat/callback"
)

// TestHandlerRefusesReplayedQuery: in plain mode the signature does not
// cover the body, so a captured query with another body (another user, a
// failure instead of a delivery) is refused with 403 and reaches nothing,
// also with the signature's hex case changed; the same query with the same
// body (WeChat's retry) is answered "success" without a second effect.
func TestHandlerRefusesReplayedQuery(t *testing.T) {
	t.Parallel()
	b := setup(t, callback.Config{})
	q := signed(testToken, testNow, "91")
	body := receiptXML(testOpenID, 42, "success", testNow.Unix())
	status, resp := b.post(t, q, body)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "success", resp)
	require.Len(t, b.received(), 1)

	upper := url.Values{}
	for k, v := range q {
		upper[k] = v
	}
	upper.Set("signature", strings.ToUpper(q.Get("signature")))
	for _, tc := range []struct {
		q    url.Values
		body string
	}{
		{q, receiptXML("oOTHERuserXXXXXXXXXXXXXXXXXX", 43, "failed: user block", testNow.Unix())},
		{q, receiptXML(testOpenID, 42, "failed: user block", testNow.Unix())},
		{upper, receiptXML(testOpenID, 44, "failed: user block", testNow.Unix())},
	} {
		status, resp = b.post(t, tc.q, tc.body)
		require.Equal(t, http.StatusForbidden, status)
		require.Equal(t, "signature already used with another body", strings.TrimSpace(resp))
	}
	dedupes := b.dedupeCalls()
	for range 2 {
		status, resp = b.post(t, q, body)
		require.Equal(t, http.StatusOK, status, "WeChat's retry")
		require.Equal(t, "success", resp)
	}
	require.Len(t, b.received(), 1, "nothing replayed or retried reached OnEvent")
	require.Equal(t, dedupes, b.dedupeCalls(), "a retry of a processed request is answered by its claim")
	require.Equal(t, map[string]int{callback.RefusedReplay: 3}, b.refusals())
}

// TestHandlerReleasesFailedRequest: a push whose processing failed (500)
// releases its claim: WeChat's retry, same query and body, is processed;
// another body under its query is still a replay.
func TestHandlerReleasesFailedRequest(t *testing.T) {
	t.Parallel()
	b := setup(t, callback.Config{})
	b.setFail(errors.New("redis down"))
	q := signed(testToken, testNow, "92")
	body := receiptXML(testOpenID, 42, "success", testNow.Unix())
	status, _ := b.post(t, q, body)
	require.Equal(t, http.StatusInternalServerError, status)
	b.setFail(nil)

	status, _ = b.post(t, q, receiptXML("oOTHERuserXXXXXXXXXXXXXXXXXX", 42, "failed: user block", testNow.Unix()))
	require.Equal(t, http.StatusForbidden, status, "a released claim keeps its body")
	status, resp := b.post(t, q, body)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "success", resp)
	got := b.received()
	require.Len(t, got, 2, "the retry reached OnEvent")
	require.Equal(t, got[0], got[1])
	status, _ = b.post(t, q, body)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, b.received(), 2, "and was then recorded")

	// A failed Dedupe releases the claim too.
	b2 := setup(t, callback.Config{
		Dedupe:  func(context.Context, string) (bool, error) { return false, errors.New("down") },
		Release: func(context.Context, string) error { return nil },
	})
	for range 2 {
		status, _ = b2.post(t, q, body)
		require.Equal(t, http.StatusInternalServerError, status, "each retry is tried, none is refused as busy")
	}
	require.Empty(t, b2.refusals(), "the handler's own failures are not refusals")
}

// TestHandlerBusyRequest: WeChat's retry of a push still being processed
// is answered 503 (so that WeChat pushes it again) without a second
// OnEvent; once the first is processed the retry is answered "success".
func TestHandlerBusyRequest(t *testing.T) {
	t.Parallel()
	entered, release := make(chan struct{}), make(chan struct{})
	var b *testBundle
	b = setup(t, callback.Config{OnEvent: func(_ context.Context, e callback.Event) error {
		close(entered)
		<-release
		b.mu.Lock()
		defer b.mu.Unlock()
		b.events = append(b.events, e)
		return nil
	}})
	q := signed(testToken, testNow, "93")
	body := receiptXML(testOpenID, 42, "success", testNow.Unix())
	first := make(chan int, 1)
	go func() { // No require outside the test's goroutine.
		res, err := b.srv.Client().Post(b.srv.URL+"/wechat/callback?"+q.Encode(), "text/xml", strings.NewReader(body))
		if err != nil {
			first <- 0
			return
		}
		res.Body.Close()
		first <- res.StatusCode
	}()
	<-entered
	status, resp := b.post(t, q, body)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "the same push is being processed", strings.TrimSpace(resp))
	close(release)
	require.Equal(t, http.StatusOK, <-first)
	status, _ = b.post(t, q, body)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, b.received(), 1)
	require.Equal(t, map[string]int{callback.RefusedInProgress: 1}, b.refusals())
}

// TestHandlerReplayAcrossModes: in compatible mode an encrypted push's
// query cannot be reused for a plaintext body of one's choosing; in safe
// mode a new ciphertext under a captured query fails msg_signature, and the
// same ciphertext in another envelope is a replay.
func TestHandlerReplayAcrossModes(t *testing.T) {
	t.Parallel()
	c := newCrypter(t, testKey, testAppID)
	forged := receiptXML("oOTHERuserXXXXXXXXXXXXXXXXXX", 7, "failed: user block", testNow.Unix())

	compat := setup(t, callback.Config{Mode: callback.ModeCompatible})
	q, body := encrypted(t, c, testToken, testNow, receiptXML(testOpenID, 7, "success", testNow.Unix()))
	status, _ := compat.post(t, q, body)
	require.Equal(t, http.StatusOK, status)
	plain := url.Values{"signature": {q.Get("signature")}, "timestamp": {q.Get("timestamp")}, "nonce": {q.Get("nonce")}}
	status, _ = compat.post(t, plain, forged)
	require.Equal(t, http.StatusForbidden, status, "downgraded to plaintext with another body")
	require.Len(t, compat.received(), 1)

	safe := setup(t, callback.Config{Mode: callback.ModeSafe})
	q, body = encrypted(t, c, testToken, testNow, receiptXML(testOpenID, 8, "success", testNow.Unix()))
	status, _ = safe.post(t, q, body)
	require.Equal(t, http.StatusOK, status)
	_, other := encrypted(t, c, testToken, testNow, forged)
	status, resp := safe.post(t, q, other)
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, resp, "bad msg_signature")
	status, _ = safe.post(t, q, strings.Replace(body, "<ToUserName>", "\n<ToUserName>", 1))
	require.Equal(t, http.StatusForbidden, status, "the same ciphertext in another body")
	status, _ = safe.post(t, q, body)
	require.Equal(t, http.StatusOK, status, "WeChat's retry")
	require.Len(t, safe.received(), 1)
	require.Equal(t, map[string]int{callback.RefusedBadSignature: 1, callback.RefusedReplay: 1}, safe.refusals())
}

// TestHandlerClaimArguments: the claim lives until the timestamp leaves the
// window, plus a minute (11 minutes with the window disabled); the lease is
// EventTimeout plus 5 s; the key depends on the query only, the digest on
// the body only; in safe mode msg_signature is part of the key.
func TestHandlerClaimArguments(t *testing.T) {
	t.Parallel()
	type call struct {
		key, digest string
		ttl, lease  time.Duration
	}
	record := func(calls *[]call) callback.Config {
		return callback.Config{
			EventTimeout: 2 * time.Second,
			ClaimRequest: func(_ context.Context, key, digest string, ttl, lease time.Duration) (callback.Claim, error) {
				*calls = append(*calls, call{key, digest, ttl, lease})
				return callback.ClaimFirst, nil
			},
			SettleRequest: func(context.Context, string, string, bool) error { return nil },
		}
	}
	var calls []call
	b := setup(t, record(&calls))
	body := receiptXML(testOpenID, 1, "success", testNow.Unix())
	post := func(b *testBundle, q url.Values, body string) {
		t.Helper()
		status, resp := b.post(t, q, body)
		require.Equal(t, http.StatusOK, status, resp)
	}
	post(b, signed(testToken, testNow.Add(-time.Minute), "1"), body)
	post(b, signed(testToken, testNow.Add(time.Minute), "1"), body)
	post(b, signed(testToken, testNow, "1"), receiptXML(testOpenID, 2, "success", testNow.Unix()))
	post(b, signed(testToken, testNow, "2"), body)
	require.Len(t, calls, 4)
	require.Equal(t, 5*time.Minute, calls[0].ttl, "4 minutes left in the window, and a minute")
	require.Equal(t, 7*time.Minute, calls[1].ttl, "6 minutes left, and a minute")
	require.Equal(t, 7*time.Second, calls[0].lease)
	require.NotEqual(t, calls[0].key, calls[1].key)
	require.Equal(t, calls[0].digest, calls[1].digest, "same body")
	require.NotEqual(t, calls[2].digest, calls[3].digest)
	require.NotEqual(t, calls[2].key, calls[3].key, "another nonce")

	calls = nil
	cfg := record(&calls)
	cfg.TimestampWindow = -1
	post(setup(t, cfg), signed(testToken, testNow.Add(-time.Hour), "1"), body)
	require.Equal(t, 11*time.Minute, calls[0].ttl)

	calls = nil
	cfg = record(&calls)
	cfg.Mode = callback.ModeSafe
	safe := setup(t, cfg)
	c := newCrypter(t, testKey, testAppID)
	q, enc := encrypted(t, c, testToken, testNow, body)
	post(safe, q, enc)
	q2, enc2 := encrypted(t, c, testToken, testNow, receiptXML(testOpenID, 2, "success", testNow.Unix()))
	q2.Set("nonce", q.Get("nonce"))
	q2.Set("signature", q.Get("signature"))
	q2.Set("msg_signature", callback.Signature(testToken, q.Get("timestamp"), q.Get("nonce"), encryptOf(t, enc2)))
	post(safe, q2, enc2)
	require.Len(t, calls, 2)
	require.NotEqual(t, calls[0].key, calls[1].key, "two ciphertexts under one timestamp and nonce are two requests")
}

// encryptOf returns the <Encrypt> content of a push body.
func encryptOf(t *testing.T, body string) string {
	t.Helper()
	_, rest, ok := strings.Cut(body, "<Encrypt><![CDATA[")
	require.True(t, ok)
	enc, _, ok := strings.Cut(rest, "]]>")
	require.True(t, ok)
	return enc
}

// TestHandlerClaimFailures: a failing or nonsensical ClaimRequest answers
// 500 and calls nothing; ClaimRequest needs SettleRequest.
func TestHandlerClaimFailures(t *testing.T) {
	t.Parallel()
	body := receiptXML(testOpenID, 1, "success", testNow.Unix())
	for name, claim := range map[string]func(context.Context, string, string, time.Duration, time.Duration) (callback.Claim, error){
		"error": func(context.Context, string, string, time.Duration, time.Duration) (callback.Claim, error) {
			return "", errors.New("down")
		},
		"nonsense": func(context.Context, string, string, time.Duration, time.Duration) (callback.Claim, error) {
			return "maybe", nil
		},
	} {
		b := setup(t, callback.Config{ClaimRequest: claim, SettleRequest: func(context.Context, string, string, bool) error { return nil }})
		status, resp := b.post(t, signed(testToken, testNow, "1"), body)
		require.Equal(t, http.StatusInternalServerError, status, name)
		require.Equal(t, "replay guard unavailable", strings.TrimSpace(resp), name)
		require.Empty(t, b.received(), name)
		require.Zero(t, b.dedupeCalls(), name)
	}
	_, err := callback.NewHandler(callback.Config{Token: "t", OnEvent: func(context.Context, callback.Event) error { return nil },
		ClaimRequest: func(context.Context, string, string, time.Duration, time.Duration) (callback.Claim, error) {
			return callback.ClaimFirst, nil
		}})
	require.ErrorContains(t, err, "Config.SettleRequest: nil")
}

// TestHandlerDiscardedEvent: an event OnEvent discards is answered
// "success" (WeChat must not push it again), reported with its reason,
// logged with the openid masked, and its request is done: pushed again it
// reaches nothing; but its message's dedupe key is free for the genuine
// push. An unlisted reason is reported as "discarded".
func TestHandlerDiscardedEvent(t *testing.T) {
	t.Parallel()
	calls := 0
	var b *testBundle
	b = setup(t, callback.Config{OnEvent: func(_ context.Context, e callback.Event) error {
		b.mu.Lock()
		defer b.mu.Unlock()
		calls++
		if e.MsgID == 2 {
			return &callback.DiscardError{Reason: "whatever", Err: errors.New("why")}
		}
		return &callback.DiscardError{Reason: callback.RefusedReceiptMismatch, Err: errors.New("receipt from another user")}
	}})
	q := signed(testToken, testNow, "1")
	body := receiptXML(testOpenID, 1, "failed: user block", testNow.Unix())
	for range 2 {
		status, resp := b.post(t, q, body)
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "success", resp)
	}
	b.mu.Lock()
	require.Equal(t, 1, calls, "the discarded request, pushed again, reaches nothing")
	b.mu.Unlock()
	status, _ := b.post(t, signed(testToken, testNow, "2"), receiptXML(testOpenID, 2, "success", testNow.Unix()))
	require.Equal(t, http.StatusOK, status)
	// Another push of msgid 1 (the genuine receipt) is not taken for a
	// retry of the discarded one.
	status, _ = b.post(t, signed(testToken, testNow, "3"), receiptXML("oOTHERuserXXXXXXXXXXXXXXXXXX", 1, "success", testNow.Unix()))
	require.Equal(t, http.StatusOK, status)
	b.mu.Lock()
	require.Equal(t, 3, calls, "a discarded push leaves its message's dedupe key free")
	b.mu.Unlock()
	require.Equal(t, map[string]int{callback.RefusedReceiptMismatch: 2, callback.RefusedDiscarded: 1}, b.refusals())
	logged := b.logs.FilterMessage("callback push discarded").All()
	require.NotEmpty(t, logged)
	m := logged[0].ContextMap()
	require.Equal(t, "oia2…RxG8", m["openid"])
	require.Equal(t, callback.RefusedReceiptMismatch, m["refused"])
	require.Contains(t, m["error"], "receipt from another user")

	require.ErrorIs(t, &callback.DiscardError{Reason: "x", Err: context.Canceled}, context.Canceled)
	require.Equal(t, "callback: push discarded: x", (&callback.DiscardError{Reason: "x"}).Error())
}

// TestHandlerReportsRefusals: every kind of refused request reports its
// reason once; accepted pushes and the handler's own failures report none.
func TestHandlerReportsRefusals(t *testing.T) {
	t.Parallel()
	c := newCrypter(t, testKey, testAppID)
	body := receiptXML(testOpenID, 1, "success", testNow.Unix())
	safeQ, safeBody := encrypted(t, c, testToken, testNow, body)
	otherQ, otherBody := encrypted(t, newCrypter(t, testKey, "wx00000000000fake2"), testToken, testNow, body)
	oldQ, oldBody := encrypted(t, newCrypter(t, testOldKey, testAppID), testToken, testNow, body)
	junkQ, junkBody := encrypted(t, c, testToken, testNow, "hello")
	rsa := url.Values{}
	for k, v := range safeQ {
		rsa[k] = v
	}
	rsa.Set("encrypt_type", "rsa")
	for _, tc := range []struct {
		mode, method string
		q            url.Values
		body         string
		want         string
	}{
		{callback.ModePlain, http.MethodPut, signed(testToken, testNow, "1"), "", callback.RefusedMethod},
		{callback.ModePlain, http.MethodPost, signed("forged", testNow, "1"), body, callback.RefusedBadSignature},
		{callback.ModePlain, http.MethodPost, url.Values{}, body, callback.RefusedBadSignature},
		{callback.ModePlain, http.MethodGet, signed("forged", testNow, "1"), "", callback.RefusedBadSignature},
		{callback.ModePlain, http.MethodPost, signed(testToken, testNow.Add(-time.Hour), "1"), body, callback.RefusedStaleTimestamp},
		{callback.ModePlain, http.MethodGet, signed(testToken, testNow, "1"), "", callback.RefusedBadRequest},
		{callback.ModeSafe, http.MethodPost, rsa, safeBody, callback.RefusedBadRequest},
		{callback.ModePlain, http.MethodPost, signed(testToken, testNow, "1"), "<xml>" + strings.Repeat(" ", 70<<10) + "</xml>", callback.RefusedTooLarge},
		{callback.ModePlain, http.MethodPost, signed(testToken, testNow, "1"), "<json/>", callback.RefusedBadBody},
		{callback.ModePlain, http.MethodPost, safeQ, safeBody, callback.RefusedMode},
		{callback.ModeSafe, http.MethodPost, signed(testToken, testNow, "1"), body, callback.RefusedMode},
		{callback.ModeSafe, http.MethodPost, oldQ, oldBody, callback.RefusedDecrypt},
		{callback.ModeSafe, http.MethodPost, junkQ, junkBody, callback.RefusedBadBody},
		{callback.ModeSafe, http.MethodPost, otherQ, otherBody, callback.RefusedAppIDMismatch},
		{callback.ModeSafe, http.MethodPost, safeQ, strings.Replace(safeBody, "<Encrypt><![CDATA[", "<Encrypt><![CDATA[AA", 1), callback.RefusedBadSignature},
	} {
		b := setup(t, callback.Config{Mode: tc.mode})
		status, _, _ := b.do(t, tc.method, tc.q, tc.body)
		require.GreaterOrEqual(t, status, 400, tc.want)
		require.Equal(t, map[string]int{tc.want: 1}, b.refusals(), "%s %s", tc.method, tc.want)
		require.Empty(t, b.received())
	}
	b := setup(t, callback.Config{Mode: callback.ModeSafe})
	status, _ := b.post(t, safeQ, safeBody)
	require.Equal(t, http.StatusOK, status)
	b.setFail(errors.New("down"))
	q2, body2 := encrypted(t, c, testToken, testNow, receiptXML(testOpenID, 2, "success", testNow.Unix()))
	status, _ = b.post(t, q2, body2)
	require.Equal(t, http.StatusInternalServerError, status)
	require.Empty(t, b.refusals())
	require.Len(t, callback.RefusedReasons, 13)
}
