package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/monitoring"
	"github.com/wxmass/wxmass/wechat"
)

// Defaults of the circuit breaker's Config fields.
const (
	// BreakerThresholdDefault is how many outage-like failures in a row,
	// with no answer from WeChat in between, one process sees for an
	// account before it opens the account's breaker.
	BreakerThresholdDefault = 5
	// BreakerProbeIntervalDefault is how often an open breaker is probed
	// at first.
	BreakerProbeIntervalDefault = 10 * time.Second
	// BreakerProbeMaxDefault is the longest interval between probes: each
	// failed probe doubles the interval up to it.
	BreakerProbeMaxDefault = time.Minute
)

// breakerAPIs are the send APIs whose buckets an open breaker pauses.
var breakerAPIs = []string{wechat.APITemplateSend, wechat.APICustomSend, wechat.APIBizSend, account.APIMass}

// breaker is the circuit breaker per account: when WeChat is unreachable
// for an account (its calls fail with a transport failure, HTTP 5xx, a
// connection refused, dropped or timed out, or errcode -1), the account's
// sends stop calling it and wait ("parked": they go back to the queue
// without using a retry), until a probe gets an answer. The state is
// shared by the fleet in Redis (ratelimit.Breakers); this type keeps what
// one process counts.
//
// It opens when one process sees Config.BreakerThreshold outage-like
// failures of an account's calls in a row with no answer in between,
// whatever the rate (a quiet account at 1/s trips as a busy one does).
// Open, it pauses the account's send buckets for every process
// (ratelimit.Limiter.PauseOutage, kept apart from the quota pause of
// 45009: the quota probe does not resume it, nor the breaker a quota
// pause). One process of the fleet at a time (a probe slot claimed in
// Redis) probes WeChat with getcallbackip every Config.BreakerProbeInterval,
// doubling up to Config.BreakerProbeMax while it stays down; any answer
// (even an errcode) closes the breaker and resumes the buckets. The open
// breaker and its pauses last a lease (breakerLease) that each failed
// probe extends, so that a breaker left open by a fleet that went away
// closes by itself. Sends that fail again re-open it.
//
// The outage brake (brake.go) stays for partial failure: while most but
// not all calls fail, the breaker never sees a long enough run of
// failures, and the brake's slowdown of the shared rate keeps the fleet
// from calling a failing WeChat at the full rate.
//
// It is safe for concurrent use.
type breaker struct {
	mu    sync.Mutex
	fails map[string]int // appID -> outage-like failures in a row
}

// observe counts an answer of a call for appID: outage says it failed
// outage-like. It reports whether the failures in a row reach threshold.
func (b *breaker) observe(appID string, outage bool, threshold int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.fails == nil {
		b.fails = make(map[string]int)
	}
	if !outage {
		delete(b.fails, appID)
		return false
	}
	b.fails[appID]++
	return b.fails[appID] >= threshold
}

// reset forgets appID's failures (its breaker closed).
func (b *breaker) reset(appID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.fails, appID)
}

// breakerLeaseMin is the shortest lease of an open breaker, so that a probe
// slow to come (a busy Redis, a probe call timing out) does not let the
// pauses lapse while WeChat is still down.
const breakerLeaseMin = 30 * time.Second

// breakerLease is how long an open breaker and its pauses last unless a
// probe extends them: three of the longest probe intervals, at least
// breakerLeaseMin.
func (w *Worker) breakerLease() time.Duration { return max(3*w.cfg.BreakerProbeMax, breakerLeaseMin) }

// outage handles an outage-like failure of a call for acct: tripped says
// that this process's failures in a row reached the threshold, which opens
// the account's breaker (or keeps it open). It reports whether the breaker
// is open, so that the send is parked rather than retried.
func (w *Worker) outage(ctx context.Context, acct *account.Account, tripped bool, meaning string) (bool, time.Time) {
	br := w.limiter.Breakers()
	if !tripped {
		st, err := br.State(ctx, acct.AppID)
		if err != nil || !st.Open {
			return false, time.Time{}
		}
		return true, w.cfg.NowFunc().Add(w.cfg.PauseRecheck)
	}
	lease := w.breakerLease()
	opened, since, err := br.Open(ctx, acct.AppID, lease)
	if err != nil {
		w.log.Warn("open circuit breaker", zap.String("account", acct.ID), zap.Error(err))
		return false, time.Time{}
	}
	until := w.cfg.NowFunc().Add(lease)
	for _, api := range breakerAPIs {
		if err := w.limiter.PauseOutage(ctx, acct.BucketKey(api), until); err != nil {
			w.log.Warn("pause for outage", zap.String("account", acct.ID), zap.String("api", api), zap.Error(err))
		}
	}
	if opened {
		w.cfg.Metrics.CircuitOpened(acct.ID)
		w.cfg.Metrics.CircuitOpen(acct.ID, true)
		w.log.Warn("wechat unreachable: circuit breaker open, the account's sends wait", zap.String("account", acct.ID),
			zap.Time("since", since), zap.Int("threshold", w.cfg.BreakerThreshold), zap.String("last", meaning))
	}
	return true, until
}

// probeLoop probes the open breakers until ctx ends: every tick (a quarter
// of the probe interval), for each account whose breaker is open, it tries
// to claim the account's probe slot; the one process of the fleet that
// does probes.
func (w *Worker) probeLoop(ctx context.Context) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	owner := hex.EncodeToString(b)
	open := map[string]bool{} // appID -> open at the last tick
	for _, a := range w.accounts.All() {
		w.cfg.Metrics.DeclareCircuit(a.ID)
		w.cfg.Metrics.DeclareProtection(a.ID)
	}
	t := time.NewTicker(max(time.Millisecond, w.cfg.BreakerProbeInterval/4))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, a := range w.accounts.All() {
			w.probeAccount(ctx, a, owner, open)
		}
	}
}

// probeAccount probes a's breaker if it is open and this process claims
// the probe.
func (w *Worker) probeAccount(ctx context.Context, a *account.Account, owner string, open map[string]bool) {
	br := w.limiter.Breakers()
	st, err := br.State(ctx, a.AppID)
	if err != nil {
		return
	}
	w.cfg.Metrics.CircuitOpen(a.ID, st.Open)
	if !st.Open {
		if open[a.AppID] {
			// Closed by another process's probe (or lapsed): this
			// process's count starts again.
			delete(open, a.AppID)
			w.breaker.reset(a.AppID)
		}
		return
	}
	open[a.AppID] = true
	every := w.cfg.BreakerProbeInterval
	for i := 0; i < st.Probes && every < w.cfg.BreakerProbeMax; i++ {
		every *= 2
	}
	every = min(every, w.cfg.BreakerProbeMax)
	if ok, err := br.ClaimProbe(ctx, a.AppID, owner, every); err != nil || !ok {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, every)
	_, perr := w.wechat.CallbackIPs(pctx, a.Tokens)
	cancel()
	if ctx.Err() != nil {
		return
	}
	var ae *wechat.APIError
	var te *wechat.TransportError
	switch {
	case perr == nil || errors.As(perr, &ae):
		w.cfg.Metrics.Probe(a.ID, monitoring.ProbeAnswered)
		w.closeBreaker(ctx, a)
		delete(open, a.AppID)
	case errors.As(perr, &te):
		w.cfg.Metrics.Probe(a.ID, monitoring.ProbeFailed)
		lease := w.breakerLease()
		n, err := br.ProbeFailed(ctx, a.AppID, lease)
		if err != nil || n == 0 {
			return
		}
		until := w.cfg.NowFunc().Add(lease)
		for _, api := range breakerAPIs {
			if err := w.limiter.PauseOutage(ctx, a.BucketKey(api), until); err != nil {
				w.log.Warn("pause for outage", zap.String("account", a.ID), zap.String("api", api), zap.Error(err))
			}
		}
		w.log.Debug("wechat still unreachable", zap.String("account", a.ID), zap.Int("probes", n), zap.Error(perr))
	default:
		w.cfg.Metrics.Probe(a.ID, monitoring.ProbeError)
		w.log.Warn("breaker probe", zap.String("account", a.ID), zap.Error(perr))
	}
}

// closeBreaker closes a's breaker and resumes its buckets.
func (w *Worker) closeBreaker(ctx context.Context, a *account.Account) {
	was, since, err := w.limiter.Breakers().Close(ctx, a.AppID)
	if err != nil {
		w.log.Warn("close circuit breaker", zap.String("account", a.ID), zap.Error(err))
		return
	}
	for _, api := range breakerAPIs {
		if err := w.limiter.ResumeOutage(ctx, a.BucketKey(api)); err != nil {
			w.log.Warn("resume after outage", zap.String("account", a.ID), zap.String("api", api), zap.Error(err))
		}
	}
	w.breaker.reset(a.AppID)
	w.cfg.Metrics.CircuitOpen(a.ID, false)
	if was {
		w.log.Info("wechat reachable again: circuit breaker closed, the account's sends resume", zap.String("account", a.ID),
			zap.Time("since", since), zap.Duration("open_for", w.cfg.NowFunc().Sub(since).Round(time.Millisecond)))
	}
}
