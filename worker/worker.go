package worker

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/media"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/monitoring"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat"
)

// Defaults of Config.
const (
	StateTTLDefault           = time.Second
	RunDeadlineDefault        = 72 * time.Hour
	QuotaProbeIntervalDefault = 30 * time.Second
	StallTimeoutDefault       = time.Minute
	ReconcileIntervalDefault  = 30 * time.Second
	BulkRateWaitDefault       = 250 * time.Millisecond
)

// Config configures a Worker. Zero values take the defaults.
type Config struct {
	// StateTTL is how long a worker trusts a run's state read from Redis.
	// State changes are also announced, which drops the cached state at
	// once.
	StateTTL time.Duration
	// RunDeadline is how long after its start a run's sends may still be
	// made; a send still throttled or paused after it fails as expired.
	RunDeadline time.Duration
	// PauseRecheck bounds how long a paused send stays away before it looks
	// again.
	PauseRecheck time.Duration
	// QuotaProbeInterval is how often a paused (account, API) is probed with
	// quota/get, to resume as soon as the quota is back.
	QuotaProbeInterval time.Duration
	// StallTimeout is how long a live run may go without progress (no
	// recipient getting an outcome, whichever process sends) before the
	// reconciler queues its lost tasks again: a recipient without an
	// outcome and without a send task then gets a new task (those whose
	// task is still queued, retried or in flight keep it: a task's id is
	// fixed), and so do a lost launch, expand or settle task. Tasks are
	// lost when a failover drops them, or an operator deletes them. Redis
	// can lose a recipient's outcome and keep its task's acknowledgement
	// when its primary changes: writes the old primary took after the
	// promotion are lost, and a process's connections (its own, asynq's)
	// follow the new primary a few milliseconds apart, so an outcome can
	// go to the old primary and the acknowledgement that follows it to the
	// new one. The run would then never complete.
	StallTimeout time.Duration
	// ReconcileInterval is how often the reconciler looks at every live
	// run (ReconcileIntervalDefault). One process of the fleet does, the
	// holder of a lease in Redis that lasts three intervals; the others
	// take it over when it lapses.
	ReconcileInterval time.Duration
	// ArchiveStore, when set, is the store (with its archive) through which
	// the reconciler's lease holder archives finished runs after
	// ArchiveAfter (ArchiveAfterDefault), removes their msgid index entries
	// after ReceiptWindow (ReceiptWindowDefault) when that comes first, and
	// their archives after Retention (RetentionDefault), one pass every
	// ArchiveInterval (ArchiveIntervalDefault) archiving at most
	// ArchiveBatch (ArchiveBatchDefault) runs. All ages are from the run's
	// end. See archiver.
	ArchiveStore    *campaigns.Store
	ArchiveAfter    time.Duration
	ReceiptWindow   time.Duration
	Retention       time.Duration
	ArchiveInterval time.Duration
	ArchiveBatch    int
	// BreakerThreshold is how many outage-like failures in a row (HTTP
	// 5xx, a connection refused, dropped or timed out, errcode -1) with no
	// answer in between one process sees for an account before it opens
	// the account's circuit breaker (BreakerThresholdDefault; see
	// breaker.go).
	BreakerThreshold int
	// BreakerProbeInterval is how often an open breaker is probed with
	// getcallbackip, by one process of the fleet
	// (BreakerProbeIntervalDefault).
	BreakerProbeInterval time.Duration
	// BreakerProbeMax is the longest interval between probes: each failed
	// probe doubles it up to this (BreakerProbeMaxDefault; at least
	// BreakerProbeInterval).
	BreakerProbeMax time.Duration
	// BulkRateWait bounds how long a send of the bulk queue waits for its
	// rate token (BulkRateWaitDefault) before it goes back to its queue
	// until the limiter expects a token, so that it does not hold its slot
	// while other buckets' sends could use it. Transactional sends wait up
	// to the limiter's MaxWait.
	BulkRateWait time.Duration
	// ProtectRecheck bounds how long a send held back by the account's
	// protection (quiet hours, a frequency cap, a rest) stays away before
	// it looks again (ProtectRecheckDefault); it comes back at the end of
	// the hold when that is sooner.
	ProtectRecheck time.Duration
	// MassPollAfter is how long after its submission a mass job whose
	// MASSSENDJOBFINISH push has not come is asked about with mass/get
	// (MassPollAfterDefault), and MassPollInterval how often after that
	// (MassPollIntervalDefault).
	MassPollAfter    time.Duration
	MassPollInterval time.Duration
	Logger           *zap.Logger
	// Metrics receives outcomes, send durations and rate-limit waits; nil
	// means none.
	Metrics *monitoring.Metrics
	// NowFunc is the clock (time.Now).
	NowFunc func() time.Time
	// Media resolves the stored files of messages to media_ids (media.go);
	// nil: a campaign that refers to files fails to load.
	Media *media.Cache
}

func (c *Config) withDefaults() {
	if c.StateTTL <= 0 {
		c.StateTTL = StateTTLDefault
	}
	if c.RunDeadline <= 0 {
		c.RunDeadline = RunDeadlineDefault
	}
	if c.PauseRecheck <= 0 {
		c.PauseRecheck = pauseRecheckDefault
	}
	if c.QuotaProbeInterval <= 0 {
		c.QuotaProbeInterval = QuotaProbeIntervalDefault
	}
	if c.StallTimeout <= 0 {
		c.StallTimeout = StallTimeoutDefault
	}
	if c.ReconcileInterval <= 0 {
		c.ReconcileInterval = ReconcileIntervalDefault
	}
	c.archiveDefaults()
	if c.BreakerThreshold <= 0 {
		c.BreakerThreshold = BreakerThresholdDefault
	}
	if c.BreakerProbeInterval <= 0 {
		c.BreakerProbeInterval = BreakerProbeIntervalDefault
	}
	if c.BreakerProbeMax <= 0 {
		c.BreakerProbeMax = max(BreakerProbeMaxDefault, c.BreakerProbeInterval)
	}
	c.BreakerProbeMax = max(c.BreakerProbeMax, c.BreakerProbeInterval)
	if c.BulkRateWait <= 0 {
		c.BulkRateWait = BulkRateWaitDefault
	}
	if c.ProtectRecheck <= 0 {
		c.ProtectRecheck = ProtectRecheckDefault
	}
	if c.MassPollAfter <= 0 {
		c.MassPollAfter = MassPollAfterDefault
	}
	if c.MassPollInterval <= 0 {
		c.MassPollInterval = MassPollIntervalDefault
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
}

// Worker handles send tasks. It is safe for concurrent use by asynq's
// goroutines.
type Worker struct {
	cfg      Config
	store    *campaigns.Store
	accounts *account.Registry
	wechat   *wechat.Client
	limiter  *ratelimit.Limiter
	policy   *retry.Policy
	producer *producer.Producer
	log      *zap.Logger

	runs sync.Map // runKey -> *runView
	// mediaTries counts each recipient's sends tried again after a 40007
	// (media.go), by runKey|openid.
	mediaTries sync.Map
	brake      brake   // slows the shared rate down while most calls fail
	breaker    breaker // parks the account's sends while WeChat is unreachable
}

// New returns a Worker.
func New(store *campaigns.Store, accounts *account.Registry, wc *wechat.Client, limiter *ratelimit.Limiter,
	policy *retry.Policy, prod *producer.Producer, cfg Config) *Worker {
	cfg.withDefaults()
	return &Worker{cfg: cfg, store: store, accounts: accounts, wechat: wc, limiter: limiter,
		policy: policy, producer: prod, log: cfg.Logger}
}

// Mux returns the handlers of every task type.
func (w *Worker) Mux() *asynq.ServeMux {
	mux := asynq.NewServeMux()
	mux.HandleFunc(task.TypeLaunch, w.producer.HandleLaunch)
	mux.HandleFunc(task.TypeExpand, w.producer.HandleExpand)
	mux.HandleFunc(task.TypeSettle, w.producer.HandleSettle)
	mux.HandleFunc(task.TypeSendTemplate, w.HandleSend)
	mux.HandleFunc(task.TypeSendCustom, w.HandleSend)
	mux.HandleFunc(task.TypeSendSubscribe, w.HandleSend)
	mux.HandleFunc(task.TypeSendMass, w.HandleMassSend)
	return mux
}

// runView is what a worker keeps about a run: the compiled message, which
// does not change once the run has started, and the run's state, which is
// re-read every StateTTL.
type runView struct {
	c       *campaigns.Campaign
	run     int
	msg     *campaigns.Message
	account string // the account's ID, for metrics
	api     string
	hasVars bool
	started time.Time
	state   atomic.Pointer[stateEntry]
	used    atomic.Int64 // unix nanos of the last use, for the sweep
	media   viewMedia    // the media_ids of stored files (media.go)
	// blocking and quiet are the campaign's suppression reasons that stop
	// a send, and its own quiet hours (protect.go).
	blocking []string
	quiet    *account.QuietHours
}

// viewIdleTTL is how long a run's view is kept without use.
const viewIdleTTL = 10 * time.Minute

type stateEntry struct {
	state  string
	reason string
	until  time.Time
}

func runKey(id string, run int) string { return id + "|" + strconv.Itoa(run) }

// view returns the cached view of a run, loading what is missing or stale.
func (w *Worker) view(ctx context.Context, id string, run int) (*runView, *stateEntry, error) {
	key := runKey(id, run)
	now := w.cfg.NowFunc()
	var v *runView
	if x, ok := w.runs.Load(key); ok && !x.(*runView).mediaStale(now) {
		v = x.(*runView)
	} else {
		if ok { // its media_ids' time is up: resolve them again
			w.runs.CompareAndDelete(key, x)
		}
		loaded, err := w.loadView(ctx, id, run)
		if err != nil {
			return nil, nil, err
		}
		x, _ := w.runs.LoadOrStore(key, loaded)
		v = x.(*runView)
	}
	v.used.Store(now.UnixNano())
	if st := v.state.Load(); st != nil && now.Before(st.until) {
		return v, st, nil
	}
	rec, err := w.store.Run(ctx, id, run)
	if err != nil {
		return nil, nil, err
	}
	st := &stateEntry{state: rec.State, reason: rec.Reason, until: now.Add(w.cfg.StateTTL)}
	v.state.Store(st)
	if v.started.IsZero() {
		v.started = rec.Started
	}
	return v, st, nil
}

func (w *Worker) loadView(ctx context.Context, id string, run int) (*runView, error) {
	c, err := w.store.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	msg, err := c.Compile()
	if err != nil {
		return nil, fmt.Errorf("compile campaign %s: %w", id, err)
	}
	acct, err := w.accounts.Get(c.Account)
	if err != nil {
		return nil, err
	}
	msg, vm, err := w.resolveMedia(ctx, acct, msg)
	if err != nil {
		return nil, fmt.Errorf("campaign %s: media: %w", id, err)
	}
	rec, err := w.store.Run(ctx, id, run)
	if err != nil {
		return nil, err
	}
	return &runView{
		c: c, run: run, msg: msg, account: acct.ID, api: c.Kind.API(),
		hasVars:  len(msg.Variables()) > 0,
		started:  rec.Started,
		media:    vm,
		blocking: c.Blocking(),
		quiet:    c.Quiet(),
	}, nil
}

// sweep drops the views of runs unused for viewIdleTTL, so that a
// long-lived worker does not keep every campaign it ever sent.
func (w *Worker) sweep() {
	cutoff := w.cfg.NowFunc().Add(-viewIdleTTL).UnixNano()
	w.runs.Range(func(k, v any) bool {
		if v.(*runView).used.Load() < cutoff {
			w.runs.Delete(k)
		}
		return true
	})
}

// forget drops the cached state of every run of campaign id.
func (w *Worker) forget(id string) {
	prefix := id + "|"
	w.runs.Range(func(k, v any) bool {
		if strings.HasPrefix(k.(string), prefix) {
			v.(*runView).state.Store(nil)
		}
		return true
	})
}

// ClientMsgID is the client_msg_id of a template send: the same for every
// retry of one recipient in one run, so WeChat delivers at most once.
func ClientMsgID(campaign string, run int, openid string) string {
	h := sha256.Sum256([]byte(campaign + "\x00" + strconv.Itoa(run) + "\x00" + openid))
	return "wxm" + base64.RawURLEncoding.EncodeToString(h[:18])
}

// HandleSend is the asynq handler of send tasks. Its path: the run's
// state (cached), the rate tokens, the attempt (campaigns.Store's
// BeginAttempt: one round trip shared with other sends, which also reads
// the recipient's variables and settles a recipient that is not to be
// sent), the WeChat call, and the outcome (one more shared round trip).
func (w *Worker) HandleSend(ctx context.Context, t *asynq.Task) error {
	p, v, st, acct, err := w.sendTask(ctx, t)
	if err != nil {
		return err
	}
	id, run, openid := p.Campaign, p.Run.Run, p.OpenID
	tokened := false
	var adm *campaigns.Admission
	switch campaigns.State(st.state) {
	case campaigns.StatePaused:
		return &retry.Wait{After: w.cfg.PauseRecheck, Reason: "run paused"}
	case campaigns.StateCompleted:
		return nil // every recipient has an outcome
	case campaigns.StateRunning:
		if !v.started.IsZero() && w.cfg.NowFunc().After(v.started.Add(w.cfg.RunDeadline)) {
			w.stop(ctx, v, acct.ID, "run deadline passed before every send could be made")
			break
		}
		tx, now := transactional(ctx), w.cfg.NowFunc()
		if until, quiet := w.quietUntil(v, acct, tx, now); quiet {
			w.cfg.Metrics.Protected(acct.ID, monitoring.ProtectQuiet)
			return &retry.Wait{After: w.recheck(until, now), Reason: "quiet hours until " + until.Format(time.RFC3339)}
		}
		if err := w.waitRate(ctx, v, acct); err != nil {
			return err
		}
		tokened = true
		adm = w.admission(v, acct, tx, now)
	}
	// A stopped run takes no token: BeginAttempt settles its recipients.
	b, err := w.store.BeginAdmitted(ctx, v.c, run, openid, v.hasVars, !tokened, adm)
	if err != nil {
		return err
	}
	if adm != nil {
		switch {
		case b.Action == campaigns.BeginSend && !b.Admit.Admitted():
			if goOn, err := w.held(ctx, v, acct, run, openid, adm, b.Admit, false); !goOn {
				return err
			}
		case b.Action != campaigns.BeginSend && b.Admit.Verdict == campaigns.AdmitNew:
			// Admitted for nothing: the recipient is done, or the run
			// paused or stopped meanwhile.
			if err := w.store.ReleaseMember(ctx, adm.AppID, openid, adm.Member); err != nil {
				w.sendLog(ctx, id, run, openid).Warn("release cap place", zap.Error(err))
			}
		}
	}
	if done, err := w.afterBegin(v, run, b); done {
		return err
	}

	sendStart := time.Now()
	msgid, sendErr := w.send(ctx, v, acct, id, b.ClientMsgRun, openid, b.Vars)
	w.cfg.Metrics.SendDuration(acct.ID, string(v.c.Kind), time.Since(sendStart))
	retried, _ := asynq.GetRetryCount(ctx)
	d := w.policy.Decide(sendErr, retried, w.cfg.NowFunc())
	// lost: the call may have reached WeChat and its answer was not read.
	lost := answerLost(sendErr, v.api)
	// A send cut short by this process's shutdown says nothing about
	// WeChat.
	if ctx.Err() == nil && w.brake.observe(acct.BucketKey(v.api), outageFailure(d), w.cfg.NowFunc()) {
		w.log.Warn("wechat fails most calls: slowing the account's rate down", zap.String("account", acct.ID),
			zap.String("api", v.api), zap.String("last", d.Meaning))
		if err := w.limiter.Slowdown(ctx, acct.BucketKey(v.api)); err != nil {
			w.log.Warn("rate slowdown", zap.Error(err))
		}
	}
	if ctx.Err() == nil {
		outage := outageFailure(d)
		tripped := w.breaker.observe(acct.AppID, outage, w.cfg.BreakerThreshold)
		// A send with no dedupe key whose answer was lost ends unknown
		// below, breaker or not.
		if outage && (!lost || v.c.Kind == campaigns.KindTemplate) {
			if open, until := w.outage(ctx, acct, tripped, d.Meaning); open {
				// Parked: it comes back without using a retry, and waits
				// at its bucket's outage pause until the breaker closes
				// (the run's deadline bounds it). A template send whose
				// answer was lost goes again with the same client_msg_id
				// (the ledger ends it unknown past the dedupe window).
				return w.later(ctx, v, run, openid, lost, &ratelimit.PausedError{Key: acct.BucketKey(v.api), Until: until, Reason: ratelimit.PauseOutage})
			}
		}
	}
	if invalidMedia(sendErr, v) {
		// A media_id WeChat dropped: upload again and send again.
		if again := w.mediaRetry(ctx, v, acct, openid); again != nil {
			return w.later(ctx, v, run, openid, false, again)
		}
	}
	switch d.Action {
	case retry.ActionSucceed:
		return w.record(ctx, v, run, openid, campaigns.Outcome{Status: campaigns.OutcomeSent, MsgID: msgid})
	case retry.ActionDefer:
		return w.rest(ctx, v, acct, run, openid, d)
	case retry.ActionRetry:
		if lost && v.c.Kind != campaigns.KindTemplate {
			// No dedupe key: sending again could message the user twice.
			return w.record(ctx, v, run, openid, unknownOutcome(d, "with no dedupe key it is never sent again"))
		}
		if d.Code == 45011 {
			// WeChat's per-minute limit: slow every worker down, and come
			// back without using up a retry (the run deadline bounds it).
			if err := w.limiter.Slowdown(ctx, acct.BucketKey(v.api)); err != nil {
				w.sendLog(ctx, id, run, openid).Warn("rate slowdown", zap.Int("errcode", d.Code), zap.Error(err))
			}
			return w.later(ctx, v, run, openid, false, &retry.Wait{After: d.Delay, Reason: "errcode 45011: " + d.Meaning})
		}
		// A template send whose answer was lost is sent again with the
		// same client_msg_id: WeChat delivers it at most once.
		return w.retryOrGiveUp(ctx, v, run, openid, d, lost, sendErr)
	}
	return w.decided(ctx, v, acct, acct.BucketKey(v.api), run, openid, d, lost, sendErr)
}

// sendTask reads what a send task needs: its payload, the run's view and
// state, and the campaign's account, looked up per send so that a reload
// of the accounts file takes effect on runs already sending. A task of a
// campaign or run that no longer exists is not retried.
func (w *Worker) sendTask(ctx context.Context, t *asynq.Task) (task.Send, *runView, *stateEntry, *account.Account, error) {
	p, err := task.DecodeSend(t.Payload())
	if err != nil {
		return p, nil, nil, nil, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	v, st, err := w.view(ctx, p.Campaign, p.Run.Run)
	if errors.Is(err, campaigns.ErrRunNotFound) || errors.Is(err, campaigns.ErrNotFound) {
		return p, nil, nil, nil, fmt.Errorf("send: %w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return p, nil, nil, nil, err
	}
	acct, err := w.accounts.Get(v.c.Account)
	if err != nil {
		return p, nil, nil, nil, fmt.Errorf("send: campaign %s: %w", p.Campaign, err)
	}
	return p, v, st, acct, nil
}

// afterBegin acts on what BeginAttempt decided when it is not to make the
// call: it reports whether the task is done, with the error to return.
func (w *Worker) afterBegin(v *runView, run int, b campaigns.Begin) (bool, error) {
	switch b.Action {
	case campaigns.BeginNoToken:
		// The cached state was ahead of Redis's (this process stopping the
		// run): read it again and come back.
		w.forget(v.c.ID)
		return true, &retry.Wait{After: 100 * time.Millisecond, Reason: "run state changed"}
	case campaigns.BeginAccepted:
		// A mass batch accepted by another try meanwhile: its task
		// comes back to await the result.
		return true, &retry.Wait{After: 100 * time.Millisecond, Reason: "accepted meanwhile"}
	case campaigns.BeginDone, campaigns.BeginInFlight:
		// Settled already, or the stopped run's settle task waits for the
		// answer of a call in flight elsewhere.
		return true, nil
	case campaigns.BeginPaused:
		return true, &retry.Wait{After: w.cfg.PauseRecheck, Reason: "run paused"}
	case campaigns.BeginSettled:
		w.cfg.Metrics.Outcome(v.account, string(v.c.Kind), b.Status, "")
		w.finished(v, run, b.Finished)
		return true, nil
	case campaigns.BeginNoSuchRun:
		return true, fmt.Errorf("send: run %d of %s: %w", run, v.c.ID, asynq.SkipRetry)
	}
	return false, nil
}

// retryOrGiveUp sends again later, within the task's retries, a call whose
// answer says to retry (lost: its answer was lost, and the send carries a
// dedupe key); once they are used up, the recipient is failed, or unknown
// if an answer was lost.
func (w *Worker) retryOrGiveUp(ctx context.Context, v *runView, run int, key string, d retry.Decision, lost bool, sendErr error) error {
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	if retried >= maxRetry {
		if lost {
			return w.record(ctx, v, run, key, unknownOutcome(d, "retries exhausted"))
		}
		return w.record(ctx, v, run, key, failedOutcome(d, "retries exhausted: "))
	}
	w.sendLog(ctx, v.c.ID, run, key).Debug("send will be retried", zap.Int("errcode", d.Code), zap.Duration("delay", d.Delay), zap.Bool("answer_lost", lost), zap.Error(sendErr))
	return w.later(ctx, v, run, key, lost, &retry.Wait{After: d.Delay, Failed: true, Err: sendErr})
}

// decided records what a decision other than a retry means for the
// recipient (or batch) key: a failure (unknown if an answer was lost), a
// campaign-fatal errcode (the run stops; this answer is the recipient's
// outcome, as is every other send's that meets it), or a quota pause of
// bucket until the quota is back.
func (w *Worker) decided(ctx context.Context, v *runView, acct *account.Account, bucket string, run int, key string, d retry.Decision, lost bool, sendErr error) error {
	switch d.Action {
	case retry.ActionFail:
		if lost {
			return w.record(ctx, v, run, key, unknownOutcome(d, "not retried"))
		}
		return w.record(ctx, v, run, key, failedOutcome(d, ""))
	case retry.ActionStopCampaign:
		w.sendLog(ctx, v.c.ID, run, key).Error("campaign stopped by a fatal errcode", zap.Int("errcode", d.Code), zap.String("meaning", d.Meaning), zap.Error(sendErr))
		w.stop(ctx, v, acct.ID, fmt.Sprintf("errcode %d: %s", d.Code, d.Meaning))
		return w.record(ctx, v, run, key, failedOutcome(d, ""))
	case retry.ActionPause:
		w.sendLog(ctx, v.c.ID, run, key).Warn("daily quota reached: pausing the account's use of the api", zap.String("account", acct.ID),
			zap.String("bucket", bucket), zap.Time("until", d.Until))
		if err := w.limiter.Pause(ctx, bucket, d.Until); err != nil {
			return errors.Join(err, w.store.EndAttempt(ctx, v.c, run, key, false))
		}
		return w.later(ctx, v, run, key, false, &ratelimit.PausedError{Key: bucket, Until: d.Until})
	}
	return fmt.Errorf("send: unhandled action %v", d.Action)
}

// waitRate takes the campaign's own rate token, if it has a rate, and the
// account's shared one for the run's API.
func (w *Worker) waitRate(ctx context.Context, v *runView, acct *account.Account) error {
	prio, maxWait := ratelimit.PriorityLow, w.cfg.BulkRateWait
	if q, _ := asynq.GetQueueName(ctx); q == task.QueueTransactional {
		prio, maxWait = ratelimit.PriorityHigh, 0 // the limiter's MaxWait
	}
	if v.c.Rate > 0 {
		if err := w.limiter.WaitWithin(ctx, "campaign:"+v.c.ID, ratelimit.Limit{Rate: v.c.Rate, Burst: burstFor(v.c.Rate)}, prio, maxWait); err != nil {
			return err
		}
	}
	waitStart := time.Now()
	if err := w.limiter.WaitWithin(ctx, acct.BucketKey(v.api), acct.Limit(v.api), prio, maxWait); err != nil {
		return err
	}
	w.cfg.Metrics.RateWait(acct.ID, v.api, time.Since(waitStart))
	return nil
}

// later ends the recipient's attempt without an outcome (lost: its answer
// was lost) and returns err, which asks asynq to run the task again.
func (w *Worker) later(ctx context.Context, v *runView, run int, openid string, lost bool, err error) error {
	if eerr := w.store.EndAttempt(ctx, v.c, run, openid, lost); eerr != nil {
		// The attempt stays open: the task's next try takes its answer as
		// lost, which is the safe reading.
		return errors.Join(err, eerr)
	}
	return err
}

// stop stops the run (failed, with reason) and stops this process's other
// sends of it at once, before the round trip that tells the other
// processes. A run stopped already is left as it is.
func (w *Worker) stop(ctx context.Context, v *runView, account, reason string) {
	v.state.Store(&stateEntry{state: string(campaigns.StateStopping), reason: reason, until: w.cfg.NowFunc().Add(w.cfg.StateTTL)})
	if _, err := w.producer.Stop(ctx, v.c, v.run, campaigns.StateFailed, reason); err != nil {
		// The next send of the run that meets the same cause stops it.
		w.log.Error("stop run", zap.String("campaign_id", v.c.ID), zap.Int("run", v.run), zap.String("account", account), zap.Error(err))
		w.forget(v.c.ID)
	}
}

// answerLost reports whether err leaves open that the send call to api
// reached WeChat while its answer was not read: a transport failure after
// the request was written (a timeout, a dropped connection, HTTP 5xx, a
// bad body). An error before the call (the token, the rendering) or an
// errcode answer says the message was not sent.
func answerLost(err error, api string) bool {
	var te *wechat.TransportError
	return errors.As(err, &te) && te.Sent && te.API == api
}

// sendLog is the logger of one send; built only when something is logged,
// since building it costs more than the rest of a send's bookkeeping.
func (w *Worker) sendLog(ctx context.Context, id string, run int, openid string) *zap.Logger {
	tid, _ := asynq.GetTaskID(ctx)
	return w.log.With(zap.String("campaign_id", id), zap.Int("run", run), zap.String("task_id", maskTaskID(tid)), monitoring.OpenID(openid))
}

// maskTaskID masks the openid of a send task's id
// (send:{campaign}:{run}:{openid}, and a rescue's
// send:{campaign}:{run}:{openid}:rescue), as logs never hold raw openids.
func maskTaskID(tid string) string {
	parts := strings.SplitN(tid, ":", 5)
	if len(parts) < 4 || parts[0] != "send" {
		return tid
	}
	parts[3] = monitoring.MaskOpenID(parts[3])
	return strings.Join(parts, ":")
}

func failedOutcome(d retry.Decision, prefix string) campaigns.Outcome {
	return campaigns.Outcome{Status: campaigns.OutcomeFailed, Code: d.Code, Class: d.Class.String(), Detail: prefix + d.Meaning}
}

// unknownOutcome is the outcome of a call whose answer was lost and is not
// sent again (why says why not).
func unknownOutcome(d retry.Decision, why string) campaigns.Outcome {
	return campaigns.Outcome{Status: campaigns.OutcomeUnknown, Detail: "answer lost (" + d.Meaning + "); " + why + ": WeChat may have delivered it"}
}

// burstFor is the burst of a campaign's own rate: a tenth of a second's
// worth, at least one.
func burstFor(rate float64) int { return max(1, int(rate/10)) }

func (w *Worker) send(ctx context.Context, v *runView, acct *account.Account, id string, cmidRun int, openid, varsJSON string) (int64, error) {
	var vars map[string]string
	if varsJSON != "" {
		if err := json.Unmarshal([]byte(varsJSON), &vars); err != nil {
			return 0, fmt.Errorf("recipient variables: %w", err)
		}
	}
	switch v.c.Kind {
	case campaigns.KindCustom:
		m, err := v.msg.RenderCustom(openid, vars)
		if err != nil {
			return 0, err
		}
		return 0, w.wechat.SendCustom(ctx, acct.Tokens, m)
	case campaigns.KindSubscribe:
		m, err := v.msg.RenderSubscribe(openid, vars)
		if err != nil {
			return 0, err
		}
		return 0, w.wechat.SendSubscribe(ctx, acct.Tokens, m)
	default:
		// The client_msg_id of the run that first tried this recipient: a
		// retry run sending again a recipient whose answer was lost keeps
		// it while WeChat's window lasts.
		m, err := v.msg.RenderTemplate(openid, vars, ClientMsgID(id, cmidRun, openid))
		if err != nil {
			return 0, err
		}
		return w.wechat.SendTemplate(ctx, acct.Tokens, m)
	}
}

// recordTries bounds how often record tries to store an outcome whose
// round trip failed (Redis restarting, a failover) before it gives up and
// lets the task's retry find the attempt open.
const recordTries = 20

// record stores the recipient's outcome of a call just answered (see
// campaigns.RecordAnswered). The answer is the truth about the recipient:
// while Redis does not take it, it is tried again within the task's time,
// rather than leaving the attempt open, which a retry would have to read
// as lost.
func (w *Worker) record(ctx context.Context, v *runView, run int, openid string, o campaigns.Outcome) error {
	w.suppressFor(ctx, v, run, openid, o)
	var err error
	for try := 0; try < recordTries; try++ {
		var rec campaigns.Recorded
		rec, err = w.store.Record(ctx, v.c, run, openid, o, campaigns.RecordAnswered)
		if err == nil {
			w.recorded(v, run, o, rec)
			w.releaseAfter(ctx, v, run, openid, o, rec)
			return nil
		}
		if ctx.Err() != nil || !wait(ctx, time.Duration(try+1)*100*time.Millisecond) {
			break
		}
	}
	return err
}

// recorded counts what a record did.
func (w *Worker) recorded(v *runView, run int, o campaigns.Outcome, rec campaigns.Recorded) {
	kind := string(v.c.Kind)
	if len(rec.Stored) == 0 {
		return
	}
	switch rec.Stored[0] {
	case campaigns.StoredAsGiven:
		w.cfg.Metrics.Outcome(v.account, kind, o.Status, o.Class)
	case campaigns.StoredUnknown:
		w.cfg.Metrics.Outcome(v.account, kind, campaigns.OutcomeUnknown, "")
	case campaigns.StoredResolved:
		w.cfg.Metrics.Resolved(v.account, kind, o.Status)
	}
	w.finished(v, run, rec.Finished)
}

// finished reports a run that finished in state ("" for none).
func (w *Worker) finished(v *runView, run int, state string) {
	if state == "" {
		return
	}
	w.cfg.Metrics.RunFinished(v.account, state)
	w.log.Info("run finished", zap.String("campaign_id", v.c.ID), zap.Int("run", run), zap.String("state", state))
	w.forget(v.c.ID)
}

// wait waits for d or ctx, and reports whether d passed.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// HandleError is the asynq ErrorHandler: when a send task has used its last
// retry (a panic, a timeout, Redis errors), its recipient still gets a final
// outcome, so that the run's counters add up and it completes: failed, or
// unknown if an attempt of it may have reached WeChat.
func (w *Worker) HandleError(ctx context.Context, t *asynq.Task, err error) {
	switch t.Type() {
	case task.TypeSendTemplate, task.TypeSendCustom, task.TypeSendSubscribe, task.TypeSendMass:
	default:
		// A throttled launch or expand task (an expansion waiting for
		// room in its bucket, every WindowRecheck) is no failure.
		if IsFailure(err) {
			w.log.Warn("task failed", zap.String("type", t.Type()), zap.Error(err))
		}
		return
	}
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	if IsFailure(err) && (retried >= maxRetry || errors.Is(err, asynq.SkipRetry)) {
		p, derr := task.DecodeSend(t.Payload())
		if derr != nil {
			return
		}
		id, _ := asynq.GetTaskID(ctx)
		w.log.Warn("send task out of retries", zap.String("task_id", maskTaskID(id)), zap.Error(err))
		o := campaigns.Outcome{Status: campaigns.OutcomeFailed, Class: campaigns.ClassExhausted, Detail: "task failed: " + firstLine(err.Error())}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		c, gerr := w.store.Get(rctx, p.Campaign)
		if gerr != nil {
			return
		}
		rec, rerr := w.store.RecordAll(rctx, c, p.Run.Run, campaigns.Settle{OpenID: p.OpenID, Outcome: o, Mode: campaigns.RecordUnanswered})
		if rerr != nil {
			w.log.Error("record exhausted send", zap.Error(rerr))
			return
		}
		v := &runView{c: c, run: p.Run.Run, account: c.Account}
		w.recorded(v, p.Run.Run, o, rec)
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// Run listens for announced state changes, probes paused quotas and open
// circuit breakers, and runs the reconciler until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	ch, stop := w.store.Changes(ctx)
	defer func() { _ = stop() }()
	probe := time.NewTicker(w.cfg.QuotaProbeInterval)
	defer probe.Stop()
	sweep := time.NewTicker(time.Minute)
	defer sweep.Stop()
	// The reconciler has a loop of its own: a long look at a big run does
	// not hold up the state announcements.
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { newReconciler(w).loop(rctx) })
	wg.Go(func() { w.probeLoop(rctx) })
	for {
		select {
		case <-ctx.Done():
			return nil
		case id, ok := <-ch:
			if !ok {
				return errors.New("worker: events subscription closed")
			}
			w.forget(id)
		case <-probe.C:
			w.probeQuotas(ctx)
		case <-sweep.C:
			w.sweep()
		}
	}
}

// probeQuotas resumes every paused (account, API) whose quota WeChat
// reports as available again (a daily reset, or an operator's clear_quota).
func (w *Worker) probeQuotas(ctx context.Context) {
	for _, a := range w.accounts.All() {
		for _, k := range []campaigns.Kind{campaigns.KindTemplate, campaigns.KindCustom, campaigns.KindSubscribe} {
			api := k.API()
			key := a.BucketKey(api)
			st, err := w.limiter.State(ctx, key)
			if err != nil || st.PausedUntil.IsZero() {
				continue
			}
			q, err := w.wechat.QuotaGet(ctx, a.Tokens, "/cgi-bin/"+api)
			if err != nil {
				w.log.Debug("quota probe", zap.String("account", a.ID), zap.String("api", api), zap.Error(err))
				continue
			}
			if q.Quota.Remain > 0 {
				w.log.Info("quota available again: resuming", zap.String("account", a.ID), zap.String("api", api), zap.Int64("remain", q.Quota.Remain))
				if err := w.limiter.Resume(ctx, key); err != nil {
					w.log.Warn("resume", zap.Error(err))
				}
			}
		}
	}
}
