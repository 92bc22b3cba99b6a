package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
)

// awaitingMassRun creates and starts a mass campaign to all followers, and
// records its one batch as WeChat's job msgID awaiting the admin's
// confirmation (as the worker would), submitted now. It returns the
// campaign's id and now.
func (b *testBundle) awaitingMassRun(t *testing.T, msgID int64) (string, time.Time) {
	t.Helper()
	ctx := t.Context()
	a := b.json(t, "POST", "/v1/campaigns", `{"name":"群发","account":"`+appID+`","kind":"mass","mass":{"msgtype":"text","text":{"content":"本月精选"}},
		"audience":{"source":"followers"}}`)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	require.Equal(t, http.StatusAccepted, b.json(t, "POST", "/v1/campaigns/"+id+"/start", "").status)
	c, err := b.store.Get(ctx, id)
	require.NoError(t, err)
	_, _, _, err = b.store.LaunchMass(ctx, c, 1)
	require.NoError(t, err)
	now := time.Now()
	fresh, _, err := b.store.AcceptMass(ctx, c, 1, campaigns.MassBatchAll, appID, campaigns.MassSubmission{
		ClientMsgID: campaigns.MassClientMsgID(id, 1, campaigns.MassBatchAll), MsgID: msgID, Submitted: now, ConfirmBy: now.Add(campaigns.MassConfirmWindow)})
	require.NoError(t, err)
	require.True(t, fresh)
	return id, now
}

// TestMassRunStatus: a mass run's status and report show its batches: a
// protected send to all is awaiting_confirmation with its deadline until
// its result comes; then the batch shows WeChat's counts and the totals
// say how many were filtered, with the note that a mass send has no
// per-recipient outcome.
func TestMassRunStatus(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	id, now := b.awaitingMassRun(t, 1000000042)

	st := b.json(t, "GET", "/v1/campaigns/"+id+"/runs/1", "")
	require.Equal(t, http.StatusOK, st.status, st.raw)
	mass := st.body["mass"].(map[string]any)
	batch := mass["batches"].([]any)[0].(map[string]any)
	require.Equal(t, "awaiting_confirmation", batch["state"])
	require.NotEmpty(t, batch["confirm_by"])
	require.EqualValues(t, 1000000042, batch["msg_id"])
	require.Equal(t, "running", st.body["state"])

	res := campaigns.MassPushResult(campaigns.MassSent, "send success", 0, "", 10, 8, 7, 1, now)
	_, _, _, err := b.store.FinishMassPush(ctx, appID, 1000000042, res)
	require.NoError(t, err)
	rep := b.json(t, "GET", "/v1/campaigns/"+id+"/runs/1/report", "")
	require.Equal(t, http.StatusOK, rep.status, rep.raw)
	require.Equal(t, "completed", rep.body["state"])
	mass = rep.body["mass"].(map[string]any)
	require.Contains(t, mass["note"], "no per-recipient outcome")
	totals := mass["totals"].(map[string]any)
	require.EqualValues(t, 2, totals["filtered"])
	require.EqualValues(t, 7, totals["sent_count"])
	batch = mass["batches"].([]any)[0].(map[string]any)
	require.Equal(t, "sent", batch["state"])
	require.Equal(t, "push", batch["result"].(map[string]any)["via"])
}

// TestMassReportPage: the report page of a mass run shows its batches, a
// batch awaiting its admin's confirmation with the deadline, and WeChat's
// counts once the result came.
func TestMassReportPage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	id, now := b.awaitingMassRun(t, 1000000077)
	page := b.raw(t, "/v1/campaigns/"+id+"/runs/1/report.html")
	require.Equal(t, http.StatusOK, page.status, page.body)
	require.Contains(t, page.body, "Mass batches")
	require.Contains(t, page.body, "no per-recipient outcome")
	require.Contains(t, page.body, `data-state="awaiting_confirmation">awaiting an admin's confirmation until `)

	_, _, _, err := b.store.FinishMassPush(ctx, appID, 1000000077, campaigns.MassPushResult(campaigns.MassReviewFailed, "err(20001)", 20001, "suspected politics", 10, 10, 0, 0, now))
	require.NoError(t, err)
	page = b.raw(t, "/v1/campaigns/"+id+"/runs/1/report.html")
	require.Contains(t, page.body, `data-state="review_failed">review_failed`)
	require.Contains(t, page.body, "err(20001): suspected politics")
}

// TestMassStartWarnings: starting a mass campaign to a list warns of the
// recipients wxmass counted at their month's 4 mass messages already
// (WeChat filters them), and a subscription account may not send a mass
// message to a list at all.
func TestMassStartWarnings(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	ids := []string{"oTX0000000000000000000000001", "oTX0000000000000000000000002", "oTX0000000000000000000000003"}
	for range campaigns.MassMonthlyCap {
		require.NoError(t, b.store.CountMassReceived(ctx, appID, false, ids[:1], time.Now()))
	}
	a := b.json(t, "POST", "/v1/campaigns", `{"name":"群发","account":"`+appID+`","kind":"mass","mass":{"msgtype":"text","text":{"content":"本月精选"}},
		"audience":{"source":"inline","openids":["`+strings.Join(ids, `","`)+`"]}}`)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	st := b.json(t, "POST", "/v1/campaigns/"+id+"/start", "")
	require.Equal(t, http.StatusAccepted, st.status, st.raw)
	require.Equal(t, []any{"1 of 3 recipients got 4 mass message(s) this calendar month (Asia/Shanghai) already, by wxmass's count: WeChat will filter them"}, st.body["warnings"])

	sub := setup(t, func(cfg *api.Config) {
		reg, err := account.NewRegistry(&account.Account{AppID: appID, Default: ratelimit.Limit{Rate: 10, Burst: 1},
			Mass: account.MassSpec{Type: account.TypeSubscription}})
		require.NoError(t, err)
		client, err := producer.NewClient(b.rdb.Client())
		require.NoError(t, err)
		t.Cleanup(func() { _ = client.Close() })
		cfg.Producer = producer.New(client.Client, cfg.Store, reg, nil, producer.Config{})
	})
	a = sub.json(t, "POST", "/v1/campaigns", `{"name":"群发","account":"`+appID+`","kind":"mass","mass":{"msgtype":"text","text":{"content":"本月精选"}},
		"audience":{"source":"inline","openids":["`+strings.Join(ids, `","`)+`"]}}`)
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	st = sub.json(t, "POST", "/v1/campaigns/"+a.body["id"].(string)+"/start", "")
	require.Equal(t, http.StatusUnprocessableEntity, st.status, st.raw)
	require.Equal(t, "audience", st.errField())
	require.Contains(t, st.raw, "subscription account cannot send a mass message to a list")
}
