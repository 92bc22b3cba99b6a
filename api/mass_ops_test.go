package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// ghostAppID is an account wxmass has and the fake WeChat does not know:
// its token fetch is answered 40013.
const ghostAppID = "wx0000000000000ghost"

// massOpsBundle is the API with a WeChat client, the accounts' shared
// tokens and a rate limiter, pointed at a fake WeChat on a manual clock.
type massOpsBundle struct {
	*testBundle
	fake   *wechattest.Server
	clock  *wechattest.ManualClock
	wc     *wechat.Client
	tokens *wechat.TokenCache
}

// setupMassOps is the bundle, with mutate applied to its API's Config
// after the bundle's own settings.
func setupMassOps(t *testing.T, mass wechattest.MassConfig, mutate ...func(*api.Config)) *massOpsBundle {
	t.Helper()
	clock := wechattest.NewManualClock(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	fake := wechattest.Start(t, wechattest.Config{
		Accounts: []wechattest.Account{{AppID: appID, Secret: wechattest.SecretDefault}},
		Mass:     mass,
		NowFunc:  clock.Now,
	})
	rc := redistest.Client(t, redistest.DBAPI)
	r := rdb.New(rc, redistest.Prefix(t, rc))
	wc := wechat.New(wechat.WithBaseURLs(fake.URL()))
	t.Cleanup(wc.CloseIdleConnections)
	cache := func(app string) *wechat.TokenCache {
		tokens, err := wechat.NewTokenCache(r, wechat.TokenCacheConfig{
			AppID: app,
			Fetch: func(ctx context.Context) (wechat.AccessToken, error) {
				return wc.StableToken(ctx, app, secret.New(wechattest.SecretDefault), false)
			},
		})
		require.NoError(t, err)
		return tokens
	}
	tokens := cache(appID)
	// The mass bucket faster than WeChat's 60 a minute, so that the test
	// does not wait a second per call.
	limits := map[string]ratelimit.Limit{account.APIMass: {Rate: 100, Burst: 10}}
	tb := setup(t, append([]func(*api.Config){func(cfg *api.Config) {
		reg, err := account.NewRegistry(
			&account.Account{AppID: appID, Tokens: tokens, Default: ratelimit.Limit{Rate: 50, Burst: 5}, Limits: limits},
			&account.Account{AppID: ghostAppID, Tokens: cache(ghostAppID), Default: ratelimit.Limit{Rate: 50, Burst: 5}, Limits: limits})
		require.NoError(t, err)
		lim, err := ratelimit.New(r, ratelimit.Config{})
		require.NoError(t, err)
		t.Cleanup(func() { _ = lim.Close() })
		policy, err := retry.New(retry.Config{})
		require.NoError(t, err)
		cfg.Accounts, cfg.WeChat, cfg.Limiter, cfg.Policy = reg, wc, lim, policy
	}}, mutate...)...)
	return &massOpsBundle{testBundle: tb, fake: fake, clock: clock, wc: wc, tokens: tokens}
}

// sendBatch sends a batch of run 1 of c to the fake, as the worker does,
// and records WeChat's job as accepted; it returns the job's msg_id.
func (b *massOpsBundle) sendBatch(t *testing.T, c *campaigns.Campaign, key string) int64 {
	t.Helper()
	ctx := t.Context()
	batch, err := campaigns.ParseMassBatch(key)
	require.NoError(t, err)
	openids, err := b.store.MassRecipients(ctx, c.ID, batch)
	require.NoError(t, err)
	msg, err := c.Compile()
	require.NoError(t, err)
	cmid := campaigns.MassClientMsgID(c.ID, 1, key)
	m, err := msg.RenderMass(cmid)
	require.NoError(t, err)
	res, err := b.wc.MassSend(ctx, b.tokens, openids, m)
	require.NoError(t, err)
	fresh, _, err := b.store.AcceptMass(ctx, c, 1, key, appID, campaigns.MassSubmission{
		ClientMsgID: cmid, MsgID: res.MsgID, Recipients: int64(len(openids)), Submitted: time.Now()})
	require.NoError(t, err)
	require.True(t, fresh)
	return res.MsgID
}

// massBatchViews returns the batches of the run's mass view, by key.
func (b *massOpsBundle) massBatchViews(t *testing.T, id string) map[string]map[string]any {
	t.Helper()
	st := b.json(t, "GET", "/v1/campaigns/"+id+"/runs/1", "")
	require.Equal(t, http.StatusOK, st.status, st.raw)
	out := map[string]map[string]any{}
	for _, x := range st.body["mass"].(map[string]any)["batches"].([]any) {
		bv := x.(map[string]any)
		out[bv["batch"].(string)] = bv
	}
	return out
}

// fakeJobStatus returns the fake's status of each job, by msg_id.
func (b *massOpsBundle) fakeJobStatus() map[int64]string {
	out := map[int64]string{}
	for _, j := range b.fake.MassJobs() {
		out[j.MsgID] = j.Status
	}
	return out
}

// TestMassDelete: a mass run to 10,002 openids (two batches) whose jobs
// the fake accepted. Refused before any call: an unknown batch, a batch
// WeChat has not accepted (422 naming batches[i]), an article_idx over 8,
// a campaign that is not a mass one (409 invalid_state, field kind), an
// unknown run or campaign (404). A job still sending is answered 40059:
// ok false, nothing recorded. Once sent, deleting one article of batch 0
// and then the whole message of every batch turns both of the fake's jobs
// DELETE; the run's mass view shows deleted_at (and the article until the
// whole message is deleted), the batch's state and the run's counters stay
// as they were (it was sent), and the audit trail has mass_delete with
// its counts.
func TestMassDelete(t *testing.T) {
	t.Parallel()
	b := setupMassOps(t, wechattest.MassConfig{})
	ctx := t.Context()
	a := b.json(t, "POST", "/v1/campaigns", `{"name":"群发","account":"`+appID+`","kind":"mass",
		"mass":{"msgtype":"text","text":{"content":"本月精选"}},"audience":{"source":"file"}}`)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	var csv strings.Builder
	csv.WriteString("openid\n")
	for i := range 10002 {
		fmt.Fprintf(&csv, "oMAS%024d\n", i)
	}
	up := b.do(t, "PUT", "/v1/campaigns/"+id+"/audience", "text/csv", csv.String())
	require.Equal(t, http.StatusOK, up.status, up.raw)
	require.Equal(t, http.StatusAccepted, b.json(t, "POST", "/v1/campaigns/"+id+"/start", "").status)
	c, err := b.store.Get(ctx, id)
	require.NoError(t, err)
	_, keys, _, err := b.store.LaunchMass(ctx, c, 1)
	require.NoError(t, err)
	require.Equal(t, []string{"b0:0-5001", "b1:5001-10002"}, keys)
	msg0 := b.sendBatch(t, c, keys[0])
	// Batch 0 is sent: its outcome is in the ledger.
	_, _, err = b.store.FinishMass(ctx, c, 1, keys[0], campaigns.MassPushResult(campaigns.MassSent, "send success", 0, "", 5001, 5001, 5001, 0, time.Now()))
	require.NoError(t, err)
	path := "/v1/campaigns/" + id + "/runs/1/mass-delete"

	deletes := func() int64 { return b.fake.MassCalls()["message/mass/delete"] }
	for _, tc := range []struct {
		name, body, field, msg string
	}{
		{"unknown batch", `{"batches":["b7:0-2"]}`, "batches[0]", "run 1 has no accepted batch"},
		{"not accepted", `{"batches":["` + keys[0] + `","` + keys[1] + `"]}`, "batches[1]", "has no job WeChat accepted"},
		{"twice", `{"batches":["` + keys[0] + `","` + keys[0] + `"]}`, "batches[1]", "listed twice"},
	} {
		a := b.json(t, "POST", path, tc.body)
		require.Equal(t, http.StatusUnprocessableEntity, a.status, "%s: %s", tc.name, a.raw)
		require.Equal(t, api.CodeInvalidField, a.errCode(), tc.name)
		require.Equal(t, tc.field, a.errField(), tc.name)
		require.Contains(t, a.raw, tc.msg, tc.name)
	}
	a = b.json(t, "POST", path, `{"article_idx":9}`, invalid, "article_idx over 8")
	require.Equal(t, http.StatusUnprocessableEntity, a.status, a.raw)
	require.Equal(t, "article_idx", a.errField())

	tpl := b.json(t, "POST", "/v1/campaigns", templateCampaign)
	require.Equal(t, http.StatusCreated, tpl.status, tpl.raw)
	a = b.json(t, "POST", "/v1/campaigns/"+tpl.body["id"].(string)+"/runs/1/mass-delete", "")
	require.Equal(t, http.StatusConflict, a.status, a.raw)
	require.Equal(t, api.CodeInvalidState, a.errCode())
	require.Equal(t, "kind", a.errField())
	a = b.json(t, "POST", "/v1/campaigns/"+id+"/runs/2/mass-delete", "")
	require.Equal(t, http.StatusNotFound, a.status, a.raw)
	require.Equal(t, "run", a.errField())
	a = b.json(t, "POST", "/v1/campaigns/c0000000000zz/runs/1/mass-delete", "")
	require.Equal(t, http.StatusNotFound, a.status, a.raw)
	require.Zero(t, deletes(), "refused requests call nothing")

	msg1 := b.sendBatch(t, c, keys[1])

	// The jobs are still sending (the fake's clock has not moved): WeChat
	// deletes only a sent job.
	a = b.json(t, "POST", path, `{"batches":["`+keys[0]+`"]}`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, false, a.body["ok"])
	res := a.body["results"].([]any)[0].(map[string]any)
	require.Equal(t, keys[0], res["batch"])
	require.EqualValues(t, msg0, res["msg_id"])
	require.Equal(t, false, res["ok"])
	require.EqualValues(t, 40059, res["errcode"])
	require.Equal(t, "invalid msg id", res["meaning"])
	require.NotContains(t, b.massBatchViews(t, id)[keys[0]], "deleted_at", "only a deletion WeChat accepted is recorded")

	before := b.json(t, "GET", "/v1/campaigns/"+id+"/runs/1", "").body["counters"]
	b.clock.Advance(2 * time.Minute)
	require.Equal(t, map[int64]string{msg0: wechattest.MassSuccess, msg1: wechattest.MassSuccess}, b.fakeJobStatus())

	a = b.json(t, "POST", path, `{"batches":["`+keys[0]+`"],"article_idx":2}`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, true, a.body["ok"], a.raw)
	require.EqualValues(t, 2, a.body["article_idx"])
	require.Equal(t, map[int64]string{msg0: wechattest.MassDeleted, msg1: wechattest.MassSuccess}, b.fakeJobStatus())
	views := b.massBatchViews(t, id)
	require.NotEmpty(t, views[keys[0]]["deleted_at"])
	require.EqualValues(t, 2, views[keys[0]]["deleted_article_idx"])
	require.NotContains(t, views[keys[1]], "deleted_at")

	// No batches: every accepted batch, the whole message.
	a = b.json(t, "POST", path, "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, true, a.body["ok"], a.raw)
	require.Equal(t, []any{
		map[string]any{"batch": keys[0], "msg_id": float64(msg0), "ok": true, "errcode": 0.0, "errmsg": "ok"},
		map[string]any{"batch": keys[1], "msg_id": float64(msg1), "ok": true, "errcode": 0.0, "errmsg": "ok"},
	}, a.body["results"])
	require.Equal(t, map[int64]string{msg0: wechattest.MassDeleted, msg1: wechattest.MassDeleted}, b.fakeJobStatus())
	views = b.massBatchViews(t, id)
	for _, k := range keys {
		require.NotEmpty(t, views[k]["deleted_at"], k)
		require.NotContains(t, views[k], "deleted_article_idx", "%s: the whole message is deleted", k)
	}
	require.Equal(t, "sent", views[keys[0]]["state"], "a deleted batch was sent")
	require.Equal(t, "sending", views[keys[1]]["state"])

	// A later deletion of one article leaves the whole message's deletion.
	a = b.json(t, "POST", path, `{"batches":["`+keys[1]+`"],"article_idx":1}`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.NotContains(t, b.massBatchViews(t, id)[keys[1]], "deleted_article_idx")

	st := b.json(t, "GET", "/v1/campaigns/"+id+"/runs/1", "")
	require.Equal(t, before, st.body["counters"], "a deletion changes no outcome")
	require.EqualValues(t, 1, st.body["counters"].(map[string]any)["sent"])

	ev := b.json(t, "GET", "/v1/campaigns/"+id+"/events?limit=3", "")
	events := ev.body["events"].([]any)
	last := events[0].(map[string]any)
	require.Equal(t, "mass_delete", last["action"])
	require.EqualValues(t, 1, last["run"])
	require.EqualValues(t, 200, last["status"])
	require.EqualValues(t, 1, last["targets"])
	require.EqualValues(t, 1, last["targets_ok"])
	all := events[1].(map[string]any)
	require.EqualValues(t, 2, all["targets"])
	require.EqualValues(t, 2, all["targets_ok"])
}

// TestMassSpeed: GET reads the account's speed (0, realspeed 80 at
// first), PUT sets it (3, then GET says 3 and 30); a speed outside 0-4 or
// none is refused 422 naming speed before any call; an unknown account is
// 404; while a protected send to all waits for its admin, WeChat's 89504
// is answered 409 awaiting_confirmation with the errcode and the speed
// stays, and once the admin confirmed it the speed is set; an errcode of
// another kind (the token of an appid WeChat does not know) is 502
// wechat_error with the errcode and its meaning.
func TestMassSpeed(t *testing.T) {
	t.Parallel()
	b := setupMassOps(t, wechattest.MassConfig{Protected: []string{appID}})
	ctx := t.Context()
	path := "/v1/accounts/" + appID + "/mass-speed"

	a := b.json(t, "GET", path, "")
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, map[string]any{"account": appID, "speed": 0.0, "realspeed": 80.0}, a.body)

	a = b.json(t, "PUT", path, `{"speed":3}`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, map[string]any{"account": appID, "speed": 3.0}, a.body)
	a = b.json(t, "GET", path, "")
	require.Equal(t, map[string]any{"account": appID, "speed": 3.0, "realspeed": 30.0}, a.body)

	sets := func() int64 { return b.fake.MassCalls()["message/mass/speed/set"] }
	require.EqualValues(t, 1, sets())
	for _, tc := range []struct{ name, body, msg string }{
		{"too slow", `{"speed":9}`, "speed 9: want 0"},
		{"negative", `{"speed":-1}`, "speed -1: want 0"},
		{"none", `{}`, "speed is required"},
	} {
		a := b.json(t, "PUT", path, tc.body, invalid, tc.name)
		require.Equal(t, http.StatusUnprocessableEntity, a.status, "%s: %s", tc.name, a.raw)
		require.Equal(t, api.CodeInvalidField, a.errCode(), tc.name)
		require.Equal(t, "speed", a.errField(), tc.name)
		require.Contains(t, a.raw, tc.msg, tc.name)
	}
	require.EqualValues(t, 1, sets(), "a refused speed calls nothing")

	a = b.json(t, "GET", "/v1/accounts/nope/mass-speed", "")
	require.Equal(t, http.StatusNotFound, a.status, a.raw)
	require.Equal(t, "account", a.errField())

	// A protected send to all waits for the admin: WeChat refuses speed
	// changes meanwhile.
	job, err := b.wc.MassSendAll(ctx, b.tokens, wechat.MassFilter{IsToAll: true},
		&wechat.MassMessage{MsgType: wechat.MassTypeText, Text: &wechat.Text{Content: "全体通知"}, ClientMsgID: "massops-all-1"})
	require.NoError(t, err)
	a = b.json(t, "PUT", path, `{"speed":1}`)
	require.Equal(t, http.StatusConflict, a.status, a.raw)
	require.Equal(t, api.CodeAwaitingConfirmation, a.errCode())
	require.EqualValues(t, 89504, a.body["error"].(map[string]any)["errcode"])
	require.Contains(t, a.raw, "waits for the admin's confirmation")
	require.Equal(t, 3.0, b.json(t, "GET", path, "").body["speed"])

	require.NoError(t, b.fake.ConfirmMass(job.MsgID, true))
	a = b.json(t, "PUT", path, `{"speed":1}`)
	require.Equal(t, http.StatusOK, a.status, a.raw)
	require.Equal(t, 1.0, b.json(t, "GET", path, "").body["speed"])

	a = b.json(t, "GET", "/v1/accounts/"+ghostAppID+"/mass-speed", "")
	require.Equal(t, http.StatusBadGateway, a.status, a.raw)
	require.Equal(t, api.CodeWeChat, a.errCode())
	e := a.body["error"].(map[string]any)
	require.EqualValues(t, 40013, e["errcode"], a.raw)
	require.Equal(t, "invalid appid", e["meaning"])
	require.NotContains(t, a.raw, wechattest.SecretDefault)
}
