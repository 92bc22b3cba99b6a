package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/api"
)

// TestStartRefused: a start that cannot be done is the client's to fix,
// not an internal error: a file campaign with no audience uploaded is
// refused as the schedule refuses it, a campaign or message whose account
// is not configured names the account; nothing runs.
func TestStartRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.json(t, "POST", "/v1/campaigns", templateCampaign)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	a = b.json(t, "POST", "/v1/campaigns/"+a.body["id"].(string)+"/start", "")
	require.Equal(t, http.StatusConflict, a.status, a.raw)
	require.Equal(t, api.CodeNoAudience, a.errCode())
	require.Equal(t, "audience", a.errField())
	require.Contains(t, a.raw, "upload an audience file first")

	// This server's API takes any account (it has no Accounts); its
	// producer sends for appID only.
	other := strings.Replace(inlineCampaign, `"account":"`+appID+`"`, `"account":"other"`, 1)
	a = b.json(t, "POST", "/v1/campaigns", other)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/start", "")
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, api.CodeInvalidCampaign, a.errCode())
	require.Equal(t, "account", a.errField())
	require.Equal(t, "draft", b.json(t, "GET", "/v1/campaigns/"+id, "").body["state"], "nothing ran")

	one := strings.Replace(other, `,"oTX0000000000000000000000002"`, ``, 1)
	a = b.json(t, "POST", "/v1/messages", one)
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, "account", a.errField())
}
