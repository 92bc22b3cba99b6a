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

// TestUploadAllBadKeepsAudience: an upload that stores no valid recipient
// is 422 invalid_audience with the per-line report, and the audience
// uploaded before is the one the run sends to.
func TestUploadAllBadKeepsAudience(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.json(t, "POST", "/v1/campaigns", templateCampaign)
	id := a.body["id"].(string)
	path := "/v1/campaigns/" + id + "/audience"
	a = b.do(t, "PUT", path, "text/csv", "openid,name\noTX0000000000000000000000001,Ann\noTX0000000000000000000000002,Bob\n")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.EqualValues(t, 2, a.body["stored"])

	a = b.do(t, "PUT", path, "text/csv", "openid,name\nbad openid,Ann\noTX0000000000000000000000003,\n")
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, api.CodeInvalidAudience, a.errCode())
	require.Equal(t, "audience: none of the file's 2 lines is a valid recipient (1 invalid openids, 1 invalid; the report lists them); nothing was stored: the audience is as it was",
		a.body["error"].(map[string]any)["message"])
	rep := a.body["report"].(map[string]any)
	require.EqualValues(t, 0, rep["accepted"])
	errs := rep["errors"].([]any)
	require.Len(t, errs, 2)
	require.EqualValues(t, 2, errs[0].(map[string]any)["line"])
	require.Equal(t, "openid", errs[0].(map[string]any)["field"])
	require.EqualValues(t, 3, errs[1].(map[string]any)["line"])
	require.Equal(t, "name", errs[1].(map[string]any)["field"])

	a = b.do(t, "PUT", path, "application/x-ndjson", "", invalid, "an empty file")
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, api.CodeInvalidAudience, a.errCode())

	a = b.json(t, "POST", "/v1/campaigns/"+id+"/start", "")
	require.Equal(t, http.StatusAccepted, a.status, a.raw)
	rec, err := b.store.Run(t.Context(), id, 1)
	require.NoError(t, err)
	ids, err := b.rdb.AudienceRange(t.Context(), rec.Audience, 0, -1)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"oTX0000000000000000000000001", "oTX0000000000000000000000002"}, ids, "the first audience is the run's")
}
