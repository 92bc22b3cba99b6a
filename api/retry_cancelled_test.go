package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/internal/rdb"
)

// TestRetryCancelled: the recipients a cancel left out (cancelled: never
// sent) are sent by a retry run of the cancelled campaign, as the README
// says (it was 409); the new run holds exactly them, and the campaign
// still cannot be started or scheduled again.
func TestRetryCancelled(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	id := b.startCustom(t, rdb.Settle{OpenID: "oTX0000000000000000000000001", Outcome: rdb.Outcome{Status: rdb.OutcomeSent}})
	path := "/v1/campaigns/" + id + "/runs/1/retry"
	require.Equal(t, http.StatusOK, b.json(t, "POST", "/v1/campaigns/"+id+"/cancel", "").status)

	// Stopping: not yet.
	a := b.json(t, "POST", path, `{"statuses":["cancelled"]}`)
	require.Equal(t, http.StatusConflict, a.status, a.raw)
	require.Equal(t, api.CodeRunNotSettled, a.errCode())

	// The settle task's work: the two never attempted are cancelled.
	c, err := b.store.Get(ctx, id)
	require.NoError(t, err)
	res, err := b.store.SettleStopped(ctx, c, 1)
	require.NoError(t, err)
	require.NotEmpty(t, res.Finished, "%+v", res)
	a = b.json(t, "GET", "/v1/campaigns/"+id, "")
	require.Equal(t, "cancelled", a.body["state"])

	a = b.json(t, "POST", path, "")
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, api.CodeNothingToRetry, a.errCode(), "no failed recipient")

	a = b.json(t, "POST", path, `{"statuses":["cancelled"]}`)
	require.Equal(t, http.StatusAccepted, a.status, a.raw)
	require.EqualValues(t, 2, a.body["run"])
	require.EqualValues(t, 2, a.body["size"])
	rec, err := b.store.Run(ctx, id, 2)
	require.NoError(t, err)
	require.EqualValues(t, 2, rec.Size)
	ids, err := b.rdb.AudienceRange(ctx, rec.Audience, 0, -1)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"oTX0000000000000000000000002", "oTX0000000000000000000000003"}, ids,
		"exactly the cancelled recipients, not the one sent")
	a = b.json(t, "GET", "/v1/campaigns/"+id, "")
	require.Equal(t, "running", a.body["state"])
	require.EqualValues(t, 2, a.body["latest_run"])

	// Once that run completes, the campaign is completed; a second
	// retry of run 1's cancelled recipients is possible, a start of a
	// whole new run only as for any completed campaign.
	_, err = b.rdb.RecordOutcomes(ctx, id, 2, "completed",
		rdb.Settle{OpenID: "oTX0000000000000000000000002", Outcome: rdb.Outcome{Status: rdb.OutcomeSent}},
		rdb.Settle{OpenID: "oTX0000000000000000000000003", Outcome: rdb.Outcome{Status: rdb.OutcomeSent}})
	require.NoError(t, err)
	a = b.json(t, "GET", "/v1/campaigns/"+id, "")
	require.Equal(t, "completed", a.body["state"])
}

// TestCancelledCampaignDoesNotStart: a cancelled campaign is not started or
// scheduled again; only a retry run leaves it.
func TestCancelledCampaignDoesNotStart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.json(t, "POST", "/v1/campaigns", inlineCampaign)
	id := a.body["id"].(string)
	require.Equal(t, http.StatusOK, b.json(t, "POST", "/v1/campaigns/"+id+"/cancel", "").status)
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/start", "")
	require.Equal(t, http.StatusConflict, a.status, a.raw)
	require.Equal(t, api.CodeInvalidState, a.errCode())
	require.Equal(t, "cancelled", a.body["error"].(map[string]any)["state"])
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/runs/1/retry", `{"statuses":["cancelled"]}`)
	require.Equal(t, http.StatusNotFound, a.status, "a draft cancelled before it ran has no run: %s", a.raw)
}
