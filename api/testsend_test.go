package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/media"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// Test openids: two testers, one the fake refuses, and the audience.
const (
	tester1    = "oTST000000000000000000000001"
	tester2    = "oTST000000000000000000000002"
	testerGone = "oTST000000000000000000000043"
	recipientA = "oAUD000000000000000000000001"
	recipientB = "oAUD000000000000000000000002"
	recipientC = "oAUD000000000000000000000003"
)

// testSendBundle is the API with a WeChat client, the account's shared
// token and a rate limiter, all pointed at a fake WeChat over HTTP.
type testSendBundle struct {
	*testBundle
	fake *wechattest.Server
}

func setupTestSend(t *testing.T) *testSendBundle {
	t.Helper()
	fake := wechattest.Start(t, wechattest.Config{
		Accounts:    []wechattest.Account{{AppID: appID, Secret: wechattest.SecretDefault}},
		TemplateIDs: []string{"TPL1"},
		Terminal:    map[string]int{testerGone: 43004},
	})
	// The token and the rate buckets under a prefix of their own.
	rc := redistest.Client(t, redistest.DBAPI)
	r := rdb.New(rc, redistest.Prefix(t, rc))
	tb := setup(t, func(cfg *api.Config) {
		wc := wechat.New(wechat.WithBaseURLs(fake.URL()))
		t.Cleanup(wc.CloseIdleConnections)
		tokens, err := wechat.NewTokenCache(r, wechat.TokenCacheConfig{
			AppID: appID,
			Fetch: func(ctx context.Context) (wechat.AccessToken, error) {
				return wc.StableToken(ctx, appID, secret.New(wechattest.SecretDefault), false)
			},
		})
		require.NoError(t, err)
		reg, err := account.NewRegistry(&account.Account{AppID: appID, Tokens: tokens, Default: ratelimit.Limit{Rate: 50, Burst: 5}})
		require.NoError(t, err)
		lim, err := ratelimit.New(r, ratelimit.Config{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = lim.Close() })
		policy, err := retry.New(retry.Config{})
		require.NoError(t, err)
		cfg.Accounts, cfg.WeChat, cfg.Limiter, cfg.Policy = reg, wc, lim, policy
		cfg.Media = media.NewStore(r)
		cfg.MediaCache = media.NewCache(cfg.Media, wc, media.CacheConfig{})
	})
	return &testSendBundle{testBundle: tb, fake: fake}
}

// fileCampaign creates the template campaign whose thing1 is
// "{{.name}}的会员日" (extra fields are spliced in) and uploads an audience
// of recipients A, B and C named 张三, 李四 and 王五.
func (b *testSendBundle) fileCampaign(t *testing.T, extra string) string {
	t.Helper()
	body := templateCampaign
	if extra != "" {
		body = strings.Replace(body, `{"name":"会员日",`, `{"name":"会员日",`+extra+`,`, 1)
	}
	a := b.json(t, "POST", "/v1/campaigns", body)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	up := b.do(t, "PUT", "/v1/campaigns/"+id+"/audience", "text/csv",
		"openid,name\n"+recipientA+",张三\n"+recipientB+",李四\n"+recipientC+",王五\n")
	require.Equal(t, http.StatusOK, up.status, up.raw)
	return id
}

// templateBodyHash is the fake's BodyHash of the template send wxmass's
// client makes of m (JSON without HTML escaping and without the final
// newline).
func templateBodyHash(t *testing.T, m *wechat.TemplateMessage) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(m))
	sum := sha256.Sum256(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
	return hex.EncodeToString(sum[:16])
}

// runKeys counts the keys of the campaign's runs (run hashes, outcomes,
// counters, timelines, attempts).
func (b *testSendBundle) runKeys(t *testing.T, id string) int {
	t.Helper()
	keys, err := b.rdb.Client().Keys(t.Context(), b.prefix+":{c:"+id+"}:r:*").Result()
	require.NoError(t, err)
	return len(keys)
}

// TestTestSend: a template campaign's test to two testers, rendered with
// recipient B's variables, reaches exactly those two at the fake with B's
// values, and nobody else; it starts no run and changes no counter; the
// campaign records the test; the audit trail has the "test" event with its
// counts.
func TestTestSend(t *testing.T) {
	t.Parallel()
	b := setupTestSend(t)
	id := b.fileCampaign(t, "")

	a := b.json(t, "POST", "/v1/campaigns/"+id+"/test", `{"to":["`+tester1+`","`+tester2+`"],"as":"`+recipientB+`"}`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, true, a.body["ok"], a.raw)
	require.Equal(t, recipientB, a.body["as"])
	require.Equal(t, []any{
		map[string]any{"to": tester1, "ok": true, "errcode": 0.0, "errmsg": "ok"},
		map[string]any{"to": tester2, "ok": true, "errcode": 0.0, "errmsg": "ok"},
	}, a.body["results"])
	require.NotEmpty(t, a.body["tested_at"])

	ds := b.fake.Deliveries()
	require.Len(t, ds, 2, "exactly the two testers got a message")
	got := []string{ds[0].OpenID, ds[1].OpenID}
	slices.Sort(got)
	require.Equal(t, []string{tester1, tester2}, got)
	for _, d := range ds {
		require.Equal(t, wechat.APITemplateSend, d.API)
		require.Equal(t, "TPL1", d.TemplateID)
		require.True(t, strings.HasPrefix(d.ClientMsgID, "wxtest"), "a client_msg_id of the test's own: %q", d.ClientMsgID)
		// The body WeChat got is the message rendered with B's name.
		want := &wechat.TemplateMessage{ToUser: d.OpenID, TemplateID: "TPL1", ClientMsgID: d.ClientMsgID,
			Data: map[string]wechat.TemplateValue{"thing1": {Value: "李四的会员日"}}}
		require.Equal(t, templateBodyHash(t, want), d.BodyHash, "rendered with recipient B's variables")
	}
	require.NotEqual(t, ds[0].ClientMsgID, ds[1].ClientMsgID)

	// Outside any run: no run, no run keys, still a draft.
	c := b.json(t, "GET", "/v1/campaigns/"+id, "")
	require.Equal(t, http.StatusOK, c.status, c.raw)
	require.Equal(t, "draft", c.body["state"])
	require.Equal(t, 0.0, c.body["latest_run"])
	require.Zero(t, b.runKeys(t, id), "no run, outcome or counter was written")
	require.NotEmpty(t, c.body["tested_at"])
	require.True(t, strings.HasPrefix(c.body["tested_digest"].(string), "sha256:"))

	ev := b.json(t, "GET", "/v1/campaigns/"+id+"/events", "")
	require.Equal(t, http.StatusOK, ev.status, ev.raw)
	last := ev.body["events"].([]any)[0].(map[string]any)
	require.Equal(t, "test", last["action"])
	require.Equal(t, 200.0, last["status"])
	require.Equal(t, 2.0, last["targets"])
	require.Equal(t, 2.0, last["targets_ok"])
	require.NotContains(t, ev.raw, tester1, "the trail never names the targets")

	// Without as: the first recipient with variables, A.
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/test", `{"to":["`+tester1+`"]}`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, recipientA, a.body["as"])
	ds = b.fake.Deliveries()
	require.Len(t, ds, 3)
	want := &wechat.TemplateMessage{ToUser: tester1, TemplateID: "TPL1", ClientMsgID: ds[2].ClientMsgID,
		Data: map[string]wechat.TemplateValue{"thing1": {Value: "张三的会员日"}}}
	require.Equal(t, templateBodyHash(t, want), ds[2].BodyHash)
	for _, d := range ds {
		require.NotContains(t, []string{recipientA, recipientB, recipientC}, d.OpenID, "no audience recipient got anything")
	}
	require.Zero(t, b.runKeys(t, id))
}

// TestTestSendMassPreview: a mass campaign's test is a mass/preview to
// each openid and each WeChat ID, and creates no mass job.
func TestTestSendMassPreview(t *testing.T) {
	t.Parallel()
	b := setupTestSend(t)
	c := &campaigns.Campaign{Name: "群发", Account: appID, Kind: campaigns.KindMass,
		Mass:     &campaigns.MassSpec{MsgType: wechat.MassTypeText, Text: &wechat.Text{Content: "本周新品上架"}},
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceFollowers}}
	// Created through the store: the mass kind's contract is another
	// change's.
	require.NoError(t, b.store.Create(t.Context(), c))

	a := b.json(t, "POST", "/v1/campaigns/"+c.ID+"/test", `{"to":["`+tester1+`"],"wxnames":["ops_reviewer"]}`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, true, a.body["ok"], a.raw)
	require.Equal(t, []any{
		map[string]any{"to": tester1, "ok": true, "errcode": 0.0, "errmsg": "ok"},
		map[string]any{"wxname": "ops_reviewer", "ok": true, "errcode": 0.0, "errmsg": "ok"},
	}, a.body["results"])

	pv := b.fake.MassPreviews()
	require.Len(t, pv, 2)
	require.Equal(t, tester1, pv[0].ToUser)
	require.Equal(t, "ops_reviewer", pv[1].ToWXName)
	for _, p := range pv {
		require.Equal(t, appID, p.AppID)
		require.Equal(t, wechat.MassTypeText, p.MsgType)
	}
	require.Empty(t, b.fake.MassJobs(), "a preview is no mass job")
	require.Empty(t, b.fake.Deliveries())
	require.Zero(t, b.runKeys(t, c.ID))

	// A mass message has no variables: as has nothing to do.
	a = b.json(t, "POST", "/v1/campaigns/"+c.ID+"/test", `{"to":["`+tester1+`"],"as":"`+recipientA+`"}`)
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, "as", a.errField())
	require.Len(t, b.fake.MassPreviews(), 2)
}

// TestTestSendRefusals: bad targets, too many, WeChat IDs on a template
// campaign, an as that is not in the audience, and a campaign whose run is
// sending are refused before any call, naming the field.
func TestTestSendRefusals(t *testing.T) {
	t.Parallel()
	b := setupTestSend(t)
	id := b.fileCampaign(t, "")
	many := make([]string, campaigns.TestTargetsMax+1)
	for i := range many {
		many[i] = `"oTST0000000000000000000` + string(rune('a'+i)) + `"`
	}
	for _, tc := range []struct {
		name, body, field, msg, invalid string
	}{
		{"bad openid", `{"to":["nope"]}`, "to[0]", `is not an openid`, "to[0] is not an openid"},
		{"no target", `{"to":[]}`, "to", "at least one test target", ""},
		{"no body fields", `{}`, "to", "at least one test target", ""},
		{"too many", `{"to":[` + strings.Join(many, ",") + `]}`, "to", "21 test targets, at most 20", "21 targets"},
		{"twice", `{"to":["` + tester1 + `","` + tester1 + `"]}`, "to[1]", "listed twice", ""},
		{"wxnames on a template", `{"to":["` + tester1 + `"],"wxnames":["ops_reviewer"]}`, "wxnames", "mass campaign", ""},
		{"unknown as", `{"to":["` + tester1 + `"],"as":"oAUD000000000000000000000009"}`, "as", "is not in the campaign's audience", ""},
		{"as not an openid", `{"to":["` + tester1 + `"],"as":"someone"}`, "as", "is not an openid", ""},
	} {
		var header []string
		if tc.invalid != "" {
			header = []string{invalid, tc.invalid}
		}
		a := b.json(t, "POST", "/v1/campaigns/"+id+"/test", tc.body, header...)
		require.Equal(t, http.StatusUnprocessableEntity, a.status, "%s: %s", tc.name, a.raw)
		require.Equal(t, api.CodeInvalidField, a.errCode(), tc.name)
		require.Equal(t, tc.field, a.errField(), tc.name)
		require.Contains(t, a.raw, tc.msg, tc.name)
	}
	require.Empty(t, b.fake.Deliveries(), "nothing was sent")

	a := b.json(t, "POST", "/v1/campaigns/c0000000000zz/test", `{"to":["`+tester1+`"]}`)
	require.Equal(t, http.StatusNotFound, a.status, a.raw)

	// A running campaign takes no test.
	in := b.json(t, "POST", "/v1/campaigns", inlineCampaign)
	require.Equal(t, http.StatusCreated, in.status, in.raw)
	inID := in.body["id"].(string)
	require.Equal(t, http.StatusAccepted, b.json(t, "POST", "/v1/campaigns/"+inID+"/start", "").status)
	a = b.json(t, "POST", "/v1/campaigns/"+inID+"/test", `{"to":["`+tester1+`"]}`)
	require.Equal(t, http.StatusConflict, a.status, a.raw)
	require.Equal(t, api.CodeInvalidState, a.errCode())
	require.Empty(t, b.fake.Deliveries())

	ev := b.json(t, "GET", "/v1/campaigns/"+id+"/events?limit=1", "")
	last := ev.body["events"].([]any)[0].(map[string]any)
	require.Equal(t, "test", last["action"])
	require.Equal(t, 422.0, last["status"])
	require.Equal(t, api.CodeInvalidField, last["code"])
	require.NotContains(t, last, "targets", "a refused test sent nothing")
}

// TestRequireTest: a campaign with require_test cannot start or be
// scheduled before a successful test; a partly refused test does not
// count; a name-only update keeps the test, a message update needs a new
// one.
func TestRequireTest(t *testing.T) {
	t.Parallel()
	b := setupTestSend(t)
	at := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	def := func(name, value string) string {
		return `{"name":"` + name + `","account":"` + appID + `","kind":"template","require_test":true,
 "template":{"template_id":"TPL1","data":{"thing1":"` + value + `"}},
 "audience":{"source":"inline","openids":["oTX0000000000000000000000001","oTX0000000000000000000000002"]},
 "schedule":{"at":"` + at + `"}}`
	}
	a := b.json(t, "POST", "/v1/campaigns", def("会员日", "会员日"))
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	require.Equal(t, true, a.body["require_test"])
	id := a.body["id"].(string)

	refused := func(what, path string) {
		t.Helper()
		a := b.json(t, "POST", "/v1/campaigns/"+id+path, "")
		require.Equal(t, http.StatusConflict, a.status, "%s: %s", what, a.raw)
		require.Equal(t, api.CodeTestRequired, a.errCode(), what)
		require.Equal(t, "require_test", a.errField(), what)
		require.Contains(t, a.raw, "send a test first: POST /v1/campaigns/{id}/test", what)
	}
	refused("start before any test", "/start")
	refused("schedule before any test", "/schedule")

	// A test one of whose targets WeChat refuses is no successful test.
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/test", `{"to":["`+tester1+`","`+testerGone+`"]}`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, false, a.body["ok"])
	require.Nil(t, a.body["tested_at"])
	res := a.body["results"].([]any)[1].(map[string]any)
	require.Equal(t, false, res["ok"])
	require.Equal(t, 43004.0, res["errcode"])
	require.Equal(t, "user unfollowed", res["meaning"])
	refused("start after a refused test", "/start")

	a = b.json(t, "POST", "/v1/campaigns/"+id+"/test", `{"to":["`+tester1+`"]}`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, true, a.body["ok"], a.raw)

	// A new name keeps the test: schedule, then unschedule, works.
	u := b.json(t, "PUT", "/v1/campaigns/"+id, def("会员日（改名）", "会员日"))
	require.Equal(t, http.StatusOK, u.status, u.raw)
	require.NotEmpty(t, u.body["tested_at"], "the test stays recorded")
	require.Equal(t, http.StatusOK, b.json(t, "POST", "/v1/campaigns/"+id+"/schedule", "").status)
	require.Equal(t, http.StatusOK, b.json(t, "POST", "/v1/campaigns/"+id+"/unschedule", "").status)

	// A new message needs a new test.
	u = b.json(t, "PUT", "/v1/campaigns/"+id, def("会员日（改名）", "会员日快乐"))
	require.Equal(t, http.StatusOK, u.status, u.raw)
	refused("schedule after a message update", "/schedule")
	refused("start after a message update", "/start")

	a = b.json(t, "POST", "/v1/campaigns/"+id+"/test", `{"to":["`+tester2+`"]}`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, true, a.body["ok"], a.raw)
	s := b.json(t, "POST", "/v1/campaigns/"+id+"/start", "")
	require.Equal(t, http.StatusAccepted, s.status, s.raw)

	// The fields wxmass sets are refused in a request.
	bad := strings.Replace(def("x", "y"), `"require_test":true,`, `"require_test":true,"tested_digest":"sha256:00",`, 1)
	a = b.json(t, "POST", "/v1/campaigns", bad, invalid, "tested_digest is read-only")
	require.Equal(t, http.StatusBadRequest, a.status, a.raw)
	require.Equal(t, "tested_digest", a.errField())

	// A transactional send cannot wait for a test.
	tx := `{"name":"tx","account":"` + appID + `","kind":"template","require_test":true,
 "template":{"template_id":"TPL1","data":{"thing1":"x"}},"audience":{"source":"inline","openids":["oTX0000000000000000000000001"]}}`
	a = b.json(t, "POST", "/v1/messages", tx)
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, "require_test", a.errField())
}

// TestTestSendMediaFile: a test of a customer-service image given as a
// stored file uploads it once for the account, and the tester's message at
// the fake carries that media_id; a second test reuses it.
func TestTestSendMediaFile(t *testing.T) {
	t.Parallel()
	b := setupTestSend(t)
	ct, body := multipartFile(t, "poster.png", "image", []byte("\x89PNG\r\n\x1a\nposter"))
	up := b.do(t, "POST", "/v1/media", ct, body)
	require.Equal(t, http.StatusCreated, up.status, up.raw)
	file := up.body["id"].(string)
	a := b.json(t, "POST", "/v1/campaigns", `{"name":"海报","account":"`+appID+`","kind":"custom","custom":{"msgtype":"image","image":{"file":"`+file+`"}},
		"audience":{"source":"inline","openids":["`+recipientA+`"]}}`)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	for range 2 {
		res := b.json(t, "POST", "/v1/campaigns/"+id+"/test", `{"to":["`+tester1+`"]}`)
		require.Equal(t, http.StatusOK, res.status, res.raw)
		require.Equal(t, true, res.body["ok"], res.raw)
	}
	require.EqualValues(t, 1, b.fake.MassCalls()[wechat.APIMediaUpload], "one upload for the account")
	ds := b.fake.Deliveries()
	require.Len(t, ds, 2)
	for _, d := range ds {
		require.Equal(t, tester1, d.OpenID)
		require.NotEmpty(t, d.MediaID)
		require.Equal(t, ds[0].MediaID, d.MediaID, "the same uploaded media_id")
	}
}
