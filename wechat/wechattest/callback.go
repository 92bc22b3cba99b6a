package wechattest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxmass/wxmass/wechat/callback"
)

// Modes of Callback, as on the WeChat platform (wechat-api.md §7.4).
const (
	CallbackPlain      = callback.ModePlain
	CallbackCompatible = callback.ModeCompatible
	CallbackSafe       = callback.ModeSafe
)

// Receipt statuses the fake pushes (wechat-api.md §2.6).
const (
	// StatusSuccess is the Status of a delivered template message.
	StatusSuccess = "success"
	// StatusUserBlock is the Status of a user who refuses the account's
	// messages (Callback.Blocked).
	StatusUserBlock = "failed:user block"
)

// Defaults and fixed facts of Callback.
const (
	// CallbackConcurrencyDefault is Callback.Concurrency when it is 0.
	CallbackConcurrencyDefault = 8
	// CallbackConcurrencyMax is the largest Callback.Concurrency.
	CallbackConcurrencyMax = 1024
	// CallbackTimeoutDefault is Callback.Timeout when it is 0: WeChat waits
	// five seconds for an answer (wechat-api.md §7.3).
	CallbackTimeoutDefault = 5 * time.Second
	// CallbackRetries is how many times a push is sent again after a
	// non-200 answer, a transport error or a timeout, as WeChat does.
	CallbackRetries = 2
	// callbackAnswerMax is the most of an answer the fake reads.
	callbackAnswerMax = 64 << 10
)

// ErrNoCallback is returned by PushReceipt when Config.Callback has no URL.
var ErrNoCallback = errors.New("wechattest: no Callback.URL configured")

// errPushStopped is returned by PushReceipt after Stop.
var errPushStopped = errors.New("wechattest: receipt pushes stopped")

// Callback configures the TEMPLATESENDJOBFINISH receipts the fake pushes,
// as WeChat does, for every template message it accepts (not for sends
// answered from the client_msg_id window). The zero Callback pushes nothing.
//
// A push is a POST of WeChat's XML to URL with signature, timestamp, nonce
// and openid in the query (and encrypt_type=aes and msg_signature in safe
// and compatible modes), signed with Token and, in those modes, encrypted
// with AESKey. Pushes run in the background, at most Concurrency at a time,
// each Delay after its send was accepted; one that is not answered HTTP 200
// within Timeout is sent again up to CallbackRetries times. Stats.Receipts
// counts them, and Server.Stop waits for them.
type Callback struct {
	// URL is the callback URL, http or https. Empty disables pushes.
	URL string `yaml:"url"`
	// Token signs every push. Required with URL.
	Token string `yaml:"token"`
	// AESKey is the 43-character EncodingAESKey. Required in
	// CallbackCompatible and CallbackSafe modes.
	AESKey string `yaml:"aes_key"`
	// AppID is the appid written into every ciphertext. Default: the appid
	// of the account that sent the message (set it to test a receiver's
	// appid check).
	AppID string `yaml:"app_id"`
	// Mode is CallbackPlain, CallbackCompatible or CallbackSafe. Default:
	// CallbackPlain.
	Mode string `yaml:"mode"`
	// Delay is how long after the send a receipt is pushed, in real time
	// divided by Config.TimeScale. Default: at once.
	Delay time.Duration `yaml:"delay"`
	// Timeout bounds each attempt of a push, in real time. Default:
	// CallbackTimeoutDefault.
	Timeout time.Duration `yaml:"timeout"`
	// Concurrency is the most pushes in flight at once. Default:
	// CallbackConcurrencyDefault.
	Concurrency int `yaml:"concurrency"`
	// Blocked lists openids whose receipts say StatusUserBlock.
	// Server.SetReceiptStatus overrides it per openid at run time.
	Blocked []string `yaml:"blocked"`
	// StatusFunc, when set, gives the Status of each recipient's receipt
	// instead of Blocked and StatusSuccess (Server.SetReceiptStatus still
	// overrides it). It must be safe for concurrent use.
	StatusFunc func(openid string) string `yaml:"-"`
}

// callbackSettings is a validated Callback.
type callbackSettings struct {
	url         *url.URL
	token       string
	mode        string
	crypters    map[string]*callback.Crypter // by the sending account's appid
	delay       time.Duration
	timeout     time.Duration
	concurrency int
	status      func(openid string) string
}

// settings validates c; nil settings mean no pushes.
func (c Callback) settings(accounts []Account, scaled func(time.Duration) time.Duration) (*callbackSettings, error) {
	p := func(goName, yamlName string) []pathElem {
		return fieldPath(fieldElem("Callback", "callback"), fieldElem(goName, yamlName))
	}
	if c.URL == "" {
		if c.Token != "" || c.AESKey != "" || c.Mode != "" || c.AppID != "" || len(c.Blocked) > 0 || c.StatusFunc != nil {
			return nil, configErrorf(p("URL", "url"), "empty, but other Callback fields are set")
		}
		return nil, nil
	}
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "" {
		return nil, configErrorf(p("URL", "url"), "%q is not an http or https URL", c.URL)
	}
	if c.Token == "" {
		return nil, configErrorf(p("Token", "token"), "empty")
	}
	st := &callbackSettings{url: u, token: c.Token, mode: c.Mode, status: c.StatusFunc}
	switch st.mode {
	case "":
		st.mode = CallbackPlain
	case CallbackPlain, CallbackCompatible, CallbackSafe:
	default:
		return nil, configErrorf(p("Mode", "mode"), "%q is not %s, %s or %s", c.Mode, CallbackPlain, CallbackCompatible, CallbackSafe)
	}
	if c.AppID != "" && !validAppID(c.AppID) {
		return nil, configErrorf(p("AppID", "app_id"), "%q is not an appid (\"wx\" and 16 letters or digits)", c.AppID)
	}
	if st.mode != CallbackPlain {
		if c.AESKey == "" {
			return nil, configErrorf(p("AESKey", "aes_key"), "empty in %s mode", st.mode)
		}
		st.crypters = make(map[string]*callback.Crypter, len(accounts))
		for _, a := range accounts {
			appID := a.AppID
			if c.AppID != "" {
				appID = c.AppID
			}
			cr, err := callback.NewCrypter(c.AESKey, appID)
			if err != nil {
				// The error never contains the key.
				return nil, configErrorf(p("AESKey", "aes_key"), "%v", err)
			}
			st.crypters[a.AppID] = cr
		}
	}
	if c.Delay < 0 {
		return nil, configErrorf(p("Delay", "delay"), "%v is negative", c.Delay)
	}
	if c.Delay > 0 {
		st.delay = scaled(c.Delay)
	}
	switch {
	case c.Timeout < 0:
		return nil, configErrorf(p("Timeout", "timeout"), "%v is negative", c.Timeout)
	case c.Timeout == 0:
		st.timeout = CallbackTimeoutDefault
	default:
		st.timeout = c.Timeout
	}
	switch {
	case c.Concurrency < 0 || c.Concurrency > CallbackConcurrencyMax:
		return nil, configErrorf(p("Concurrency", "concurrency"), "%d is not in 0..%d", c.Concurrency, CallbackConcurrencyMax)
	case c.Concurrency == 0:
		st.concurrency = CallbackConcurrencyDefault
	default:
		st.concurrency = c.Concurrency
	}
	if st.status == nil {
		blocked := make(map[string]bool, len(c.Blocked))
		for i, id := range c.Blocked {
			if strings.TrimSpace(id) == "" {
				return nil, configErrorf(append(p("Blocked", "blocked"), indexElem(i)), "empty openid")
			}
			blocked[id] = true
		}
		st.status = func(openid string) string {
			if blocked[openid] {
				return StatusUserBlock
			}
			return StatusSuccess
		}
	}
	return st, nil
}

// ReceiptStats counts the receipts the fake pushed.
type ReceiptStats struct {
	// Queued is the number of receipts queued after accepted template
	// sends.
	Queued int64 `json:"queued"`
	// Sent is the number of pushes answered HTTP 200, including those of
	// PushReceipt.
	Sent int64 `json:"sent"`
	// Failed is the number of pushes given up: not answered 200 after the
	// retries (or, for PushReceipt, after its one attempt).
	Failed int64 `json:"failed"`
	// Attempts is the number of HTTP requests made, retries included.
	Attempts int64 `json:"attempts"`
	// Dropped is the number of receipts not pushed because of Stop: those
	// of sends accepted after it, and those it cancelled before their first
	// attempt when its context ended.
	Dropped int64 `json:"dropped"`
}

// RawPush is one signed push request exactly as the fake sent it, so that
// a test can send it again byte for byte.
type RawPush struct {
	// URL is the full URL, with the signed query.
	URL string
	// ContentType is the Content-Type header.
	ContentType string
	// Body is the request body.
	Body []byte
}

// PushError is a push the receiver answered with another status than 200.
type PushError struct {
	// StatusCode is the receiver's HTTP status.
	StatusCode int
	// Body is the start of the receiver's answer.
	Body string
}

func (e *PushError) Error() string {
	if e.StatusCode == http.StatusOK {
		// An interaction push (PushInteraction) wants "success" or nothing.
		return fmt.Sprintf("wechattest: push answered HTTP 200 with %q, not \"success\" or an empty body", strings.TrimSpace(e.Body))
	}
	return fmt.Sprintf("wechattest: receipt push answered HTTP %d: %s", e.StatusCode, strings.TrimSpace(e.Body))
}

// pushJob is one receipt to push.
type pushJob struct {
	appID  string // the sending account
	openid string
	msgid  int64
	status string
	due    time.Time   // real time
	mass   *massFinish // a MASSSENDJOBFINISH instead of a receipt
}

// pusher pushes receipts in the background. Its workers exist only while
// there is work, so an idle fake runs no goroutine for it.
type pusher struct {
	set       *callbackSettings
	now       func() time.Time // the fake's clock, for timestamps
	transport *http.Transport
	client    *http.Client
	ctx       context.Context // ended when Stop gives up waiting
	cancel    context.CancelFunc

	mu      sync.Mutex
	queue   []pushJob
	running int
	stopped bool
	wg      sync.WaitGroup

	last atomic.Pointer[RawPush]

	// statuses is the receipt Status by openid of SetReceiptStatus. The
	// map is never changed once stored; SetReceiptStatus, under statusMu,
	// stores a changed copy.
	statuses atomic.Pointer[map[string]string]
	statusMu sync.Mutex

	queued, sent, failed, attempts, dropped atomic.Int64
	interactionsPushed, interactionsFailed  atomic.Int64
}

func newPusher(set *callbackSettings, now func() time.Time) *pusher {
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: set.concurrency,
		IdleConnTimeout:     30 * time.Second,
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &pusher{
		set:       set,
		now:       now,
		transport: tr,
		client:    &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		ctx:       ctx,
		cancel:    cancel,
	}
}

// enqueue queues the receipt of an accepted template send.
func (p *pusher) enqueue(appID, openid string, msgid int64) {
	p.queueJob(pushJob{appID: appID, openid: openid, msgid: msgid, status: p.status(openid), due: time.Now().Add(p.set.delay)})
}

// status is the Status of openid's next receipt.
func (p *pusher) status(openid string) string {
	if m := p.statuses.Load(); m != nil {
		if st, ok := (*m)[openid]; ok {
			return st
		}
	}
	return p.set.status(openid)
}

// setStatus sets (or, with "", removes) openid's receipt Status.
func (p *pusher) setStatus(openid, status string) {
	p.statusMu.Lock()
	defer p.statusMu.Unlock()
	var next map[string]string
	if cur := p.statuses.Load(); cur != nil {
		next = maps.Clone(*cur)
	}
	if next == nil {
		next = make(map[string]string, 1)
	}
	if status == "" {
		delete(next, openid)
	} else {
		next[openid] = status
	}
	p.statuses.Store(&next)
}

// enqueueMass queues the MASSSENDJOBFINISH of a finished mass job.
func (p *pusher) enqueueMass(appID string, msgID int64, f *massFinish) {
	p.queueJob(pushJob{appID: appID, openid: massSenderOpenID(appID), msgid: msgID, status: f.status, mass: f, due: time.Now().Add(p.set.delay)})
}

// queueJob queues job, starting a worker when fewer than the set's
// concurrency run.
func (p *pusher) queueJob(job pushJob) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		p.dropped.Add(1)
		return
	}
	p.queued.Add(1)
	p.queue = append(p.queue, job)
	if p.running < p.set.concurrency {
		p.running++
		p.wg.Add(1)
		go p.work()
	}
}

// work pushes queued receipts until the queue is empty.
func (p *pusher) work() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			p.running--
			p.queue = nil
			p.mu.Unlock()
			return
		}
		job := p.queue[0]
		p.queue = p.queue[1:]
		p.mu.Unlock()
		if d := time.Until(job.due); d > 0 {
			wait(p.ctx, d)
		}
		if p.ctx.Err() != nil {
			p.dropped.Add(1)
			continue
		}
		// The outcome is in the counters; nobody waits for it here.
		_ = p.push(p.ctx, job, 1+CallbackRetries)
	}
}

// push sends the receipt of job, up to attempts times.
func (p *pusher) push(ctx context.Context, job pushJob, attempts int) error {
	raw, err := p.build(job)
	if err != nil {
		p.failed.Add(1)
		return err
	}
	for i := range attempts {
		p.attempts.Add(1)
		if err = p.send(ctx, raw); err == nil {
			p.sent.Add(1)
			return nil
		}
		if ctx.Err() != nil || i == attempts-1 {
			break
		}
	}
	p.failed.Add(1)
	return err
}

// build signs (and encrypts) the push of job, and keeps it as the last one.
func (p *pusher) build(job pushJob) (RawPush, error) {
	now := p.now().Unix()
	gh := ghID(job.appID)
	event := eventXML(gh, job.openid, now, job.msgid, job.status)
	if job.mass != nil {
		event = massEventXML(gh, job.openid, now, job.msgid, job.mass)
	}
	raw, err := p.sign(job.appID, job.openid, now, event)
	if err != nil {
		return RawPush{}, err
	}
	p.last.Store(&raw)
	return raw, nil
}

// sign builds the signed (and, in safe and compatible modes, encrypted)
// push of event from account appID about openid at Unix time now.
func (p *pusher) sign(appID, openid string, now int64, event []byte) (RawPush, error) {
	ts := strconv.FormatInt(now, 10)
	nonce := strconv.FormatUint(rand.Uint64N(9_000_000_000)+1_000_000_000, 10)
	gh := ghID(appID)
	q := p.set.url.Query()
	q.Set("signature", callback.Signature(p.set.token, ts, nonce))
	q.Set("timestamp", ts)
	q.Set("nonce", nonce)
	q.Set("openid", openid)
	body := event
	if p.set.mode != CallbackPlain {
		cr := p.set.crypters[appID]
		if cr == nil {
			return RawPush{}, fmt.Errorf("wechattest: no callback crypter for appid %s", appID)
		}
		enc, err := cr.Encrypt(event)
		if err != nil {
			return RawPush{}, fmt.Errorf("wechattest: encrypt receipt: %w", err)
		}
		q.Set("encrypt_type", "aes")
		q.Set("msg_signature", callback.Signature(p.set.token, ts, nonce, enc))
		if p.set.mode == CallbackSafe {
			body = envelopeXML(gh, nil, enc)
		} else {
			body = envelopeXML(gh, event, enc)
		}
	}
	u := *p.set.url
	u.RawQuery = q.Encode()
	return RawPush{URL: u.String(), ContentType: "text/xml", Body: body}, nil
}

// pushInteraction pushes the interaction event from account appID about
// openid, once, and wants "success" or an empty body back.
func (p *pusher) pushInteraction(ctx context.Context, appID, openid string, event []byte) error {
	raw, err := p.sign(appID, openid, p.now().Unix(), event)
	if err == nil {
		err = p.sendWant(ctx, raw, true)
	}
	if err != nil {
		p.interactionsFailed.Add(1)
		return err
	}
	p.interactionsPushed.Add(1)
	return nil
}

// send makes one attempt at a push.
func (p *pusher) send(ctx context.Context, raw RawPush) error { return p.sendWant(ctx, raw, false) }

// sendWant makes one attempt at a push. With wantSuccess, an HTTP 200
// answer must also be "success" or empty (surrounding whitespace aside),
// as WeChat wants for a user's message or event.
func (p *pusher) sendWant(ctx context.Context, raw RawPush, wantSuccess bool) error {
	ctx, cancel := context.WithTimeout(ctx, p.set.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, raw.URL, bytes.NewReader(raw.Body))
	if err != nil {
		return fmt.Errorf("wechattest: receipt push: %w", err)
	}
	req.Header.Set("Content-Type", raw.ContentType)
	resp, err := p.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // Without the URL and its signed query.
		}
		return fmt.Errorf("wechattest: receipt push: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, callbackAnswerMax))
	if err != nil {
		return fmt.Errorf("wechattest: receipt push: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return &PushError{StatusCode: resp.StatusCode, Body: string(answer[:min(len(answer), 200)])}
	}
	if wantSuccess {
		if a := bytes.TrimSpace(answer); len(a) != 0 && string(a) != "success" {
			return &PushError{StatusCode: resp.StatusCode, Body: string(answer[:min(len(answer), 200)])}
		}
	}
	return nil
}

// stop refuses new pushes and waits for the queued and in-flight ones
// (see Server.Stop).
func (p *pusher) stop(ctx context.Context) error {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		p.cancel()
		<-done
		err = fmt.Errorf("wechattest: stop receipt pushes: %w", ctx.Err())
	}
	p.transport.CloseIdleConnections()
	return err
}

func (p *pusher) isStopped() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stopped
}

func (p *pusher) stats() ReceiptStats {
	return ReceiptStats{
		Queued:   p.queued.Load(),
		Sent:     p.sent.Load(),
		Failed:   p.failed.Load(),
		Attempts: p.attempts.Load(),
		Dropped:  p.dropped.Load(),
	}
}

// ghID is the fake original id ("gh_" and 12 hex digits) of an account.
func ghID(appID string) string {
	sum := sha256.Sum256([]byte(appID))
	return "gh_" + hex.EncodeToString(sum[:6])
}

// eventXML is a TEMPLATESENDJOBFINISH push as WeChat documents it
// (wechat-api.md §2.6).
func eventXML(gh, openid string, createTime, msgid int64, status string) []byte {
	var b bytes.Buffer
	b.WriteString("<xml><ToUserName>")
	writeCDATA(&b, gh)
	b.WriteString("</ToUserName><FromUserName>")
	writeCDATA(&b, openid)
	b.WriteString("</FromUserName><CreateTime>")
	b.WriteString(strconv.FormatInt(createTime, 10))
	b.WriteString("</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event><MsgID>")
	b.WriteString(strconv.FormatInt(msgid, 10))
	b.WriteString("</MsgID><Status>")
	writeCDATA(&b, status)
	b.WriteString("</Status></xml>")
	return b.Bytes()
}

// massSenderOpenID is the FromUserName of an account's MASSSENDJOBFINISH
// events: WeChat's sample shows an openid there (§5.6); the fake derives a
// fixed one from the appid.
func massSenderOpenID(appID string) string {
	sum := sha256.Sum256([]byte("mass:" + appID))
	return "o" + hex.EncodeToString(sum[:])[:openIDLen-1]
}

// massEventXML is a MASSSENDJOBFINISH push (wechat-api.md §5.6), without
// the originality-check elements, whose details are unconfirmed.
func massEventXML(gh, openid string, createTime, msgid int64, f *massFinish) []byte {
	var b bytes.Buffer
	b.WriteString("<xml><ToUserName>")
	writeCDATA(&b, gh)
	b.WriteString("</ToUserName><FromUserName>")
	writeCDATA(&b, openid)
	b.WriteString("</FromUserName><CreateTime>")
	b.WriteString(strconv.FormatInt(createTime, 10))
	b.WriteString("</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[MASSSENDJOBFINISH]]></Event><MsgID>")
	b.WriteString(strconv.FormatInt(msgid, 10))
	b.WriteString("</MsgID><Status>")
	writeCDATA(&b, f.status)
	b.WriteString("</Status><TotalCount>")
	b.WriteString(strconv.Itoa(f.total))
	b.WriteString("</TotalCount><FilterCount>")
	b.WriteString(strconv.Itoa(f.filter))
	b.WriteString("</FilterCount><SentCount>")
	b.WriteString(strconv.Itoa(f.sent))
	b.WriteString("</SentCount><ErrorCount>")
	b.WriteString(strconv.Itoa(f.errors))
	b.WriteString("</ErrorCount></xml>")
	return b.Bytes()
}

// envelopeXML is the body of an encrypted push: the account, the plaintext
// fields in compatible mode (event without its <xml> root), and <Encrypt>.
func envelopeXML(gh string, event []byte, enc string) []byte {
	var b bytes.Buffer
	if event != nil {
		b.Write(bytes.TrimSuffix(event, []byte("</xml>")))
	} else {
		b.WriteString("<xml><ToUserName>")
		writeCDATA(&b, gh)
		b.WriteString("</ToUserName>")
	}
	b.WriteString("<Encrypt>")
	writeCDATA(&b, enc)
	b.WriteString("</Encrypt></xml>")
	return b.Bytes()
}

// writeCDATA writes s as CDATA sections; a "]]>" inside s is split across
// two sections.
func writeCDATA(b *bytes.Buffer, s string) {
	b.WriteString("<![CDATA[")
	b.WriteString(strings.ReplaceAll(s, "]]>", "]]]]><![CDATA[>"))
	b.WriteString("]]>")
}

// PushReceipt pushes one TEMPLATESENDJOBFINISH receipt now, by hand, on the
// caller's goroutine: msgid and openid as given, Status status (such as
// StatusSuccess or StatusUserBlock), signed and encrypted as Config.Callback
// says, for the first account. It makes one attempt and returns a
// *PushError when the receiver answers another status than 200. It returns
// ErrNoCallback without a Callback.URL, and an error after Stop.
func (s *Server) PushReceipt(ctx context.Context, msgid int64, openid, status string) error {
	if s.pusher == nil {
		return ErrNoCallback
	}
	if s.pusher.isStopped() {
		return errPushStopped
	}
	job := pushJob{appID: s.set.accounts[0].AppID, openid: openid, msgid: msgid, status: status}
	return s.pusher.push(ctx, job, 1)
}

// SetReceiptStatus sets the Status of the TEMPLATESENDJOBFINISH receipts of
// openid's template messages accepted from now on, such as
// StatusUserBlock, "failed:freq limit", "failed: system failed" or
// StatusSuccess, over Callback.Blocked and Callback.StatusFunc; status ""
// restores what they say. Receipts already queued keep their Status. It
// returns ErrNoCallback without a Callback.URL and an error when openid is
// not an openid. It is safe for concurrent use with sends.
func (s *Server) SetReceiptStatus(openid, status string) error {
	if s.pusher == nil {
		return ErrNoCallback
	}
	if !validOpenID(openid) {
		return fmt.Errorf("wechattest: receipt openid %q: not an openid (o and 27 of [A-Za-z0-9_-])", openid)
	}
	s.pusher.setStatus(openid, status)
	return nil
}

// LastReceipt returns the last receipt push the fake built (by a template
// send, a mass job or PushReceipt; not PushInteraction's), and false when
// there was none.
func (s *Server) LastReceipt() (RawPush, bool) {
	if s.pusher == nil {
		return RawPush{}, false
	}
	raw := s.pusher.last.Load()
	if raw == nil {
		return RawPush{}, false
	}
	return RawPush{URL: raw.URL, ContentType: raw.ContentType, Body: slices.Clone(raw.Body)}, true
}

// Stop ends the fake's background work: it stops queueing receipts (later
// template sends still succeed but push nothing, counted as dropped) and
// waits for the queued and in-flight pushes, retries included. If ctx ends
// first, it cancels them, waits for them to return and reports ctx's error.
// Stop is idempotent and safe on a Server that never pushed; Start's
// cleanup and Run call it.
func (s *Server) Stop(ctx context.Context) error {
	if s.pusher == nil {
		return nil
	}
	return s.pusher.stop(ctx)
}
