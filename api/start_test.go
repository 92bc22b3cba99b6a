package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/api"
)

// TestStartWithoutAudience: a file campaign started before any upload is a
// 409 no_audience naming audience (it was a 500), and stays a draft.
func TestStartWithoutAudience(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.json(t, "POST", "/v1/campaigns", templateCampaign)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)

	a = b.json(t, "POST", "/v1/campaigns/"+id+"/start", "")
	require.Equal(t, http.StatusConflict, a.status, a.raw)
	require.Equal(t, api.CodeNoAudience, a.errCode())
	require.Equal(t, "audience", a.errField())
	require.Equal(t, "the audience is empty: upload an audience file first (PUT /v1/campaigns/{id}/audience, or wxmass campaign upload)",
		a.body["error"].(map[string]any)["message"])
	a = b.json(t, "GET", "/v1/campaigns/"+id, "")
	require.Equal(t, "draft", a.body["state"])
	require.EqualValues(t, 0, a.body["latest_run"])

	// Once it has recipients, it starts.
	require.Equal(t, http.StatusOK, b.do(t, "PUT", "/v1/campaigns/"+id+"/audience", "text/csv", "openid,name\noTX0000000000000000000000001,Ann\n").status)
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/start", "")
	require.Equal(t, http.StatusAccepted, a.status, a.raw)
}

// TestReportLinkUnknownRun: no link is signed for a run that does not
// exist.
func TestReportLinkUnknownRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.json(t, "POST", "/v1/campaigns", inlineCampaign)
	id := a.body["id"].(string)
	for _, run := range []string{"1", "2"} {
		a = b.json(t, "POST", "/v1/campaigns/"+id+"/runs/"+run+"/report-link", "")
		require.Equal(t, http.StatusNotFound, a.status, "run %s of a draft: %s", run, a.raw)
		require.Equal(t, api.CodeNotFound, a.errCode())
		require.Equal(t, "run", a.errField())
		require.Equal(t, "no such run", a.body["error"].(map[string]any)["message"])
	}
	require.Equal(t, http.StatusAccepted, b.json(t, "POST", "/v1/campaigns/"+id+"/start", "").status)
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/runs/2/report-link", "")
	require.Equal(t, http.StatusNotFound, a.status, a.raw)
	require.Equal(t, "run", a.errField())
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/runs/1/report-link", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	a = b.json(t, "POST", "/v1/campaigns/cnothere00000/runs/1/report-link", "")
	require.Equal(t, http.StatusNotFound, a.status, a.raw)
	require.Equal(t, "id", a.errField())
}
