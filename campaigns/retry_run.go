package campaigns

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/wxmass/wxmass/internal/rdb"
)

// ErrNothingToRetry is returned by StartRetryRun when no recipient of the
// run matches the retry filter.
var ErrNothingToRetry = errors.New("campaigns: no recipient of the run matches the retry filter")

// ErrRunNotSettled is returned by StartRetryRun for a run some of whose
// recipients have no outcome yet: a retry started then could leave them
// without any message (or, for those still in flight, send twice).
var ErrRunNotSettled = errors.New("campaigns: the run has not settled")

// RetryStatuses are the outcomes a retry run may send again. Unknown is
// among them only when asked for by name: WeChat may have delivered those.
var RetryStatuses = []string{OutcomeFailed, OutcomeSkipped, OutcomeCancelled, OutcomeUnknown}

// RetryFilter chooses the recipients of a retry run from an earlier run's
// outcomes. The zero RetryFilter takes every failed recipient.
type RetryFilter struct {
	// Statuses are the outcomes to send again: failed (the default),
	// skipped (a run stopped by a fatal errcode), cancelled, and unknown
	// (only when named: see RetryResult).
	Statuses []string `json:"statuses,omitempty"`
	// Errcodes, when set, keep only failures with one of these errcodes.
	Errcodes []int `json:"errcodes,omitempty"`
	// Classes, when set, keep only failures of one of these classes
	// (recipient, retry, exhausted, receipt...).
	Classes []string `json:"classes,omitempty"`
}

// Validate checks the filter's statuses.
func (f RetryFilter) Validate() error {
	for i, s := range f.Statuses {
		if !slices.Contains(RetryStatuses, s) {
			return &ValidationError{Errors: []FieldError{{Field: fmt.Sprintf("statuses[%d]", i),
				Message: fmt.Sprintf("%q: only failed, skipped, cancelled or unknown recipients can be sent again", s)}}}
		}
	}
	return nil
}

func (f RetryFilter) match(o Outcome) bool {
	statuses := f.Statuses
	if len(statuses) == 0 {
		statuses = []string{OutcomeFailed}
	}
	if !slices.Contains(statuses, o.Status) {
		return false
	}
	if len(f.Errcodes) > 0 && !slices.Contains(f.Errcodes, o.Code) {
		return false
	}
	if len(f.Classes) > 0 && !slices.Contains(f.Classes, o.Class) {
		return false
	}
	return true
}

// RetryResult is the run a retry started, and what it risks.
type RetryResult struct {
	// Run is the new run, Size its number of recipients.
	Run  int
	Size int64
	// Unknown is how many of them had an unknown outcome (only when the
	// filter named unknown): WeChat may have delivered their message.
	Unknown int64
	// SameClientMsgID of those are template sends whose earlier attempt is
	// still inside WeChat's client_msg_id window: the new run sends them
	// with the same client_msg_id, so WeChat delivers each at most once
	// (sent after the window closes, one ends unknown again instead).
	SameClientMsgID int64
	// MayDuplicate of those have no such protection (customer-service and
	// subscribe sends, or template sends past the window): a user among
	// them whom the first message reached gets a second.
	MayDuplicate int64
}

// StartRetryRun starts a new run of campaign c over the recipients of run
// from whose outcome matches f, and returns it. The recipients keep their
// variables. The campaign must be completed, failed or cancelled (a retry
// is how an operator sends to the recipients a cancel left out; the
// cancelled campaign stays off its schedule), and run from settled
// (ErrRunNotSettled otherwise). Unknown recipients are included only when f names unknown;
// template sends among them keep their earlier client_msg_id while
// WeChat's window lasts (see RetryResult).
func (s *Store) StartRetryRun(ctx context.Context, c *Campaign, from int, f RetryFilter) (RetryResult, error) {
	if err := f.Validate(); err != nil {
		return RetryResult{}, err
	}
	rec, err := s.r.GetCampaign(ctx, c.ID)
	if err != nil {
		return RetryResult{}, s.stateErr("retry", c.ID, err)
	}
	st := State(rec.State)
	if st != StateCompleted && st != StateFailed && st != StateCancelled {
		if st == StateStopping {
			return RetryResult{}, s.notSettled(ctx, c.ID, rec.Run)
		}
		return RetryResult{}, &StateError{Op: "retry", State: st}
	}
	if from < 1 || from > rec.Run {
		return RetryResult{}, fmt.Errorf("%w: run %d of %s", ErrRunNotFound, from, c.ID)
	}
	fromRec, err := s.Run(ctx, c.ID, from)
	if err != nil {
		return RetryResult{}, err
	}
	if fromRec.Finished.IsZero() || fromRec.Settled() < fromRec.Size {
		return RetryResult{}, s.notSettled(ctx, c.ID, from)
	}
	// The new run's own audience list and attempt records, named by the
	// run it will be; the state check of StartRun below makes a concurrent
	// start fail.
	next := rec.Run + 1
	if err := s.r.ResetRunAudience(ctx, c.ID, next); err != nil {
		return RetryResult{}, err
	}
	if err := s.r.ResetRunAttempts(ctx, c.ID, next); err != nil {
		return RetryResult{}, err
	}
	var out RetryResult
	seen := make(map[string]struct{})
	batch := make([]string, 0, uploadBatch)
	var unknown []string
	flush := func() error {
		if err := s.carry(ctx, c, from, next, unknown, &out); err != nil {
			return err
		}
		unknown = unknown[:0]
		err := s.r.AppendRunAudience(ctx, c.ID, next, batch)
		batch = batch[:0]
		return err
	}
	err = s.ScanOutcomes(ctx, c.ID, from, func(openid string, o Outcome) error {
		if _, dup := seen[openid]; dup || !f.match(o) {
			return nil
		}
		seen[openid] = struct{}{}
		out.Size++
		batch = append(batch, openid)
		if o.Status == OutcomeUnknown {
			out.Unknown++
			unknown = append(unknown, openid)
		}
		if len(batch) == uploadBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return RetryResult{}, err
	}
	if out.Size == 0 {
		return RetryResult{}, ErrNothingToRetry
	}
	if st == StateCancelled {
		// Cancel dropped the schedule, unless that failed: once the retry
		// run completes, a schedule left behind would fire again.
		if err := s.r.DropSchedule(ctx, c.ID); err != nil {
			return RetryResult{}, err
		}
	}
	run, err := s.r.StartRun(ctx, c.ID, string(StateRunning), string(StateRunning), out.Size, s.r.Keys().RunAudience(c.ID, next),
		string(StateCompleted), string(StateFailed), string(StateCancelled))
	if err != nil {
		return RetryResult{}, s.stateErr("retry", c.ID, err)
	}
	if run != next {
		return RetryResult{}, fmt.Errorf("campaigns: retry of %s: another run started meanwhile", c.ID)
	}
	out.Run = run
	return out, nil
}

// carry copies into run next the attempt records of the unknown template
// recipients of run from that are still inside WeChat's dedupe window, so
// that the new run sends them with the same client_msg_id, and counts what
// the retry of unknown recipients risks.
func (s *Store) carry(ctx context.Context, c *Campaign, from, next int, unknown []string, out *RetryResult) error {
	if len(unknown) == 0 {
		return nil
	}
	if c.Kind != KindTemplate {
		out.MayDuplicate += int64(len(unknown))
		return nil
	}
	// An archived run has no attempt records left in Redis: each unknown
	// recipient then counts as MayDuplicate, as it would from its record,
	// since a run is archived only after the dedupe window (ArchiveRun).
	atts, ok, err := s.r.GetAttempts(ctx, c.ID, from, unknown)
	if err != nil {
		return err
	}
	now := s.now()
	carried := make(map[string]rdb.Attempt, len(unknown))
	for i, openid := range unknown {
		a := atts[i]
		if !ok[i] || now.Sub(a.First) >= s.ledger.DedupeWindow {
			out.MayDuplicate++
			continue
		}
		a.Lost = true
		carried[openid] = a
		out.SameClientMsgID++
	}
	return s.r.CarryAttempts(ctx, c.ID, next, carried)
}

// notSettled is ErrRunNotSettled for run, saying how many recipients are
// still without an outcome.
func (s *Store) notSettled(ctx context.Context, id string, run int) error {
	rec, err := s.Run(ctx, id, run)
	if err != nil {
		return err
	}
	left := rec.Size - rec.Settled()
	if rec.Size < 0 {
		return fmt.Errorf("%w: run %d is %s and its audience is not known yet", ErrRunNotSettled, run, rec.State)
	}
	return fmt.Errorf("%w: run %d is %s and %d of its %d recipients have no outcome yet", ErrRunNotSettled, run, rec.State, left, rec.Size)
}
