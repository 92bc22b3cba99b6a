package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestCampaignEvents runs `wxmass campaign events` against the API (served
// in the test, on a real Redis): the audit trail as a table, as JSON, and
// more than a page of it.
func TestCampaignEvents(t *testing.T) {
	t.Parallel()
	const aliceKey, bobKey = "alice-cli-key-0123456789", "bob-cli-key-0123456789"
	c := redistest.Client(t, redistest.DBCmd)
	store := campaigns.NewStore(rdb.New(c, redistest.Prefix(t, c)))
	client, err := producer.NewClient(c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	reg, err := account.NewRegistry(&account.Account{AppID: wechattest.AppIDDefault, Default: ratelimit.Limit{Rate: 10, Burst: 1}})
	require.NoError(t, err)
	keys := &api.KeySet{}
	require.NoError(t, keys.AddNamed("alice", aliceKey))
	require.NoError(t, keys.AddNamed("bob", bobKey))
	srv, err := api.New(api.Config{Store: store, Producer: producer.New(client.Client, store, reg, nil, producer.Config{}), Keys: keys})
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	addr := strings.TrimPrefix(hs.URL, "http://")

	status, created, _ := apiCall(t, addr, aliceKey, "POST", "/v1/campaigns", `{"name":"cli","account":"`+wechattest.AppIDDefault+`","kind":"template",
		"template":{"template_id":"`+wechattest.TemplateIDDefault+`","data":{"thing1":"会员日"}},
		"audience":{"source":"inline","openids":["oEVT000000000000000000000001"]}}`)
	require.Equal(t, http.StatusCreated, status, "%v", created)
	id := created["id"].(string)
	status, _, _ = apiCall(t, addr, bobKey, "POST", "/v1/campaigns/"+id+"/pause", "")
	require.Equal(t, http.StatusConflict, status)
	// (No start: the launch task would go to asynq queues that other tests'
	// workers share.)
	status, _, _ = apiCall(t, addr, aliceKey, "PUT", "/v1/campaigns/"+id, `{"name":"cli 2","account":"`+wechattest.AppIDDefault+`","kind":"template",
		"template":{"template_id":"`+wechattest.TemplateIDDefault+`","data":{"thing1":"会员日"}},
		"audience":{"source":"inline","openids":["oEVT000000000000000000000001"]}}`)
	require.Equal(t, http.StatusOK, status)

	env := []string{"WXMASS_API_URL=" + hs.URL, "WXMASS_API_KEY=" + bobKey}
	stdout, stderr, code := run(t, env, "campaign", "events", id)
	require.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, lines, 4, stdout)
	require.Regexp(t, `^time +key +action +run +result$`, lines[0])
	require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z +alice +update +- +200$`, lines[1])
	require.Regexp(t, `Z +bob +pause +- +409 invalid_state$`, lines[2])
	require.Regexp(t, `Z +alice +create +- +201$`, lines[3])
	require.NotContains(t, stdout, bobKey)

	// More than one page of the API: the CLI follows next_before. (The
	// store records these as the API would, with a run to show.)
	for i := range 250 {
		_, err := store.RecordAudit(t.Context(), campaigns.AuditEvent{Campaign: id, Key: "carol", Via: "bearer", Action: "report-link",
			Run: 1, Status: 200, RequestID: fmt.Sprint("r", i)})
		require.NoError(t, err)
	}
	stdout, stderr, code = run(t, env, "campaign", "events", "--limit", "252", "--json", id)
	require.Equal(t, 0, code, stderr)
	var page struct {
		Events []struct {
			Key, Action string
			Run, Status int
			RequestID   string `json:"request_id"`
		}
		NextBefore string `json:"next_before"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &page), stdout)
	require.Len(t, page.Events, 252)
	require.Equal(t, "r249", page.Events[0].RequestID, "newest first")
	require.Equal(t, "r0", page.Events[249].RequestID)
	require.Equal(t, 1, page.Events[0].Run)
	require.Equal(t, "alice", page.Events[250].Key)
	require.Equal(t, "update", page.Events[250].Action)
	require.Equal(t, "bob", page.Events[251].Key)
	require.Equal(t, 409, page.Events[251].Status)
	require.NotEmpty(t, page.NextBefore, "the create is older")

	stdout, stderr, code = run(t, env, "campaign", "events", "--limit", "2", id)
	require.Equal(t, 0, code, stderr)
	require.Regexp(t, `Z +carol +report-link +1 +200\n`, stdout)
	require.Contains(t, stdout, "(older events: raise --limit)")

	_, stderr, code = run(t, env, "campaign", "events", "cnothere00000")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "no such campaign")
	_, stderr, code = run(t, env, "campaign", "events", "--limit", "0", id)
	require.Equal(t, 2, code)
	require.Contains(t, stderr, "--limit")
}
