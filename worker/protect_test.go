package worker_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// callsTo counts the fake's send calls per openid.
func callsTo(fake *wechattest.Server) map[string]int {
	out := map[string]int{}
	for _, c := range fake.Calls() {
		out[c.OpenID]++
	}
	return out
}

// deliveriesTo counts the fake's deliveries per openid.
func deliveriesTo(fake *wechattest.Server) map[string]int {
	out := map[string]int{}
	for _, d := range fake.Deliveries() {
		out[d.OpenID]++
	}
	return out
}

// TestSuppressionFromErrcodes: recipients WeChat refuses with 43004,
// 48002, 43101 and 40003 end failed with the errcode and go on the
// account's suppression list with its reason; the next campaign to the
// same list makes no call for them and reports them skipped, class
// suppressed. A user suppressed while a run's send task is already queued
// is held back by the send's admission, again with no call.
func TestSuppressionFromErrcodes(t *testing.T) {
	ids := openIDs(40)
	codes := map[int]string{43004: campaigns.SuppressUnfollowed, 48002: campaigns.SuppressBlocked,
		43101: campaigns.SuppressRefused, 40003: campaigns.SuppressInvalid}
	terminal := map[string]int{}
	want := map[string]string{}
	i := 0
	for code, reason := range codes {
		for range 3 {
			terminal[ids[i]], want[ids[i]] = code, reason
			i++
		}
	}
	b := setup(t, wechattest.Config{Terminal: terminal})
	p := b.process(t, procConfig{})

	c1 := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, ids)
	run1, err := p.producer.Start(t.Context(), c1.ID)
	require.NoError(t, err)
	rec := b.waitSettled(t, c1.ID, run1, 30*time.Second)
	b.truth(t, c1, nil, run1)
	require.EqualValues(t, len(ids)-len(want), rec.Counters["sent"])
	require.EqualValues(t, len(want), rec.Counters["failed"])

	entries, on, err := b.store.Suppressions(t.Context(), wechattest.AppIDDefault, ids)
	require.NoError(t, err)
	for i, o := range ids {
		if reason, ok := want[o]; ok {
			require.True(t, on[i], "%s is suppressed", o)
			require.Equal(t, reason, entries[i].Reason, o)
			require.Equal(t, terminal[o], entries[i].Code, o)
			require.Equal(t, campaigns.AdmitMember(c1.ID, run1), entries[i].Source, o)
		} else {
			require.False(t, on[i], "%s is not suppressed", o)
		}
	}
	before := callsTo(b.fake)

	c2 := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, ids)
	run2, err := p.producer.Start(t.Context(), c2.ID)
	require.NoError(t, err)
	rec = b.waitSettled(t, c2.ID, run2, 30*time.Second)
	b.truth(t, c2, nil, run2)
	after := callsTo(b.fake)
	for o := range want {
		require.Equal(t, before[o], after[o], "no call for suppressed %s", o)
	}
	require.EqualValues(t, len(want), rec.Counters["skipped"])
	require.EqualValues(t, len(want), rec.Counters["class:"+campaigns.ClassSuppressed])
	require.EqualValues(t, len(ids)-len(want), rec.Counters["sent"])
	outs := b.outcomes(t, c2.ID, run2)
	for o, reason := range want {
		require.Equal(t, campaigns.OutcomeSkipped, outs[o].Status, o)
		require.Equal(t, campaigns.ClassSuppressed, outs[o].Class, o)
		require.Contains(t, outs[o].Detail, reason, o)
	}

	// Suppressed after its send task was queued: the admission holds it.
	// The run sends 2 a second; some of the users suppressed once every
	// send task is queued may have begun their attempt before, and may
	// rightly be sent. Those that had neither an attempt nor an outcome
	// after the suppression (attempts read first: an attempt is dropped
	// when its outcome is recorded) can only begin after it, and are held.
	c3 := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, ids[20:], func(c *campaigns.Campaign) { c.Rate = 2 })
	run3, err := p.producer.Start(t.Context(), c3.ID)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		rec, err := b.store.Run(t.Context(), c3.ID, run3)
		require.NoError(t, err)
		return rec.Expanded == int64(len(ids[20:]))
	}, 10*time.Second, 10*time.Millisecond, "every recipient has its send task")
	suppressed := ids[30:]
	var manual []campaigns.Suppression
	for _, o := range suppressed {
		manual = append(manual, campaigns.Suppression{OpenID: o, Reason: campaigns.SuppressManual, At: time.Now(), Source: "test"})
	}
	n, err := b.store.Suppress(t.Context(), wechattest.AppIDDefault, true, manual...)
	require.NoError(t, err)
	require.Equal(t, len(suppressed), n)
	_, begun, err := b.store.Attempts(t.Context(), c3.ID, run3, suppressed)
	require.NoError(t, err)
	settled := b.outcomes(t, c3.ID, run3)
	var late []string
	for i, o := range suppressed {
		if _, done := settled[o]; !begun[i] && !done {
			late = append(late, o)
		}
	}
	require.NotEmpty(t, late, "at 2 sends a second, some suppressed users had not begun")
	t.Logf("%d of %d users suppressed while queued had not begun", len(late), len(suppressed))
	beforeLate := callsTo(b.fake)
	b.waitSettled(t, c3.ID, run3, 30*time.Second)
	b.truth(t, c3, nil, run3)
	outs = b.outcomes(t, c3.ID, run3)
	afterLate := callsTo(b.fake)
	for _, o := range late {
		require.Equal(t, beforeLate[o], afterLate[o], "no call for %s, suppressed while queued", o)
		require.Equal(t, campaigns.ClassSuppressed, outs[o].Class, o)
		require.Contains(t, outs[o].Detail, campaigns.SuppressManual)
	}
	att, ok, err := b.store.Attempts(t.Context(), c3.ID, run3, late)
	require.NoError(t, err)
	for i := range late {
		require.False(t, ok[i], "%s: the attempt begun for the held send was taken back: %+v", late[i], att[i])
	}
}

// TestQuietHours drives the clock (the worker's and the fake's) through
// the account's quiet hours, 22:00 to 08:00 in Shanghai: a run sending
// when the window opens stops calling (only calls already in flight at
// that instant reach WeChat), sends nothing while it lasts, and completes
// after it with every recipient sent and none failed.
func TestQuietHours(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	require.NoError(t, err)
	clock := wechattest.NewManualClock(time.Date(2026, 12, 7, 21, 59, 0, 0, shanghai))
	ids := openIDs(60)
	b := setup(t, wechattest.Config{NowFunc: clock.Now})
	quiet, err := account.ParseQuietHours("22:00", "08:00", "Asia/Shanghai")
	require.NoError(t, err)
	const concurrency = 4
	p := b.process(t, procConfig{rate: 10, burst: 1, concurrency: concurrency, now: clock.Now,
		protection: account.Protection{Quiet: quiet}, protectRecheck: 100 * time.Millisecond})
	c := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, ids)
	run, err := p.producer.Start(t.Context(), c.ID)
	require.NoError(t, err)

	require.Eventually(t, func() bool { return len(b.fake.Deliveries()) >= 10 }, 20*time.Second, 10*time.Millisecond)
	opened := time.Date(2026, 12, 7, 22, 0, 0, 0, shanghai)
	clock.Set(opened)
	// Every send not yet made waits for the window's end in asynq's retry
	// set, the calls in flight at the switch done.
	ins := asynq.NewInspector(b.opt)
	defer ins.Close()
	switched := time.Now()
	waitQuiet(t, ins, func() int {
		rec, err := b.store.Run(t.Context(), c.ID, run)
		require.NoError(t, err)
		return int(rec.Expanded - rec.Settled())
	}, switched)
	atSwitch := len(b.fake.Deliveries())
	rec, err := b.store.Run(t.Context(), c.ID, run)
	require.NoError(t, err)
	waiting := int(rec.Expanded - rec.Settled())
	require.Positive(t, waiting)
	require.Less(t, atSwitch, len(ids), "the window opened before the run finished")
	// Deep in the night: the sends look again, and still wait.
	night := time.Now()
	clock.Set(time.Date(2026, 12, 8, 3, 0, 0, 0, shanghai))
	waitQuiet(t, ins, func() int { return waiting }, night)
	require.Equal(t, atSwitch, len(b.fake.Deliveries()), "nothing sent at 03:00")

	end := time.Date(2026, 12, 8, 8, 0, 0, 0, shanghai)
	clock.Set(end)
	rec = b.waitSettled(t, c.ID, run, 30*time.Second)
	b.truth(t, c, nil, run)
	require.Equal(t, string(campaigns.StateCompleted), rec.State)
	require.EqualValues(t, len(ids), rec.Counters["sent"])
	require.Zero(t, rec.Counters["failed"])
	inFlight := 0
	for _, d := range b.fake.Deliveries() {
		switch {
		case d.Time.Before(opened), !d.Time.Before(end):
		case d.Time.Equal(opened):
			inFlight++ // made before the switch, answered at its instant
		default:
			t.Fatalf("delivery to %s at %s, inside the quiet hours", d.OpenID, d.Time.In(shanghai))
		}
	}
	require.LessOrEqual(t, inFlight, concurrency, "only calls in flight when the window opened")
}

// waitQuiet waits until the bulk queue's retry set holds the remaining()
// queued sends of the run, each sent back by the quiet hours since since (real
// time).
func waitQuiet(t *testing.T, ins *asynq.Inspector, remaining func() int, since time.Time) {
	t.Helper()
	require.Eventually(t, func() bool {
		tasks, err := ins.ListRetryTasks(task.QueueBulk, asynq.PageSize(1000))
		if err != nil || len(tasks) != remaining() {
			return false
		}
		for _, ti := range tasks {
			if !ti.LastFailedAt.After(since) || !strings.Contains(ti.LastErr, "quiet hours") {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "the rest of the run waits for the quiet hours' end")
}

// Test43117DefersTheRecipient: WeChat's 43117 for some users rests them:
// their recipients are deferred (counted once each in deferred:rest), not
// failed, and they are sent once the fake lifts its per-user limit; the
// run then completes with every recipient sent.
func Test43117DefersTheRecipient(t *testing.T) {
	ids := openIDs(30)
	limited := ids[:5]
	terminal := map[string]int{}
	for _, o := range limited {
		terminal[o] = 43117
	}
	b := setup(t, wechattest.Config{Terminal: terminal})
	p := b.process(t, procConfig{protectRecheck: 200 * time.Millisecond,
		rules: []retry.Rule{{Code: 43117, Class: retry.ClassRest, Delay: retry.Fixed(300 * time.Millisecond)}}})
	c := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, ids)
	run, err := p.producer.Start(t.Context(), c.ID)
	require.NoError(t, err)

	require.Eventually(t, func() bool {
		rec, err := b.store.Run(t.Context(), c.ID, run)
		require.NoError(t, err)
		return rec.Counters["sent"] == int64(len(ids)-len(limited)) && rec.Counters["deferred:rest"] == int64(len(limited))
	}, 20*time.Second, 20*time.Millisecond, "the limited users are deferred, the others sent")
	// They keep coming back, and meet 43117 again, while the limit lasts.
	calls := callsTo(b.fake)
	require.Eventually(t, func() bool {
		now := callsTo(b.fake)
		for _, o := range limited {
			if now[o] <= calls[o] {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "the deferred recipients are tried again after their rest")
	rec, err := b.store.Run(t.Context(), c.ID, run)
	require.NoError(t, err)
	require.Zero(t, rec.Counters["failed"], "43117 fails nobody")
	require.Equal(t, string(campaigns.StateRunning), rec.State)

	for _, o := range limited {
		require.NoError(t, b.fake.SetTerminal(o, 0))
	}
	rec = b.waitSettled(t, c.ID, run, 30*time.Second)
	b.truth(t, c, nil, run)
	require.Equal(t, string(campaigns.StateCompleted), rec.State)
	require.EqualValues(t, len(ids), rec.Counters["sent"])
	require.EqualValues(t, len(limited), rec.Counters["deferred:rest"], "each deferred recipient counted once")
}

// TestCapAcrossCampaignsAndProcesses: a cap of 2 a day; three campaigns
// to one list started together on three worker processes: each user gets
// exactly 2 messages at the fake, the third campaign's sends to them are
// deferred (or, for a campaign that skips, skipped with class capped),
// and each user's cap log holds the two runs that reached them.
func TestCapAcrossCampaignsAndProcesses(t *testing.T) {
	for _, overCap := range []string{account.OverCapDefer, account.OverCapSkip} {
		t.Run(overCap, func(t *testing.T) {
			ids := openIDs(60)
			b := setup(t, wechattest.Config{TemplateIDs: []string{"TPL_A", "TPL_B", "TPL_C"}})
			prot := account.Protection{Caps: []account.Cap{{Max: 2, Per: 24 * time.Hour}}, OverCap: overCap}
			var procs []*proc
			for i := range 3 {
				procs = append(procs, b.process(t, procConfig{rate: 200, name: fmt.Sprintf("w%d", i), protection: prot}))
			}
			var cs []*campaigns.Campaign
			for _, tpl := range []string{"TPL_A", "TPL_B", "TPL_C"} {
				cs = append(cs, b.fileCampaign(t, campaigns.KindTemplate, tpl, ids))
			}
			runs := make([]int, len(cs))
			var wg sync.WaitGroup
			for i, c := range cs {
				wg.Go(func() {
					var err error
					runs[i], err = procs[i].producer.Start(t.Context(), c.ID)
					require.NoError(t, err)
				})
			}
			wg.Wait()

			// Every user reaches 2 at the fake, and no more.
			require.Eventually(t, func() bool {
				got := deliveriesTo(b.fake)
				for _, o := range ids {
					if got[o] != 2 {
						return false
					}
				}
				return true
			}, 30*time.Second, 20*time.Millisecond, "each user gets two of the three")
			held := 0
			for i, c := range cs {
				rec, err := b.store.Run(t.Context(), c.ID, runs[i])
				require.NoError(t, err)
				if overCap == account.OverCapSkip {
					rec = b.waitSettled(t, c.ID, runs[i], 30*time.Second)
					held += int(rec.Counters["class:"+campaigns.ClassCapped])
					require.EqualValues(t, rec.Counters["skipped"], rec.Counters["class:"+campaigns.ClassCapped])
				} else {
					held += int(rec.Counters["deferred:cap"])
				}
				require.Zero(t, rec.Counters["failed"])
			}
			if overCap == account.OverCapDefer {
				require.Eventually(t, func() bool {
					held = 0
					for i, c := range cs {
						rec, err := b.store.Run(t.Context(), c.ID, runs[i])
						require.NoError(t, err)
						held += int(rec.Counters["deferred:cap"])
					}
					return held == len(ids)
				}, 20*time.Second, 20*time.Millisecond, "each user's third message is deferred")
			}
			require.Equal(t, len(ids), held, "one message per user held back")
			got := deliveriesTo(b.fake)
			for _, o := range ids {
				require.Equal(t, 2, got[o], o)
				log, err := b.store.CapLogMembers(t.Context(), wechattest.AppIDDefault, o)
				require.NoError(t, err)
				require.Len(t, log, 2, "%s's cap log: %v", o, log)
			}
			for i, c := range cs {
				if overCap == account.OverCapSkip {
					b.truth(t, c, nil, runs[i])
				}
			}
		})
	}
}

// TestCustomInsideTheWindow: the fake enforces the customer-service window
// (45015 outside it, 45047 past its 5 messages). A custom campaign that
// keeps to the window sends to the users who wrote 47 hours ago, skips
// those who wrote 49 hours ago and those who never did, with no call;
// campaigns to "users inside their window" reach the same users until
// their windows' five messages are used, and then nobody is called.
func TestCustomInsideTheWindow(t *testing.T) {
	ids := openIDs(25)
	fresh, stale := ids[:10], ids[10:20]
	now := time.Now()
	b := setup(t, wechattest.Config{CSWindow: true})
	for _, o := range fresh {
		require.NoError(t, b.fake.Interact(wechattest.AppIDDefault, o, wechattest.InteractMessage, now.Add(-47*time.Hour)))
		_, err := b.store.Interact(t.Context(), wechattest.AppIDDefault, o, now.Add(-47*time.Hour), 48*time.Hour, 5)
		require.NoError(t, err)
	}
	for _, o := range stale {
		require.NoError(t, b.fake.Interact(wechattest.AppIDDefault, o, wechattest.InteractMessage, now.Add(-49*time.Hour)))
		_, err := b.store.Interact(t.Context(), wechattest.AppIDDefault, o, now.Add(-49*time.Hour), 48*time.Hour, 5)
		require.NoError(t, err)
	}
	p := b.process(t, procConfig{})
	inWindow := true
	keep := func(c *campaigns.Campaign) { c.Protection = &campaigns.ProtectionSpec{CSWindow: &inWindow} }
	run := func(c *campaigns.Campaign) (int, rdb.RunRecord) {
		t.Helper()
		r, err := p.producer.Start(t.Context(), c.ID)
		require.NoError(t, err)
		return r, b.waitSettled(t, c.ID, r, 30*time.Second)
	}

	a := b.fileCampaign(t, campaigns.KindCustom, "", ids, keep)
	runA, rec := run(a)
	b.truth(t, a, nil, runA)
	require.EqualValues(t, len(fresh), rec.Counters["sent"])
	require.EqualValues(t, len(ids)-len(fresh), rec.Counters["class:"+campaigns.ClassWindow])
	calls := callsTo(b.fake)
	for _, o := range ids[10:] {
		require.Zero(t, calls[o], "no call for %s, outside the window", o)
	}
	outs := b.outcomes(t, a.ID, runA)
	require.Contains(t, outs[stale[0]].Detail, "last interaction 49h0m0s ago")
	require.Contains(t, outs[ids[24]].Detail, "no interaction recorded")

	// Four more, to the users inside their window: the fresh ones.
	for i := range 4 {
		c := b.fileCampaign(t, campaigns.KindCustom, "", nil, func(c *campaigns.Campaign) {
			c.Audience = campaigns.AudienceSpec{Source: campaigns.SourceWindow}
			c.Name = fmt.Sprintf("window %d", i)
		})
		_, rec := run(c)
		require.EqualValues(t, len(fresh), rec.Size, "campaign %d's audience", i)
		require.EqualValues(t, len(fresh), rec.Counters["sent"])
	}
	for _, o := range fresh {
		require.Len(t, b.fake.DeliveriesTo(o), 5, o)
	}
	// The windows' five messages are used: nobody is inside a window, and
	// a campaign that keeps to it calls nobody.
	c := b.fileCampaign(t, campaigns.KindCustom, "", nil, func(c *campaigns.Campaign) {
		c.Audience = campaigns.AudienceSpec{Source: campaigns.SourceWindow}
	})
	_, rec = run(c)
	require.Zero(t, rec.Size)
	before := len(b.fake.Calls())
	last := b.fileCampaign(t, campaigns.KindCustom, "", fresh, keep)
	runLast, rec := run(last)
	require.EqualValues(t, len(fresh), rec.Counters["class:"+campaigns.ClassWindow])
	require.Equal(t, before, len(b.fake.Calls()), "no call once the windows' messages are used")
	require.Contains(t, b.outcomes(t, last.ID, runLast)[fresh[0]].Detail, "5 messages are used")
}
