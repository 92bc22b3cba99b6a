package campaigns

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wxmass/wxmass/internal/rdb"
)

// The ledger: every run's state, its recipients' attempts and outcomes,
// and its counters. The producer, the worker, the API and the receipts of
// the callback read and write them through the Store's methods in this
// file, and nowhere else; the rules they follow live in one place, the
// scripts of internal/rdb's ledger.go, so that what a stopped run's
// recipients get, or when a run finishes, is decided the same way whoever
// asks.

// Outcome statuses: each recipient of a run ends with exactly one.
const (
	// OutcomeSent: WeChat accepted the message (a template send's msgid
	// is recorded); no receipt yet.
	OutcomeSent = rdb.OutcomeSent
	// OutcomeDelivered: WeChat's receipt says the user received it.
	OutcomeDelivered = rdb.OutcomeDelivered
	// OutcomeFailed: WeChat answered that it did not take the message (an
	// errcode), or its receipt says it failed; never delivered by this
	// run.
	OutcomeFailed = rdb.OutcomeFailed
	// OutcomeUnknown: an attempt's answer was lost (a timeout, a dropped
	// connection, a worker killed during the call) and could not be
	// resolved safely: WeChat may have delivered it. Never included in a
	// retry run unless asked for by name.
	OutcomeUnknown = rdb.OutcomeUnknown
	// OutcomeSkipped: the run stopped (a fatal errcode, its deadline)
	// before the message could reach WeChat; certainly never sent.
	OutcomeSkipped = rdb.OutcomeSkipped
	// OutcomeCancelled: the campaign was cancelled before the message
	// could reach WeChat; certainly never sent.
	OutcomeCancelled = rdb.OutcomeCancelled
)

// OutcomeStatuses lists the outcome statuses in report order.
var OutcomeStatuses = []string{OutcomeSent, OutcomeDelivered, OutcomeFailed, OutcomeUnknown, OutcomeSkipped, OutcomeCancelled}

// ValidOutcome reports whether s is an outcome status.
func ValidOutcome(s string) bool {
	for _, o := range OutcomeStatuses {
		if o == s {
			return true
		}
	}
	return false
}

// Classes of failed outcomes that are not an errcode's class (those are
// the String values of retry's classes).
const (
	// ClassReceipt is the class of outcomes failed by a delivery receipt.
	ClassReceipt = rdb.ClassReceipt
	// ClassExhausted is the class of a send whose task ran out of its
	// retries (or was refused for good) without an errcode to fail it.
	ClassExhausted = "exhausted"
)

// DedupeWindowDefault is LedgerConfig.DedupeWindow's default: WeChat
// deduplicates template sends by client_msg_id for 10 minutes
// (wechat-api.md §2.2); a minute is kept for the skew between the Redis
// server's clock, which times attempts, and WeChat's.
const DedupeWindowDefault = 9 * time.Minute

// StopGraceDefault is LedgerConfig.StopGrace's default.
const StopGraceDefault = 3 * time.Second

// LedgerConfig configures the rules of the ledger that depend on time.
// Zero values take the defaults.
type LedgerConfig struct {
	// DedupeWindow is how long after a recipient's first attempt a
	// template send with the same client_msg_id is still deduplicated by
	// WeChat: a lost answer is resolved by sending again within it, and
	// ends unknown after it (DedupeWindowDefault).
	DedupeWindow time.Duration
	// StopGrace is how long after it began an attempt of a stopped run is
	// waited for before its recipient is recorded unknown; an answer that
	// comes later still replaces unknown with what it says
	// (StopGraceDefault).
	StopGrace time.Duration
	// Proc names this process in the attempt records it writes (for
	// people reading them: which worker made the call).
	Proc string
}

// Aliases of the ledger's records, so that the Store's callers need not
// reach internal/rdb.
type (
	// Outcome is a recipient's final outcome in a run.
	Outcome = rdb.Outcome
	// RunRecord is a run's state and counters.
	RunRecord = rdb.RunRecord
	// TimelinePoint is the outcomes of one status in one second of a run.
	TimelinePoint = rdb.TimelinePoint
	// Attempt is a recipient's attempt record.
	Attempt = rdb.Attempt
	// Begin is what BeginAttempt decided for a recipient.
	Begin = rdb.Begin
	// Recorded is what recording outcomes did.
	Recorded = rdb.Recorded
	// Stored says what a record did to one recipient's outcome.
	Stored = rdb.Stored
	// RecordMode says how a recipient's attempts bear on its outcome.
	RecordMode = rdb.RecordMode
	// ReceiptResult says what ApplyReceipt did.
	ReceiptResult = rdb.ReceiptResult
)

// BeginAttempt's actions; see rdb.BeginAction.
const (
	BeginSend      = rdb.BeginSend
	BeginDone      = rdb.BeginDone
	BeginPaused    = rdb.BeginPaused
	BeginInFlight  = rdb.BeginInFlight
	BeginSettled   = rdb.BeginSettled
	BeginNoSuchRun = rdb.BeginNoSuchRun
	BeginNoToken   = rdb.BeginNoToken
	BeginAccepted  = rdb.BeginAccepted
)

// Record modes; see rdb.RecordMode.
const (
	RecordPlain      = rdb.RecordPlain
	RecordAnswered   = rdb.RecordAnswered
	RecordUnanswered = rdb.RecordUnanswered
)

// What a record did; see rdb.Stored.
const (
	StoredNothing  = rdb.StoredNothing
	StoredAsGiven  = rdb.StoredAsGiven
	StoredUnknown  = rdb.StoredUnknown
	StoredResolved = rdb.StoredResolved
)

// ErrRunNotFound is returned for a run that does not exist.
var ErrRunNotFound = errors.New("campaigns: run not found")

// Settle is one recipient's outcome to record.
type Settle = rdb.Settle

// WithLedger returns a copy of s whose ledger follows cfg.
func (s *Store) WithLedger(cfg LedgerConfig) *Store {
	if cfg.DedupeWindow <= 0 {
		cfg.DedupeWindow = DedupeWindowDefault
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = StopGraceDefault
	}
	c := *s
	c.ledger = cfg
	return &c
}

// LedgerConfig returns the ledger's configuration, defaults applied.
func (s *Store) LedgerConfig() LedgerConfig { return s.ledger }

// runErr translates the ledger's errors at the door.
func runErr(id string, run int, err error) error {
	switch {
	case errors.Is(err, rdb.ErrRunNotFound):
		return fmt.Errorf("%w: run %d of %s", ErrRunNotFound, run, id)
	case errors.Is(err, rdb.ErrCampaignNotFound):
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return err
}

// Run returns a run's state and counters.
func (s *Store) Run(ctx context.Context, id string, run int) (RunRecord, error) {
	rec, err := s.r.GetRun(ctx, id, run)
	return rec, runErr(id, run, err)
}

// BeginAttempt is called by a send just before its WeChat call: it records
// the attempt (its number, the process, the time), so that whatever
// happens next the ledger knows the recipient may have been sent to. It
// tells instead when no call is to be made: the recipient has an outcome
// (BeginDone); the run is paused (BeginPaused); the run stopped, or a
// lost answer cannot be resolved safely (a send without a dedupe key, or
// after the dedupe window), and the recipient got its outcome now
// (BeginSettled); or the run stopped while an attempt of the recipient
// may still be in flight (BeginInFlight). For BeginSend, Begin.Vars holds
// the recipient's variables when vars is set, and Begin.ClientMsgRun the
// run whose client_msg_id a template send carries. A caller that took no
// rate token, believing the run stopped (untokened), gets BeginNoToken for
// a run that is running. Concurrent calls share round trips with each
// other and with Record and EndAttempt.
func (s *Store) BeginAttempt(ctx context.Context, c *Campaign, run int, openid string, vars, untokened bool) (Begin, error) {
	return s.BeginAdmitted(ctx, c, run, openid, vars, untokened, nil)
}

// BeginAdmitted is BeginAttempt with the account's admission of the send
// (adm, if not nil) in the same round trip, just before the attempt
// begins; its verdict is Begin.Admit. A send it does not admit is not to
// be made: Unbegin takes back its attempt.
func (s *Store) BeginAdmitted(ctx context.Context, c *Campaign, run int, openid string, vars, untokened bool, adm *Admission) (Begin, error) {
	window := s.ledger.DedupeWindow
	if c.Kind == KindMass {
		window = MassDedupeWindow
	}
	b, err := s.r.BeginAttempt(ctx, c.ID, run, openid, rdb.BeginOptions{
		DoneState: DoneState(c),
		Dedupe:    c.Kind == KindTemplate || c.Kind == KindMass,
		Window:    window,
		Grace:     s.ledger.StopGrace,
		Proc:      s.ledger.Proc,
		Vars:      vars,
		Untokened: untokened,
		Admit:     adm,
	})
	return b, runErr(c.ID, run, err)
}

// EndAttempt closes a recipient's attempt whose call got an answer that is
// not the recipient's outcome (a retry follows), or whose answer was lost.
// The lost answer of a template send is noted under the campaign's account
// for an hour, so that its delivery receipt can settle the recipient
// (Reconcile).
func (s *Store) EndAttempt(ctx context.Context, c *Campaign, run int, openid string, lost bool) error {
	e := rdb.EndAttempt{OpenID: openid, Lost: lost}
	if lost && c.Kind == KindTemplate {
		e.Account = c.Account
	}
	return runErr(c.ID, run, s.r.EndAttempt(ctx, c.ID, run, e))
}

// Record stores a recipient's outcome with the run's counters, by the
// ledger's rules for mode (see RecordMode): a failure of a recipient one
// of whose attempts lost its answer is stored unknown, and an answer may
// replace an unknown outcome. Concurrent calls share round trips.
func (s *Store) Record(ctx context.Context, c *Campaign, run int, openid string, o Outcome, mode RecordMode) (Recorded, error) {
	rec, err := s.r.RecordOutcome(ctx, c.ID, run, DoneState(c), rdb.Settle{OpenID: openid, Outcome: o, Mode: mode})
	return rec, runErr(c.ID, run, err)
}

// RecordAll stores the outcomes of several recipients of a run in one
// round trip.
func (s *Store) RecordAll(ctx context.Context, c *Campaign, run int, settles ...Settle) (Recorded, error) {
	rec, err := s.r.RecordOutcomes(ctx, c.ID, run, DoneState(c), settles...)
	return rec, runErr(c.ID, run, err)
}

// Stop stops a live run bound for final (StateFailed or StateCancelled)
// with reason: the run and its campaign are stopping until every recipient
// has an outcome (SettleStopped gives them theirs), then final. It
// reports whether this call stopped it; a run that had stopped or
// finished already is no error (stopped is false), so that several sends
// meeting the same fatal errcode each succeed.
func (s *Store) Stop(ctx context.Context, id string, run int, final State, reason string) (bool, error) {
	if final != StateFailed && final != StateCancelled {
		return false, fmt.Errorf("campaigns: a run stops as failed or cancelled, not %s", final)
	}
	stopped, _, err := s.r.StopRun(ctx, id, run, string(final), reason)
	return stopped, runErr(id, run, err)
}

// settleChunk is how many recipients of a stopped run one settle call
// looks at.
const settleChunk = 1000

// SettleResult is what SettleStopped did.
type SettleResult = rdb.SettleResult

// SettleStopped gives every recipient of a stopping run without an outcome
// its outcome by the stop rule: skipped (or cancelled) when none of its
// attempts can have reached WeChat, unknown when one may have. A
// recipient whose attempt began less than the stop grace ago is left to
// its call's answer and counted in SettleResult.Pending; call again after
// the grace. The run finishes (SettleResult.Finished) when the last
// recipient has its outcome. A run that is not stopping is left alone.
func (s *Store) SettleStopped(ctx context.Context, c *Campaign, run int) (SettleResult, error) {
	rec, err := s.Run(ctx, c.ID, run)
	if err != nil {
		return SettleResult{}, err
	}
	out := SettleResult{State: rec.State}
	if rec.State != string(StateStopping) {
		return out, nil
	}
	if rec.Size < 0 {
		// Stopped before its launch fetched the audience: it has none.
		fin, err := s.r.SetRunSize(ctx, c.ID, run, 0, "", DoneState(c))
		out.Finished = fin
		return out, runErr(c.ID, run, err)
	}
	for start := int64(0); start < rec.Size; start += settleChunk {
		res, err := s.r.SettleStopped(ctx, c.ID, run, rec.Audience, start, min(start+settleChunk, rec.Size)-1,
			DoneState(c), s.ledger.StopGrace)
		if err != nil {
			return out, runErr(c.ID, run, err)
		}
		if res.State != string(StateStopping) {
			break
		}
		out.New += res.New
		out.Pending += res.Pending
		if !res.Oldest.IsZero() && (out.Oldest.IsZero() || res.Oldest.Before(out.Oldest)) {
			out.Oldest = res.Oldest
		}
		if res.Finished != "" {
			out.Finished = res.Finished
		}
	}
	return out, nil
}

// SetRunSize records the size and audience list of a run once its launch
// knows them. An empty audience finishes the run at once; the state it
// finished in is returned ("" otherwise).
func (s *Store) SetRunSize(ctx context.Context, c *Campaign, run int, size int64) (string, error) {
	fin, err := s.r.SetRunSize(ctx, c.ID, run, size, s.r.Keys().RunAudience(c.ID, run), DoneState(c))
	return fin, runErr(c.ID, run, err)
}

// MarkExpanded records that recipients [0, upto) of the run have been
// handed to send tasks.
func (s *Store) MarkExpanded(ctx context.Context, id string, run int, upto int64) error {
	return runErr(id, run, s.r.MarkExpanded(ctx, id, run, upto))
}

// MarkTransactional records that the one recipient of a transactional
// send's run has been handed to its send task, on the transactional queue
// (RunRecord.Transactional).
func (s *Store) MarkTransactional(ctx context.Context, id string, run int) error {
	return runErr(id, run, s.r.MarkTransactional(ctx, id, run))
}

// AudienceRange returns recipients [start, stop] of a run's audience list
// (RunRecord.Audience).
func (s *Store) AudienceRange(ctx context.Context, list string, start, stop int64) ([]string, error) {
	return s.r.AudienceRange(ctx, list, start, stop)
}

// AppendRunAudience appends openids to a run's own audience list (followers
// or tag members fetched at launch).
func (s *Store) AppendRunAudience(ctx context.Context, id string, run int, openids []string) error {
	return s.r.AppendRunAudience(ctx, id, run, openids)
}

// ResetRunAudience empties a run's own audience list, before its launch
// fetches it again after a crash.
func (s *Store) ResetRunAudience(ctx context.Context, id string, run int) error {
	return s.r.ResetRunAudience(ctx, id, run)
}

// HasOutcomes reports, for each openid, whether it has an outcome in the
// run.
func (s *Store) HasOutcomes(ctx context.Context, id string, run int, openids []string) ([]bool, error) {
	return s.r.HasOutcomes(ctx, id, run, openids)
}

// Outcome returns a recipient's outcome in a run, and false if it has none
// yet.
func (s *Store) Outcome(ctx context.Context, id string, run int, openid string) (Outcome, bool, error) {
	return s.r.GetOutcome(ctx, id, run, openid)
}

// Attempts returns the attempt records of openids in a run (ok false for
// those without one: never attempted, or recorded sent).
func (s *Store) Attempts(ctx context.Context, id string, run int, openids []string) ([]Attempt, []bool, error) {
	return s.r.GetAttempts(ctx, id, run, openids)
}

// ScanOutcomes calls fn with every outcome of a run, in no order (but in
// the same order every time once the run is finished, archived or not).
// While a run is live, a recipient may be seen twice. An archived run's
// outcomes are read from its archive file; one whose archive expired
// returns ErrRecipientsExpired.
func (s *Store) ScanOutcomes(ctx context.Context, id string, run int, fn func(openid string, o Outcome) error) error {
	src, err := s.source(ctx, id, run)
	if err != nil {
		return err
	}
	return src.scanOutcomes(ctx, id, run, fn)
}

// Timeline returns a run's outcomes per second, oldest first.
func (s *Store) Timeline(ctx context.Context, id string, run int) ([]TimelinePoint, error) {
	return s.r.GetTimeline(ctx, id, run)
}

// ApplyReceipt records a TEMPLATESENDJOBFINISH receipt about the user from
// (the push's FromUserName): the recipient of msgid, if it is from and
// still sent, becomes delivered, or failed with ClassReceipt and reason;
// the counters move with it. A receipt from another user than the msgid's
// recipient changes nothing and reports ReceiptResult.Mismatch. A replayed
// or late receipt changes nothing, and an unknown msgid is
// ReceiptResult.Found false.
func (s *Store) ApplyReceipt(ctx context.Context, msgid int64, from string, delivered bool, reason string) (ReceiptResult, error) {
	return s.r.ApplyReceipt(ctx, msgid, from, delivered, reason)
}

// Changes subscribes to the campaigns' announced state changes: the
// channel carries the id of each campaign that changed, until stop is
// called (then it is closed). Delivery is best effort: readers also re-read
// state now and then.
func (s *Store) Changes(ctx context.Context) (changes <-chan string, stop func() error) {
	sub := s.r.Subscribe(ctx)
	ch := make(chan string)
	done := make(chan struct{})
	go func() {
		defer close(ch)
		for m := range sub.Channel() {
			select {
			case ch <- m.Payload:
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return ch, func() error {
		once.Do(func() { close(done) })
		return sub.Close()
	}
}
