package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/producer"
)

// startError maps the errors of starting a run (by hand, or by putting a
// campaign on its schedule) to the API's: a campaign with no recipients to
// send to is 409 no_audience, naming audience; a campaign whose account is
// no longer configured is 422 invalid_campaign, naming account; a campaign
// that requires a test and has no current one is 409 test_required.
func startError(err error) *Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, campaigns.ErrEmptyAudience):
		return apiError(http.StatusConflict, CodeNoAudience, "audience",
			"%s (PUT /v1/campaigns/{id}/audience, or wxmass campaign upload)", strings.TrimPrefix(err.Error(), "campaigns: "))
	case errors.Is(err, campaigns.ErrTestRequired):
		return apiError(http.StatusConflict, CodeTestRequired, "require_test",
			"send a test first: POST /v1/campaigns/{id}/test (or wxmass campaign test); the campaign requires one since its message last changed")
	case errors.Is(err, producer.ErrMassListOnSubscription):
		return apiError(http.StatusUnprocessableEntity, CodeInvalidCampaign, "audience", "%s", strings.TrimPrefix(err.Error(), "producer: "))
	case errors.Is(err, account.ErrUnknown):
		return apiError(http.StatusUnprocessableEntity, CodeInvalidCampaign, "account", "the campaign's account is not configured in this wxmass")
	}
	return storeError(err)
}
