package callback

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wxmass/wxmass/internal/logfield"
	"github.com/wxmass/wxmass/internal/secret"
)

// Modes of the callback URL, as configured on the WeChat platform
// (wechat-api.md §7.4).
const (
	// ModePlain accepts plaintext pushes only.
	ModePlain = "plain"
	// ModeCompatible accepts plaintext pushes and encrypted ones (WeChat
	// sends both in one body, with encrypt_type=aes).
	ModeCompatible = "compatible"
	// ModeSafe accepts encrypted pushes only.
	ModeSafe = "safe"
)

// Defaults of Config.
const (
	// MaxBodyBytesDefault is Config.MaxBodyBytes when it is 0: 64 KiB, far
	// above any event WeChat pushes.
	MaxBodyBytesDefault = 64 << 10
	// TimestampWindowDefault is Config.TimestampWindow when it is 0.
	TimestampWindowDefault = 5 * time.Minute
	// EventTimeoutDefault is Config.EventTimeout when it is 0: WeChat waits
	// 5 seconds for the answer (wechat-api.md §7.3), and the answer needs
	// some of them.
	EventTimeoutDefault = 4 * time.Second
	// releaseTimeout bounds Release after a failed OnEvent.
	releaseTimeout = time.Second
)

// Config configures a Handler. Zero fields take the defaults their docs
// state (see WithDefaults).
type Config struct {
	// Token is the token configured with the callback URL; every push is
	// signed with it. Required.
	Token string
	// AESKey is the current EncodingAESKey (43 characters). Required in
	// ModeCompatible and ModeSafe.
	AESKey secret.String
	// PreviousAESKey is the EncodingAESKey before the last change, tried
	// when AESKey does not decrypt a push. Optional.
	PreviousAESKey secret.String
	// AppID is the account's appid, which every ciphertext must end with.
	// Required with AESKey.
	AppID string
	// Mode is ModePlain, ModeCompatible or ModeSafe. Default: ModePlain.
	Mode string

	// OnEvent is called once for every verified push that Dedupe does not
	// recognise, with a context that ends after EventTimeout or when WeChat
	// hangs up. A nil return answers "success"; an error answers HTTP 500,
	// so that WeChat pushes the event again. It must be safe for concurrent
	// use. Required.
	OnEvent func(ctx context.Context, e Event) error
	// Dedupe claims an Event.DedupeKey: it reports whether the key is seen
	// for the first time (and records it). A push whose key was claimed
	// before is answered "success" without calling OnEvent, so WeChat's
	// retries and replays inside TimestampWindow are handled once. Keep
	// keys for at least twice TimestampWindow. An error answers HTTP 500.
	// Optional: without it every verified push reaches OnEvent.
	Dedupe func(ctx context.Context, key string) (first bool, err error)
	// Release gives back a key Dedupe claimed when OnEvent failed, so that
	// WeChat's retry is processed. Required with Dedupe.
	Release func(ctx context.Context, key string) error

	// ClaimRequest guards against replayed requests. The signature of a
	// plaintext push covers its timestamp and nonce but not its body, so a
	// captured query could carry another body. For every push that passes
	// every check, the handler calls it with key, a hash of the request's
	// timestamp, nonce and signature (and msg_signature in ModeSafe, where
	// it covers the body), and digest, a hash of the body; ttl lasts until
	// the timestamp leaves TimestampWindow, plus a minute for the clocks of
	// several processes (11 minutes when the window is disabled); lease is
	// EventTimeout plus 5 seconds. It must record (key, digest) atomically
	// across processes and answer ClaimFirst for a new key, or for a key
	// whose same digest was released or whose lease ran out (the process
	// handling it died): the push is processed, and SettleRequest called.
	// For a claimed key it answers ClaimReplay when digest differs (the
	// push is refused: 403), ClaimDone once the same request was processed
	// (WeChat's retry: answered "success" without effect) and ClaimBusy
	// while it is processed within its lease (503, so WeChat retries). An
	// error answers HTTP 500. Optional: without it, a replayed query is
	// caught only by Dedupe, which keys on the body it carries.
	ClaimRequest func(ctx context.Context, key, digest string, ttl, lease time.Duration) (Claim, error)
	// SettleRequest ends the processing of a request ClaimRequest answered
	// ClaimFirst: processed (done: later claims answer ClaimDone), or
	// released when processing failed and the push is answered 500, so
	// that WeChat's retry is processed; released or done, the digest stays
	// and another body is a replay. Required with ClaimRequest.
	SettleRequest func(ctx context.Context, key, digest string, processed bool) error
	// RefusedFunc, when set, is called once for every refused request
	// (and every push OnEvent discards with a *DiscardError) with its
	// reason, one of the Refused constants, so that refusals can be
	// counted. It must be quick and safe for concurrent use.
	RefusedFunc func(reason string)

	// NowFunc is the clock the timestamp window is checked against.
	// Default: time.Now.
	NowFunc func() time.Time
	// TimestampWindow is how far a push's timestamp may be from NowFunc, in
	// either direction, before it is refused as a replay. Default:
	// TimestampWindowDefault. Negative disables the check.
	TimestampWindow time.Duration
	// EventTimeout bounds OnEvent. Default: EventTimeoutDefault.
	EventTimeout time.Duration
	// MaxBodyBytes is the largest body read; larger bodies answer HTTP 413.
	// Default: MaxBodyBytesDefault.
	MaxBodyBytes int64
	// Logger receives the handler's logs, without secrets and with openids
	// masked. Refusals are logged at most once a second. Default: no logs.
	Logger *zap.Logger
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Mode == "" {
		c.Mode = ModePlain
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	if c.TimestampWindow == 0 {
		c.TimestampWindow = TimestampWindowDefault
	}
	if c.EventTimeout <= 0 {
		c.EventTimeout = EventTimeoutDefault
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = MaxBodyBytesDefault
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// Handler serves a callback URL (see Config for what it does with a push).
// GET verifies the URL: a valid signature gets echostr back verbatim. POST
// receives a push: it answers "success", or 401 for a bad or missing
// signature or a timestamp outside the window, 403 for a ciphertext of
// another appid or a replayed request (ClaimRequest), 400 for a malformed
// body, 413 for an oversize one, 503 while the same request is processed,
// and 500 when OnEvent, Dedupe or ClaimRequest fail. Refusals carry a short
// plain-text reason, call nothing and are reported to RefusedFunc. The
// answer to an accepted push is the plaintext "success" in every mode, which
// WeChat accepts without encryption (wechat-api.md §7.3). A Handler is safe
// for concurrent use.
type Handler struct {
	cfg      Config
	crypter  *Crypter // nil in ModePlain without a key
	log      *zap.Logger
	refusals *zap.Logger // sampled: a flood of forged pushes is one line a second
}

// NewHandler validates cfg (after WithDefaults) and returns its Handler.
// Errors name the Config field; none contains a key.
func NewHandler(cfg Config) (*Handler, error) {
	cfg = cfg.WithDefaults()
	if cfg.Token == "" {
		return nil, errors.New("callback: Config.Token: empty")
	}
	switch cfg.Mode {
	case ModePlain, ModeCompatible, ModeSafe:
	default:
		return nil, fmt.Errorf("callback: Config.Mode: %q is not %s, %s or %s", cfg.Mode, ModePlain, ModeCompatible, ModeSafe)
	}
	if cfg.OnEvent == nil {
		return nil, errors.New("callback: Config.OnEvent: nil")
	}
	if cfg.Dedupe != nil && cfg.Release == nil {
		return nil, errors.New("callback: Config.Release: nil while Dedupe is set (a failed event's retries would be dropped)")
	}
	if cfg.ClaimRequest != nil && cfg.SettleRequest == nil {
		return nil, errors.New("callback: Config.SettleRequest: nil while ClaimRequest is set (a failed event's retries would be dropped)")
	}
	h := &Handler{cfg: cfg, log: cfg.Logger.Named("callback")}
	h.refusals = h.log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, 1, 0)
	}))
	if cfg.AESKey.IsZero() {
		if cfg.Mode != ModePlain {
			return nil, fmt.Errorf("callback: Config.AESKey: empty in %s mode", cfg.Mode)
		}
		return h, nil
	}
	c, err := NewCrypter(cfg.AESKey.Reveal(), cfg.AppID)
	if err != nil {
		return nil, fmt.Errorf("callback: Config.AESKey/AppID: %w", err)
	}
	if c, err = c.WithPrevious(cfg.PreviousAESKey.Reveal()); err != nil {
		return nil, fmt.Errorf("callback: Config.PreviousAESKey: %w", err)
	}
	h.crypter = c
	return h, nil
}

// refusal is a request the handler does not accept.
type refusal struct {
	status int
	code   string // a Refused constant; "" for the handler's own failures (500)
	reason string
}

func refuse(status int, code, format string, args ...any) *refusal {
	return &refusal{status: status, code: code, reason: fmt.Sprintf(format, args...)}
}

// ServeHTTP verifies the URL (GET) or receives a push (POST).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var ref *refusal
	switch r.Method {
	case http.MethodGet:
		if ref = h.checkSignature(q); ref == nil {
			ref = h.echo(w, q)
		}
	case http.MethodPost:
		if ref = h.checkSignature(q); ref == nil {
			ref = h.receive(w, r, q)
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		ref = refuse(http.StatusMethodNotAllowed, RefusedMethod, "method %s not allowed", quoteShort(r.Method))
	}
	if ref != nil {
		if ref.code != "" {
			h.refused(ref.code)
		}
		h.refusals.Info("callback request refused", zap.String("method", quoteShort(r.Method)), zap.Int("status", ref.status),
			zap.String("refused", ref.code), zap.String("reason", ref.reason))
		http.Error(w, ref.reason, ref.status)
	}
}

// refused reports a refusal to RefusedFunc.
func (h *Handler) refused(code string) {
	if h.cfg.RefusedFunc != nil {
		h.cfg.RefusedFunc(code)
	}
}

// checkSignature verifies signature over (token, timestamp, nonce) and the
// timestamp window.
func (h *Handler) checkSignature(q url.Values) *refusal {
	sig, ts, nonce := q.Get("signature"), q.Get("timestamp"), q.Get("nonce")
	if sig == "" || ts == "" || nonce == "" {
		return refuse(http.StatusUnauthorized, RefusedBadSignature, "missing signature, timestamp or nonce")
	}
	if !validSignature(sig, h.cfg.Token, ts, nonce) {
		return refuse(http.StatusUnauthorized, RefusedBadSignature, "bad signature")
	}
	if h.cfg.TimestampWindow < 0 {
		return nil
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return refuse(http.StatusUnauthorized, RefusedStaleTimestamp, "timestamp is not a number")
	}
	skew := h.cfg.NowFunc().Sub(time.Unix(sec, 0))
	if skew > h.cfg.TimestampWindow || skew < -h.cfg.TimestampWindow {
		return refuse(http.StatusUnauthorized, RefusedStaleTimestamp, "timestamp outside the %v window", h.cfg.TimestampWindow)
	}
	return nil
}

// echo answers a verified URL check with echostr, verbatim.
func (h *Handler) echo(w http.ResponseWriter, q url.Values) *refusal {
	echostr := q.Get("echostr")
	if echostr == "" {
		return refuse(http.StatusBadRequest, RefusedBadRequest, "missing echostr")
	}
	writeText(w, echostr)
	h.log.Info("callback url verified")
	return nil
}

// receive reads, authenticates, decrypts and parses a push whose signature
// is verified, then dedupes it and hands it to OnEvent.
func (h *Handler) receive(w http.ResponseWriter, r *http.Request, q url.Values) *refusal {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return refuse(http.StatusRequestEntityTooLarge, RefusedTooLarge, "body larger than %d bytes", h.cfg.MaxBodyBytes)
		}
		return refuse(http.StatusBadRequest, RefusedBadBody, "read body: %v", err)
	}
	p, err := decodePush(body)
	if err != nil {
		return refuse(http.StatusBadRequest, RefusedBadBody, "%v", err)
	}

	encrypted := false
	switch et := q.Get("encrypt_type"); et {
	case "", "raw":
	case "aes":
		encrypted = true
	default:
		return refuse(http.StatusBadRequest, RefusedBadRequest, "unsupported encrypt_type %s", quoteShort(et))
	}
	switch {
	case encrypted && h.cfg.Mode == ModePlain:
		return refuse(http.StatusBadRequest, RefusedMode, "encrypted push refused in plain mode")
	case !encrypted && h.cfg.Mode == ModeSafe:
		return refuse(http.StatusBadRequest, RefusedMode, "plaintext push refused in safe mode")
	}
	if encrypted {
		if p.Encrypt == "" {
			return refuse(http.StatusBadRequest, RefusedBadBody, "encrypt_type=aes without <Encrypt>")
		}
		msgSig := q.Get("msg_signature")
		if msgSig == "" {
			return refuse(http.StatusUnauthorized, RefusedBadSignature, "missing msg_signature")
		}
		if !validSignature(msgSig, h.cfg.Token, q.Get("timestamp"), q.Get("nonce"), p.Encrypt) {
			return refuse(http.StatusUnauthorized, RefusedBadSignature, "bad msg_signature")
		}
		inner, err := h.crypter.Decrypt(p.Encrypt)
		if errors.Is(err, ErrAppID) {
			return refuse(http.StatusForbidden, RefusedAppIDMismatch, "%v", err)
		}
		if err != nil {
			return refuse(http.StatusBadRequest, RefusedDecrypt, "<Encrypt>: %v", err)
		}
		if p, err = decodePush(inner); err != nil {
			return refuse(http.StatusBadRequest, RefusedBadBody, "decrypted push: %v", err)
		}
	}
	e, err := p.event()
	if err != nil {
		return refuse(http.StatusBadRequest, RefusedBadBody, "%v", err)
	}
	return h.handle(r.Context(), w, e, h.requestClaim(q, body))
}

// handle claims a verified request, dedupes its event, calls OnEvent,
// settles the claim and answers. c is nil without ClaimRequest.
func (h *Handler) handle(ctx context.Context, w http.ResponseWriter, e Event, c *requestClaim) *refusal {
	fields := []zap.Field{
		zap.String("event", e.Event), zap.String("msg_type", e.MsgType), zap.Int64("msgid", e.MsgID),
		logfield.OpenID(e.FromUserName),
	}
	if e.IsReceipt() {
		fields = append(fields, zap.String("delivery", string(e.Delivery)), zap.String("reason", e.Reason))
	}
	if c != nil {
		got, err := h.cfg.ClaimRequest(ctx, c.key, c.digest, c.ttl, h.cfg.EventTimeout+claimLeaseMargin)
		switch {
		case err != nil:
			h.log.Warn("callback request claim failed", append(fields, zap.Error(err))...)
			return refuse(http.StatusInternalServerError, "", "replay guard unavailable")
		case got == ClaimFirst:
		case got == ClaimDone:
			h.log.Debug("callback request already handled", fields...)
			writeText(w, "success")
			return nil
		case got == ClaimBusy:
			return refuse(http.StatusServiceUnavailable, RefusedInProgress, "the same push is being processed")
		case got == ClaimReplay:
			return refuse(http.StatusForbidden, RefusedReplay, "signature already used with another body")
		default:
			h.log.Warn("callback request claim answered nonsense", append(fields, zap.String("claim", quoteShort(string(got))))...)
			return refuse(http.StatusInternalServerError, "", "replay guard unavailable")
		}
	}
	ref := h.process(ctx, e, fields)
	if c != nil {
		// Settled before the answer: WeChat's retry of a failed push must
		// find the claim released, and a retry after a lost "success" must
		// find it done. A failed settle leaves the claim processing until
		// its lease runs out; Dedupe still catches the retry of a processed
		// push.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		if err := h.cfg.SettleRequest(sctx, c.key, c.digest, ref == nil); err != nil {
			h.log.Warn("callback request claim not settled", append(fields, zap.Error(err))...)
		}
		cancel()
	}
	if ref != nil {
		return ref
	}
	writeText(w, "success")
	return nil
}

// process dedupes a verified event and calls OnEvent. A nil refusal means
// the push is handled (or discarded) and is answered "success".
func (h *Handler) process(ctx context.Context, e Event, fields []zap.Field) *refusal {
	key := e.DedupeKey()
	if h.cfg.Dedupe != nil {
		first, err := h.cfg.Dedupe(ctx, key)
		if err != nil {
			h.log.Warn("callback dedupe failed", append(fields, zap.Error(err))...)
			return refuse(http.StatusInternalServerError, "", "dedupe unavailable")
		}
		if !first {
			h.log.Debug("callback push already handled", fields...)
			return nil
		}
	}
	ectx, cancel := context.WithTimeout(ctx, h.cfg.EventTimeout)
	err := h.cfg.OnEvent(ectx, e)
	cancel()
	if err != nil && h.cfg.Dedupe != nil {
		// Failed, or discarded without effect: either way the message's
		// (genuine) push must still be processed when it comes.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
		if rerr := h.cfg.Release(rctx, key); rerr != nil {
			fields = append(fields, zap.NamedError("release_error", rerr))
		}
		cancel()
	}
	var de *DiscardError
	if errors.As(err, &de) {
		// Handled: WeChat would only push it again in vain.
		code := de.reason()
		h.refused(code)
		h.refusals.Warn("callback push discarded", append(fields, zap.String("refused", code), zap.Error(err))...)
		return nil
	}
	if err != nil {
		h.log.Warn("callback event not processed", append(fields, zap.Error(err))...)
		return refuse(http.StatusInternalServerError, "", "event not processed")
	}
	h.log.Debug("callback event processed", fields...)
	return nil
}

// writeText answers 200 with a plain-text body.
func writeText(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, body) // WeChat hung up; it will retry.
}
