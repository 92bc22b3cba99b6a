package api

import (
	"net/http"
)

// deleteCampaign removes a campaign and everything of it:
// DELETE /v1/campaigns/{id}. It answers 204; 409 invalid_state (naming the
// state) for a campaign with a live run (running, paused, stopping), which
// then changes nothing; 404 for an unknown campaign. A campaign on a
// schedule is taken off it and deleted (see campaigns.Store.Delete). The
// audit trail goes with the campaign, so the delete itself is only in the
// audit log line.
func (s *Server) deleteCampaign(w http.ResponseWriter, r *http.Request) *Error {
	if e := storeError(s.cfg.Store.Delete(r.Context(), r.PathValue("id"))); e != nil {
		return e
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
