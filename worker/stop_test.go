package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
	"github.com/wxmass/wxmass/worker"
)

// staticToken is a wechat.TokenSource of one access_token.
type staticToken string

func (s staticToken) Token(context.Context) (string, error)    { return string(s), nil }
func (s staticToken) Invalidate(context.Context, string) error { return nil }

// TestStopSettlesTruthfully: a template campaign whose calls sometimes
// lose their answers (2 % of connections dropped after WeChat took the
// message, 2 % of answers later than the client's timeout) is stopped at
// 40 %: by 40125 (the appsecret became wrong), by 40037 (the template was
// deleted), by a cancel. The run is reported stopped only once every
// recipient has an outcome, within seconds, and no recipient WeChat
// delivered to is reported skipped, cancelled or failed: those whose
// answer was lost are unknown. Then the cause is fixed and the failed and
// skipped recipients are retried, as the README advises, and the unknown
// ones by name: across the runs every recipient is delivered exactly once.
func TestStopSettlesTruthfully(t *testing.T) {
	const n = 3000
	for _, tc := range []struct {
		name  string
		final campaigns.State
		// stop stops the run; fix undoes the cause (nil: a cancel).
		stop, fix func(t *testing.T, b *bundle, p *proc, c *campaigns.Campaign)
	}{
		{
			name: "40125", final: campaigns.StateFailed,
			stop: func(t *testing.T, b *bundle, _ *proc, _ *campaigns.Campaign) {
				// The appsecret reset in the MP admin: the one wxmass has is
				// wrong now, and the tokens issued are revoked.
				require.NoError(t, b.fake.SetSecret(wechattest.AppIDDefault, "a-new-secret-wxmass-does-not-know"))
				b.fake.InvalidateTokens()
			},
			fix: func(t *testing.T, b *bundle, _ *proc, _ *campaigns.Campaign) {
				require.NoError(t, b.fake.SetSecret(wechattest.AppIDDefault, wechattest.SecretDefault))
				// What the accounts file's reload does when the appsecret
				// changes: the remembered token error goes.
				require.NoError(t, b.rdb.ClearTokenError(t.Context(), wechattest.AppIDDefault))
			},
		},
		{
			name: "40037", final: campaigns.StateFailed,
			stop: func(t *testing.T, b *bundle, _ *proc, _ *campaigns.Campaign) {
				require.NoError(t, b.fake.SetTemplateIDs([]string{"TPL_SOME_OTHER"}))
			},
			fix: func(t *testing.T, b *bundle, _ *proc, _ *campaigns.Campaign) {
				require.NoError(t, b.fake.SetTemplateIDs([]string{wechattest.TemplateIDDefault}))
			},
		},
		{
			name: "cancel", final: campaigns.StateCancelled,
			stop: func(t *testing.T, _ *bundle, p *proc, c *campaigns.Campaign) {
				require.NoError(t, p.producer.Cancel(t.Context(), c.ID))
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The slow answers come 2 s after the client gave up; the
			// client's timeout is long enough that no other call exceeds it
			// on a loaded machine (the fake cannot see a client that gave
			// up on an answer it wrote).
			b := setup(t, wechattest.Config{Seed: 11, Faults: wechattest.Faults{DropAfterRecord: 0.02, Slow: 0.02, SlowDelay: 4 * time.Second}})
			pc := procConfig{rate: 400, concurrency: 20, callTimeout: 2 * time.Second}
			procs := []*proc{b.process(t, pc), b.process(t, pc)}
			c := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, openIDs(n))
			run, err := procs[0].producer.Start(t.Context(), c.ID)
			require.NoError(t, err)

			require.Eventually(t, func() bool {
				rec, err := b.rdb.GetRun(t.Context(), c.ID, run)
				require.NoError(t, err)
				return rec.Settled() >= 4*n/10
			}, time.Minute, 10*time.Millisecond)
			stopAt := time.Now()
			tc.stop(t, b, procs[1], c)

			// Polled from the stop on: no state but stopping (or running,
			// before the stop reaches a send) until every recipient has an
			// outcome.
			var rec rdb.RunRecord
			var stopping bool
			require.Eventually(t, func() bool {
				rec, err = b.rdb.GetRun(t.Context(), c.ID, run)
				require.NoError(t, err)
				switch rec.State {
				case string(campaigns.StateRunning), string(campaigns.StatePaused):
					return false
				case string(campaigns.StateStopping):
					stopping = true
					require.True(t, rec.Finished.IsZero())
					require.Equal(t, string(tc.final), rec.Final)
					return false
				}
				return true
			}, 30*time.Second, 5*time.Millisecond)
			settledIn := time.Since(stopAt)
			t.Logf("stopped at %d of %d settled; the run ended %s with every outcome %v after the stop; stopping seen: %v",
				rec.Settled()-rec.Counters["skipped"]-rec.Counters["cancelled"]-rec.Counters["unknown"], n, rec.State, settledIn, stopping)
			require.Equal(t, string(tc.final), rec.State, rec.Reason)
			require.EqualValues(t, n, rec.Settled(), "reported %s only once every recipient has an outcome: %v", rec.State, rec.Counters)
			require.False(t, rec.Finished.IsZero())
			require.Less(t, settledIn, 5*time.Second, "a stop settles within seconds")
			rep := b.truth(t, c, nil, run)
			api := b.fake.Stats().APIs[wechat.APITemplateSend]
			require.Positive(t, api.Dropped+api.Abandoned, "answers were lost before the stop")
			got, err := b.store.Get(t.Context(), c.ID)
			require.NoError(t, err)
			require.Equal(t, tc.final, got.State)

			if tc.fix == nil {
				// The cancelled recipients were certainly never sent: an
				// operator who changes their mind sends them, and nobody
				// twice.
				res, err := procs[0].producer.RetryFailed(t.Context(), c.ID, run, campaigns.RetryFilter{Statuses: []string{"cancelled"}})
				require.NoError(t, err)
				require.EqualValues(t, rec.Counters["cancelled"], res.Size)
				rec2 := b.waitSettled(t, c.ID, res.Run, time.Minute)
				require.Equal(t, string(campaigns.StateCompleted), rec2.State, "%v", rec2.Counters)
				b.truth(t, c, nil, run, res.Run)
				return
			}
			tc.fix(t, b, procs[0], c)
			// The README: retry the failed and the skipped recipients.
			res, err := procs[0].producer.RetryFailed(t.Context(), c.ID, run, campaigns.RetryFilter{Statuses: []string{"failed", "skipped"}})
			require.NoError(t, err)
			require.EqualValues(t, rec.Counters["failed"]+rec.Counters["skipped"], res.Size, "unknown recipients are not included")
			require.Zero(t, res.Unknown)
			rec2 := b.waitSettled(t, c.ID, res.Run, time.Minute)
			require.Equal(t, string(campaigns.StateCompleted), rec2.State, "%v", rec2.Counters)
			b.truth(t, c, nil, run, res.Run)

			// And the unknown ones, by name: still inside WeChat's window,
			// they keep their client_msg_id, so WeChat delivers none twice.
			if rep.Unknown > 0 {
				res3, err := procs[0].producer.RetryFailed(t.Context(), c.ID, run, campaigns.RetryFilter{Statuses: []string{"unknown"}})
				require.NoError(t, err)
				require.EqualValues(t, rep.Unknown, res3.Unknown)
				require.EqualValues(t, rep.Unknown, res3.SameClientMsgID)
				require.Zero(t, res3.MayDuplicate)
				b.waitSettled(t, c.ID, res3.Run, time.Minute)
				rep = b.truth(t, c, nil, run, res.Run, res3.Run)
			}
			require.Zero(t, rep.Twice)
			require.Equal(t, n, rep.Delivered, "every recipient delivered, once: %s", rep)
			require.Zero(t, b.fake.Stats().DuplicatesDelivered)
		})
	}
}

// TestRecoveredSendRespectsAttempt: a send task that comes back after its
// worker died during the call finds the attempt it left open. A
// customer-service send, which has no dedupe key, is recorded unknown and
// not sent again; a template send is sent again with the same
// client_msg_id while WeChat's window lasts (WeChat answers from its dedupe
// window: delivered once), and recorded unknown after it.
func TestRecoveredSendRespectsAttempt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		kind   campaigns.Kind
		window time.Duration
		want   string
	}{
		{"custom", campaigns.KindCustom, 0, campaigns.OutcomeUnknown},
		{"template", campaigns.KindTemplate, 0, campaigns.OutcomeSent},
		{"template after the window", campaigns.KindTemplate, time.Nanosecond, campaigns.OutcomeUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t, wechattest.Config{})
			p := b.process(t, procConfig{dedupeWindow: tc.window, name: "live-worker"})
			const dead, other = "oW00000000000000000000000001", "oW00000000000000000000000002"
			c := b.fileCampaign(t, tc.kind, wechattest.TemplateIDDefault, []string{dead, other})
			run, err := b.store.StartRun(t.Context(), c)
			require.NoError(t, err)

			// The worker that died: it recorded its attempt, and its call
			// reached WeChat, which delivered the message.
			firstMsgID := b.diedDuringCall(t, c, run, dead)

			// Its task comes back (asynq's recoverer), with the other's.
			require.NoError(t, b.store.MarkExpanded(t.Context(), c.ID, run, 2))
			for _, o := range []string{dead, other} {
				require.NoError(t, p.producer.EnqueueSend(t.Context(), producer.SendTaskType(c.Kind), task.QueueBulk, c.ID, run, o))
			}
			b.waitSettled(t, c.ID, run, 30*time.Second)
			rep := b.truth(t, c, func(proc string) bool { return proc == "dead-worker" }, run)
			outs := b.outcomes(t, c.ID, run)
			require.Equal(t, tc.want, outs[dead].Status, "%+v", outs[dead])
			require.Equal(t, campaigns.OutcomeSent, outs[other].Status)
			require.Zero(t, rep.Twice)
			if tc.want == campaigns.OutcomeSent {
				require.Equal(t, firstMsgID, outs[dead].MsgID, "answered from WeChat's dedupe window")
			} else {
				require.Equal(t, 1, rep.UnknownByKill)
			}
			require.Len(t, b.fake.Deliveries(), 2, "each user got one message")
		})
	}
}

// TestRescueOrphanedSend: a send task whose worker died stays active in
// asynq until its recoverer finds the lease expired, a minute later. The
// worker's rescuer replaces it as soon as the lease has expired: the
// replacement finds the dead worker's attempt open, so the customer-service
// recipient (whose message reached WeChat) is recorded unknown at once,
// without a second message, while the original task is still active.
func TestRescueOrphanedSend(t *testing.T) {
	b := setup(t, wechattest.Config{})
	const dead = "oW00000000000000000000000001"
	c := b.fileCampaign(t, campaigns.KindCustom, "", []string{dead})
	run, err := b.store.StartRun(t.Context(), c)
	require.NoError(t, err)
	require.NoError(t, b.store.MarkExpanded(t.Context(), c.ID, run, 1))

	// The worker that died: its attempt open, its message delivered.
	b.diedDuringCall(t, c, run, dead)

	// Its task, as asynq leaves it: active, with a lease that expired
	// (asynq's key layout, v0.26: internal/base).
	client := asynq.NewClient(b.opt)
	t.Cleanup(func() { _ = client.Close() })
	id := task.SendID(c.ID, run, dead)
	_, err = client.Enqueue(asynq.NewTask(task.TypeSendCustom, task.EncodeSend(task.Send{Run: task.Run{Campaign: c.ID, Run: run}, OpenID: dead})),
		asynq.TaskID(id), asynq.Queue(task.QueueBulk))
	require.NoError(t, err)
	q := "asynq:{" + task.QueueBulk + "}:"
	require.NoError(t, b.redis.LMove(t.Context(), q+"pending", q+"active", "RIGHT", "LEFT").Err())
	require.NoError(t, b.redis.HSet(t.Context(), q+"t:"+id, "state", "active").Err())
	require.NoError(t, b.redis.ZAdd(t.Context(), q+"lease", redis.Z{Score: float64(time.Now().Add(-time.Second).Unix()), Member: id}).Err())

	b.process(t, procConfig{rescue: 100 * time.Millisecond})
	rec := b.waitSettled(t, c.ID, run, 30*time.Second)
	require.EqualValues(t, 1, rec.Counters[campaigns.OutcomeUnknown])
	b.truth(t, c, func(proc string) bool { return proc == "dead-worker" }, run)
	require.Len(t, b.fake.Deliveries(), 1, "one message")
	ins := asynq.NewInspector(b.opt)
	t.Cleanup(func() { _ = ins.Close() })
	info, err := ins.GetTaskInfo(task.QueueBulk, id)
	require.NoError(t, err)
	require.Equal(t, asynq.TaskStateActive, info.State, "settled before asynq's recoverer moved the original")
}

// diedDuringCall plays a worker process "dead-worker" that recorded its
// attempt of openid in run of c and made its call, which WeChat took, then
// died before recording the answer. It returns the msgid of a template
// send.
func (b *bundle) diedDuringCall(t *testing.T, c *campaigns.Campaign, run int, openid string) int64 {
	t.Helper()
	crashed := b.store.WithLedger(campaigns.LedgerConfig{Proc: "dead-worker"})
	begun, err := crashed.BeginAttempt(t.Context(), c, run, openid, false, false)
	require.NoError(t, err)
	require.Equal(t, campaigns.BeginSend, begun.Action)
	wc := wechat.New(wechat.WithBaseURLs(b.fake.URL()))
	t.Cleanup(wc.CloseIdleConnections)
	tok, err := wc.StableToken(t.Context(), wechattest.AppIDDefault, secret.New(wechattest.SecretDefault), false)
	require.NoError(t, err)
	if c.Kind != campaigns.KindTemplate {
		require.NoError(t, wc.SendCustom(t.Context(), staticToken(tok.Token),
			&wechat.CustomMessage{ToUser: openid, MsgType: wechat.MsgTypeText, Text: &wechat.Text{Content: "您好，订单已发货"}}))
		return 0
	}
	msgid, err := wc.SendTemplate(t.Context(), staticToken(tok.Token), &wechat.TemplateMessage{
		ToUser: openid, TemplateID: wechattest.TemplateIDDefault, ClientMsgID: worker.ClientMsgID(c.ID, run, openid),
		Data: map[string]wechat.TemplateValue{"thing1": {Value: "您的订单已发货"}},
	})
	require.NoError(t, err)
	return msgid
}
