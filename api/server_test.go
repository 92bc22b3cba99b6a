package api_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/retry"
)

const (
	appID   = "wx00000000000api01"
	testKey = "test-key-0123456789abcdef"
)

type testBundle struct {
	url    string
	rdb    *rdb.RDB
	prefix string // of rdb's keys
	store  *campaigns.Store
	srv    *api.Server
}

func setup(t *testing.T, mutate ...func(*api.Config)) *testBundle {
	t.Helper()
	c := redistest.Client(t, redistest.DBAPI)
	prefix := redistest.Prefix(t, c)
	r := rdb.New(c, prefix)
	opt := redistest.Options(t, redistest.DBAPI)
	ins := asynq.NewInspector(asynq.RedisClientOpt{Addr: opt.Addr, DB: opt.DB, Password: opt.Password})
	t.Cleanup(func() {
		for _, q := range []string{task.QueueBulk, task.QueueControl, task.QueueTransactional} {
			_ = ins.DeleteQueue(q, true)
		}
		_ = ins.Close()
	})
	client, err := producer.NewClient(c)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	reg, err := account.NewRegistry(&account.Account{AppID: appID, Default: ratelimit.Limit{Rate: 10, Burst: 1}})
	require.NoError(t, err)
	store := campaigns.NewStore(r)
	keys := &api.KeySet{}
	require.NoError(t, keys.Add(testKey))
	cfg := api.Config{Store: store, Producer: producer.New(client.Client, store, reg, nil, producer.Config{}), Keys: keys}
	for _, m := range mutate {
		m(&cfg)
	}
	srv, err := api.New(cfg)
	require.NoError(t, err)
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return &testBundle{url: hs.URL, rdb: r, prefix: prefix, store: store, srv: srv}
}

// answer is a decoded response.
type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (a answer) errCode() string {
	e, _ := a.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (a answer) errField() string {
	e, _ := a.body["error"].(map[string]any)
	s, _ := e["field"].(string)
	return s
}

func (b *testBundle) do(t *testing.T, method, path, contentType, body string, header ...string) answer {
	t.Helper()
	res := b.send(t, method, path, contentType, body, header...)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	a := answer{status: res.StatusCode, header: res.Header, raw: string(raw)}
	require.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), "application/json"), "%s %s: content type %q: %s", method, path, res.Header.Get("Content-Type"), raw)
	require.NoError(t, json.Unmarshal(raw, &a.body), "%s %s: %s", method, path, raw)
	if res.StatusCode >= 400 {
		require.NotEmpty(t, a.errCode(), "every error has the documented shape: %s", raw)
	}
	return a
}

// send sends a request with the API key through client, which checks it
// and its answer against the OpenAPI document. header are name and value
// pairs: an empty value removes the header (Authorization, say), and the
// pair (invalid, "why") marks the request as deliberately outside the
// contract.
func (b *testBundle) send(t *testing.T, method, path, contentType, body string, header ...string) *http.Response {
	t.Helper()
	ctx, header := checked(t, header...)
	req, err := http.NewRequestWithContext(ctx, method, b.url+path, strings.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	res, err := client.Do(req)
	require.NoError(t, err)
	return res
}

func (b *testBundle) json(t *testing.T, method, path, body string, header ...string) answer {
	t.Helper()
	return b.do(t, method, path, "application/json", body, header...)
}

const templateCampaign = `{"name":"会员日","account":"` + appID + `","kind":"template",
 "template":{"template_id":"TPL1","data":{"thing1":"{{.name}}的会员日"}},
 "audience":{"source":"file","variables":["name"]}}`

const inlineCampaign = `{"name":"inline","account":"` + appID + `","kind":"template",
 "template":{"template_id":"TPL1","data":{"thing1":"会员日"}},
 "audience":{"source":"inline","openids":["oTX0000000000000000000000001","oTX0000000000000000000000002"]}}`

func (b *testBundle) total(t *testing.T) int64 {
	t.Helper()
	_, n, err := b.rdb.ListCampaigns(t.Context(), 0, 1)
	require.NoError(t, err)
	return n
}

func TestAuth(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct{ auth, invalid string }{
		{"", "no credentials"},
		{"Bearer ", "an empty key"},
		{"Bearer wrong-key-0123456789abcdef", ""},
		{"Basic " + testKey, "Basic without base64"},
		{testKey, "no scheme"},
		{"Token " + testKey, "an unknown scheme"},
	} {
		a := b.json(t, "GET", "/v1/campaigns", "", "Authorization", tc.auth, invalid, tc.invalid)
		require.Equal(t, http.StatusUnauthorized, a.status, "Authorization %q", tc.auth)
		require.Equal(t, api.CodeUnauthorized, a.errCode())
		require.NotContains(t, a.raw, testKey)
	}
	a := b.json(t, "POST", "/v1/campaigns", inlineCampaign, "Authorization", "Bearer nope")
	require.Equal(t, http.StatusUnauthorized, a.status)
	require.Zero(t, b.total(t), "a refused request stores nothing")

	require.Equal(t, http.StatusOK, b.json(t, "GET", "/v1/campaigns", "").status)
	// The scheme is case-insensitive (RFC 9110, 11.1).
	for _, scheme := range []string{"bearer", "BEARER", "Bearer"} {
		require.Equal(t, http.StatusOK, b.json(t, "GET", "/v1/campaigns", "", "Authorization", scheme+" "+testKey).status, scheme)
	}
	// Browsers send the key as a Basic password.
	basic := func(password string) *http.Response {
		t.Helper()
		ctx, _ := checked(t)
		req, err := http.NewRequestWithContext(ctx, "GET", b.url+"/v1/campaigns", nil)
		require.NoError(t, err)
		req.SetBasicAuth("operator", password)
		res, err := client.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res
	}
	require.Equal(t, http.StatusOK, basic(testKey).StatusCode)
	res := basic("wrong-key-0123456789abcdef")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Contains(t, res.Header.Values("WWW-Authenticate"), `Basic realm="wxmass", charset="UTF-8"`)
	// Health checks and the API's description need no key.
	for _, p := range []string{"/healthz", "/readyz", "/v1/openapi.json"} {
		a := b.json(t, "GET", p, "", "Authorization", "")
		require.Equal(t, http.StatusOK, a.status, p)
	}
}

func TestKeySet(t *testing.T) {
	t.Parallel()
	var ks api.KeySet
	require.False(t, ks.Valid(""), "an empty set accepts nothing")
	require.Error(t, ks.Add("short"))
	err := ks.ReadKeys(strings.NewReader("# keys\n\nkey-one-0123456789abcdef\nsha256:" +
		"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\nsha256:nothex\n"))
	require.ErrorContains(t, err, "line 5")
	require.NotContains(t, err.Error(), "key-one")
	require.True(t, ks.Valid("key-one-0123456789abcdef"))
	require.True(t, ks.Valid("test"), "the key of the sha256 line")
	require.False(t, ks.Valid("key-one-0123456789abcdeF"))
	require.Equal(t, 2, ks.Len())

	// Keys have names: given, or made of the digest.
	require.NoError(t, ks.ReadKeys(strings.NewReader("alice key-two-0123456789abcdef\nbob sha256:"+
		"60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752\n")))
	name, ok := ks.Lookup("key-two-0123456789abcdef")
	require.True(t, ok)
	require.Equal(t, "alice", name)
	name, ok = ks.Lookup("test")
	require.True(t, ok)
	require.Equal(t, "key-9f86d081", name, "an unnamed key is named by its digest")
	require.ErrorContains(t, ks.ParseKey("alice other-key-0123456789abcdef"), `"alice" is used twice`)
	err = ks.ParseKey("bad/name other-key-0123456789abcdef")
	require.ErrorContains(t, err, "key name")
	require.NotContains(t, err.Error(), "other-key")
	require.Error(t, ks.ParseKey("a b c"))
}

func TestCreateRejectsBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *api.Config) { c.MaxBodyBytes = 4096 })
	// Every body but one is outside the contract too: only the WeChat
	// rule that a thing is at most 20 characters is beyond what the
	// OpenAPI document can say.
	for _, tt := range []struct {
		name, body, ct string
		status         int
		code, field    string
		inContract     bool
	}{
		{"malformed", `{"name":`, "", 400, api.CodeMalformedJSON, "name", false},
		{"not json", `name=x`, "", 400, api.CodeMalformedJSON, "", false},
		{"empty", ``, "", 400, api.CodeMalformedJSON, "", false},
		{"two values", inlineCampaign + `{}`, "", 400, api.CodeMalformedJSON, "", false},
		{"wrong type", `{"name":7}`, "", 400, api.CodeInvalidField, "name", false},
		{"wrong nested type", `{"name":"x","template":{"data":[1]}}`, "", 400, api.CodeInvalidField, "template.data", false},
		{"unknown field", `{"name":"x","colour":"red"}`, "", 400, api.CodeUnknownField, "colour", false},
		{"read-only id", `{"id":"cabc","name":"x"}`, "", 400, api.CodeInvalidField, "id", false},
		{"read-only state", `{"state":"running","name":"x"}`, "", 400, api.CodeInvalidField, "state", false},
		{"oversize", `{"name":"` + strings.Repeat("x", 5000) + `"}`, "", 413, api.CodeBodyTooLarge, "", false},
		{"content type", inlineCampaign, "text/plain", 415, api.CodeUnsupportedMedia, "Content-Type", false},
		{"invalid campaign", `{"name":"x","account":"` + appID + `","kind":"template","template":{"template_id":"T","data":{"thing1":"一二三四五六七八九十一二三四五六七八九十一"}},"audience":{"source":"file"}}`,
			"", 422, api.CodeInvalidCampaign, "template.data.thing1", true},
		{"missing name", `{"account":"` + appID + `","kind":"template","template":{"template_id":"T","data":{"thing1":"x"}},"audience":{"source":"file"}}`,
			"", 422, api.CodeInvalidCampaign, "name", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ct := tt.ct
			if ct == "" {
				ct = "application/json"
			}
			why := ""
			if !tt.inContract {
				why = tt.name
			}
			a := b.do(t, "POST", "/v1/campaigns", ct, tt.body, invalid, why)
			require.Equal(t, tt.status, a.status, a.raw)
			require.Equal(t, tt.code, a.errCode(), a.raw)
			require.Equal(t, tt.field, a.errField(), a.raw)
		})
	}
	require.Zero(t, b.total(t), "nothing stored by a rejected request")
	a := b.json(t, "POST", "/v1/campaigns", `{"name":"x","account":"`+appID+`","kind":"template","template":{"template_id":"T","data":{"thing1":"一二三四五六七八九十一二三四五六七八九十一"}},"audience":{"source":"file"}}`)
	errs := a.body["error"].(map[string]any)["errors"].([]any)
	require.NotEmpty(t, errs, "every validation problem is listed")
}

func TestCampaignLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.json(t, "POST", "/v1/campaigns", inlineCampaign)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	require.Equal(t, "draft", a.body["state"])

	a = b.json(t, "GET", "/v1/campaigns/"+id, "")
	require.Equal(t, http.StatusOK, a.status)
	require.Equal(t, "inline", a.body["name"])
	require.EqualValues(t, 0, a.body["latest_run"])

	require.Equal(t, http.StatusNotFound, b.json(t, "GET", "/v1/campaigns/cnothere00000", "").status)
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/pause", "")
	require.Equal(t, http.StatusConflict, a.status, "a draft cannot be paused: %s", a.raw)
	require.Equal(t, api.CodeInvalidState, a.errCode())
	require.Equal(t, "draft", a.body["error"].(map[string]any)["state"])

	a = b.json(t, "POST", "/v1/campaigns/"+id+"/start", "")
	require.Equal(t, http.StatusAccepted, a.status, a.raw)
	require.EqualValues(t, 1, a.body["run"])
	a = b.json(t, "GET", "/v1/campaigns/"+id+"/runs/1", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, "running", a.body["state"])
	require.EqualValues(t, 2, a.body["size"])
	require.Equal(t, http.StatusNotFound, b.json(t, "GET", "/v1/campaigns/"+id+"/runs/9", "").status)
	require.Equal(t, http.StatusBadRequest, b.json(t, "GET", "/v1/campaigns/"+id+"/runs/x", "", invalid, "run is not a number").status)

	// A cancel stops the run: stopping until its recipients have their
	// outcomes (no worker runs here to settle them).
	for _, step := range []struct{ op, state string }{{"pause", "paused"}, {"resume", "running"}, {"cancel", "stopping"}} {
		a = b.json(t, "POST", "/v1/campaigns/"+id+"/"+step.op, "")
		require.Equal(t, http.StatusOK, a.status, "%s: %s", step.op, a.raw)
		require.Equal(t, step.state, a.body["state"], step.op)
	}
	a = b.json(t, "GET", "/v1/campaigns/"+id+"/runs/1", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, "stopping", a.body["state"])
	require.Equal(t, "cancelled", a.body["final"])
	require.NotEmpty(t, a.body["stopped"])
	require.Nil(t, a.body["finished"], "not finished before every recipient has an outcome")
	for _, op := range []string{"resume", "pause", "cancel"} {
		a = b.json(t, "POST", "/v1/campaigns/"+id+"/"+op, "")
		require.Equal(t, http.StatusConflict, a.status, op)
		require.Equal(t, "stopping", a.body["error"].(map[string]any)["state"], op)
	}

	a = b.json(t, "DELETE", "/v1/campaigns/"+id+"/start", "", invalid, "another method")
	require.Equal(t, http.StatusMethodNotAllowed, a.status)
	require.Equal(t, "POST", a.header.Get("Allow"))
	require.Equal(t, http.StatusNotFound, b.json(t, "GET", "/v1/nothing", "", invalid, "no such path").status)
}

func TestIdempotentCreate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	first := b.json(t, "POST", "/v1/campaigns", inlineCampaign, "Idempotency-Key", "k-1")
	require.Equal(t, http.StatusCreated, first.status)
	again := b.json(t, "POST", "/v1/campaigns", inlineCampaign, "Idempotency-Key", "k-1")
	require.Equal(t, http.StatusCreated, again.status)
	require.Equal(t, first.body["id"], again.body["id"], "a retried create returns the first campaign")
	require.Equal(t, "true", again.header.Get("Idempotent-Replayed"))
	require.EqualValues(t, 1, b.total(t))

	other := b.json(t, "POST", "/v1/campaigns", templateCampaign, "Idempotency-Key", "k-1")
	require.Equal(t, http.StatusUnprocessableEntity, other.status)
	require.Equal(t, api.CodeIdempotencyReuse, other.errCode())

	// A failed create frees its key.
	bad := b.json(t, "POST", "/v1/campaigns", `{"name":"x"}`, "Idempotency-Key", "k-2", invalid, "no kind nor audience")
	require.Equal(t, http.StatusUnprocessableEntity, bad.status)
	require.Equal(t, http.StatusCreated, b.json(t, "POST", "/v1/campaigns", inlineCampaign, "Idempotency-Key", "k-2").status)
	require.EqualValues(t, 2, b.total(t))
}

func TestListCampaigns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ids []string
	for range 5 {
		a := b.json(t, "POST", "/v1/campaigns", inlineCampaign)
		ids = append(ids, a.body["id"].(string))
	}
	require.Equal(t, http.StatusAccepted, b.json(t, "POST", "/v1/campaigns/"+ids[1]+"/start", "").status)

	a := b.json(t, "GET", "/v1/campaigns?limit=2", "")
	require.Equal(t, http.StatusOK, a.status)
	require.Len(t, a.body["campaigns"], 2)
	require.EqualValues(t, 5, a.body["total"])
	require.EqualValues(t, 2, a.body["next_offset"])
	a = b.json(t, "GET", "/v1/campaigns?offset=4&limit=2", "")
	require.Len(t, a.body["campaigns"], 1)
	require.Nil(t, a.body["next_offset"])

	a = b.json(t, "GET", "/v1/campaigns?state=running", "")
	require.Len(t, a.body["campaigns"], 1)
	require.Equal(t, ids[1], a.body["campaigns"].([]any)[0].(map[string]any)["id"])

	for _, q := range []string{"limit=0", "limit=201", "limit=x", "offset=-1", "state=nope"} {
		a := b.json(t, "GET", "/v1/campaigns?"+q, "", invalid, q)
		require.Equal(t, http.StatusBadRequest, a.status, q)
		require.Equal(t, api.CodeInvalidField, a.errCode(), q)
	}
}

// TestListFilters: the list filters by account and by a part of the
// name (any case), and a filtered page looks at no more than ListScanMax
// campaigns: a rare match is found by going on from next_offset.
func TestListFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	// The rare one first: the list is newest first, so it is the last
	// of ListScanMax + 10 campaigns.
	for i := range api.ListScanMax + 10 {
		c := &campaigns.Campaign{Name: "promo", Account: appID, Kind: campaigns.KindTemplate,
			Template: &campaigns.TemplateSpec{TemplateID: "TPL1", Data: map[string]string{"thing1": "x"}},
			Audience: campaigns.AudienceSpec{Source: campaigns.SourceInline, OpenIDs: []string{"oTX0000000000000000000000001"}}}
		if i == 0 {
			c.Name = "Spring 会员日 Sale"
		}
		require.NoError(t, b.store.Create(ctx, c))
	}
	a := b.json(t, "GET", "/v1/campaigns?q=spring+%E4%BC%9A%E5%91%98", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Empty(t, a.body["campaigns"], "the first page looks at the newest ListScanMax only")
	require.EqualValues(t, api.ListScanMax, a.body["next_offset"])
	a = b.json(t, "GET", fmt.Sprintf("/v1/campaigns?q=SPRING&offset=%d", api.ListScanMax), "")
	require.Len(t, a.body["campaigns"], 1, a.raw)
	require.Equal(t, "Spring 会员日 Sale", a.body["campaigns"].([]any)[0].(map[string]any)["name"])
	require.Nil(t, a.body["next_offset"])

	a = b.json(t, "GET", "/v1/campaigns?account="+appID+"&limit=3", "")
	require.Len(t, a.body["campaigns"], 3)
	a = b.json(t, "GET", "/v1/campaigns?account=other&limit=3", "")
	require.Empty(t, a.body["campaigns"])
	for _, q := range []string{"account=" + strings.Repeat("a", 65), "q=" + strings.Repeat("x", 201)} {
		a := b.json(t, "GET", "/v1/campaigns?"+q, "", invalid, q)
		require.Equal(t, http.StatusBadRequest, a.status, q)
		require.Equal(t, api.CodeInvalidField, a.errCode(), q)
	}
}

func TestUploadAudience(t *testing.T) {
	t.Parallel()
	b := setup(t, func(c *api.Config) { c.MaxUploadBytes = 2000 })
	a := b.json(t, "POST", "/v1/campaigns", templateCampaign)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	path := "/v1/campaigns/" + id + "/audience"

	csv := "\ufeffopenid,name\r\noTX0000000000000000000000001,Ann\r\n\r\nbad openid,Bob\r\noTX0000000000000000000000001,Ann\r\noTX0000000000000000000000002,\r\n"
	a = b.do(t, "PUT", path, "text/csv", csv)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.EqualValues(t, 1, a.body["stored"])
	rep := a.body["report"].(map[string]any)
	require.EqualValues(t, 1, rep["duplicates"])
	require.EqualValues(t, 1, rep["invalid_openids"])
	require.EqualValues(t, 1, rep["invalid"])
	lines := fmt.Sprint(rep["errors"])
	require.Contains(t, lines, "line:4", "errors name their line")

	// A file error stores nothing: the audience above stays.
	a = b.do(t, "PUT", path, "text/csv", "name,email\nAnn,a@x\n")
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, api.CodeInvalidAudience, a.errCode())
	a = b.do(t, "PUT", path, "text/csv", "openid,name\n"+strings.Repeat("oTX0000000000000000000000009,Ann\n", 100))
	require.Equal(t, http.StatusRequestEntityTooLarge, a.status, a.raw)
	a = b.do(t, "PUT", path, "application/pdf", "x", invalid, "not CSV nor JSON Lines")
	require.Equal(t, http.StatusUnsupportedMediaType, a.status)
	n, err := b.rdb.AudienceLen(t.Context(), id)
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "rejected uploads left the stored audience alone")

	jsonl := `{"openid":"oTX0000000000000000000000003","name":"Cy"}` + "\n" + `{"openid":"oTX0000000000000000000000004","name":"Di"}` + "\n"
	a = b.do(t, "PUT", path, "application/x-ndjson", jsonl)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.EqualValues(t, 2, a.body["stored"])

	inline := b.json(t, "POST", "/v1/campaigns", inlineCampaign)
	a = b.do(t, "PUT", "/v1/campaigns/"+inline.body["id"].(string)+"/audience", "text/csv", "openid\noTX0000000000000000000000003\n")
	require.Equal(t, http.StatusConflict, a.status, a.raw)
}

func TestTransactionalSend(t *testing.T) {
	t.Parallel()
	b := setup(t)
	msg := `{"name":"order 1001","account":"` + appID + `","kind":"template",
	 "template":{"template_id":"TPL1","data":{"thing1":"订单1001已发货"}},
	 "audience":{"source":"inline","openids":["oTX0000000000000000000000001"]}}`
	a := b.json(t, "POST", "/v1/messages", msg, "Idempotency-Key", "order-1001")
	require.Equal(t, http.StatusAccepted, a.status, a.raw)
	again := b.json(t, "POST", "/v1/messages", msg, "Idempotency-Key", "order-1001")
	require.Equal(t, a.body, again.body, "a retried transactional send is not sent twice")
	require.EqualValues(t, 1, b.total(t))

	two := strings.Replace(msg, `"oTX0000000000000000000000001"]`, `"oTX0000000000000000000000001","oTX0000000000000000000000002"]`, 1)
	a = b.json(t, "POST", "/v1/messages", two, invalid, "two openids")
	require.Equal(t, http.StatusBadRequest, a.status)
	require.Equal(t, "audience", a.errField())
	var buf bytes.Buffer
	buf.WriteString("{")
	a = b.json(t, "POST", "/v1/messages", buf.String(), invalid, "malformed JSON")
	require.Equal(t, api.CodeMalformedJSON, a.errCode())
}

func TestReportAndExport(t *testing.T) {
	t.Parallel()
	policy, err := retry.New(retry.Config{})
	require.NoError(t, err)
	b := setup(t, func(c *api.Config) { c.Policy = policy })
	openids := make([]string, 10)
	quoted := make([]string, 10)
	for i := range openids {
		openids[i] = fmt.Sprintf("oRPT%024d", i)
		quoted[i] = `"` + openids[i] + `"`
	}
	a := b.json(t, "POST", "/v1/campaigns", strings.Replace(inlineCampaign,
		`["oTX0000000000000000000000001","oTX0000000000000000000000002"]`, "["+strings.Join(quoted, ",")+"]", 1))
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	require.Equal(t, http.StatusAccepted, b.json(t, "POST", "/v1/campaigns/"+id+"/start", "").status)

	// The outcomes a worker would record: 6 sent, 1 unknown (its answer
	// was lost), 2 unfollowed, 1 cancelled.
	var settles []rdb.Settle
	for i, o := range openids {
		out := rdb.Outcome{Status: rdb.OutcomeSent, MsgID: int64(1<<40) + int64(i)}
		switch {
		case i == 6:
			out = rdb.Outcome{Status: rdb.OutcomeUnknown, Detail: "answer lost (timeout): WeChat may have delivered it"}
		case i >= 7 && i < 9:
			out = rdb.Outcome{Status: rdb.OutcomeFailed, Code: 43004, Class: "recipient", Detail: "user unfollowed, a,b"}
		case i == 9:
			out = rdb.Outcome{Status: rdb.OutcomeCancelled, Detail: "campaign cancelled"}
		}
		settles = append(settles, rdb.Settle{OpenID: o, Outcome: out})
	}
	rec, err := b.rdb.RecordOutcomes(t.Context(), id, 1, "completed", settles...)
	require.NoError(t, err)
	require.Equal(t, "completed", rec.Finished)

	a = b.json(t, "GET", "/v1/campaigns/"+id+"/runs/1/report", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, "completed", a.body["state"])
	out := a.body["outcomes"].(map[string]any)
	require.EqualValues(t, 6, out["sent"])
	require.EqualValues(t, 1, out["unknown"])
	require.EqualValues(t, 2, out["failed"])
	require.EqualValues(t, 1, out["cancelled"])
	require.EqualValues(t, 6, a.body["accepted"], "unknown is not counted as accepted")
	codes := a.body["errcodes"].([]any)
	require.Len(t, codes, 1)
	require.Equal(t, map[string]any{"code": float64(43004), "count": float64(2), "class": "recipient", "meaning": codes[0].(map[string]any)["meaning"]}, codes[0])
	require.NotEmpty(t, codes[0].(map[string]any)["meaning"], "errcodes carry their meaning")
	require.NotEmpty(t, a.body["timeline"])
	require.EqualValues(t, 10, a.body["rate_peak"])

	res := b.raw(t, "/v1/campaigns/"+id+"/runs/1/outcomes.csv?status=failed")
	require.Equal(t, http.StatusOK, res.status)
	rows, err := csv.NewReader(strings.NewReader(res.body)).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 3, "a header and the two failures: %s", res.body)
	require.Equal(t, []string{"openid", "status", "errcode", "class", "msgid", "detail", "at"}, rows[0])
	require.Equal(t, "43004", rows[1][2])
	require.Equal(t, "user unfollowed, a,b", rows[1][5], "commas survive the CSV")
	all := b.raw(t, "/v1/campaigns/"+id+"/runs/1/outcomes.csv")
	rows, err = csv.NewReader(strings.NewReader(all.body)).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 11)
	require.Len(t, strings.Split(strings.TrimSpace(b.raw(t, "/v1/campaigns/"+id+"/runs/1/outcomes.csv?errcode=43004").body), "\n"), 3)
	rows, err = csv.NewReader(strings.NewReader(b.raw(t, "/v1/campaigns/"+id+"/runs/1/outcomes.csv?status=unknown").body)).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 2)
	require.Equal(t, []string{openids[6], "unknown"}, rows[1][:2])
	require.Contains(t, rows[1][5], "may have delivered")

	for _, q := range []struct{ query, invalid string }{{"status=lost", "no such outcome"}, {"errcode=x", "not a number"}, {"errcode=0", ""}} {
		a := b.json(t, "GET", "/v1/campaigns/"+id+"/runs/1/outcomes.csv?"+q.query, "", invalid, q.invalid)
		require.Equal(t, http.StatusBadRequest, a.status, q.query)
	}
	require.Equal(t, http.StatusNotFound, b.json(t, "GET", "/v1/campaigns/"+id+"/runs/2/report", "").status)
}

type rawAnswer struct {
	status int
	body   string
}

func (b *testBundle) raw(t *testing.T, path string, header ...string) rawAnswer {
	t.Helper()
	res := b.send(t, "GET", path, "", "", header...)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return rawAnswer{status: res.StatusCode, body: string(body)}
}

func TestReportPageAndSignedLink(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.json(t, "POST", "/v1/campaigns", inlineCampaign)
	id := a.body["id"].(string)
	require.Equal(t, http.StatusAccepted, b.json(t, "POST", "/v1/campaigns/"+id+"/start", "").status)
	_, err := b.rdb.RecordOutcomes(t.Context(), id, 1, "completed",
		rdb.Settle{OpenID: "oTX0000000000000000000000001", Outcome: rdb.Outcome{Status: rdb.OutcomeSent, MsgID: 1}},
		rdb.Settle{OpenID: "oTX0000000000000000000000002", Outcome: rdb.Outcome{Status: rdb.OutcomeFailed, Code: 43004, Class: "recipient"}})
	require.NoError(t, err)

	page := b.raw(t, "/v1/campaigns/"+id+"/runs/1/report.html")
	require.Equal(t, http.StatusOK, page.status)
	require.Contains(t, page.body, "<title>inline · run 1 · wxmass</title>")
	require.Contains(t, page.body, `data-report="{`)
	require.NotContains(t, page.body, `http-equiv="refresh"`, "a finished run does not reload")

	a = b.json(t, "POST", "/v1/campaigns/"+id+"/runs/1/report-link", "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	link := a.body["url"].(string)
	require.True(t, strings.HasPrefix(link, "/reports/"+id+"/1?"), link)
	open := func(path string, header ...string) (int, string) {
		a := b.raw(t, path, append([]string{"Authorization", ""}, header...)...) // no API key
		return a.status, a.body
	}
	status, body := open(link)
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, "data-report=")
	for _, bad := range []struct{ link, invalid string }{
		{strings.Replace(link, "sig=", "sig=00", 1), ""},
		{strings.Replace(link, "/1?", "/2?", 1), ""},
		{"/reports/" + id + "/1", "not signed"},
		{"/reports/" + id + "/1?exp=9999999999&sig=abcd", ""},
	} {
		status, body := open(bad.link, invalid, bad.invalid)
		require.Equal(t, http.StatusUnauthorized, status, "%s: %s", bad.link, body)
	}
	// An expired link, signed with the right key, is refused too.
	key, err := b.rdb.SigningKey(t.Context())
	require.NoError(t, err)
	exp := time.Now().Add(-time.Minute).Unix()
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "\n1\n" + strconv.FormatInt(exp, 10)))
	status, body = open(fmt.Sprintf("/reports/%s/1?exp=%d&sig=%x", id, exp, m.Sum(nil)))
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, body, "expired")
	require.Equal(t, http.StatusBadRequest, b.json(t, "POST", "/v1/campaigns/"+id+"/runs/1/report-link?ttl=forever", "", invalid, "not a duration").status)
}

func TestRetryFailed(t *testing.T) {
	t.Parallel()
	policy, err := retry.New(retry.Config{})
	require.NoError(t, err)
	b := setup(t, func(c *api.Config) { c.Policy = policy })
	a := b.json(t, "POST", "/v1/campaigns", inlineCampaign)
	id := a.body["id"].(string)
	require.Equal(t, http.StatusAccepted, b.json(t, "POST", "/v1/campaigns/"+id+"/start", "").status)
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/runs/1/retry", "")
	require.Equal(t, http.StatusConflict, a.status, "a running campaign has no retry: %s", a.raw)

	_, err = b.rdb.RecordOutcomes(t.Context(), id, 1, "completed",
		rdb.Settle{OpenID: "oTX0000000000000000000000001", Outcome: rdb.Outcome{Status: rdb.OutcomeSent, MsgID: 5}},
		rdb.Settle{OpenID: "oTX0000000000000000000000002", Outcome: rdb.Outcome{Status: rdb.OutcomeFailed, Code: 45015, Class: "recipient"}})
	require.NoError(t, err)

	a = b.json(t, "POST", "/v1/campaigns/"+id+"/runs/1/retry", `{"errcodes":[43004]}`)
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, api.CodeNothingToRetry, a.errCode())
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/runs/1/retry", `{"statuses":["sent"]}`, invalid, "sent is never retried")
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, "statuses[0]", a.errField())
	require.Equal(t, http.StatusNotFound, b.json(t, "POST", "/v1/campaigns/"+id+"/runs/7/retry", "").status)

	a = b.json(t, "POST", "/v1/campaigns/"+id+"/runs/1/retry", `{"errcodes":[45015]}`)
	require.Equal(t, http.StatusAccepted, a.status, a.raw)
	require.EqualValues(t, 2, a.body["run"])
	require.EqualValues(t, 1, a.body["size"])
	rec, err := b.store.Run(t.Context(), id, 2)
	require.NoError(t, err)
	require.EqualValues(t, 1, rec.Size)
	ids, err := b.rdb.AudienceRange(t.Context(), rec.Audience, 0, -1)
	require.NoError(t, err)
	require.Equal(t, []string{"oTX0000000000000000000000002"}, ids, "only the failed recipient is sent again")
	a = b.json(t, "GET", "/v1/campaigns/"+id, "")
	require.Equal(t, "running", a.body["state"])
	require.EqualValues(t, 2, a.body["latest_run"])
	require.Nil(t, a.body["unknown"])
}

// startCustom creates and starts a customer-service campaign (no dedupe
// key) of three recipients, and records settles as the run's outcomes.
func (b *testBundle) startCustom(t *testing.T, settles ...rdb.Settle) string {
	t.Helper()
	a := b.json(t, "POST", "/v1/campaigns", `{"name":"cs","account":"`+appID+`","kind":"custom","custom":{"msgtype":"text","text":{"content":"您好"}},
		"audience":{"source":"inline","openids":["oTX0000000000000000000000001","oTX0000000000000000000000002","oTX0000000000000000000000003"]}}`)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	require.Equal(t, http.StatusAccepted, b.json(t, "POST", "/v1/campaigns/"+id+"/start", "").status)
	_, err := b.rdb.RecordOutcomes(t.Context(), id, 1, "completed", settles...)
	require.NoError(t, err)
	return id
}

// TestRetryUnknown: unknown recipients are retried only when named, and
// the answer says what that risks; a run still stopping is not retried.
func TestRetryUnknown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.startCustom(t,
		rdb.Settle{OpenID: "oTX0000000000000000000000001", Outcome: rdb.Outcome{Status: rdb.OutcomeSent}},
		rdb.Settle{OpenID: "oTX0000000000000000000000002", Outcome: rdb.Outcome{Status: rdb.OutcomeUnknown, Detail: "answer lost"}})
	// The last recipient's call is in flight when the run is cancelled:
	// the run is stopping, and not retried until it has settled.
	require.Equal(t, http.StatusOK, b.json(t, "POST", "/v1/campaigns/"+id+"/cancel", "").status)
	a := b.json(t, "POST", "/v1/campaigns/"+id+"/runs/1/retry", `{"statuses":["unknown"]}`)
	require.Equal(t, http.StatusConflict, a.status, a.raw)
	require.Equal(t, api.CodeRunNotSettled, a.errCode())
	require.Contains(t, a.body["error"].(map[string]any)["message"], "1 of its 3 recipients have no outcome yet")
}

// TestRetryUnknownByName: a completed run's unknown recipients.
func TestRetryUnknownByName(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.startCustom(t,
		rdb.Settle{OpenID: "oTX0000000000000000000000001", Outcome: rdb.Outcome{Status: rdb.OutcomeSent}},
		rdb.Settle{OpenID: "oTX0000000000000000000000002", Outcome: rdb.Outcome{Status: rdb.OutcomeUnknown, Detail: "answer lost"}},
		rdb.Settle{OpenID: "oTX0000000000000000000000003", Outcome: rdb.Outcome{Status: rdb.OutcomeFailed, Code: 45015, Class: "recipient"}})

	// By default: the failed one only.
	a := b.json(t, "POST", "/v1/campaigns/"+id+"/runs/1/retry", "")
	require.Equal(t, http.StatusAccepted, a.status, a.raw)
	require.EqualValues(t, 1, a.body["size"])
	require.Nil(t, a.body["unknown"])
	_, err := b.rdb.RecordOutcomes(t.Context(), id, 2, "completed",
		rdb.Settle{OpenID: "oTX0000000000000000000000003", Outcome: rdb.Outcome{Status: rdb.OutcomeFailed, Code: 45015, Class: "recipient"}})
	require.NoError(t, err)

	// By name: the answer says what it risks.
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/runs/1/retry", `{"statuses":["unknown"]}`)
	require.Equal(t, http.StatusAccepted, a.status, a.raw)
	require.EqualValues(t, 1, a.body["size"])
	u := a.body["unknown"].(map[string]any)
	require.EqualValues(t, 1, u["included"])
	require.EqualValues(t, 0, u["same_client_msg_id"])
	require.EqualValues(t, 1, u["may_duplicate"], "a customer-service send has no dedupe key")
	require.Contains(t, u["warning"], "gets it a second time")
}

func TestUpdateDraft(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := b.json(t, "POST", "/v1/campaigns", inlineCampaign)
	id := a.body["id"].(string)
	created := a.body["created_at"]

	three := strings.Replace(inlineCampaign, `"oTX0000000000000000000000002"]`, `"oTX0000000000000000000000002","oTX0000000000000000000000003"]`, 1)
	three = strings.Replace(three, `"name":"inline"`, `"name":"renamed"`, 1)
	a = b.json(t, "PUT", "/v1/campaigns/"+id, three)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, "renamed", a.body["name"])
	require.Equal(t, created, a.body["created_at"])
	require.Equal(t, true, a.body["update"].(map[string]any)["audience_replaced"])
	n, err := b.rdb.AudienceLen(t.Context(), id)
	require.NoError(t, err)
	require.EqualValues(t, 3, n)

	// Invalid updates change nothing.
	a = b.json(t, "PUT", "/v1/campaigns/"+id, `{"name":""}`, invalid, "no name, kind nor audience")
	require.Equal(t, http.StatusUnprocessableEntity, a.status)
	a = b.json(t, "PUT", "/v1/campaigns/"+id, `{"name":"x","id":"other"}`, invalid, "a read-only field")
	require.Equal(t, http.StatusBadRequest, a.status)
	a = b.json(t, "GET", "/v1/campaigns/"+id, "")
	require.Equal(t, "renamed", a.body["name"])

	// A file campaign's upload survives an update that keeps its variables,
	// and is dropped by one that changes them.
	f := b.json(t, "POST", "/v1/campaigns", templateCampaign)
	fid := f.body["id"].(string)
	require.Equal(t, http.StatusOK, b.do(t, "PUT", "/v1/campaigns/"+fid+"/audience", "text/csv", "openid,name\noTX0000000000000000000000001,Ann\n").status)
	same := strings.Replace(templateCampaign, `"name":"会员日"`, `"name":"会员日 2"`, 1)
	a = b.json(t, "PUT", "/v1/campaigns/"+fid, same)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, false, a.body["update"].(map[string]any)["audience_cleared"])
	n, err = b.rdb.AudienceLen(t.Context(), fid)
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
	other := strings.Replace(same, `{{.name}}的会员日`, `{{.city}}的会员日`, 1)
	other = strings.Replace(other, `"variables":["name"]`, `"variables":["city"]`, 1)
	a = b.json(t, "PUT", "/v1/campaigns/"+fid, other)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, true, a.body["update"].(map[string]any)["audience_cleared"])
	n, err = b.rdb.AudienceLen(t.Context(), fid)
	require.NoError(t, err)
	require.Zero(t, n)

	// Only drafts.
	require.Equal(t, http.StatusAccepted, b.json(t, "POST", "/v1/campaigns/"+id+"/start", "").status)
	a = b.json(t, "PUT", "/v1/campaigns/"+id, three)
	require.Equal(t, http.StatusConflict, a.status, a.raw)
	require.Equal(t, api.CodeInvalidState, a.errCode())
}
