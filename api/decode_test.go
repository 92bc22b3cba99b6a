package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/internal/rdb"
)

// TestStrictJSON: every JSON body (create, update, transactional send,
// retry) is read strictly: exact field names, each once, valid UTF-8, and
// errors that name the field's path and JSON types, never Go's.
func TestStrictJSON(t *testing.T) {
	t.Parallel()
	b := setup(t)
	draft := b.json(t, "POST", "/v1/campaigns", inlineCampaign)
	require.Equal(t, http.StatusCreated, draft.status, draft.raw)
	draftID := draft.body["id"].(string)
	done := b.json(t, "POST", "/v1/campaigns", inlineCampaign)
	doneID := done.body["id"].(string)
	require.Equal(t, http.StatusAccepted, b.json(t, "POST", "/v1/campaigns/"+doneID+"/start", "").status)
	_, err := b.rdb.RecordOutcomes(t.Context(), doneID, 1, "completed",
		rdb.Settle{OpenID: "oTX0000000000000000000000001", Outcome: rdb.Outcome{Status: rdb.OutcomeSent, MsgID: 1}},
		rdb.Settle{OpenID: "oTX0000000000000000000000002", Outcome: rdb.Outcome{Status: rdb.OutcomeFailed, Code: 45015, Class: "recipient"}})
	require.NoError(t, err)
	total := b.total(t)

	for _, tt := range []struct {
		name, method, path, body string
		code, field, msg         string
	}{
		{"case of a name", "POST", "/v1/campaigns", `{"NAME":"x"}`,
			api.CodeUnknownField, "NAME", `unknown field "NAME": field names are exact, did you mean "name"?`},
		{"case of a nested name", "POST", "/v1/campaigns", `{"name":"x","template":{"Template_ID":"T"}}`,
			api.CodeUnknownField, "template.Template_ID", `did you mean "template_id"?`},
		{"unknown nested name", "POST", "/v1/campaigns", `{"name":"x","audience":{"source":"inline","users":[]}}`,
			api.CodeUnknownField, "audience.users", `unknown field "users" (the fields in audience: source, openids, tag_id, variables)`},
		{"duplicate", "POST", "/v1/campaigns", `{"name":"a","kind":"template","name":"b"}`,
			api.CodeDuplicateField, "name", "name appears more than once"},
		{"duplicate in a map", "POST", "/v1/campaigns", `{"name":"a","template":{"data":{"thing1":"x","thing1":"y"}}}`,
			api.CodeDuplicateField, "template.data.thing1", "template.data.thing1 appears more than once"},
		{"duplicate of another case", "POST", "/v1/campaigns", `{"name":"a","Name":"b"}`,
			api.CodeUnknownField, "Name", `did you mean "name"?`},
		{"invalid UTF-8", "POST", "/v1/campaigns", "{\"name\":\"caf\xe9\"}",
			api.CodeMalformedJSON, "name", "in name: invalid UTF-8"},
		{"invalid UTF-8 deep", "POST", "/v1/campaigns", "{\"audience\":{\"openids\":[\"o1\",\"\xff\"]}}",
			api.CodeMalformedJSON, "audience.openids[1]", "invalid UTF-8"},
		{"lone surrogate", "POST", "/v1/campaigns", `{"name":"\ud83d"}`,
			api.CodeMalformedJSON, "name", "invalid surrogate pair"},
		{"top-level array", "POST", "/v1/campaigns", `[{"name":"x"}]`,
			api.CodeInvalidField, "", "the body: want JSON object (an object), got JSON array"},
		{"top-level string", "POST", "/v1/messages", `"hello"`,
			api.CodeInvalidField, "", "the body: want JSON object (an object), got JSON string"},
		{"object for an array", "POST", "/v1/campaigns", `{"audience":{"openids":{"a":1}}}`,
			api.CodeInvalidField, "audience.openids", "audience.openids: want JSON array (an array of strings), got JSON object"},
		{"number in a string array", "POST", "/v1/campaigns", `{"audience":{"openids":["o1",2]}}`,
			api.CodeInvalidField, "audience.openids[1]", "audience.openids[1]: want JSON string (a string), got JSON number"},
		{"string for a number", "POST", "/v1/campaigns", `{"rate":"fast"}`,
			api.CodeInvalidField, "rate", "rate: want JSON number (a finite number), got JSON string"},
		{"fraction for a whole number", "POST", "/v1/campaigns", `{"audience":{"tag_id":1.5}}`,
			api.CodeInvalidField, "audience.tag_id", "audience.tag_id: 1.5 is not a whole number from -9223372036854775808 to 9223372036854775807"},
		{"boolean for an object", "POST", "/v1/campaigns", `{"template":true}`,
			api.CodeInvalidField, "template", "template: want JSON object (an object), got JSON boolean"},
		{"map key with a dot", "POST", "/v1/campaigns", `{"template":{"data":{"a.b":7}}}`,
			api.CodeInvalidField, `template.data["a.b"]`, "want JSON string (a string), got JSON number"},
		{"update: duplicate", "PUT", "/v1/campaigns/" + draftID, `{"name":"a","name":"b"}`,
			api.CodeDuplicateField, "name", "name appears more than once"},
		{"update: case", "PUT", "/v1/campaigns/" + draftID, `{"Kind":"template"}`,
			api.CodeUnknownField, "Kind", `did you mean "kind"?`},
		{"message: duplicate openids key", "POST", "/v1/messages", `{"audience":{"openids":["o1"],"openids":["o2"]}}`,
			api.CodeDuplicateField, "audience.openids", "audience.openids appears more than once"},
		{"retry: case", "POST", "/v1/campaigns/" + doneID + "/runs/1/retry", `{"Statuses":["failed"]}`,
			api.CodeUnknownField, "Statuses", `did you mean "statuses"?`},
		{"retry: duplicate", "POST", "/v1/campaigns/" + doneID + "/runs/1/retry", `{"errcodes":[45015],"errcodes":[43004]}`,
			api.CodeDuplicateField, "errcodes", "errcodes appears more than once"},
		{"retry: string for an array", "POST", "/v1/campaigns/" + doneID + "/runs/1/retry", `{"statuses":"failed"}`,
			api.CodeInvalidField, "statuses", "statuses: want JSON array (an array of strings), got JSON string"},
		{"retry: array body", "POST", "/v1/campaigns/" + doneID + "/runs/1/retry", `["failed"]`,
			api.CodeInvalidField, "", "the body: want JSON object"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := b.json(t, tt.method, tt.path, tt.body, beyondSchema, tt.name)
			require.Equal(t, http.StatusBadRequest, a.status, a.raw)
			require.Equal(t, tt.code, a.errCode(), a.raw)
			require.Equal(t, tt.field, a.errField(), a.raw)
			msg := a.body["error"].(map[string]any)["message"].(string)
			require.Contains(t, msg, tt.msg)
			for _, goName := range []string{"campaigns.", "[]string", "int64", "float64", "map[", "Go "} {
				require.NotContains(t, msg, goName, "messages name JSON types")
			}
		})
	}
	require.Equal(t, total, b.total(t), "nothing was created")
	a := b.json(t, "GET", "/v1/campaigns/"+draftID, "")
	require.Equal(t, "inline", a.body["name"], "nothing was updated")
	a = b.json(t, "GET", "/v1/campaigns/"+doneID, "")
	require.EqualValues(t, 1, a.body["latest_run"], "nothing was retried")
}
