package wechattest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// MsgIDBase is the smallest msgid template/send answers. Like WeChat's it is
// above 2^53, so a client that decodes msgids as float64 loses digits.
const MsgIDBase int64 = 3717005636572528642

// ShutdownTimeoutDefault bounds how long Run waits for answers in flight
// after its context ends.
const ShutdownTimeoutDefault = 5 * time.Second

// Server is the fake WeChat API. It is an http.Handler; Start serves it for
// a test and Run for a command. All its methods are safe for concurrent use.
type Server struct {
	set      *settings
	accounts map[string]*account
	tokens   *tokenStore

	followers *followerList
	tags      map[int64]*tagList

	templates    atomic.Pointer[templateSet] // template/send's; SetTemplateIDs swaps it
	subTemplates map[string]string           // allowed template id -> canonical string
	mediaIDs     map[string]bool             // nil accepts any
	kfAccounts   map[string]bool             // nil accepts any name@domain

	faults *faultInjector
	dedupe *dedupeTable
	rec    *recorder
	calls  chunkLog[callRecord] // every send call, in arrival order
	stats  [apiCount]apiStats

	msgIDBase int64
	msgIDSeq  atomic.Int64
	ridSalt   uint32
	ridSeq    atomic.Uint32

	pusher *pusher // nil without Config.Callback
	mass   *massState

	// terminal is Config.Terminal as SetTerminal changed it. The map is
	// never changed once stored; SetTerminal, under terminalMu, stores a
	// changed copy.
	terminal   atomic.Pointer[map[string]int]
	terminalMu sync.Mutex
	cs         csWindows // customer-service windows, by account and user
	interacted atomic.Int64

	url      atomic.Pointer[string]
	down     atomic.Int32 // the HTTP status every API answers; 0: up
	bufs     sync.Pool
	slowHook atomic.Pointer[func(completed bool)] // for tests
}

// account is an Account with its live state.
type account struct {
	Account
	heads    [tokenKinds]tokenHead // guarded by tokenStore.mu
	limiters [apiCount]*limiter
	rotated  atomic.Pointer[string] // the appsecret after SetSecret
	follows  followChanges          // follows and unfollows (Interact)
}

// secret is the account's appsecret now.
func (a *account) secret() string {
	if p := a.rotated.Load(); p != nil {
		return *p
	}
	return a.Secret
}

// New validates cfg and returns a Server. Errors are *ConfigError values
// naming the field.
func New(cfg Config) (*Server, error) {
	set, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	followers, err := newFollowerList(set.seed, set.followers, set.followerIDs)
	if err != nil {
		return nil, err
	}
	now := set.now()
	s := &Server{
		set:          set,
		accounts:     make(map[string]*account, len(set.accounts)),
		followers:    followers,
		tags:         newTagLists(set.tags),
		subTemplates: canonical(set.subTemplateIDs),
		faults:       newFaultInjector(set.seed, set.faults),
		dedupe:       newDedupeTable(set.dedupeWindow),
		rec:          newRecorder(),
		// Distinct per start second, so that msgids of a restarted fake do
		// not collide with those a client stored before.
		msgIDBase: MsgIDBase + (now.Unix()%(1<<30))<<24,
		ridSalt:   rand.New(rand.NewPCG(uint64(set.seed), 1)).Uint32(),
		mass:      newMassState(),
	}
	s.templates.Store(newTemplateSet(set.templateIDs))
	s.terminal.Store(&set.terminal)
	if len(set.mediaIDs) > 0 {
		s.mediaIDs = make(map[string]bool, len(set.mediaIDs))
		for _, id := range set.mediaIDs {
			s.mediaIDs[id] = true
		}
	}
	if len(set.kfAccounts) > 0 {
		s.kfAccounts = make(map[string]bool, len(set.kfAccounts))
		for _, kf := range set.kfAccounts {
			s.kfAccounts[kf] = true
		}
	}
	s.tokens = &tokenStore{
		entries: make(map[string]*tokenEntry),
		ttl:     set.tokenTTL,
		overlap: set.tokenOverlap,
		spacing: set.forceSpacing,
		loc:     set.loc,
	}
	for _, a := range set.accounts {
		acct := &account{Account: a}
		for id := range acct.limiters {
			acct.limiters[id] = newLimiter(set.limits[apiID(id)])
		}
		s.accounts[a.AppID] = acct
		s.tokens.accounts = append(s.tokens.accounts, acct)
	}
	if set.callback != nil {
		s.pusher = newPusher(set.callback, set.now)
	}
	s.bufs.New = func() any { return new(exchange) }
	return s, nil
}

// canonical maps each allowed id to itself: the string that records keep,
// owned by the server rather than by a request.
func canonical(ids []string) map[string]string {
	m := make(map[string]string, len(ids))
	for _, id := range ids {
		m[id] = id
	}
	return m
}

// templateSet is an allow-list of template/send. It is never changed once
// stored; SetTemplateIDs stores a new one.
type templateSet struct {
	ids   []string          // in the order they were set
	canon map[string]string // see canonical
}

func newTemplateSet(ids []string) *templateSet {
	ids = slices.Clone(ids)
	return &templateSet{ids: ids, canon: canonical(ids)}
}

// Start serves a new Server for the test on an httptest.Server. In
// tb.Cleanup it stops the Server (waiting up to ShutdownTimeoutDefault for
// receipt pushes), ends the contexts of requests in flight and closes the
// httptest.Server. It fails the test when cfg is invalid.
func Start(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := httptest.NewUnstartedServer(s)
	ts.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	ts.Start()
	s.setURL(ts.URL)
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), ShutdownTimeoutDefault)
		defer scancel()
		if err := s.Stop(sctx); err != nil {
			tb.Error(err)
		}
		cancel()
		ts.Close()
	})
	return s
}

// Run serves the fake on ln until ctx ends, then shuts down: it stops
// accepting, ends the contexts of requests in flight (so slow answers give
// up) and waits up to ShutdownTimeoutDefault for the rest and for the
// receipt pushes (Stop). It returns nil after a shutdown caused by ctx.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return ctx },
	}
	s.setURL("http://" + ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeoutDefault)
	defer cancel()
	select {
	case err := <-served:
		return errors.Join(fmt.Errorf("serve fake wechat: %w", err), s.Stop(sctx))
	case <-ctx.Done():
	}
	// The shutdown's time starts now, not when Run started.
	cancel()
	sctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeoutDefault)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close() // Shutdown already failed; report that error.
		<-served
		return errors.Join(fmt.Errorf("shut down fake wechat: %w", err), s.Stop(sctx))
	}
	stopErr := s.Stop(sctx)
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return errors.Join(fmt.Errorf("serve fake wechat: %w", err), stopErr)
	}
	return stopErr
}

func (s *Server) setURL(u string) { s.url.Store(&u) }

// URL returns the base URL the server is served at, such as
// "http://127.0.0.1:43521", or "" before Start or Run. Clients append
// "/cgi-bin/...".
func (s *Server) URL() string {
	if u := s.url.Load(); u != nil {
		return *u
	}
	return ""
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	st := Stats{
		APIs:                make(map[string]APIStats, apiCount),
		Deliveries:          int64(s.rec.count()),
		DuplicatesDelivered: s.rec.dups.Load(),
	}
	st.Interactions.Recorded = s.interacted.Load()
	if s.pusher != nil {
		st.Receipts = s.pusher.stats()
		st.Interactions.Pushed = s.pusher.interactionsPushed.Load()
		st.Interactions.PushFailed = s.pusher.interactionsFailed.Load()
	}
	for id := apiID(0); id < apiCount; id++ {
		st.APIs[id.name()] = s.stats[id].snapshot()
	}
	return st
}

// Deliveries returns a copy of every recorded delivery in the order they
// were accepted.
func (s *Server) Deliveries() []Delivery {
	return s.rec.slice(0, s.rec.count())
}

// DeliveriesTo returns a copy of every recorded delivery to openid, of any
// account and send API, in the order they were accepted. Mass jobs are not
// deliveries; see MassJobs.
func (s *Server) DeliveriesTo(openid string) []Delivery {
	recs := s.rec.list.filter(func(r *record) bool { return r.openid == openid })
	out := make([]Delivery, len(recs))
	for i := range recs {
		out[i] = recs[i].delivery()
	}
	return out
}

// SetSecret resets an account's appsecret, as an operator does in the MP
// admin: the token APIs accept only the new one from now on, and tokens
// already issued stay valid.
func (s *Server) SetSecret(appID, secret string) error {
	a := s.accounts[appID]
	if a == nil {
		return fmt.Errorf("wechattest: no account %s", appID)
	}
	if secret == "" {
		return errors.New("wechattest: empty appsecret")
	}
	a.rotated.Store(&secret)
	return nil
}

// InvalidateTokens revokes every access_token of every account; using one
// answers 40001, and the next token call issues a new one.
func (s *Server) InvalidateTokens() { s.tokens.invalidate() }

// ResetQuotas zeroes every account's daily call counts and force_refresh
// counts, as WeChat's clear_quota does.
func (s *Server) ResetQuotas() {
	for _, a := range s.accounts {
		for _, l := range a.limiters {
			l.reset()
		}
	}
	s.tokens.resetForce()
}

// SetFaults replaces the fault rates and the latency; calls already in
// flight keep what they drew. It returns an error naming the field when a
// rate is not in [0, 1] or SlowDelay or Latency is negative, and then keeps
// the old Faults.
func (s *Server) SetFaults(f Faults) error {
	f, ferr := f.withDefaults()
	if ferr != nil {
		return fmt.Errorf("wechattest: Faults.%s: %s", ferr.field, ferr.reason)
	}
	s.faults.cur.Store(&f)
	return nil
}

// Faults returns the current fault rates and latency.
func (s *Server) Faults() Faults { return *s.faults.cur.Load() }

// SetTemplateIDs replaces the allow-list of template/send (Config.TemplateIDs)
// with a copy of ids, so that a test can make sends answer 40037 in the
// middle of a campaign, as when an operator deletes a template. Sends that
// are being handled may still see the old list; later ones see the new one.
// Config.TemplateKeywords keep applying to the ids they name, and other ids
// accept any well-formed keywords. It returns an error, and keeps the old
// list, when ids is empty or has an empty or duplicate id. It is safe for
// concurrent use with sends: template/send reads the list through an atomic
// pointer.
func (s *Server) SetTemplateIDs(ids []string) error {
	if len(ids) == 0 {
		return errors.New("wechattest: template ids: empty list")
	}
	if i, reason := badID(ids); i >= 0 {
		return fmt.Errorf("wechattest: template ids[%d]: %s", i, reason)
	}
	s.templates.Store(newTemplateSet(ids))
	return nil
}

// TemplateIDs returns a copy of the current allow-list of template/send.
func (s *Server) TemplateIDs() []string { return slices.Clone(s.templates.Load().ids) }

// FollowerOpenIDs returns the openids of all followers of the first account
// in user/get order: the generated ones, then Config.FollowerIDs, then the
// users who followed later (Interact), without those who unfollowed. Every
// account has the same followers until Interact changes them.
func (s *Server) FollowerOpenIDs() []string {
	v, done := s.followersOf(s.accounts[s.set.accounts[0].AppID])
	defer done()
	return v.all()
}

// exchange holds one request's buffers and call state; it is pooled.
type exchange struct {
	body []byte
	out  []byte
	call callState
}

// exchangeKeepMax is the largest buffer returned to the pool.
const exchangeKeepMax = 64 << 10

func (s *Server) getExchange() *exchange { return s.bufs.Get().(*exchange) }

func (s *Server) putExchange(x *exchange) {
	if cap(x.body) > exchangeKeepMax || cap(x.out) > exchangeKeepMax {
		return
	}
	x.body, x.out = x.body[:0], x.out[:0]
	x.call = callState{}
	s.bufs.Put(x)
}

// errBodyTooLarge is a request body over MaxBodyBytes.
var errBodyTooLarge = errors.New("wechattest: request body too large")

// readBody reads r into x.body, at most MaxBodyBytes.
func (x *exchange) readBody(r io.Reader) error {
	x.body = x.body[:0]
	for {
		if len(x.body) == cap(x.body) {
			x.body = append(x.body, 0)[:len(x.body)]
		}
		n, err := r.Read(x.body[len(x.body):cap(x.body)])
		x.body = x.body[:len(x.body)+n]
		if len(x.body) > MaxBodyBytes {
			return errBodyTooLarge
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read body: %w", err)
		}
	}
}

// outcome is how a call was answered, for the statistics. A successful
// handler has appended its answer body to exchange.out.
type outcome struct {
	code     int    // errcode; 0 is success
	msg      string // errmsg without rid; "" is errmsg(code)
	msgid    int64  // template/send
	accepted bool   // a delivery was recorded
	deduped  bool   // answered from the client_msg_id window
	issued   bool   // a new access_token was issued
}

// ServeHTTP serves the WeChat APIs below /cgi-bin/ and the control
// endpoints below /fake/. Other paths answer 404.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id, ok := apiByPath(r.URL.Path); ok {
		s.serveAPI(w, r, id)
		return
	}
	if name, ok := isMassPath(r.URL.Path); ok {
		s.serveMass(w, r, name)
		return
	}
	if strings.HasPrefix(r.URL.Path, controlPrefix) {
		s.serveControl(w, r)
		return
	}
	http.NotFound(w, r)
}

// serveAPI runs one WeChat API call: method, body, faults, token, limits,
// the API's own handler, then the slow fault, the latency and the drop
// fault.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request, id apiID) {
	st := &s.stats[id]
	st.calls.Add(1)
	now := st.peak.observe(s.set.now)
	x := s.getExchange()
	defer s.putExchange(x)

	// Calls refused before the draw still get the send APIs' latency.
	var base faultDraw
	if id.isSend() {
		s.beginCall(x, id, now)
		base = s.faults.base()
	}
	if r.Method != id.method() {
		code := 43002
		if id.method() == http.MethodGet {
			code = 43001
		}
		s.finish(w, r, x, st, outcome{code: code}, base, now)
		return
	}
	if r.Method == http.MethodPost {
		if err := x.readBody(r.Body); err != nil {
			// Too large, or the client went away mid-body.
			x.call.parsed = true // Do not parse a partial body.
			s.finish(w, r, x, st, outcome{code: 47001}, base, now)
			return
		}
	}
	if status := int(s.down.Load()); status != 0 {
		// WeChat is down (SetDown): every API answers the status.
		st.http5xx.Add(1)
		s.settleCall(x, r, &outcome{}, status, now)
		s.answer(w, r, x, st, faultDraw{latency: base.latency}, status)
		return
	}
	var fault faultDraw
	if id.isSend() {
		fault = s.faults.draw()
		if fault.status != 0 {
			st.http5xx.Add(1)
			s.settleCall(x, r, &outcome{}, fault.status, now)
			// A failing proxy answers neither slowly nor by dropping.
			s.answer(w, r, x, st, faultDraw{latency: fault.latency}, fault.status)
			return
		}
		if fault.invalidate {
			st.invalidate.Add(1)
			s.InvalidateTokens()
		}
	}
	s.finish(w, r, x, st, s.handle(x, r, id, fault, now), fault, now)
}

// handle answers a call whose method and body were read, by appending the
// success body to x.out or returning an errcode.
func (s *Server) handle(x *exchange, r *http.Request, id apiID, fault faultDraw, now time.Time) outcome {
	switch id {
	case apiStableToken:
		return s.stableToken(x, now)
	case apiToken:
		return s.plainToken(x, r.URL.RawQuery, now)
	}
	acct, code := s.tokens.check(queryValue(r.URL.RawQuery, "access_token"), now)
	x.call.rec.acct, x.call.checked = acct, true
	if code != 0 {
		return outcome{code: code}
	}
	if code := acct.limiters[id].admit(now, s.set.loc); code != 0 {
		return outcome{code: code}
	}
	if fault.sysErr {
		s.stats[id].sysErr.Add(1)
		return outcome{code: -1}
	}
	switch id {
	case apiTemplateSend:
		return s.templateSend(x, acct, now)
	case apiCustomSend:
		return s.customSend(x, acct, now)
	case apiBizSend:
		return s.bizSend(x, acct, now)
	case apiUserGet:
		return s.userGet(x, acct, r.URL.RawQuery)
	case apiTagGet:
		return s.tagGet(x)
	case apiQuotaGet:
		return s.quotaGet(x, acct, now)
	case apiCallbackIP:
		x.out = append(x.out, callbackIPAnswer...)
		return outcome{}
	}
	return outcome{code: -1, msg: "unhandled api " + id.name()}
}

// finish counts the outcome and answers it.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, x *exchange, st *apiStats, out outcome, fault faultDraw, now time.Time) {
	if out.code != 0 {
		x.out = s.appendError(x.out[:0], out.code, out.msg, now)
	}
	if out.issued {
		st.tokensIssued.Add(1)
	}
	st.count(&out)
	s.settleCall(x, r, &out, 0, now)
	s.answer(w, r, x, st, fault, 0)
}

// answer waits for the slow fault and the latency, then drops the
// connection or writes the answer: x.out with HTTP 200 when status is 0,
// else the HTML page of a 5xx status. It records how that went (endCall).
//
// The client going away shows as the end of r.Context(): for HTTP/1.1, the
// server reads the connection in the background once the body is consumed
// and cancels the context when the client closes it. A close that the server
// notices only after the answer is on its way is caught by the error of the
// write or of the explicit flush, when the kernel reports it by then.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, x *exchange, st *apiStats, fault faultDraw, status int) {
	ctx := r.Context()
	if x.call.slot != nil && (fault.slow > 0 || fault.latency > 0) {
		// Show the handled call while it waits.
		s.calls.store(x.call.slot, &x.call.rec)
	}
	if fault.slow > 0 {
		st.slow.Add(1)
		completed := wait(ctx, fault.slow)
		if !completed {
			s.endCall(x, st, answerAbandoned)
		}
		if h := s.slowHook.Load(); h != nil {
			(*h)(completed)
		}
		if !completed {
			return
		}
	}
	if fault.latency > 0 && !wait(ctx, fault.latency) {
		s.endCall(x, st, answerAbandoned)
		return
	}
	if fault.drop {
		st.drop.Add(1)
		// Recorded first, so that the record is there when the client sees
		// the connection close (and because dropConnection may panic).
		s.endCall(x, st, answerDropped)
		dropConnection(w)
		return
	}
	if ctx.Err() != nil {
		s.endCall(x, st, answerAbandoned)
		return
	}
	// Recorded first, so that a client that has read its answer finds the
	// call answered; corrected below when the answer does not go out.
	s.endCall(x, st, answerAnswered)
	var err error
	if status == 0 {
		err = writeBody(w, x.out)
	} else {
		err = write5xx(w, status)
	}
	if err == nil {
		err = http.NewResponseController(w).Flush()
	}
	if err != nil {
		s.unanswer(x, st)
	}
}

// queryValue returns the first value of key in a raw URL query, unescaped.
// It avoids url.ParseQuery's map on the hot path.
func queryValue(rawQuery, key string) string {
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
		}
		return v
	}
	return ""
}
