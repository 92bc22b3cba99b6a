package rdb_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redisconn"
	"github.com/wxmass/wxmass/internal/redistest"
)

// clusterBundle is one real 3-primary Redis Cluster shared by the subtests
// of TestCluster, and the client every subtest uses.
type clusterBundle struct {
	c *redis.ClusterClient
	// slots says which primary serves which hash slots.
	slots []redis.ClusterSlot
}

func setupCluster(t *testing.T) *clusterBundle {
	t.Helper()
	cl := redistest.StartCluster(t, 3)
	opt, err := redisconn.Parse(cl.URL())
	require.NoError(t, err)
	c, ok := opt.NewClient().(*redis.ClusterClient)
	require.True(t, ok, "redisconn makes a *redis.ClusterClient of %s", cl.URL())
	t.Cleanup(func() { _ = c.Close() })
	slots, err := c.ClusterSlots(t.Context()).Result()
	require.NoError(t, err)
	require.Len(t, slots, 3)
	return &clusterBundle{c: c, slots: slots}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// rdb returns an RDB on the cluster with keys under a prefix of the test's
// own (no braces: the prefix must not change which part Redis hashes).
func (b *clusterBundle) rdb(t *testing.T) *rdb.RDB {
	return rdb.New(b.c, "wxc:"+unsafeName.ReplaceAllString(t.Name(), "_"))
}

// node returns the address of the primary that holds key.
func (b *clusterBundle) node(t *testing.T, key string) string {
	t.Helper()
	slot, err := b.c.ClusterKeySlot(t.Context(), key).Result()
	require.NoError(t, err)
	for _, s := range b.slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) {
			return s.Nodes[0].Addr
		}
	}
	t.Fatalf("no node serves slot %d", slot)
	return ""
}

// spread returns n names made by name(i), i = 0, 1, ..., whose keys (by
// key(name)) lie on n different primaries (n <= 3), so that a test of them
// crosses nodes.
func (b *clusterBundle) spread(t *testing.T, n int, name func(i int) string, key func(string) string) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	for i := 0; len(out) < n; i++ {
		require.Less(t, i, 1000, "no names spread over %d nodes", n)
		nm := name(i)
		if node := b.node(t, key(nm)); !seen[node] {
			seen[node] = true
			out = append(out, nm)
		}
	}
	return out
}

// TestCluster runs wxmass's Redis operations against a real Redis Cluster
// through the client redisconn builds. Every key of a script or multi-key
// command must be in one hash slot there, and every command must reach the
// node that serves its key, or the command fails (CROSSSLOT, or a script's
// "non local key"): the ClusterIsStrict subtest shows that the cluster does
// refuse such commands, so each other subtest passing proves its
// operations' keys are laid out right. Campaigns, accounts and buckets are
// spread over the three primaries.
func TestCluster(t *testing.T) {
	t.Parallel()
	b := setupCluster(t)

	t.Run("ClusterIsStrict", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		r := b.rdb(t)
		ids := b.spread(t, 2, func(i int) string { return fmt.Sprint("c", i) }, r.Keys().Campaign)
		k1, k2 := r.Keys().Campaign(ids[0]), r.Keys().Campaign(ids[1])

		// A script whose KEYS span slots.
		get := redis.NewScript(`return redis.call('GET', KEYS[1])`)
		err := get.Run(ctx, b.c, []string{k1, k2}).Err()
		require.ErrorContains(t, err, "CROSSSLOT")
		// A multi-key command across slots.
		require.ErrorContains(t, b.c.Del(ctx, k1, k2).Err(), "CROSSSLOT")
		// A script that writes a key it was not given, on another node.
		set := redis.NewScript(`return redis.call('SET', ARGV[1], 'x')`)
		err = set.Run(ctx, b.c, []string{k1}, k2).Err()
		require.Error(t, err)
		require.Contains(t, err.Error(), "non local key")
		// The same key without the campaign's hash tag is elsewhere: a
		// script over a campaign's keys relies on the tag.
		untagged := strings.NewReplacer("{", "", "}", "").Replace(k1)
		require.NotEqual(t, b.node(t, k1), b.node(t, untagged+"x"), "pick another suffix if this collides")

		// A prefix with "{}" unties a campaign's keys: CheckPrefix refuses
		// it, and this is why.
		require.Error(t, rdb.CheckPrefix("bad{}"))
		bad := rdb.New(b.c, "bad{}")
		require.NoError(t, bad.CreateCampaign(ctx, "c1", []byte(`{}`), "draft", timeNow()))
		_, _, err = bad.AppendAudience(ctx, "c1", []rdb.AudienceEntry{{OpenID: "o"}}, "draft")
		require.ErrorContains(t, err, "CROSSSLOT")
	})

	t.Run("CampaignStore", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		r := b.rdb(t)
		s := campaigns.NewStore(r)

		// Campaign ids are random: create until three land on three nodes.
		var cs []*campaigns.Campaign
		nodes := map[string]bool{}
		for i := 0; len(cs) < 3; i++ {
			require.Less(t, i, 200)
			c := &campaigns.Campaign{
				Name: "orders", Account: "wx00000000000fake1", Kind: campaigns.KindTemplate,
				Template: &campaigns.TemplateSpec{TemplateID: "TPL", Data: map[string]string{"thing1": "{{.name}}"}},
				Audience: campaigns.AudienceSpec{Source: campaigns.SourceFile, Variables: []string{"name"}},
			}
			require.NoError(t, s.Create(ctx, c))
			if n := b.node(t, r.Keys().Campaign(c.ID)); !nodes[n] {
				nodes[n] = true
				cs = append(cs, c)
			}
		}
		for i, c := range cs {
			var csv strings.Builder
			csv.WriteString("openid,name\n")
			for j := range 5 + i {
				fmt.Fprintf(&csv, "%s,n%d\n", openID(j), j)
			}
			fmt.Fprintf(&csv, "%s,dup\n", openID(0))
			res, err := s.UploadAudience(ctx, c.ID, strings.NewReader(csv.String()), campaigns.FormatCSV)
			require.NoError(t, err)
			require.Equal(t, 5+i, res.Stored)

			got, err := s.Get(ctx, c.ID)
			require.NoError(t, err)
			run, err := s.StartRun(ctx, got)
			require.NoError(t, err)
			require.Equal(t, 1, run)
			rec, err := s.Run(ctx, c.ID, run)
			require.NoError(t, err)
			require.EqualValues(t, 5+i, rec.Size)
			require.Equal(t, "running", rec.State)
			require.NoError(t, s.Pause(ctx, c.ID))
			require.NoError(t, s.Resume(ctx, c.ID))
		}
		// A cancel stops the live run; settling it (never attempted:
		// cancelled) ends it, all in the campaign's slot.
		stopped, run, err := s.Cancel(ctx, cs[0].ID)
		require.NoError(t, err)
		require.True(t, stopped)
		res, err := s.SettleStopped(ctx, cs[0], run)
		require.NoError(t, err)
		require.Equal(t, "cancelled", res.Finished)
		require.Equal(t, 5, res.New)

		ids, total, err := r.ListCampaigns(ctx, 0, 100)
		require.NoError(t, err)
		require.GreaterOrEqual(t, total, int64(3))
		require.Subset(t, ids, []string{cs[0].ID, cs[1].ID, cs[2].ID})
		states, err := r.CountCampaignStates(ctx)
		require.NoError(t, err)
		require.EqualValues(t, 1, states["cancelled"])
		require.EqualValues(t, 2, states["running"])
	})

	t.Run("RunLifecycle", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		r := b.rdb(t)
		for _, id := range b.spread(t, 3, func(i int) string { return fmt.Sprint("c", i) }, r.Keys().Campaign) {
			require.NoError(t, r.CreateCampaign(ctx, id, []byte(`{}`), "draft", timeNow()))
			require.NoError(t, r.UpdateCampaign(ctx, id, []byte(`{"v":2}`), "", "draft"))
			_, _, err := r.AppendAudienceStaging(ctx, id, []rdb.AudienceEntry{{OpenID: "a"}, {OpenID: "b"}}, "draft")
			require.NoError(t, err)
			require.NoError(t, r.CommitAudience(ctx, id, []byte(`{"v":3}`), "draft"))
			_, _, err = r.AppendAudienceStaging(ctx, id, []rdb.AudienceEntry{{OpenID: "c"}}, "draft")
			require.NoError(t, err)
			require.NoError(t, r.DropStagedAudience(ctx, id))
			n, err := r.AudienceLen(ctx, id)
			require.NoError(t, err)
			require.EqualValues(t, 2, n)

			// A run sized by its launch: StartRun writes the run's hash, a
			// key it derives from the campaign's in the same slot.
			run, err := r.StartRun(ctx, id, "running", "running", -1, "", "draft")
			require.NoError(t, err)
			require.NoError(t, r.ResetRunAudience(ctx, id, run))
			require.NoError(t, r.AppendRunAudience(ctx, id, run, []string{"f1", "f2", "f3"}))
			fin, err := r.SetRunSize(ctx, id, run, 3, r.Keys().RunAudience(id, run), "completed")
			require.NoError(t, err)
			require.Empty(t, fin)
			require.NoError(t, r.MarkExpanded(ctx, id, run, 3))
			rec, err := r.GetRun(ctx, id, run)
			require.NoError(t, err)
			require.EqualValues(t, 3, rec.Size)
			require.EqualValues(t, 3, rec.Expanded)
			openids, err := r.AudienceRange(ctx, rec.Audience, 0, -1)
			require.NoError(t, err)
			require.Equal(t, []string{"f1", "f2", "f3"}, openids)
			// A stop, then the settling of its recipients, all in the
			// campaign's slot (the audience list is the run's own).
			stopped, _, err := r.StopRun(ctx, id, run, "failed", "errcode 40037")
			require.NoError(t, err)
			require.True(t, stopped)
			res, err := r.SettleStopped(ctx, id, run, rec.Audience, 0, 2, "completed", time.Second)
			require.NoError(t, err)
			require.Equal(t, 3, res.New)
			require.Equal(t, "failed", res.Finished)
			st, err := r.GetRunState(ctx, id, run)
			require.NoError(t, err)
			require.Equal(t, "failed", st)

			// An empty audience completes the run at once.
			require.NoError(t, r.UpdateCampaign(ctx, id, nil, "draft", "failed"))
			run, err = r.StartRun(ctx, id, "running", "running", -1, "", "draft")
			require.NoError(t, err)
			fin, err = r.SetRunSize(ctx, id, run, 0, r.Keys().RunAudience(id, run), "completed")
			require.NoError(t, err)
			require.Equal(t, "completed", fin)
			c, err := r.GetCampaign(ctx, id)
			require.NoError(t, err)
			require.Equal(t, "completed", c.State)
			// The reconciler's finish runs over the run's keys in the
			// campaign's slot (a finished run stays as it is); its lease is
			// one key; its list of live campaigns reads every node.
			fin, err = r.FinishRun(ctx, id, run, "completed")
			require.NoError(t, err)
			require.Empty(t, fin)
			_, err = r.CampaignsInStates(ctx, "running", "paused", "stopping")
			require.NoError(t, err)
			held, err := r.TakeLease(ctx, "reconciler", "t1", time.Minute)
			require.NoError(t, err)
			require.True(t, held)
			require.NoError(t, r.ReleaseLease(ctx, "reconciler", "t1"))
			require.NoError(t, r.ClearAudience(ctx, id))
		}
	})

	t.Run("SendOpsAndReceipts", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		r := b.rdb(t)
		ids := b.spread(t, 3, func(i int) string { return fmt.Sprint("c", i) }, r.Keys().Campaign)
		const n = 60
		runs := map[string]int{}
		for _, id := range ids {
			entries := make([]rdb.AudienceEntry, n)
			for i := range entries {
				entries[i] = rdb.AudienceEntry{OpenID: fmt.Sprint("o", i), Vars: fmt.Sprintf(`{"i":%d}`, i)}
			}
			require.NoError(t, r.CreateCampaign(ctx, id, []byte(`{}`), "draft", timeNow()))
			_, _, err := r.AppendAudience(ctx, id, entries, "draft")
			require.NoError(t, err)
			runs[id], err = r.StartRun(ctx, id, "running", "running", n, r.Keys().Audience(id), "draft")
			require.NoError(t, err)
		}

		// Concurrent sends of the three campaigns: their state reads and
		// outcome records share pipelines that span the three nodes, and
		// the msgid index entries of template sends go to other slots
		// still.
		msgid := func(ci, i int) int64 { return int64(1<<50) + int64(ci*1000+i) }
		var wg sync.WaitGroup
		completed := make(chan string, 3*n)
		for ci, id := range ids {
			for i := range n {
				wg.Go(func() {
					openid := fmt.Sprint("o", i)
					b, err := r.BeginAttempt(ctx, id, runs[id], openid, rdb.BeginOptions{DoneState: "completed", Dedupe: true,
						Window: 9 * time.Minute, Grace: 3 * time.Second, Proc: "test", Vars: true})
					require.NoError(t, err)
					require.Equal(t, rdb.BeginSend, b.Action)
					require.Equal(t, fmt.Sprintf(`{"i":%d}`, i), b.Vars)
					rec, err := r.RecordOutcome(ctx, id, runs[id], "completed",
						rdb.Settle{OpenID: openid, Outcome: rdb.Outcome{Status: rdb.OutcomeSent, MsgID: msgid(ci, i)}, Mode: rdb.RecordAnswered})
					require.NoError(t, err)
					require.Equal(t, 1, rec.New)
					if rec.Finished != "" {
						completed <- id
					}
				})
			}
		}
		wg.Wait()
		close(completed)
		var done []string
		for id := range completed {
			done = append(done, id)
		}
		require.ElementsMatch(t, ids, done, "each run completes exactly once")

		for ci, id := range ids {
			rec, err := r.GetRun(ctx, id, runs[id])
			require.NoError(t, err)
			require.Equal(t, "completed", rec.State)
			require.EqualValues(t, n, rec.Counters["total"])
			has, err := r.HasOutcomes(ctx, id, runs[id], []string{"o0", "o59", "nobody"})
			require.NoError(t, err)
			require.Equal(t, []bool{true, true, false}, has)
			count := 0
			require.NoError(t, r.ScanOutcomes(ctx, id, runs[id], func(string, rdb.Outcome) error { count++; return nil }))
			require.Equal(t, n, count)
			tl, err := r.GetTimeline(ctx, id, runs[id])
			require.NoError(t, err)
			require.NotEmpty(t, tl)

			// Receipts: the msgid index (its own slot) leads to the outcome.
			res, err := r.ApplyReceipt(ctx, msgid(ci, 3), "o3", true, "")
			require.NoError(t, err)
			require.True(t, res.Found)
			require.True(t, res.Changed)
			require.Equal(t, id, res.Campaign)
			require.Equal(t, rdb.OutcomeDelivered, res.Status)
			res, err = r.ApplyReceipt(ctx, msgid(ci, 4), "o4", false, "user block")
			require.NoError(t, err)
			require.True(t, res.Changed)
			rec, err = r.GetRun(ctx, id, runs[id])
			require.NoError(t, err)
			require.EqualValues(t, 1, rec.Counters["delivered"])
			require.EqualValues(t, 1, rec.Counters["receipt:user block"])
			require.EqualValues(t, n-2, rec.Counters["sent"])
		}
		res, err := r.ApplyReceipt(ctx, 42, "o1", true, "")
		require.NoError(t, err)
		require.False(t, res.Found)

		// Every node forgets its scripts: the grouped record reloads them on
		// every node and runs once more.
		require.NoError(t, b.c.ScriptFlush(ctx).Err())
		for _, id := range ids {
			require.NoError(t, r.UpdateCampaign(ctx, id, nil, "draft", "completed"))
			run, err := r.StartRun(ctx, id, "running", "running", 1, r.Keys().Audience(id), "draft")
			require.NoError(t, err)
			wg.Go(func() {
				rec, err := r.RecordOutcome(ctx, id, run, "completed", rdb.Settle{OpenID: "o0", Outcome: rdb.Outcome{Status: rdb.OutcomeSkipped}})
				require.NoError(t, err)
				require.Equal(t, 1, rec.New)
				require.Equal(t, "completed", rec.Finished)
			})
		}
		wg.Wait()
	})

	t.Run("RateLimit", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		r := b.rdb(t)
		keys := b.spread(t, 3, func(i int) string { return fmt.Sprintf("wx%016d:message/template/send", i) }, r.Keys().RateBucket)
		for _, k := range keys {
			g, err := r.TakeRateTokens(ctx, k, 1, 5, 3)
			require.NoError(t, err)
			require.Equal(t, 3, g.Granted)
			g, err = r.TakeRateTokensDaily(ctx, k, 1, 5, 10, 4, time.Now().Add(time.Hour))
			require.NoError(t, err)
			require.Equal(t, 2, g.Granted, "what is left in the bucket")
			s, err := r.SlowRate(ctx, k, rdb.RateSlowdown{Cut: 0.5, Floor: 0.1, Hold: time.Second, Recovery: time.Minute})
			require.NoError(t, err)
			require.True(t, s.Applied)
			require.InDelta(t, 0.5, s.Factor, 0.01)
			p, err := r.PauseRate(ctx, k, time.Now().Add(time.Hour))
			require.NoError(t, err)
			require.Positive(t, p.For)
			info, err := r.RateInfo(ctx, k)
			require.NoError(t, err)
			require.True(t, info.Known)
			require.False(t, info.PausedUntil.IsZero())
			was, err := r.ResumeRate(ctx, k)
			require.NoError(t, err)
			require.True(t, was)
		}
	})

	t.Run("Token", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		r := b.rdb(t)
		apps := b.spread(t, 3, func(i int) string { return fmt.Sprintf("wx%016d", i) }, r.Keys().Token)
		for _, app := range apps {
			st, err := r.GetToken(ctx, app, "a", time.Minute, time.Second)
			require.NoError(t, err)
			require.Equal(t, rdb.TokenLeased, st.Status)
			require.NoError(t, r.StoreTokenError(ctx, app, "a", 40013, "invalid appid", time.Minute))
			st, err = r.GetToken(ctx, app, "b", time.Minute, time.Second)
			require.NoError(t, err)
			require.Equal(t, rdb.TokenFailed, st.Status)
			require.Equal(t, 40013, st.ErrCode)
			require.NoError(t, r.ClearTokenError(ctx, app))

			st, err = r.GetToken(ctx, app, "a", time.Minute, time.Second)
			require.NoError(t, err)
			require.Equal(t, rdb.TokenLeased, st.Status)
			stored, err := r.StoreToken(ctx, app, "a", "T-"+app, time.Hour, 5*time.Minute, 30*time.Second)
			require.NoError(t, err)
			require.True(t, stored.Stored)
			st, err = r.GetToken(ctx, app, "b", time.Minute, time.Second)
			require.NoError(t, err)
			require.Equal(t, rdb.TokenOK, st.Status)
			require.Equal(t, "T-"+app, st.Token)
			info, err := r.TokenInfo(ctx, app)
			require.NoError(t, err)
			require.True(t, info.Present)
			ok, err := r.InvalidateToken(ctx, app, "T-"+app)
			require.NoError(t, err)
			require.True(t, ok)
			st, err = r.GetToken(ctx, app, "c", time.Minute, time.Second)
			require.NoError(t, err)
			require.Equal(t, rdb.TokenLeased, st.Status)
			require.NoError(t, r.ReleaseTokenLease(ctx, app, "c"))
			require.NoError(t, r.DeleteAccount(ctx, app))
		}
	})

	t.Run("Schedule", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		r := b.rdb(t)
		t0 := time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)
		t1, t2 := t0.Add(time.Hour), t0.Add(2*time.Hour)
		for _, id := range b.spread(t, 3, func(i int) string { return fmt.Sprint("c", i) }, r.Keys().Campaign) {
			require.NoError(t, r.CreateCampaign(ctx, id, []byte(`{}`), "draft", timeNow()))
			_, _, err := r.AppendAudience(ctx, id, []rdb.AudienceEntry{{OpenID: openID(1)}}, "draft")
			require.NoError(t, err)
			_, _, err = r.ScheduleCampaign(ctx, id, t0, "scheduled", []string{"draft"}, onSchedule)
			require.NoError(t, err)

			due, err := r.DueSchedules(ctx, t0, 100)
			require.NoError(t, err)
			require.True(t, slices.ContainsFunc(due, func(d rdb.DueSchedule) bool { return d.ID == id && d.At.Equal(t0) }), "%v", due)

			// Two schedulers claim the same fire: one wins and starts the
			// run (the claim, the audience, the campaign and the new run's
			// hash are four keys of one slot).
			rep, err := r.ClaimFire(ctx, claim(id, t0, t1, true))
			require.NoError(t, err)
			require.Equal(t, rdb.FireStarted, rep.Status)
			require.Equal(t, 1, rep.Run)
			rep, err = r.ClaimFire(ctx, claim(id, t0, t1, true))
			require.NoError(t, err)
			require.Equal(t, rdb.FireStale, rep.Status)
			moved, err := r.MoveSchedule(ctx, id, t0, t1)
			require.NoError(t, err)
			require.True(t, moved)
			rec, err := r.GetRun(ctx, id, 1)
			require.NoError(t, err)
			require.EqualValues(t, 1, rec.Size)

			next, ok, err := r.NextFire(ctx, id)
			require.NoError(t, err)
			require.True(t, ok)
			require.True(t, next.Equal(t1))
			require.NoError(t, r.UnscheduleCampaign(ctx, id, "scheduled", "draft", onSchedule))
			_, _, err = r.ScheduleCampaign(ctx, id, t2, "scheduled", []string{"draft", "running"}, onSchedule)
			require.NoError(t, err)
			require.NoError(t, r.DropSchedule(ctx, id))
			_, ok, err = r.NextFire(ctx, id)
			require.NoError(t, err)
			require.False(t, ok)
		}
	})

	t.Run("KeysOfTheirOwn", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		r := b.rdb(t)
		for i := range 6 {
			key := fmt.Sprint("idem-", i)
			got, err := r.ClaimIdempotency(ctx, "create", key, "fp", time.Minute)
			require.NoError(t, err)
			require.Equal(t, rdb.IdempotencyNew, got.State)
			require.NoError(t, r.FinishIdempotency(ctx, "create", key, "fp", "c123", time.Minute))
			got, err = r.ClaimIdempotency(ctx, "create", key, "fp", time.Minute)
			require.NoError(t, err)
			require.Equal(t, rdb.IdempotencyDone, got.State)
			require.Equal(t, "c123", got.Result)
			require.NoError(t, r.ReleaseIdempotency(ctx, "create", key))

			first, err := r.FirstDelivery(ctx, key, time.Minute)
			require.NoError(t, err)
			require.True(t, first)
			first, err = r.FirstDelivery(ctx, key, time.Minute)
			require.NoError(t, err)
			require.False(t, first)
			require.NoError(t, r.ForgetDelivery(ctx, key))
		}
		k1, err := r.SigningKey(ctx)
		require.NoError(t, err)
		k2, err := r.SigningKey(ctx)
		require.NoError(t, err)
		require.Equal(t, k1, k2)
	})

	t.Run("Events", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		r := b.rdb(t)
		sub := r.Subscribe(ctx)
		defer sub.Close()
		_, err := sub.Receive(ctx) // subscription confirmation
		require.NoError(t, err)
		// Published through whichever node, the event reaches the
		// subscriber.
		for _, id := range b.spread(t, 3, func(i int) string { return fmt.Sprint("c", i) }, r.Keys().Campaign) {
			r.Announce(ctx, id)
			msg, err := sub.ReceiveMessage(ctx)
			require.NoError(t, err)
			require.Equal(t, id, msg.Payload)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		r := b.rdb(t)
		t0 := time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)
		live := []string{"running", "paused", "stopping"}
		// Every key under the test's prefix, on every primary.
		allKeys := func() []string {
			var mu sync.Mutex
			var out []string
			require.NoError(t, b.c.ForEachMaster(ctx, func(ctx context.Context, n *redis.Client) error {
				keys, err := n.Keys(ctx, r.Keys().Prefix+":*").Result()
				mu.Lock()
				out = append(out, keys...)
				mu.Unlock()
				return err
			}))
			return out
		}
		ids := b.spread(t, 3, func(i int) string { return fmt.Sprint("c", i) }, r.Keys().Campaign)
		for i, id := range ids {
			require.NoError(t, r.CreateCampaign(ctx, id, []byte(`{}`), "draft", timeNow()))
			_, _, err := r.AppendAudience(ctx, id, []rdb.AudienceEntry{{OpenID: openID(1)}, {OpenID: openID(2)}}, "draft")
			require.NoError(t, err)
			_, _, err = r.ScheduleCampaign(ctx, id, t0, "scheduled", []string{"draft"}, onSchedule)
			require.NoError(t, err)
			rep, err := r.ClaimFire(ctx, claim(id, t0, t0.Add(time.Hour), true))
			require.NoError(t, err)
			require.Equal(t, rdb.FireStarted, rep.Status)
			_, err = r.AppendAudit(ctx, rdb.AuditEvent{Campaign: id, Action: "start", Key: "alice", Status: 202, At: timeNow()}, 10)
			require.NoError(t, err)

			var se *rdb.StateError
			require.ErrorAs(t, r.DeleteCampaign(ctx, id, "wxacct", live...), &se, "a running campaign is refused")
			require.Equal(t, "running", se.State)

			// One sent (a msgid index entry in its own slot), one whose
			// answer was lost (a note under the account's tag).
			msgid := int64(7000 + i)
			require.NoError(t, r.EndAttempts(ctx, id, 1, rdb.EndAttempt{OpenID: openID(2), Lost: true, Account: "wxacct"}))
			rec, err := r.RecordOutcomes(ctx, id, 1, "completed",
				rdb.Settle{OpenID: openID(1), Outcome: rdb.Outcome{Status: rdb.OutcomeSent, MsgID: msgid}},
				rdb.Settle{OpenID: openID(2), Outcome: rdb.Outcome{Status: rdb.OutcomeUnknown}})
			require.NoError(t, err)
			require.Equal(t, "completed", rec.Finished)
		}
		before := allKeys()
		for i, id := range ids[:2] {
			require.NoError(t, r.DeleteCampaign(ctx, id, "wxacct", live...))
			_, _, _, ok, err := r.LookupMsgID(ctx, int64(7000+i))
			require.NoError(t, err)
			require.False(t, ok, "the msgid entry of %s is gone", id)
			require.ErrorIs(t, r.DeleteCampaign(ctx, id, "wxacct", live...), rdb.ErrCampaignNotFound)
		}
		after := allKeys()
		for _, k := range after {
			require.NotContains(t, k, "{c:"+ids[0]+"}")
			require.NotContains(t, k, "{c:"+ids[1]+"}")
		}
		var kept []string
		for _, k := range before {
			if strings.Contains(k, "{c:"+ids[2]+"}") {
				kept = append(kept, k)
			}
		}
		require.Greater(t, len(kept), 5)
		require.Subset(t, after, kept, "the third campaign keeps its keys")
		_, _, _, ok, err := r.LookupMsgID(ctx, 7002)
		require.NoError(t, err)
		require.True(t, ok)
		require.Contains(t, after, r.Keys().Lost("wxacct", openID(2)), "the third campaign's lost note stays")
		listed, total, err := r.ListCampaigns(ctx, 0, 10)
		require.NoError(t, err)
		require.Equal(t, []string{ids[2]}, listed)
		require.EqualValues(t, 1, total)
		due, err := r.DueSchedules(ctx, t0.Add(24*time.Hour), 10)
		require.NoError(t, err)
		require.Len(t, due, 1)
		require.Equal(t, ids[2], due[0].ID)
	})

	t.Run("Audit", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		r := b.rdb(t)
		for _, id := range b.spread(t, 3, func(i int) string { return fmt.Sprint("c", i) }, r.Keys().Campaign) {
			_, err := r.AppendAudit(ctx, rdb.AuditEvent{Campaign: id, Action: "pause", At: timeNow()}, 10)
			require.ErrorIs(t, err, rdb.ErrCampaignNotFound)
			require.NoError(t, r.CreateCampaign(ctx, id, []byte(`{}`), "draft", timeNow()))
			for _, action := range []string{"update", "start"} {
				_, err := r.AppendAudit(ctx, rdb.AuditEvent{Campaign: id, Action: action, Key: "alice", Status: 200, At: timeNow()}, 10)
				require.NoError(t, err)
			}
			events, err := r.AuditEvents(ctx, id, "", 10)
			require.NoError(t, err)
			require.Len(t, events, 2)
			require.Equal(t, "start", events[0].Action)
			older, err := r.AuditEvents(ctx, id, events[0].ID, 10)
			require.NoError(t, err)
			require.Equal(t, []rdb.AuditEvent{events[1]}, older)
		}
	})
}

func TestCheckPrefix(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"", rdb.PrefixDefault, "wxmass:prod", "a-b_c.d"} {
		require.NoError(t, rdb.CheckPrefix(p), p)
	}
	for _, p := range []string{"{wx}", "wx{}", "wx{", "wx}"} {
		require.Error(t, rdb.CheckPrefix(p), p)
	}
}

// openID returns a well-formed openid numbered i.
func openID(i int) string { return fmt.Sprintf("oAAAAAAAAAAAAAAAAAAAAAAA%04d", i) }
