package api

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/retry"
)

// retryClasses are the classes a failed outcome can have: an errcode's
// (retry's classes but ok, and rest, whose errcode defers the recipient
// and never fails it), a task out of its retries (exhausted) and a
// delivery receipt's (receipt).
func retryClasses() []string {
	var out []string
	for _, c := range retry.Classes() {
		if c != retry.ClassOK && c != retry.ClassRest {
			out = append(out, c.String())
		}
	}
	return append(out, campaigns.ClassExhausted, campaigns.ClassReceipt)
}

// checkRetryFilter refuses a retry filter value that cannot mean anything,
// so that a misspelt one is not taken for "nothing to retry": a status
// that is not one of campaigns.RetryStatuses, a class no outcome can have,
// and an errcode that is neither in the retry policy nor among the run's
// outcomes. Each is a 422 invalid_field naming the value and the known
// ones. It reads the run's counters for the errcodes.
func (s *Server) checkRetryFilter(ctx context.Context, id string, run int, f campaigns.RetryFilter) *Error {
	for i, st := range f.Statuses {
		if !slices.Contains(campaigns.RetryStatuses, st) {
			field := fmt.Sprintf("statuses[%d]", i)
			return apiError(http.StatusUnprocessableEntity, CodeInvalidField, field, "%s: %q is not an outcome a retry sends again: use %s",
				field, st, strings.Join(campaigns.RetryStatuses, ", "))
		}
	}
	classes := retryClasses()
	for i, c := range f.Classes {
		if !slices.Contains(classes, c) {
			field := fmt.Sprintf("classes[%d]", i)
			return apiError(http.StatusUnprocessableEntity, CodeInvalidField, field, "%s: %q is not a class of failure: use %s",
				field, c, strings.Join(classes, ", "))
		}
	}
	if len(f.Errcodes) == 0 {
		return nil
	}
	rec, err := s.cfg.Store.Run(ctx, id, run)
	if err != nil {
		return storeError(err)
	}
	var inRun []int
	for k := range rec.Counters {
		if v, ok := strings.CutPrefix(k, "code:"); ok {
			if code, err := strconv.Atoi(v); err == nil {
				inRun = append(inRun, code)
			}
		}
	}
	slices.Sort(inRun)
	for i, code := range f.Errcodes {
		field := fmt.Sprintf("errcodes[%d]", i)
		if code == 0 {
			return apiError(http.StatusUnprocessableEntity, CodeInvalidField, field, "%s: 0 is WeChat's success, not a failure", field)
		}
		if slices.Contains(inRun, code) {
			continue
		}
		if s.cfg.Policy != nil {
			if _, ok := s.cfg.Policy.Rule(code); ok {
				continue
			}
		}
		known := "the run has no failure with an errcode"
		if len(inRun) > 0 {
			codes := make([]string, len(inRun))
			for j, c := range inRun {
				codes[j] = strconv.Itoa(c)
			}
			known = "the run's errcodes: " + strings.Join(codes, ", ")
		}
		return apiError(http.StatusUnprocessableEntity, CodeInvalidField, field,
			"%s: %d is neither an errcode wxmass knows nor one the run's recipients failed with (%s)", field, code, known)
	}
	return nil
}
