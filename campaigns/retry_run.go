package campaigns

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/wxmass/wxmass/internal/rdb"
)

// ErrNothingToRetry is returned by StartRetryRun when no recipient of the
// run matches the filter.
var ErrNothingToRetry = errors.New("campaigns: no recipient of the run matches the retry filter")

// RetryFilter chooses the recipients of a retry run from an earlier run's
// outcomes. The zero RetryFilter takes every failed recipient.
type RetryFilter struct {
	// Statuses are the outcomes to send again: failed (the default),
	// skipped (a run stopped by a fatal errcode), cancelled.
	Statuses []string `json:"statuses,omitempty"`
	// Errcodes, when set, keep only failures with one of these errcodes.
	Errcodes []int `json:"errcodes,omitempty"`
	// Classes, when set, keep only failures of one of these classes
	// (recipient, retry, exhausted, expired, ambiguous, receipt...).
	Classes []string `json:"classes,omitempty"`
}

// Validate checks the filter's statuses.
func (f RetryFilter) Validate() error {
	for i, s := range f.Statuses {
		switch s {
		case rdb.OutcomeFailed, rdb.OutcomeSkipped, rdb.OutcomeCancelled:
		default:
			return &ValidationError{Errors: []FieldError{{Field: fmt.Sprintf("statuses[%d]", i),
				Message: fmt.Sprintf("%q: only failed, skipped or cancelled recipients can be sent again", s)}}}
		}
	}
	return nil
}

func (f RetryFilter) match(o rdb.Outcome) bool {
	statuses := f.Statuses
	if len(statuses) == 0 {
		statuses = []string{rdb.OutcomeFailed}
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

// StartRetryRun starts a new run of campaign c over the recipients of run
// from whose outcome matches f, and returns the new run and its size. The
// recipients keep their variables. The campaign must be completed or
// failed (a cancelled campaign stays stopped).
func (s *Store) StartRetryRun(ctx context.Context, c *Campaign, from int, f RetryFilter) (int, int64, error) {
	if err := f.Validate(); err != nil {
		return 0, 0, err
	}
	rec, err := s.r.GetCampaign(ctx, c.ID)
	if err != nil {
		return 0, 0, s.stateErr("retry", c.ID, err)
	}
	if st := State(rec.State); st != StateCompleted && st != StateFailed {
		return 0, 0, &StateError{Op: "retry", State: st}
	}
	if from < 1 || from > rec.Run {
		return 0, 0, fmt.Errorf("%w: run %d of %s", rdb.ErrRunNotFound, from, c.ID)
	}
	// The new run's own audience list, named by the run it will be; the
	// state check of StartRun below makes a concurrent start fail.
	next := rec.Run + 1
	if err := s.r.ResetRunAudience(ctx, c.ID, next); err != nil {
		return 0, 0, err
	}
	seen := make(map[string]struct{})
	batch := make([]string, 0, uploadBatch)
	var n int64
	flush := func() error {
		err := s.r.AppendRunAudience(ctx, c.ID, next, batch)
		batch = batch[:0]
		return err
	}
	err = s.r.ScanOutcomes(ctx, c.ID, from, func(openid string, o rdb.Outcome) error {
		if _, dup := seen[openid]; dup || !f.match(o) {
			return nil
		}
		seen[openid] = struct{}{}
		n++
		batch = append(batch, openid)
		if len(batch) == uploadBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return 0, 0, err
	}
	if n == 0 {
		return 0, 0, ErrNothingToRetry
	}
	run, err := s.r.StartRun(ctx, c.ID, string(StateRunning), string(StateRunning), n, s.r.Keys().RunAudience(c.ID, next),
		string(StateCompleted), string(StateFailed))
	if err != nil {
		return 0, 0, s.stateErr("retry", c.ID, err)
	}
	if run != next {
		return 0, 0, fmt.Errorf("campaigns: retry of %s: another run started meanwhile", c.ID)
	}
	return run, n, nil
}
