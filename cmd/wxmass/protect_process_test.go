package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/truth"
	"github.com/wxmass/wxmass/wechat/wechattest"
	"github.com/wxmass/wxmass/worker"
)

// TestCapUnderKilledWorkers: an account capped at 2 messages a day, whose
// campaigns skip (or defer) a user over the cap; three template campaigns
// to one list of 1,500 users started together on three `wxmass worker`
// processes, one of which is killed with SIGKILL (and started again) four
// times during the runs. Each user gets exactly two messages at the fake,
// the third campaign's recipient is skipped with class capped (or
// deferred, with no outcome and no delivery), every recipient's outcome
// is true against the fake's record, and each user's cap log holds
// exactly the runs that reached them: the count does not drift.
//
// It does not run in parallel: its DB is the crash test's, which does.
func TestCapUnderKilledWorkers(t *testing.T) {
	for _, overCap := range []string{"skip", "defer"} {
		t.Run(overCap, func(t *testing.T) { capUnderKilledWorkers(t, overCap) })
	}
}

func capUnderKilledWorkers(t *testing.T, overCap string) {
	fake := wechattest.Start(t, wechattest.Config{TemplateIDs: []string{"TPL_A", "TPL_B", "TPL_C"}})
	dir := t.TempDir()
	accounts := filepath.Join(dir, "accounts.yaml")
	require.NoError(t, os.WriteFile(accounts, []byte(fmt.Sprintf(`accounts:
  - appid: %s
    appsecret_env: WXMASS_APPSECRET
    rate: {template: 2000}
    burst: {template: 200}
    protection:
      caps: [{max: 2, per: 24h}]
      over_cap: %s
`, wechattest.AppIDDefault, overCap)), 0o600))
	f := newFleet(t, redistest.DBCmdCrash, fake, "WXMASS_CONCURRENCY=40", "WXMASS_ACCOUNTS_FILE="+accounts)
	env := f.env[:0:0]
	for _, e := range f.env {
		if !strings.HasPrefix(e, "WXMASS_APPID=") {
			env = append(env, e)
		}
	}
	f.env = env
	for i := range 3 {
		f.start(t, i)
	}

	const n = 1500
	users := testOpenIDs("CAP", n)
	var ids []string
	var runs []int
	for _, tpl := range []string{"TPL_A", "TPL_B", "TPL_C"} {
		id := f.campaign(t, campaigns.KindTemplate, users)
		c, err := f.store.Get(t.Context(), id)
		require.NoError(t, err)
		c.Template.TemplateID = tpl
		_, err = f.store.Update(t.Context(), c)
		require.NoError(t, err)
		ids = append(ids, id)
	}
	for _, id := range ids {
		run, err := f.prod.Start(t.Context(), id)
		require.NoError(t, err)
		runs = append(runs, run)
	}
	settled := func() int64 {
		var s int64
		for i, id := range ids {
			s += f.settled(t, id, runs[i]).Settled()
		}
		return s
	}
	for k := 1; k <= 4; k++ {
		require.Eventually(t, func() bool { return settled() >= int64(k)*600 }, 2*time.Minute, 20*time.Millisecond)
		f.kill(t, k%3)
		f.start(t, k%3)
	}
	held := int64(0)
	for i, id := range ids {
		var rec rdb.RunRecord
		if overCap == "skip" {
			rec = f.waitSettled(t, id, runs[i], 3*time.Minute)
			require.Equal(t, string(campaigns.StateCompleted), rec.State)
			require.EqualValues(t, rec.Counters["skipped"], rec.Counters["class:"+campaigns.ClassCapped], "%v", rec.Counters)
			held += rec.Counters["class:"+campaigns.ClassCapped]
		} else {
			// The deferred wait a day: every other recipient settles.
			require.Eventually(t, func() bool {
				rec = f.settled(t, id, runs[i])
				return rec.Size > 0 && rec.Settled()+rec.Counters["deferred:"+campaigns.DeferCap] >= rec.Size
			}, 3*time.Minute, 100*time.Millisecond, "run %d settles but for its deferred recipients", i)
			require.Equal(t, string(campaigns.StateRunning), rec.State)
			require.Zero(t, rec.Counters["skipped"])
			held += rec.Counters["deferred:"+campaigns.DeferCap]
		}
		if rec.Counters["failed"] > 0 {
			require.NoError(t, f.store.ScanOutcomes(t.Context(), id, runs[i], func(openid string, o campaigns.Outcome) error {
				if o.Status == campaigns.OutcomeFailed {
					t.Logf("%s failed: %+v", openid, o)
				}
				return nil
			}))
		}
		require.Zero(t, rec.Counters["failed"], "%v", rec.Counters)
		require.Zero(t, rec.Counters["unknown"])

		r, err := truth.Load(t.Context(), f.store, id, runs[i])
		require.NoError(t, err)
		ours := map[string]bool{}
		for _, o := range users {
			ours[worker.ClientMsgID(id, runs[i], o)] = true
		}
		for _, o := range users {
			if _, ok := r.Outcomes[o]; !ok {
				for _, d := range fake.DeliveriesTo(o) {
					require.False(t, ours[d.ClientMsgID], "%s, deferred, got run %d's message", o, i)
				}
			}
		}
		rep := truth.Check(fake, truth.Options{API: campaigns.KindTemplate.API(), AppID: wechattest.AppIDDefault,
			Keep: func(cmid string) bool { return ours[cmid] },
			Killed: func(proc string) bool {
				pid, err := strconv.Atoi(proc[strings.LastIndexByte(proc, ':')+1:])
				f.mu.Lock()
				defer f.mu.Unlock()
				return err == nil && f.killed[pid]
			}}, r)
		t.Log(rep)
		truth.Require(t, rep)
	}
	require.EqualValues(t, n, held, "one message per user held back")

	sentBy := map[string][]string{}
	for i, id := range ids {
		require.NoError(t, f.store.ScanOutcomes(t.Context(), id, runs[i], func(openid string, o campaigns.Outcome) error {
			if o.Status == campaigns.OutcomeSent || o.Status == campaigns.OutcomeDelivered {
				sentBy[openid] = append(sentBy[openid], campaigns.AdmitMember(id, runs[i]))
			}
			return nil
		}))
	}
	for _, o := range users {
		require.Len(t, fake.DeliveriesTo(o), 2, o)
		log, err := f.store.CapLogMembers(t.Context(), wechattest.AppIDDefault, o)
		require.NoError(t, err)
		require.ElementsMatch(t, sentBy[o], log, "%s: the cap log holds the runs that reached the user", o)
	}
}
