package campaigns_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
)

// snapshot returns every key under the RDB's prefix with its DUMP.
func snapshot(t *testing.T, r *rdb.RDB) map[string]string {
	t.Helper()
	ctx := t.Context()
	out := map[string]string{}
	iter := r.Client().Scan(ctx, 0, r.Keys().Prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		v, err := r.Client().Dump(ctx, iter.Val()).Result()
		if err == redis.Nil {
			continue
		}
		require.NoError(t, err)
		out[iter.Val()] = v
	}
	require.NoError(t, iter.Err())
	return out
}

// finishedCampaign creates a file campaign of three recipients and runs it
// to completed: one sent with msgid, one unknown whose answer was lost (a
// lost note under the account), one failed; with an audit event.
func finishedCampaign(t *testing.T, s *campaigns.Store, msgid int64) *campaigns.Campaign {
	t.Helper()
	ctx := t.Context()
	c := fileCampaign("name")
	require.NoError(t, s.Create(ctx, c))
	csv := "openid,name\noAAAAAAAAAAAAAAAAAAAAAAA0001,a\noAAAAAAAAAAAAAAAAAAAAAAA0002,b\noAAAAAAAAAAAAAAAAAAAAAAA0003,c\n"
	_, err := s.UploadAudience(ctx, c.ID, strings.NewReader(csv), campaigns.FormatCSV)
	require.NoError(t, err)
	got, err := s.Get(ctx, c.ID)
	require.NoError(t, err)
	run, err := s.StartRun(ctx, got)
	require.NoError(t, err)
	for _, o := range []string{"oAAAAAAAAAAAAAAAAAAAAAAA0001", "oAAAAAAAAAAAAAAAAAAAAAAA0002"} {
		b, err := s.BeginAttempt(ctx, got, run, o, true, false)
		require.NoError(t, err)
		require.Equal(t, campaigns.BeginSend, b.Action)
	}
	require.NoError(t, s.EndAttempt(ctx, got, run, "oAAAAAAAAAAAAAAAAAAAAAAA0002", true))
	rec, err := s.RecordAll(ctx, got, run,
		campaigns.Settle{OpenID: "oAAAAAAAAAAAAAAAAAAAAAAA0001", Outcome: campaigns.Outcome{Status: "sent", MsgID: msgid}},
		campaigns.Settle{OpenID: "oAAAAAAAAAAAAAAAAAAAAAAA0002", Outcome: campaigns.Outcome{Status: "unknown"}},
		campaigns.Settle{OpenID: "oAAAAAAAAAAAAAAAAAAAAAAA0003", Outcome: campaigns.Outcome{Status: "failed", Code: 43101}},
	)
	require.NoError(t, err)
	require.Equal(t, "completed", rec.Finished)
	ok, err := s.RecordAudit(ctx, campaigns.AuditEvent{Campaign: c.ID, Action: "start", Key: "ops", Status: 200})
	require.NoError(t, err)
	require.True(t, ok)
	return got
}

// TestStoreDelete: deleting a finished campaign and a scheduled one removes
// every key of theirs (checked by a SCAN of the test's prefix), including
// their msgid index entries, lost notes, schedule index entry and fire
// claims, and leaves another campaign's keys as they were; deleting a live
// campaign is refused and changes nothing; an unknown one is ErrNotFound.
func TestStoreDelete(t *testing.T) {
	t.Parallel()
	st, r := newStore(t)
	s := st.WithClock(func() time.Time { return scheduleNow })
	ctx := t.Context()
	k := r.Keys()

	// Msgids in different shards of the index, so the deleted one's shard
	// empties and the kept one's stays.
	const doneMsgID, liveMsgID = 1000000001, 1000000002
	require.NotEqual(t, k.MsgIDIndex(doneMsgID), k.MsgIDIndex(liveMsgID))
	done := finishedCampaign(t, s, doneMsgID)
	lostKey := k.Lost(done.Account, "oAAAAAAAAAAAAAAAAAAAAAAA0002")
	require.EqualValues(t, 1, r.Client().Exists(ctx, lostKey).Val(), "the lost answer is noted")

	// A recurring campaign on its schedule, with a fire claimed (skipped).
	sched := inlineCampaign(&campaigns.Schedule{Cron: "*/5 * * * *"})
	require.NoError(t, s.Create(ctx, sched))
	require.NoError(t, s.Schedule(ctx, sched.ID))
	fires, err := s.NextFires(ctx, sched, 2)
	require.NoError(t, err)
	plan := sched.Schedule.Plan(fires[0], fires[0], time.Minute)
	plan.Start = false
	_, err = s.Fire(ctx, sched, plan)
	require.NoError(t, err)
	require.EqualValues(t, 1, r.Client().Exists(ctx, k.Fire(sched.ID, fires[0].UnixMilli())).Val())
	require.EqualValues(t, 1, r.Client().ZCard(ctx, k.Schedules()).Val())

	// A live campaign, one recipient settled, with its own msgid entry.
	live := fileCampaign()
	require.NoError(t, s.Create(ctx, live))
	_, err = s.UploadAudience(ctx, live.ID, strings.NewReader("openid\noAAAAAAAAAAAAAAAAAAAAAAA0001\noAAAAAAAAAAAAAAAAAAAAAAA0009\n"), campaigns.FormatCSV)
	require.NoError(t, err)
	liveGot, err := s.Get(ctx, live.ID)
	require.NoError(t, err)
	liveRun, err := s.StartRun(ctx, liveGot)
	require.NoError(t, err)
	_, err = s.Record(ctx, liveGot, liveRun, "oAAAAAAAAAAAAAAAAAAAAAAA0001", campaigns.Outcome{Status: "sent", MsgID: liveMsgID}, campaigns.RecordPlain)
	require.NoError(t, err)

	// Live states are refused and nothing changes.
	before := snapshot(t, r)
	var se *campaigns.StateError
	require.ErrorAs(t, s.Delete(ctx, live.ID), &se)
	require.Equal(t, campaigns.StateRunning, se.State)
	require.NoError(t, s.Pause(ctx, live.ID))
	paused := snapshot(t, r)
	require.ErrorAs(t, s.Delete(ctx, live.ID), &se)
	require.Equal(t, campaigns.StatePaused, se.State)
	require.Equal(t, paused, snapshot(t, r), "a refused delete changes nothing")
	require.NoError(t, s.Resume(ctx, live.ID))
	require.Len(t, snapshot(t, r), len(before))

	before = snapshot(t, r)
	require.NoError(t, s.Delete(ctx, done.ID))
	require.NoError(t, s.Delete(ctx, sched.ID))
	after := snapshot(t, r)

	gone := func(key string) bool {
		return strings.Contains(key, "{c:"+done.ID+"}") || strings.Contains(key, "{c:"+sched.ID+"}") ||
			key == lostKey || key == k.MsgIDIndex(doneMsgID) || key == k.Schedules()
	}
	for key := range before {
		if gone(key) {
			require.NotContains(t, after, key, "deleted with the campaigns")
			continue
		}
		require.Contains(t, after, key, "not theirs, kept")
		if key != k.Campaigns() {
			require.Equal(t, before[key], after[key], "%s is unchanged", key)
		}
	}
	require.Len(t, after, len(before)-countIf(before, gone))
	require.Greater(t, countIf(before, func(key string) bool { return strings.Contains(key, "{c:"+done.ID+"}") }), 8,
		"the finished campaign had its runs' keys, audience, audit trail")

	ids, total, err := s.List(ctx, 0, 100)
	require.NoError(t, err)
	require.Equal(t, []string{live.ID}, ids)
	require.EqualValues(t, 1, total)
	states, err := s.CountStates(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"running": 1}, states)
	_, _, _, ok, err := r.LookupMsgID(ctx, liveMsgID)
	require.NoError(t, err)
	require.True(t, ok, "the other campaign's msgid entry stays")

	require.ErrorIs(t, s.Delete(ctx, done.ID), campaigns.ErrNotFound)
	require.ErrorIs(t, s.Delete(ctx, "cnotthere0000"), campaigns.ErrNotFound)
	require.ErrorIs(t, s.Delete(ctx, "bad"), campaigns.ErrNotFound)
	_, err = s.Get(ctx, done.ID)
	require.ErrorIs(t, err, campaigns.ErrNotFound)
}

// TestStoreDeleteResumes: a delete cut short after marking the campaign
// deleting (as a crash would leave it) is finished by the next delete.
func TestStoreDeleteResumes(t *testing.T) {
	t.Parallel()
	s, r := newStore(t)
	ctx := t.Context()
	done := finishedCampaign(t, s, 1000000003)
	require.NoError(t, r.Client().HSet(ctx, r.Keys().Campaign(done.ID), "state", rdb.StateDeleting).Err())
	_, err := s.Get(ctx, done.ID)
	require.ErrorIs(t, err, campaigns.ErrNotFound, "a campaign being deleted is gone for its readers")
	require.NoError(t, s.Delete(ctx, done.ID))
	for key := range snapshot(t, r) {
		require.NotContains(t, key, done.ID)
	}
}

func countIf(m map[string]string, f func(string) bool) int {
	n := 0
	for k := range m {
		if f(k) {
			n++
		}
	}
	return n
}

// TestStoreDeleteRemovesArchives: deleting a campaign whose run was
// archived removes its archive file with every key of it (SCAN of the
// test's prefix), and deleting one whose archive directory was never
// created needs no archive.
func TestStoreDeleteRemovesArchives(t *testing.T) {
	t.Parallel()
	s, r, dir := archiveStore(t)
	ctx := t.Context()
	done := finishedCampaign(t, s, 1000000004)
	res, err := s.ArchiveRun(ctx, done.ID, 1)
	require.NoError(t, err)
	require.True(t, res.Dropped)
	require.NotEmpty(t, archiveFilesUnder(t, dir))
	require.NoError(t, s.Delete(ctx, done.ID))
	for key := range snapshot(t, r) {
		require.NotContains(t, key, done.ID)
	}
	require.Empty(t, archiveFilesUnder(t, dir))

	plain, _ := newStore(t)
	other := finishedCampaign(t, plain, 1000000005)
	require.NoError(t, plain.Delete(ctx, other.ID), "no archive, none needed")
}

func archiveFilesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(path, ".attrs") {
			out = append(out, path)
		}
		return err
	}))
	return out
}
