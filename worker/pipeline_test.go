package worker_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

func TestCampaignWithFaults(t *testing.T) {
	const n = 20000
	ids := openIDs(n)
	terminal := map[string]int{}
	codes := []int{43004, 43101, 40003, 48002}
	for i := 7; i < n; i += 97 {
		terminal[ids[i]] = codes[i%len(codes)]
	}
	b := setup(t, wechattest.Config{
		Seed:     42,
		Terminal: terminal,
		Faults:   wechattest.Faults{SystemError: 0.03, HTTP5xx: 0.02, DropAfterRecord: 0.02, InvalidateTokens: 0.0005},
	})
	procs := []*proc{b.process(t, procConfig{}), b.process(t, procConfig{}), b.process(t, procConfig{})}
	c := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, ids)
	run, err := procs[0].producer.Start(t.Context(), c.ID)
	require.NoError(t, err)

	rec := b.waitSettled(t, c.ID, run, 3*time.Minute)
	b.truth(t, c, nil, run)
	require.Equal(t, string(campaigns.StateCompleted), rec.State)
	require.EqualValues(t, n, rec.Settled())
	require.EqualValues(t, n-len(terminal), rec.Counters["sent"])
	require.EqualValues(t, len(terminal), rec.Counters["failed"]+rec.Counters["unknown"])

	outs := b.outcomes(t, c.ID, run)
	require.Len(t, outs, n)
	for _, id := range ids {
		o := outs[id]
		if code, ok := terminal[id]; ok {
			if o.Status == rdb.OutcomeUnknown {
				// A first answer was lost (a dropped connection), then
				// WeChat answered the errcode: it may have delivered the
				// first, so it is not called failed (which a retry run
				// would send again).
				require.Contains(t, o.Detail, fmt.Sprintf("failed %d", code), id)
				continue
			}
			require.Equal(t, rdb.OutcomeFailed, o.Status, id)
			require.Equal(t, code, o.Code, id)
			require.Equal(t, "recipient", o.Class, id)
			continue
		}
		require.Equal(t, rdb.OutcomeSent, o.Status, "%s: %+v", id, o)
		require.NotZero(t, o.MsgID)
	}
	// What WeChat received: every sent recipient exactly once, with the
	// msgid recorded for it, and nobody twice.
	st := b.fake.Stats()
	require.EqualValues(t, 0, st.DuplicatesDelivered)
	deliveries := b.fake.Deliveries()
	require.Len(t, deliveries, n-len(terminal))
	for _, d := range deliveries {
		require.Equal(t, outs[d.OpenID].MsgID, d.MsgID, d.OpenID)
	}
	api := st.APIs[wechat.APITemplateSend]
	require.Positive(t, api.Faults.HTTP5xx+api.Faults.SystemError+api.Faults.DropAfterRecord, "faults were injected")
	require.Positive(t, api.Faults.InvalidateTokens)
	c2, err := b.store.Get(t.Context(), c.ID)
	require.NoError(t, err)
	require.Equal(t, campaigns.StateCompleted, c2.State)
}

// TestCustomCampaignNeverSendsTwice: a customer-service send has no dedupe
// key, so one whose answer was lost (a connection dropped after WeChat
// took the message) is never sent again: it ends unknown, and nobody gets
// the message twice; one answered -1 (nothing delivered) is retried.
func TestCustomCampaignNeverSendsTwice(t *testing.T) {
	const n = 2000
	ids := openIDs(n)
	b := setup(t, wechattest.Config{Seed: 3, Faults: wechattest.Faults{DropAfterRecord: 0.05, SystemError: 0.05}})
	p := b.process(t, procConfig{})
	c := b.fileCampaign(t, campaigns.KindCustom, "", ids)
	run, err := p.producer.Start(t.Context(), c.ID)
	require.NoError(t, err)
	rec := b.waitSettled(t, c.ID, run, time.Minute)
	rep := b.truth(t, c, nil, run)
	require.EqualValues(t, n, rec.Settled())

	unknown := rec.Counters["unknown"]
	require.Positive(t, unknown)
	require.EqualValues(t, n, rec.Counters["sent"]+unknown, "%v", rec.Counters)
	require.Zero(t, rec.Counters["failed"], "a -1 is retried, not failed")
	require.EqualValues(t, 0, b.fake.Stats().DuplicatesDelivered, "a custom send is never repeated after its answer was lost")
	// A dropped connection follows a delivery or, after a -1, none: the
	// client cannot tell which, so both are unknown.
	require.EqualValues(t, b.fake.Stats().APIs[wechat.APICustomSend].Dropped, unknown)
	require.Positive(t, rep.UnknownDelivered)
}

func TestPauseResumeCancel(t *testing.T) {
	const n = 4000
	ids := openIDs(n)
	b := setup(t, wechattest.Config{})
	p := b.process(t, procConfig{rate: 400, concurrency: 20})
	c := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, ids)
	run, err := p.producer.Start(t.Context(), c.ID)
	require.NoError(t, err)

	settled := func() int64 {
		rec, err := b.rdb.GetRun(t.Context(), c.ID, run)
		require.NoError(t, err)
		return rec.Settled()
	}
	require.Eventually(t, func() bool { return settled() >= 500 }, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, b.store.Pause(t.Context(), c.ID))
	// Sends already past their state check may still land; after that,
	// nothing reaches WeChat while the campaign is paused.
	var calls int64
	require.Eventually(t, func() bool {
		api := b.fake.Stats().APIs[wechat.APITemplateSend]
		calls = api.Calls
		return settled() == api.Accepted
	}, 10*time.Second, 100*time.Millisecond)
	require.Never(t, func() bool { return b.fake.Stats().APIs[wechat.APITemplateSend].Calls > calls+20 }, 1500*time.Millisecond, 100*time.Millisecond)
	pausedAt := settled()
	require.Less(t, pausedAt, int64(n))

	require.NoError(t, b.store.Resume(t.Context(), c.ID))
	require.Eventually(t, func() bool { return settled() >= pausedAt+500 }, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, p.producer.Cancel(t.Context(), c.ID))

	rec := b.waitSettled(t, c.ID, run, time.Minute)
	b.truth(t, c, nil, run)
	require.Equal(t, string(campaigns.StateCancelled), rec.State)
	require.EqualValues(t, n, rec.Settled())
	require.Positive(t, rec.Counters["cancelled"])
	require.EqualValues(t, n, rec.Counters["sent"]+rec.Counters["cancelled"])
	require.Zero(t, rec.Counters["failed"])
	st := b.fake.Stats()
	require.EqualValues(t, rec.Counters["sent"], st.APIs[wechat.APITemplateSend].Accepted)
	require.EqualValues(t, 0, st.DuplicatesDelivered)

	// The recipients the cancel left out are sent by a retry run of the
	// cancelled campaign: every recipient then has the message once.
	res, err := p.producer.RetryFailed(t.Context(), c.ID, run, campaigns.RetryFilter{Statuses: []string{campaigns.OutcomeCancelled}})
	require.NoError(t, err)
	require.EqualValues(t, rec.Counters["cancelled"], res.Size)
	rec2 := b.waitSettled(t, c.ID, res.Run, time.Minute)
	b.truth(t, c, nil, run, res.Run)
	require.Equal(t, string(campaigns.StateCompleted), rec2.State)
	require.EqualValues(t, res.Size, rec2.Counters["sent"])
	st = b.fake.Stats()
	require.EqualValues(t, n, st.APIs[wechat.APITemplateSend].Accepted)
	require.EqualValues(t, 0, st.DuplicatesDelivered)
}

// TestFatalErrcodeStopsRun: a campaign-fatal errcode (40037, the template
// deleted) stops the run after no more calls than were in flight; every
// send that met the errcode, however many at once and in however many
// processes, ends failed with it, and every other recipient is skipped.
func TestFatalErrcodeStopsRun(t *testing.T) {
	const n = 3000
	// WeChat answers in 100 ms: the sends in flight when the first 40037
	// comes back meet it too.
	b := setup(t, wechattest.Config{Faults: wechattest.Faults{Latency: 100 * time.Millisecond}})
	const concurrency = 10
	procs := []*proc{b.process(t, procConfig{rate: 300, concurrency: concurrency}), b.process(t, procConfig{rate: 300, concurrency: concurrency})}
	// A template deleted from the account: WeChat answers 40037.
	c := b.fileCampaign(t, campaigns.KindTemplate, "TPL_DELETED_BY_ADMIN", openIDs(n))
	run, err := procs[0].producer.Start(t.Context(), c.ID)
	require.NoError(t, err)

	rec := b.waitSettled(t, c.ID, run, time.Minute)
	b.truth(t, c, nil, run)
	require.Equal(t, string(campaigns.StateFailed), rec.State)
	require.Contains(t, rec.Reason, "40037")
	require.EqualValues(t, n, rec.Settled())
	calls := b.fake.Stats().APIs[wechat.APITemplateSend].Errors[40037]
	require.LessOrEqual(t, calls, int64(2*concurrency), "no calls beyond those already in flight")

	// Each recipient whose call was answered 40037 (several at once, in
	// both processes) is failed with it; the others are skipped.
	outs := b.outcomes(t, c.ID, run)
	met := map[string]bool{}
	for _, call := range b.fake.Calls() {
		if call.Errcode == 40037 && call.Answer == wechattest.AnswerAnswered {
			met[call.OpenID] = true
		}
	}
	require.GreaterOrEqual(t, len(met), 2, "concurrent sends met the fatal errcode")
	for openid, o := range outs {
		if met[openid] {
			require.Equal(t, rdb.OutcomeFailed, o.Status, "%s met 40037: %+v", openid, o)
			require.Equal(t, 40037, o.Code, openid)
			require.Equal(t, "fatal", o.Class, openid)
			continue
		}
		require.Equal(t, rdb.OutcomeSkipped, o.Status, "%s: %+v", openid, o)
	}
	require.EqualValues(t, len(met), rec.Counters["code:40037"])
	got, err := b.store.Get(t.Context(), c.ID)
	require.NoError(t, err)
	require.Equal(t, campaigns.StateFailed, got.State)
}

func TestDailyQuotaPausesAndResumes(t *testing.T) {
	const n = 1000
	b := setup(t, wechattest.Config{Limits: map[string]wechattest.Limit{wechat.APITemplateSend: {Daily: 600}}})
	p := b.process(t, procConfig{rate: 500, probe: 100 * time.Millisecond})
	c := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, openIDs(n))
	run, err := p.producer.Start(t.Context(), c.ID)
	require.NoError(t, err)

	key := wechattest.AppIDDefault + ":" + wechat.APITemplateSend
	require.Eventually(t, func() bool {
		st, err := p.limiter.State(t.Context(), key)
		require.NoError(t, err)
		return st.Paused()
	}, 30*time.Second, 20*time.Millisecond, "45009 pauses the account's template sends")
	rec, err := b.rdb.GetRun(t.Context(), c.ID, run)
	require.NoError(t, err)
	require.Zero(t, rec.Counters["failed"], "a quota pause fails nobody")
	require.Equal(t, string(campaigns.StateRunning), rec.State)

	b.fake.ResetQuotas() // midnight in Shanghai, or an operator's clear_quota
	rec = b.waitSettled(t, c.ID, run, time.Minute)
	b.truth(t, c, nil, run)
	require.Equal(t, string(campaigns.StateCompleted), rec.State)
	require.EqualValues(t, n, rec.Counters["sent"])
	require.Zero(t, rec.Counters["failed"])
	st := b.fake.Stats()
	require.Positive(t, st.APIs[wechat.APITemplateSend].Errors[45009])
	require.EqualValues(t, 0, st.DuplicatesDelivered)
	require.EqualValues(t, n, st.APIs[wechat.APITemplateSend].Accepted)
}

func TestTransactionalGoesAheadOfBulk(t *testing.T) {
	const n = 3000
	b := setup(t, wechattest.Config{})
	p := b.process(t, procConfig{rate: 200, concurrency: 20})
	bulk := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, openIDs(n))
	bulkRun, err := p.producer.Start(t.Context(), bulk.ID)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		rec, err := b.rdb.GetRun(t.Context(), bulk.ID, bulkRun)
		require.NoError(t, err)
		return rec.Settled() >= 100
	}, 30*time.Second, 20*time.Millisecond)

	tx := &campaigns.Campaign{
		Name: "order 1001 shipped", Account: wechattest.AppIDDefault, Kind: campaigns.KindTemplate,
		Template: &campaigns.TemplateSpec{TemplateID: wechattest.TemplateIDDefault, Data: map[string]string{"thing1": "订单1001已发货"}},
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceInline, OpenIDs: []string{"oTX0000000000000000000000001"}},
	}
	txRun, err := p.producer.SendTransactional(t.Context(), tx)
	require.NoError(t, err)
	rec := b.waitSettled(t, tx.ID, txRun, 30*time.Second)
	b.truth(t, tx, nil, txRun)
	require.EqualValues(t, 1, rec.Counters["sent"])
	bulkRec, err := b.rdb.GetRun(t.Context(), bulk.ID, bulkRun)
	require.NoError(t, err)
	require.Less(t, bulkRec.Settled(), int64(n/2), "the transactional send did not wait behind the bulk campaign")
	require.NoError(t, p.producer.Cancel(t.Context(), bulk.ID))
	b.waitSettled(t, bulk.ID, bulkRun, time.Minute)
	b.truth(t, bulk, nil, bulkRun)
}

func TestFollowersAndTagAudiences(t *testing.T) {
	members := openIDs(700)
	b := setup(t, wechattest.Config{Followers: 2500, PageSize: 1000, Tags: map[int64][]string{17: members}})
	p := b.process(t, procConfig{})
	for _, tc := range []struct {
		spec campaigns.AudienceSpec
		want []string
	}{
		{campaigns.AudienceSpec{Source: campaigns.SourceFollowers}, b.fake.FollowerOpenIDs()},
		{campaigns.AudienceSpec{Source: campaigns.SourceTag, TagID: 17}, members},
	} {
		c := &campaigns.Campaign{
			Name: "to " + string(tc.spec.Source), Account: wechattest.AppIDDefault, Kind: campaigns.KindTemplate,
			Template: &campaigns.TemplateSpec{TemplateID: wechattest.TemplateIDDefault, Data: map[string]string{"thing1": "会员日"}},
			Audience: tc.spec,
		}
		require.NoError(t, b.store.Create(t.Context(), c))
		run, err := p.producer.Start(t.Context(), c.ID)
		require.NoError(t, err)
		rec := b.waitSettled(t, c.ID, run, time.Minute)
		b.truth(t, c, nil, run)
		require.EqualValues(t, len(tc.want), rec.Size, tc.spec.Source)
		require.EqualValues(t, len(tc.want), rec.Counters["sent"], tc.spec.Source)
		outs := b.outcomes(t, c.ID, run)
		for _, id := range tc.want {
			require.Equal(t, rdb.OutcomeSent, outs[id].Status, id)
		}
	}
	require.EqualValues(t, 0, b.fake.Stats().DuplicatesDelivered)
}

func TestMinuteQuotaSlowsTheFleetDown(t *testing.T) {
	const n = 1500
	// WeChat allows 150 calls a second; the account is configured for 400.
	b := setup(t, wechattest.Config{Limits: map[string]wechattest.Limit{wechat.APITemplateSend: {PerSecond: 150}}})
	p := b.process(t, procConfig{rate: 400, rules: []retry.Rule{
		// The default waits for the next minute; a test cannot.
		{Code: 45011, Class: retry.ClassRetry, Delay: retry.Fixed(200 * time.Millisecond), MaxAttempts: 10},
	}})
	c := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, openIDs(n))
	run, err := p.producer.Start(t.Context(), c.ID)
	require.NoError(t, err)

	key := wechattest.AppIDDefault + ":" + wechat.APITemplateSend
	slowed := false
	ok := assert.Eventually(t, func() bool {
		st, err := p.limiter.State(t.Context(), key)
		require.NoError(t, err)
		slowed = slowed || (st.Factor > 0 && st.Factor < 1)
		rec, err := b.rdb.GetRun(t.Context(), c.ID, run)
		require.NoError(t, err)
		return rec.Settled() >= n
	}, time.Minute, 20*time.Millisecond)
	if !ok {
		rec, _ := b.rdb.GetRun(t.Context(), c.ID, run)
		t.Fatalf("run did not settle: %+v; fake: %+v", rec, b.fake.Stats().APIs[wechat.APITemplateSend])
	}
	require.True(t, slowed, "45011 cut the shared rate")
	b.truth(t, c, nil, run)
	rec, err := b.rdb.GetRun(t.Context(), c.ID, run)
	require.NoError(t, err)
	require.EqualValues(t, n, rec.Counters["sent"], "throttling fails nobody: %v", rec.Counters)
	api := b.fake.Stats().APIs[wechat.APITemplateSend]
	require.Positive(t, api.Errors[45011])
	require.EqualValues(t, 0, b.fake.Stats().DuplicatesDelivered)
}
