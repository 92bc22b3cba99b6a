package callback

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Claim is what Config.ClaimRequest found for a request.
type Claim string

// Claim values.
const (
	// ClaimFirst: the request is new, or its same body was released after
	// a failed processing, or the process handling it died: process it.
	ClaimFirst Claim = "first"
	// ClaimDone: the same request, same body, was processed: WeChat's
	// retry, answered "success" without a second effect.
	ClaimDone Claim = "done"
	// ClaimBusy: the same request is being processed now: answered 503,
	// so that WeChat pushes it again.
	ClaimBusy Claim = "busy"
	// ClaimReplay: the request's query was used with another body: a
	// replay, refused with 403.
	ClaimReplay Claim = "replay"
)

// Reasons of refused requests, as Config.RefusedFunc reports them. The set
// is fixed, so that they can label a metric.
const (
	// RefusedMethod: neither GET nor POST (405).
	RefusedMethod = "method"
	// RefusedBadSignature: a missing or wrong signature or msg_signature
	// (401).
	RefusedBadSignature = "bad_signature"
	// RefusedStaleTimestamp: a timestamp outside Config.TimestampWindow,
	// or not a number (401).
	RefusedStaleTimestamp = "stale_timestamp"
	// RefusedBadRequest: a URL check without echostr, or an unsupported
	// encrypt_type (400).
	RefusedBadRequest = "bad_request"
	// RefusedMode: an encrypted push in ModePlain, or a plaintext one in
	// ModeSafe (400).
	RefusedMode = "mode"
	// RefusedTooLarge: a body over Config.MaxBodyBytes (413).
	RefusedTooLarge = "too_large"
	// RefusedBadBody: a body that is not a well-formed push, before or
	// after decryption (400).
	RefusedBadBody = "bad_body"
	// RefusedDecrypt: a ciphertext no configured key decrypts (400).
	RefusedDecrypt = "decrypt"
	// RefusedAppIDMismatch: a ciphertext of another appid (403).
	RefusedAppIDMismatch = "appid_mismatch"
	// RefusedReplay: a request whose timestamp, nonce and signature came
	// before with another body (403).
	RefusedReplay = "replay"
	// RefusedInProgress: the same request while it is being processed
	// (503; WeChat pushes it again).
	RefusedInProgress = "in_progress"
	// RefusedReceiptMismatch: a receipt whose FromUserName is not the
	// recipient of its msgid, discarded by OnEvent (answered "success").
	RefusedReceiptMismatch = "receipt_mismatch"
	// RefusedDiscarded: a push OnEvent discarded for a reason not listed
	// here (answered "success").
	RefusedDiscarded = "discarded"
)

// RefusedReasons lists every reason RefusedFunc reports.
var RefusedReasons = []string{
	RefusedMethod, RefusedBadSignature, RefusedStaleTimestamp, RefusedBadRequest, RefusedMode, RefusedTooLarge,
	RefusedBadBody, RefusedDecrypt, RefusedAppIDMismatch, RefusedReplay, RefusedInProgress, RefusedReceiptMismatch,
	RefusedDiscarded,
}

// DiscardError is an OnEvent error for a verified push that must change
// nothing and must not be pushed again, such as a receipt from another user
// than its message's recipient: the handler answers "success" (WeChat would
// otherwise retry in vain), logs it and reports Reason to
// Config.RefusedFunc. Its request is done (ClaimRequest: the same request
// again reaches nothing and is not reported twice), but its Dedupe key is
// released: the discarded push changed nothing, so the message's genuine
// push must still be processed.
type DiscardError struct {
	// Reason is one of the Refused constants, such as
	// RefusedReceiptMismatch; another is reported as RefusedDiscarded.
	Reason string
	// Err says why; it is logged, so it must hold no secret or raw openid.
	Err error
}

func (e *DiscardError) Error() string {
	if e.Err == nil {
		return "callback: push discarded: " + e.Reason
	}
	return "callback: push discarded: " + e.Reason + ": " + e.Err.Error()
}

func (e *DiscardError) Unwrap() error { return e.Err }

// reason is e's Reason, or RefusedDiscarded when it is not a Refused
// constant, so that a metric's labels stay few.
func (e *DiscardError) reason() string {
	for _, r := range RefusedReasons {
		if e.Reason == r {
			return r
		}
	}
	return RefusedDiscarded
}

const (
	// claimMargin is added to a claim's time to live: processes whose
	// clocks differ by up to this much still agree on a timestamp's
	// window.
	claimMargin = time.Minute
	// claimTTLNoWindow is a claim's time to live when TimestampWindow is
	// disabled.
	claimTTLNoWindow = 2*TimestampWindowDefault + claimMargin
	// claimLeaseMargin is added to EventTimeout for a claim's processing
	// lease: Dedupe, OnEvent and SettleRequest fit in it.
	claimLeaseMargin = 5 * time.Second
)

// requestClaim is what ClaimRequest is called with.
type requestClaim struct {
	key, digest string
	ttl         time.Duration
}

// requestClaim returns the claim of a verified push with query q and body,
// or nil without ClaimRequest. The key covers what the signatures cover:
// timestamp, nonce and signature (lower-cased, as hex case is ignored), and
// in ModeSafe msg_signature, which covers the ciphertext. In
// ModeCompatible a plaintext push needs only the signature, so an
// encrypted one is keyed without msg_signature too: its query cannot carry
// a plaintext body of someone's choosing. The digest is the body's.
func (h *Handler) requestClaim(q url.Values, body []byte) *requestClaim {
	if h.cfg.ClaimRequest == nil {
		return nil
	}
	k := sha256.New()
	for _, part := range []string{q.Get("timestamp"), q.Get("nonce"), strings.ToLower(q.Get("signature"))} {
		_, _ = io.WriteString(k, part+"\x00") // A hash never fails to write.
	}
	if h.cfg.Mode == ModeSafe {
		_, _ = io.WriteString(k, strings.ToLower(q.Get("msg_signature")))
	}
	d := sha256.Sum256(body)
	c := &requestClaim{
		key:    hex.EncodeToString(k.Sum(nil)[:16]),
		digest: hex.EncodeToString(d[:16]),
		ttl:    claimTTLNoWindow,
	}
	if h.cfg.TimestampWindow >= 0 {
		// checkSignature parsed it, and found it inside the window.
		sec, _ := strconv.ParseInt(q.Get("timestamp"), 10, 64)
		c.ttl = time.Unix(sec, 0).Add(h.cfg.TimestampWindow).Sub(h.cfg.NowFunc()) + claimMargin
	}
	return c
}
