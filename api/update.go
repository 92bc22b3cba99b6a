package api

import (
	"net/http"

	"github.com/wxmass/wxmass/campaigns"
)

// updateAnswer is the updated campaign and what happened to its audience.
type updateAnswer struct {
	campaignView
	Update campaigns.UpdateResult `json:"update"`
}

// updateCampaign replaces a draft campaign's definition: the body is a whole
// campaign, as for create.
func (s *Server) updateCampaign(w http.ResponseWriter, r *http.Request) *Error {
	c, e := s.decodeCampaign(w, r)
	if e != nil {
		return e
	}
	c.ID = r.PathValue("id")
	res, err := s.cfg.Store.Update(r.Context(), c)
	if err != nil {
		return storeError(err)
	}
	writeJSON(w, http.StatusOK, updateAnswer{campaignView: campaignView{Campaign: c}, Update: res})
	return nil
}
