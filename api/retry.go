package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/wxmass/wxmass/campaigns"
)

// retryStarted is the answer to a retry.
type retryStarted struct {
	Campaign string `json:"campaign"`
	Run      int    `json:"run"`
	FromRun  int    `json:"from_run"`
	Size     int64  `json:"size"`
	// Unknown is present when the retry includes unknown recipients (the
	// filter named unknown): what sending them again risks.
	Unknown *retryUnknown `json:"unknown,omitempty"`
}

// retryUnknown is what a retry of unknown recipients risks.
type retryUnknown struct {
	// Included is how many unknown recipients the run sends again.
	Included int64 `json:"included"`
	// SameClientMsgID of them are template sends still inside WeChat's
	// client_msg_id window: sent with the same client_msg_id, WeChat
	// delivers each at most once.
	SameClientMsgID int64 `json:"same_client_msg_id"`
	// MayDuplicate of them have no such protection: any of them whom the
	// first message reached gets a second.
	MayDuplicate int64 `json:"may_duplicate"`
	// Warning says it in words.
	Warning string `json:"warning"`
}

// retryRun starts a new run over the failed (or chosen) recipients of a
// run: the body is a campaigns.RetryFilter, {} for every failed one.
func (s *Server) retryRun(w http.ResponseWriter, r *http.Request) *Error {
	c, from, e := s.runParams(r)
	if e != nil {
		return e
	}
	id := c.ID
	var f campaigns.RetryFilter
	if r.ContentLength != 0 {
		if e := decodeJSON(w, r, s.cfg.MaxBodyBytes, &f); e != nil {
			return e
		}
	}
	if e := s.checkRetryFilter(r.Context(), id, from, f); e != nil {
		return e
	}
	res, err := s.cfg.Producer.RetryFailed(r.Context(), id, from, f)
	if errors.Is(err, campaigns.ErrNothingToRetry) {
		return apiError(http.StatusUnprocessableEntity, CodeNothingToRetry, "", "%s", strings.TrimPrefix(err.Error(), "campaigns: "))
	}
	if err != nil {
		return storeError(err)
	}
	noteAudit(r.Context(), id, res.Run)
	out := retryStarted{Campaign: id, Run: res.Run, FromRun: from, Size: res.Size}
	if slices.Contains(f.Statuses, campaigns.OutcomeUnknown) {
		out.Unknown = &retryUnknown{Included: res.Unknown, SameClientMsgID: res.SameClientMsgID, MayDuplicate: res.MayDuplicate,
			Warning: unknownWarning(res)}
	}
	writeJSON(w, http.StatusAccepted, out)
	return nil
}

// unknownWarning says what a retry of unknown recipients risks.
func unknownWarning(res campaigns.RetryResult) string {
	switch {
	case res.Unknown == 0:
		return "the run had no unknown recipients"
	case res.MayDuplicate == 0:
		return fmt.Sprintf("the %d unknown recipients are sent with the client_msg_id of their first attempt, inside WeChat's dedupe window: WeChat delivers each at most once (one still unanswered when the window closes ends unknown again)", res.Unknown)
	default:
		return fmt.Sprintf("%d of the %d unknown recipients may already have the message and have no dedupe protection: each of them whom it reached gets it a second time", res.MayDuplicate, res.Unknown)
	}
}
