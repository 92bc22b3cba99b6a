package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/wxmass/wxmass/campaigns"
)

// scheduleCampaign puts a draft campaign on its schedule:
// POST /v1/campaigns/{id}/schedule. It answers the campaign with its next
// fire times; a campaign on its schedule already gets the same answer.
func (s *Server) scheduleCampaign(w http.ResponseWriter, r *http.Request) *Error {
	id := r.PathValue("id")
	if e := scheduleError(s.cfg.Producer.Schedule(r.Context(), id)); e != nil {
		return e
	}
	return s.writeCampaign(r.Context(), w, id)
}

// unscheduleCampaign takes a campaign off its schedule:
// POST /v1/campaigns/{id}/unschedule. A campaign waiting for its first fire
// goes back to draft; a recurring one that has fired keeps its state.
func (s *Server) unscheduleCampaign(w http.ResponseWriter, r *http.Request) *Error {
	id := r.PathValue("id")
	if e := scheduleError(s.cfg.Store.Unschedule(r.Context(), id)); e != nil {
		return e
	}
	return s.writeCampaign(r.Context(), w, id)
}

// scheduleError maps the errors of scheduling to the API's.
func scheduleError(err error) *Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, campaigns.ErrNoSchedule):
		return apiError(http.StatusUnprocessableEntity, CodeInvalidCampaign, "schedule",
			"the campaign has no schedule: create it with schedule.at (a time) or schedule.cron (a cron expression)")
	}
	return startError(err)
}

// writeCampaign answers the campaign id as GET /v1/campaigns/{id} does.
func (s *Server) writeCampaign(ctx context.Context, w http.ResponseWriter, id string) *Error {
	c, run, err := s.cfg.Store.Latest(ctx, id)
	if err != nil {
		return storeError(err)
	}
	v, e := s.view(ctx, c, run)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// view is the campaign as the API shows it, with its next fire times when
// it is on a schedule.
func (s *Server) view(ctx context.Context, c *campaigns.Campaign, run int) (campaignView, *Error) {
	v := campaignView{Campaign: c, LatestRun: run}
	fires, err := s.cfg.Store.NextFires(ctx, c, campaigns.NextFiresDefault)
	if err != nil {
		return v, storeError(err)
	}
	v.NextFires = fires
	return v, nil
}
