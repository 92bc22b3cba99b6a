package wechattest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestControlEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Limits: map[string]Limit{nameTemplateSend: {Daily: 1}}})
	tok := b.token(t)
	u1, u2 := openID("ctl1"), openID("ctl2")
	require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(u1, "a")))))
	require.Equal(t, 45009, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(u2, "b")))))

	t.Run("stats", func(t *testing.T) {
		status, raw := b.do(t, http.MethodGet, "/fake/stats", "")
		require.Equal(t, http.StatusOK, status)
		var st Stats
		require.NoError(t, json.Unmarshal(raw, &st))
		require.Equal(t, b.srv.Stats(), st)
	})

	t.Run("deliveries", func(t *testing.T) {
		status, raw := b.do(t, http.MethodGet, "/fake/deliveries", "")
		require.Equal(t, http.StatusOK, status)
		sc := bufio.NewScanner(bytes.NewReader(raw))
		var got []Delivery
		for sc.Scan() {
			var d Delivery
			require.NoError(t, json.Unmarshal(sc.Bytes(), &d))
			got = append(got, d)
		}
		require.Len(t, got, 1)
		want := b.srv.Deliveries()[0]
		require.True(t, want.Time.Equal(got[0].Time))
		got[0].Time = want.Time
		require.Equal(t, want, got[0])
	})

	t.Run("reset-quotas", func(t *testing.T) {
		m := b.post(t, "/fake/reset-quotas", "")
		require.Equal(t, true, m["ok"])
		require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(u2, "b")))))
	})

	t.Run("invalidate-tokens", func(t *testing.T) {
		m := b.post(t, "/fake/invalidate-tokens", "")
		require.Equal(t, true, m["ok"])
		require.Equal(t, 40001, b.tokenCode(t, tok))
	})

	t.Run("faults", func(t *testing.T) {
		m := b.post(t, "/fake/faults", `{"system_error":1,"slow_delay":"250ms","latency":"2ms"}`)
		require.Equal(t, map[string]any{"system_error": json.Number("1"), "http_5xx": json.Number("0"), "drop_after_record": json.Number("0"),
			"slow": json.Number("0"), "slow_delay": "250ms", "invalidate_tokens": json.Number("0"), "latency": "2ms"}, m)
		want := Faults{SystemError: 1, SlowDelay: 250 * time.Millisecond, Latency: 2 * time.Millisecond}
		require.Equal(t, want, b.srv.Faults())
		got := b.get(t, "/fake/faults")
		require.Equal(t, m, got)

		for _, bad := range []string{`{"system_eror":1}`, `{"system_error":2}`, `{"system_error":"x"}`, `{} {}`, ``, `{"slow_delay":"x"}`,
			`{"latency":"x"}`, `{"latency":"-1s"}`} {
			status, raw := b.do(t, http.MethodPost, "/fake/faults", bad)
			require.Equal(t, http.StatusBadRequest, status, bad)
			require.Contains(t, decode(t, raw), "error")
		}
		require.Equal(t, want, b.srv.Faults())
		b.post(t, "/fake/faults", `{}`)
		require.Equal(t, Faults{}, b.srv.Faults())
	})

	t.Run("methods and paths", func(t *testing.T) {
		status, _ := b.do(t, http.MethodPost, "/fake/stats", "")
		require.Equal(t, http.StatusMethodNotAllowed, status)
		status, _ = b.do(t, http.MethodGet, "/fake/reset-quotas", "")
		require.Equal(t, http.StatusMethodNotAllowed, status)
		status, _ = b.do(t, http.MethodDelete, "/fake/faults", "")
		require.Equal(t, http.StatusMethodNotAllowed, status)
		status, _ = b.do(t, http.MethodGet, "/fake/nothing", "")
		require.Equal(t, http.StatusNotFound, status)
	})
}

func TestTemplatesEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tok := b.token(t)
	u := openID("tplep")
	require.Equal(t, map[string]any{"template_ids": []any{TemplateIDDefault}}, b.get(t, "/fake/templates"))
	require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(u, "")))))

	m := b.post(t, "/fake/templates", `{"template_ids":["TPL_A","TPL_B"]}`)
	require.Equal(t, map[string]any{"template_ids": []any{"TPL_A", "TPL_B"}}, m)
	require.Equal(t, m, b.get(t, "/fake/templates"))
	require.Equal(t, []string{"TPL_A", "TPL_B"}, b.srv.TemplateIDs())
	require.Equal(t, 40037, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(u, "")))))
	require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBodyWith(u, "TPL_B")))))

	for _, tc := range []struct{ body, want string }{
		{``, "decode templates: json offset 0: unexpected end of data"},
		{`[]`, "decode templates: array, not an object"},
		{`{}`, "template_ids: missing"},
		{`{"template_ids":null}`, "template_ids: null, not an array"},
		{`{"template_ids":"TPL_A"}`, "template_ids: string, not an array"},
		{`{"template_ids":[]}`, "template_ids: empty list"},
		{`{"template_ids":["TPL_A",7]}`, "template_ids[1]: number, not a string"},
		{`{"template_ids":["TPL_A",""]}`, "template_ids[1]: empty id"},
		{`{"template_ids":["TPL_A","TPL_A"]}`, `template_ids[1]: duplicate id "TPL_A"`},
		{`{"template_ids":["TPL_A"],"template_id":"x"}`, `decode templates: unknown field "template_id"`},
		{`{"Template_IDs":["TPL_A"]}`, `decode templates: unknown field "Template_IDs"`},
		{`{"template_ids":["TPL_A"],"template_ids":["TPL_C"]}`, `decode templates: json key "template_ids": duplicate object key`},
		{`{"template_ids":["TPL_A"]} {}`, "decode templates: json offset"},
		{"{\"template_ids\":[\"\xff\"]}", "decode templates: invalid UTF-8"},
	} {
		status, raw := b.do(t, http.MethodPost, "/fake/templates", tc.body)
		require.Equal(t, http.StatusBadRequest, status, tc.body)
		require.Contains(t, decode(t, raw)["error"], tc.want, tc.body)
	}
	require.Equal(t, []string{"TPL_A", "TPL_B"}, b.srv.TemplateIDs())

	status, _ := b.do(t, http.MethodDelete, "/fake/templates", "")
	require.Equal(t, http.StatusMethodNotAllowed, status)
}
