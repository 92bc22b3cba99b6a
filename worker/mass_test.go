package worker_test

import (
	"context"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/callback"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

const massToken = "mass-token"

// massReceiver is a callback receiver that records MASSSENDJOBFINISH
// pushes as wxmass's does (cmd/wxmass's massFinished), into the store set
// later; it returns the fake's Callback config.
func massReceiver(t *testing.T, store *atomic.Pointer[campaigns.Store], pushes *atomic.Int64) wechattest.Callback {
	t.Helper()
	h, err := callback.NewHandler(callback.Config{
		Token: massToken,
		OnEvent: func(ctx context.Context, e callback.Event) error {
			if e.Event != callback.EventMassSendJobFinish {
				return nil
			}
			m := e.Mass
			status := m.Result
			if status == callback.MassUnknown {
				status = campaigns.MassUnknown
			}
			res := campaigns.MassPushResult(status, e.Status, m.ReviewCode, callback.ReviewMeaning(m.ReviewCode),
				m.TotalCount, m.FilterCount, m.SentCount, m.ErrorCount, time.Unix(e.CreateTime, 0))
			_, _, _, err := store.Load().FinishMassPush(ctx, wechattest.AppIDDefault, e.MsgID, res)
			if err == nil {
				pushes.Add(1)
			}
			return err
		},
	})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return wechattest.Callback{URL: srv.URL, Token: massToken, Delay: 10 * time.Millisecond}
}

// massCampaign stores a mass text campaign of audience a; a file audience
// gets openids.
func (b *bundle) massCampaign(t *testing.T, text string, a campaigns.AudienceSpec, openids []string) *campaigns.Campaign {
	t.Helper()
	c := &campaigns.Campaign{Name: t.Name(), Account: wechattest.AppIDDefault, Kind: campaigns.KindMass,
		Mass: &campaigns.MassSpec{MsgType: wechat.MassTypeText, Text: &wechat.Text{Content: text}}, Audience: a}
	require.NoError(t, c.Validate())
	require.NoError(t, b.store.Create(t.Context(), c))
	for i := 0; i < len(openids); i += 5000 {
		var entries []rdb.AudienceEntry
		for _, o := range openids[i:min(i+5000, len(openids))] {
			entries = append(entries, rdb.AudienceEntry{OpenID: o})
		}
		_, _, err := b.rdb.AppendAudience(t.Context(), c.ID, entries, string(campaigns.StateDraft))
		require.NoError(t, err)
	}
	return c
}

// jobsOf returns the fake's mass jobs with a clientmsgid of the run's
// batches, by clientmsgid.
func jobsOf(fake *wechattest.Server, c *campaigns.Campaign, run int, batches []campaigns.MassBatchRecord) map[string]wechattest.MassJob {
	want := map[string]bool{}
	for _, b := range batches {
		want[campaigns.MassClientMsgID(c.ID, run, b.Key)] = true
	}
	out := map[string]wechattest.MassJob{}
	for _, j := range fake.MassJobs() {
		if want[j.ClientMsgID] {
			out[j.ClientMsgID] = j
		}
	}
	return out
}

// TestMassBatchesToAList: a mass campaign to 25,000 openids is cut into 3
// batches, one job each with its own clientmsgid. The first two calls are
// taken by WeChat and their answers lost (the connection drops): their
// retries are answered 45065 with the job WeChat has, recorded as the same
// send, so the fake holds exactly 3 jobs and every openid is in exactly
// one. (A push that comes before its batch knows the job is kept until the
// batch records it.) The MASSSENDJOBFINISH pushes reconcile each batch's counts, and the
// run's counts equal the fake's record.
func TestMassBatchesToAList(t *testing.T) {
	const n = 25000
	var store atomic.Pointer[campaigns.Store]
	var pushes atomic.Int64
	b := setup(t, wechattest.Config{Seed: 14, Callback: massReceiver(t, &store, &pushes), Mass: wechattest.MassConfig{Sending: 100 * time.Millisecond}})
	store.Store(b.store)
	b.fake.DropNextMass(wechat.APIMassSend, 2)
	p := b.process(t, procConfig{concurrency: 4})
	openids := openIDs(n)
	c := b.massCampaign(t, "十二月精选", campaigns.AudienceSpec{Source: campaigns.SourceFile}, openids)
	run, err := p.producer.Start(t.Context(), c.ID)
	require.NoError(t, err)
	rec := b.waitSettled(t, c.ID, run, time.Minute)
	require.EqualValues(t, 3, rec.Size, "3 batches")
	require.EqualValues(t, 3, rec.Counters[campaigns.OutcomeSent], "%v", rec.Counters)

	batches, err := b.store.MassBatches(t.Context(), c.ID, run)
	require.NoError(t, err)
	require.Len(t, batches, 3)
	jobs := jobsOf(b.fake, c, run, batches)
	require.Len(t, jobs, 3, "one job per batch at the fake")
	require.Len(t, b.fake.MassJobs(), 3, "no other job")
	require.EqualValues(t, 5, b.fake.MassCalls()[wechat.APIMassSend], "3 calls and 2 retries of dropped answers")

	seen := map[string]int{}
	dups := 0
	var sent int64
	for i, bt := range batches {
		mb, err := campaigns.ParseMassBatch(bt.Key)
		require.NoError(t, err)
		require.Equal(t, i, mb.Index)
		require.NotNil(t, bt.Submission, bt.Key)
		require.NotNil(t, bt.Result, bt.Key)
		j := jobs[bt.Submission.ClientMsgID]
		require.Equal(t, j.MsgID, bt.Submission.MsgID, "the batch records the job's msg_id")
		require.EqualValues(t, mb.To-mb.From, bt.Submission.Recipients)
		require.Equal(t, openids[mb.From:mb.To], j.Delivered, "batch %s reached exactly its openids", bt.Key)
		if bt.Submission.Duplicate {
			dups++
		}
		require.Equal(t, campaigns.MassViaPush, bt.Result.Via)
		require.Equal(t, campaigns.MassSent, bt.Result.Status)
		require.EqualValues(t, len(j.Delivered), bt.Result.SentCount, "the push's counts match the fake's record")
		require.EqualValues(t, j.Total, bt.Result.TotalCount)
		sent += bt.Result.SentCount
		for _, o := range j.Delivered {
			seen[o]++
		}
	}
	// Two answers were lost (of two batches, or twice of one): at least
	// one retry was answered 45065 and recorded as the job it had.
	require.GreaterOrEqual(t, dups, 1, "retries answered 45065 are recorded as one send")
	require.Len(t, seen, n)
	for o, k := range seen {
		require.Equal(t, 1, k, "%s got the message %d times", o, k)
	}
	require.EqualValues(t, n, sent)
	require.EqualValues(t, rec.Counters[campaigns.OutcomeSent], len(jobs), "the run's counts equal the fake's record")
}

// TestMassToAllAndTag: a send to all followers and one to a tag are one
// sendall call each, recorded with their msg_id, and reconciled through
// the push, or, with pushes off, through mass/get.
func TestMassToAllAndTag(t *testing.T) {
	members := openIDs(7)
	for _, pushOn := range []bool{true, false} {
		name := "mass_get"
		if pushOn {
			name = "push"
		}
		t.Run(name, func(t *testing.T) {
			var store atomic.Pointer[campaigns.Store]
			var pushes atomic.Int64
			cfg := wechattest.Config{Seed: 15, Followers: 50, FollowerIDs: members, Tags: map[int64][]string{2: members},
				Mass: wechattest.MassConfig{Sending: 100 * time.Millisecond}}
			pc := procConfig{concurrency: 4}
			if pushOn {
				cfg.Callback = massReceiver(t, &store, &pushes)
				pc.massPoll = time.Hour // the push must do it
			} else {
				pc.massPoll = 200 * time.Millisecond
			}
			b := setup(t, cfg)
			store.Store(b.store)
			p := b.process(t, pc)
			all := b.massCampaign(t, "致全体关注者", campaigns.AudienceSpec{Source: campaigns.SourceFollowers}, nil)
			tag := b.massCampaign(t, "致标签用户", campaigns.AudienceSpec{Source: campaigns.SourceTag, TagID: 2}, nil)
			for _, c := range []*campaigns.Campaign{all, tag} {
				run, err := p.producer.Start(t.Context(), c.ID)
				require.NoError(t, err)
				rec := b.waitSettled(t, c.ID, run, 30*time.Second)
				require.EqualValues(t, 1, rec.Size)
				require.EqualValues(t, 1, rec.Counters[campaigns.OutcomeSent])
				batches, err := b.store.MassBatches(t.Context(), c.ID, run)
				require.NoError(t, err)
				require.Len(t, batches, 1)
				bt := batches[0]
				jobs := jobsOf(b.fake, c, run, batches)
				require.Len(t, jobs, 1)
				j := jobs[bt.Submission.ClientMsgID]
				require.Equal(t, j.MsgID, bt.Submission.MsgID)
				require.Equal(t, campaigns.MassSent, bt.Result.Status)
				if pushOn {
					require.Equal(t, campaigns.MassViaPush, bt.Result.Via)
					require.EqualValues(t, len(j.Delivered), bt.Result.SentCount)
				} else {
					require.Equal(t, campaigns.MassViaPoll, bt.Result.Via)
					require.False(t, bt.Result.HasCounts, "mass/get gives no counts")
				}
			}
			require.EqualValues(t, 2, b.fake.MassCalls()[wechat.APIMassSendAll], "one call each")
			jobs := b.fake.MassJobs()
			require.Len(t, jobs, 2)
			require.True(t, jobs[0].ToAll)
			require.Len(t, jobs[0].Delivered, 57, "every follower")
			require.EqualValues(t, 2, jobs[1].TagID)
			require.ElementsMatch(t, members, jobs[1].Delivered)
			if !pushOn {
				require.Positive(t, b.fake.MassCalls()[wechat.APIMassGet])
			}
		})
	}
}

// TestMassMonthlyCapFiltered: a user who got 4 mass messages this month
// (through wxmass) is counted as capped when the next run launches, and
// WeChat filters him: the fake's job lists him as filtered and the
// batch's counts say one was filtered.
func TestMassMonthlyCapFiltered(t *testing.T) {
	var store atomic.Pointer[campaigns.Store]
	var pushes atomic.Int64
	b := setup(t, wechattest.Config{Seed: 16, Callback: massReceiver(t, &store, &pushes), Mass: wechattest.MassConfig{Sending: 50 * time.Millisecond}})
	store.Store(b.store)
	p := b.process(t, procConfig{concurrency: 4})
	ids := openIDs(3)
	capped, other, fresh := ids[0], ids[1], ids[2]
	earlier := b.massCampaign(t, "每周一次", campaigns.AudienceSpec{Source: campaigns.SourceFile}, []string{capped, other})
	for range 4 {
		run, err := p.producer.Start(t.Context(), earlier.ID)
		require.NoError(t, err)
		b.waitSettled(t, earlier.ID, run, 30*time.Second)
	}
	c := b.massCampaign(t, "月末特别", campaigns.AudienceSpec{Source: campaigns.SourceFile}, []string{capped, fresh})
	run, err := p.producer.Start(t.Context(), c.ID)
	require.NoError(t, err)
	rec := b.waitSettled(t, c.ID, run, 30*time.Second)
	require.EqualValues(t, 1, rec.MassCapped, "wxmass's own count warned of one capped recipient")
	batches, err := b.store.MassBatches(t.Context(), c.ID, run)
	require.NoError(t, err)
	require.Len(t, batches, 1)
	j := jobsOf(b.fake, c, run, batches)[batches[0].Submission.ClientMsgID]
	require.Equal(t, []string{capped}, j.Filtered, "the fake filtered the user over 4 a month")
	require.Equal(t, []string{fresh}, j.Delivered)
	res := batches[0].Result
	require.EqualValues(t, 2, res.TotalCount)
	require.EqualValues(t, 1, res.TotalCount-res.FilterCount, "the batch reports one filtered")
	require.EqualValues(t, 1, res.SentCount)
}

// TestMassAdminConfirmation: a send to all on an account with API
// mass-send protection waits for the admin: the batch is accepted with a
// confirmation deadline 30 minutes on and the run stays running; confirmed,
// it completes sent; left unconfirmed, WeChat fails it after 30 minutes
// (time-scaled) and the batch fails, saying so.
func TestMassAdminConfirmation(t *testing.T) {
	var store atomic.Pointer[campaigns.Store]
	var pushes atomic.Int64
	b := setup(t, wechattest.Config{Seed: 17, Followers: 10, TimeScale: 900, Callback: massReceiver(t, &store, &pushes),
		Mass: wechattest.MassConfig{Sending: 50 * time.Millisecond, Protected: []string{wechattest.AppIDDefault}}})
	store.Store(b.store)
	p := b.process(t, procConfig{concurrency: 4, massProtection: true, massPoll: time.Hour})
	awaiting := func(c *campaigns.Campaign, run int) campaigns.MassBatchRecord {
		var bt campaigns.MassBatchRecord
		require.Eventually(t, func() bool {
			var err error
			bt, err = b.store.MassBatch(t.Context(), c.ID, run, campaigns.MassBatchAll)
			require.NoError(t, err)
			return bt.Submission != nil
		}, 10*time.Second, 10*time.Millisecond)
		require.WithinDuration(t, bt.Submission.Submitted.Add(campaigns.MassConfirmWindow), bt.Submission.ConfirmBy, time.Second)
		rec, err := b.rdb.GetRun(t.Context(), c.ID, run)
		require.NoError(t, err)
		require.Equal(t, "running", rec.State, "the run waits for the admin")
		require.Zero(t, rec.Settled())
		return bt
	}

	confirmed := b.massCampaign(t, "需确认", campaigns.AudienceSpec{Source: campaigns.SourceFollowers}, nil)
	run, err := p.producer.Start(t.Context(), confirmed.ID)
	require.NoError(t, err)
	bt := awaiting(confirmed, run)
	require.NoError(t, b.fake.ConfirmMass(bt.Submission.MsgID, true))
	rec := b.waitSettled(t, confirmed.ID, run, 10*time.Second)
	require.EqualValues(t, 1, rec.Counters[campaigns.OutcomeSent])
	bt, err = b.store.MassBatch(t.Context(), confirmed.ID, run, campaigns.MassBatchAll)
	require.NoError(t, err)
	require.EqualValues(t, 10, bt.Result.SentCount)

	ignored := b.massCampaign(t, "无人确认", campaigns.AudienceSpec{Source: campaigns.SourceFollowers}, nil)
	run, err = p.producer.Start(t.Context(), ignored.ID)
	require.NoError(t, err)
	awaiting(ignored, run)
	rec = b.waitSettled(t, ignored.ID, run, 20*time.Second)
	require.EqualValues(t, 1, rec.Counters[campaigns.OutcomeFailed])
	o := b.outcomes(t, ignored.ID, run)[campaigns.MassBatchAll]
	require.Equal(t, campaigns.ClassMass, o.Class)
	require.Contains(t, o.Detail, "job failed")
	jobs := b.fake.MassJobs()
	require.Equal(t, wechattest.MassFail, jobs[len(jobs)-1].Status)
	require.Empty(t, jobs[len(jobs)-1].Delivered, "nobody got the unconfirmed message")
}

// TestMassReviewFailure: a job that fails WeChat's content review
// (err(20001)) fails its batch with the review code and its meaning.
func TestMassReviewFailure(t *testing.T) {
	var store atomic.Pointer[campaigns.Store]
	var pushes atomic.Int64
	b := setup(t, wechattest.Config{Seed: 18, Callback: massReceiver(t, &store, &pushes),
		Mass: wechattest.MassConfig{Sending: 50 * time.Millisecond, ReviewFailures: map[string]int{"敏感词": 20001}}})
	store.Store(b.store)
	p := b.process(t, procConfig{concurrency: 4, massPoll: time.Hour})
	c := b.massCampaign(t, "含敏感词的内容", campaigns.AudienceSpec{Source: campaigns.SourceFile}, openIDs(5))
	run, err := p.producer.Start(t.Context(), c.ID)
	require.NoError(t, err)
	rec := b.waitSettled(t, c.ID, run, 20*time.Second)
	require.EqualValues(t, 1, rec.Counters[campaigns.OutcomeFailed])
	require.EqualValues(t, 1, rec.Counters["code:20001"])
	o := b.outcomes(t, c.ID, run)[campaigns.MassBatches(5)[0].Key()]
	require.Equal(t, 20001, o.Code)
	require.Contains(t, o.Detail, "err(20001) suspected politics")
	batches, err := b.store.MassBatches(t.Context(), c.ID, run)
	require.NoError(t, err)
	require.Equal(t, campaigns.MassReviewFailed, batches[0].Result.Status)
	require.Equal(t, "err(20001)", batches[0].Result.WeChatStatus)
	require.True(t, slices.ContainsFunc(b.fake.MassJobs(), func(j wechattest.MassJob) bool { return j.PushStatus == "err(20001)" && len(j.Delivered) == 0 }))
}

// TestMassCancelWhileAwaiting: a mass run cancelled after its first batch
// was accepted and before the others were sent: the accepted batch is not
// skipped (WeChat sends it whatever wxmass does) but awaited, and gets
// its pushed result; the batches never sent are cancelled, and the fake
// holds no job for them. The run ends cancelled once the result is in.
func TestMassCancelWhileAwaiting(t *testing.T) {
	var store atomic.Pointer[campaigns.Store]
	var pushes atomic.Int64
	b := setup(t, wechattest.Config{Seed: 19, Callback: massReceiver(t, &store, &pushes), Mass: wechattest.MassConfig{Sending: 2 * time.Second}})
	store.Store(b.store)
	p := b.process(t, procConfig{concurrency: 4, massPoll: time.Hour})
	c := b.massCampaign(t, "取消测试", campaigns.AudienceSpec{Source: campaigns.SourceFile}, openIDs(20001))
	run, err := p.producer.Start(t.Context(), c.ID)
	require.NoError(t, err)
	var first campaigns.MassBatchRecord
	require.Eventually(t, func() bool {
		bs, err := b.store.MassBatches(t.Context(), c.ID, run)
		require.NoError(t, err)
		if len(bs) > 0 {
			first = bs[0]
		}
		return len(bs) > 0
	}, 20*time.Second, 5*time.Millisecond)
	require.NoError(t, p.producer.Cancel(t.Context(), c.ID))
	rec := b.waitSettled(t, c.ID, run, 30*time.Second)
	require.Equal(t, "cancelled", rec.State)

	out := b.outcomes(t, c.ID, run)
	require.Len(t, out, 3)
	jobs := map[string]wechattest.MassJob{}
	for _, j := range b.fake.MassJobs() {
		jobs[j.ClientMsgID] = j
	}
	accepted := 0
	for _, mb := range campaigns.MassBatches(20001) {
		o := out[mb.Key()]
		j, sent := jobs[campaigns.MassClientMsgID(c.ID, run, mb.Key())]
		if sent {
			accepted++
			require.Equal(t, campaigns.OutcomeSent, o.Status, "batch %s has a job at the fake: it is sent, not %s", mb.Key(), o.Status)
			require.Equal(t, openIDs(20001)[mb.From:mb.To], j.Delivered)
			continue
		}
		require.Equal(t, campaigns.OutcomeCancelled, o.Status, "batch %s never reached WeChat", mb.Key())
	}
	require.GreaterOrEqual(t, accepted, 1)
	require.Equal(t, campaigns.OutcomeSent, out[first.Key].Status, "the batch accepted before the cancel")
}
