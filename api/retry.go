package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/wxmass/wxmass/campaigns"
)

// retryStarted is the answer to a retry.
type retryStarted struct {
	Campaign string `json:"campaign"`
	Run      int    `json:"run"`
	FromRun  int    `json:"from_run"`
	Size     int64  `json:"size"`
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
	run, n, err := s.cfg.Producer.RetryFailed(r.Context(), id, from, f)
	if errors.Is(err, campaigns.ErrNothingToRetry) {
		return apiError(http.StatusUnprocessableEntity, CodeNothingToRetry, "", "%s", strings.TrimPrefix(err.Error(), "campaigns: "))
	}
	if err != nil {
		return storeError(err)
	}
	writeJSON(w, http.StatusAccepted, retryStarted{Campaign: id, Run: run, FromRun: from, Size: n})
	return nil
}
