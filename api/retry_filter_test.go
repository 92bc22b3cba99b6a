package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/retry"
)

// TestRetryFilterValues: a misspelt status, class or errcode in a retry
// filter is refused naming the value and the known ones (it was taken for
// "nothing to retry"), and starts nothing.
func TestRetryFilterValues(t *testing.T) {
	t.Parallel()
	policy, err := retry.New(retry.Config{})
	require.NoError(t, err)
	b := setup(t, func(c *api.Config) { c.Policy = policy })
	id := b.startCustom(t,
		rdb.Settle{OpenID: "oTX0000000000000000000000001", Outcome: rdb.Outcome{Status: rdb.OutcomeSent}},
		rdb.Settle{OpenID: "oTX0000000000000000000000002", Outcome: rdb.Outcome{Status: rdb.OutcomeFailed, Code: 45015, Class: "recipient"}},
		// An errcode the policy has no rule for.
		rdb.Settle{OpenID: "oTX0000000000000000000000003", Outcome: rdb.Outcome{Status: rdb.OutcomeFailed, Code: 99999, Class: "unknown"}})
	path := "/v1/campaigns/" + id + "/runs/1/retry"

	for _, tt := range []struct{ body, field, msg string }{
		{`{"classes":["recipent"]}`, "classes[0]",
			`classes[0]: "recipent" is not a class of failure: use unknown, refresh_token, retry, recipient, message, fatal, quota, exhausted, receipt`},
		{`{"classes":["recipient","Fatal"]}`, "classes[1]", `"Fatal" is not a class of failure`},
		{`{"statuses":["faild"]}`, "statuses[0]", `statuses[0]: "faild" is not an outcome a retry sends again: use failed, skipped, cancelled, unknown`},
		{`{"statuses":["failed","sent"]}`, "statuses[1]", `"sent" is not an outcome a retry sends again`},
		{`{"errcodes":[45105]}`, "errcodes[0]",
			"errcodes[0]: 45105 is neither an errcode wxmass knows nor one the run's recipients failed with (the run's errcodes: 45015, 99999)"},
		{`{"errcodes":[45015,0]}`, "errcodes[1]", "errcodes[1]: 0 is WeChat's success, not a failure"},
	} {
		a := b.json(t, "POST", path, tt.body, beyondSchema, "a value the run does not have")
		require.Equal(t, http.StatusUnprocessableEntity, a.status, "%s: %s", tt.body, a.raw)
		require.Equal(t, api.CodeInvalidField, a.errCode(), a.raw)
		require.Equal(t, tt.field, a.errField(), a.raw)
		require.Contains(t, a.body["error"].(map[string]any)["message"], tt.msg)
	}
	// Known values that match nobody: nothing to retry, as before.
	for _, body := range []string{`{"classes":["fatal"]}`, `{"errcodes":[43004]}`} {
		a := b.json(t, "POST", path, body)
		require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
		require.Equal(t, api.CodeNothingToRetry, a.errCode(), body)
	}
	a := b.json(t, "GET", "/v1/campaigns/"+id, "")
	require.EqualValues(t, 1, a.body["latest_run"], "no refused filter started a run")

	// An errcode the policy does not know, that the run's recipients met.
	a = b.json(t, "POST", path, `{"errcodes":[99999],"classes":["unknown"]}`)
	require.Equal(t, http.StatusAccepted, a.status, a.raw)
	require.EqualValues(t, 1, a.body["size"])
}
