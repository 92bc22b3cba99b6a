package campaigns_test

import (
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "gocloud.dev/blob/fileblob"
	"golang.org/x/sync/errgroup"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
)

// archiveStore returns a Store archiving to a new directory, with a clock
// an hour ahead (a run is archived only after the dedupe window), its RDB
// and the directory.
func archiveStore(t *testing.T) (*campaigns.Store, *rdb.RDB, string) {
	t.Helper()
	s, r := newStore(t)
	dir := t.TempDir()
	a, err := campaigns.OpenArchive("file://" + filepath.ToSlash(dir))
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	return s.WithArchive(a).WithClock(func() time.Time { return time.Now().Add(time.Hour) }), r, dir
}

// memory is what Redis holds for one run, by MEMORY USAGE (all samples).
type memory struct {
	run      int64 // the run's keys: its hash, outcomes, attempts, counters, timeline, own audience
	msgids   int64 // the msgid index (only this test's campaign is under its prefix)
	audience int64 // the campaign's audience list and variables, which every run of it reads
}

func measure(t *testing.T, r *rdb.RDB, id string, run int) memory {
	t.Helper()
	ctx := t.Context()
	c := r.Client()
	usage := func(pattern string) int64 {
		var sum int64
		iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
		for iter.Next(ctx) {
			n, err := c.MemoryUsage(ctx, iter.Val(), 0).Result()
			require.NoError(t, err)
			sum += n
		}
		require.NoError(t, iter.Err())
		return sum
	}
	k := r.Keys()
	runKey := k.Run(id, run)
	return memory{
		run:      usage(runKey) + usage(runKey+":*"),
		msgids:   usage(k.Prefix + ":{msgid:*"),
		audience: usage(k.Audience(id)) + usage(k.AudienceVars(id)),
	}
}

// startBig creates a file campaign of n recipients with a variable each,
// starts it and begins every recipient's attempt.
func startBig(t *testing.T, s *campaigns.Store, n int) (*campaigns.Campaign, int, []string) {
	t.Helper()
	ctx := t.Context()
	c := fileCampaign("name")
	require.NoError(t, s.Create(ctx, c))
	openids := make([]string, n)
	var csv strings.Builder
	csv.WriteString("openid,name\n")
	for i := range openids {
		openids[i] = fmt.Sprintf("oA%026d", i)
		fmt.Fprintf(&csv, "%s,张三\n", openids[i])
	}
	_, err := s.UploadAudience(ctx, c.ID, strings.NewReader(csv.String()), campaigns.FormatCSV)
	require.NoError(t, err)
	got, err := s.Get(ctx, c.ID)
	require.NoError(t, err)
	run, err := s.StartRun(ctx, got)
	require.NoError(t, err)
	var g errgroup.Group
	g.SetLimit(64)
	for _, o := range openids {
		g.Go(func() error {
			_, err := s.BeginAttempt(ctx, got, run, o, true, false)
			return err
		})
	}
	require.NoError(t, g.Wait())
	return got, run, openids
}

// settle records outcomes for openids: two thirds sent with a msgid, a
// sixth failed, a sixth unknown.
func settle(t *testing.T, s *campaigns.Store, c *campaigns.Campaign, run int, openids []string, first int) {
	t.Helper()
	var batch []campaigns.Settle
	for i, o := range openids {
		var out campaigns.Outcome
		switch (first + i) % 6 {
		case 0, 1, 2, 3:
			out = campaigns.Outcome{Status: "sent", MsgID: int64(5_000_000_000 + first + i)}
		case 4:
			out = campaigns.Outcome{Status: "failed", Code: 43101, Class: "recipient", Detail: "user refused"}
		case 5:
			out = campaigns.Outcome{Status: "unknown", Detail: "answer lost"}
		}
		batch = append(batch, campaigns.Settle{OpenID: o, Outcome: out})
		if len(batch) == 500 || i == len(openids)-1 {
			_, err := s.RecordAll(t.Context(), c, run, batch...)
			require.NoError(t, err)
			batch = batch[:0]
		}
	}
}

// TestArchiveMemoryPerRecipient: a run of 20,000 recipients (each with a
// variable, an attempt record, two thirds sent with a msgid) holds at most
// 10 bytes per recipient in Redis once archived, by MEMORY USAGE over
// every key of the run and the msgid index; the figures of a live run
// (half settled), a finished run and an archived one are logged for the
// README's sizing.
func TestArchiveMemoryPerRecipient(t *testing.T) {
	t.Parallel()
	s, r, _ := archiveStore(t)
	ctx := t.Context()
	const n = 20000
	c, run, openids := startBig(t, s, n)
	settle(t, s, c, run, openids[:n/2], 0)
	live := measure(t, r, c.ID, run)
	settle(t, s, c, run, openids[n/2:], n/2)
	rec, err := s.Run(ctx, c.ID, run)
	require.NoError(t, err)
	require.Equal(t, "completed", rec.State)
	finished := measure(t, r, c.ID, run)

	res, err := s.ArchiveRun(ctx, c.ID, run)
	require.NoError(t, err)
	require.True(t, res.Dropped)
	archived := measure(t, r, c.ID, run)

	per := func(m memory) float64 { return float64(m.run+m.msgids) / n }
	t.Logf("Redis bytes per recipient of a run of %d (run keys + msgid index; the campaign's audience and variables apart):", n)
	t.Logf("  live, half settled: %6.1f (run %d B, msgid index %d B)", per(live), live.run, live.msgids)
	t.Logf("  finished:           %6.1f (run %d B, msgid index %d B)", per(finished), finished.run, finished.msgids)
	t.Logf("  archived:           %6.2f (run %d B, msgid index %d B)", per(archived), archived.run, archived.msgids)
	t.Logf("  campaign audience and variables (kept for its next runs, removed with the campaign): %.1f per recipient", float64(archived.audience)/n)
	t.Logf("  archive file: %d records, %d bytes (%.1f per recipient)", res.Records, res.Bytes, float64(res.Bytes)/n)
	require.LessOrEqual(t, per(archived), 10.0)
	require.Greater(t, per(finished), 100.0, "the measure sees the per-recipient keys")

	// The summary is intact.
	after, err := s.Run(ctx, c.ID, run)
	require.NoError(t, err)
	require.Equal(t, rec.Counters, after.Counters)
	require.Equal(t, rec.Finished, after.Finished)
}

// outcomesOf reads a run's outcomes through the Store.
func outcomesOf(t *testing.T, s *campaigns.Store, id string, run int) map[string]campaigns.Outcome {
	t.Helper()
	out := map[string]campaigns.Outcome{}
	require.NoError(t, s.ScanOutcomes(t.Context(), id, run, func(openid string, o campaigns.Outcome) error {
		out[openid] = o
		return nil
	}))
	return out
}

// TestArchiveRunCrashSafe: an archive cut short after its file was written
// (not recorded), or after it was recorded (keys not removed), is finished
// by the next ArchiveRun; a recorded file that is missing, cut short or
// holds fewer records than the run is never followed by the removal of
// the keys, and is written again by the next call. A run that is live is
// refused.
func TestArchiveRunCrashSafe(t *testing.T) {
	t.Parallel()
	s, r, dir := archiveStore(t)
	ctx := t.Context()
	k := r.Keys()
	c, run, openids := startBig(t, s, 600)
	_, err := s.ArchiveRun(ctx, c.ID, run)
	require.ErrorIs(t, err, campaigns.ErrRunNotSettled, "a live run is not archived")
	settle(t, s, c, run, openids, 0)
	want := outcomesOf(t, s, c.ID, run)
	outcomesKept := func() bool { return r.Client().Exists(ctx, k.Outcomes(c.ID, run)).Val() == 1 }

	// Cut after the write: nothing recorded, the next call writes again.
	key, err := s.WriteArchiveOnly(ctx, c.ID, run)
	require.NoError(t, err)
	file := filepath.Join(dir, filepath.FromSlash(key))
	require.FileExists(t, file)
	ra, err := r.GetRunArchive(ctx, c.ID, run)
	require.NoError(t, err)
	require.Empty(t, ra.Archive)
	require.True(t, outcomesKept())

	// Recorded, keys not removed; then the file is damaged in three ways:
	// each time the keys stay, and the next call writes it again.
	damage := []struct {
		name string
		do   func()
	}{
		{"missing", func() { require.NoError(t, os.Remove(file)) }},
		{"cut short", func() {
			raw, err := os.ReadFile(file)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(file, raw[:len(raw)/2], 0o600))
		}},
		{"fewer records", func() {
			f, err := os.Create(file)
			require.NoError(t, err)
			zw := gzip.NewWriter(f)
			_, err = fmt.Fprintf(zw, `{"format":%q,"version":1,"campaign":%q,"run":1,"size":600}`+"\n"+
				`{"openid":%q,"status":"sent","at_ms":1}`+"\n"+`{"end":true,"records":1}`+"\n", campaigns.ArchiveFormat, c.ID, openids[0])
			require.NoError(t, err)
			require.NoError(t, zw.Close())
			require.NoError(t, f.Close())
		}},
	}
	for _, d := range damage {
		_, err := s.WriteArchiveOnly(ctx, c.ID, run)
		require.NoError(t, err)
		require.NoError(t, r.MarkArchiveWritten(ctx, c.ID, run, key, 600, 1))
		d.do()
		_, err = s.ArchiveRun(ctx, c.ID, run)
		require.ErrorIs(t, err, campaigns.ErrArchiveIncomplete, d.name)
		require.True(t, outcomesKept(), "%s: the keys stay", d.name)
		require.Equal(t, want, outcomesOf(t, s, c.ID, run), d.name)
		ra, err := r.GetRunArchive(ctx, c.ID, run)
		require.NoError(t, err)
		require.Empty(t, ra.Archive, "%s: the run is to be archived again", d.name)
	}

	// Recorded and intact, keys not removed (cut before the removal): the
	// next call removes them.
	_, err = s.WriteArchiveOnly(ctx, c.ID, run)
	require.NoError(t, err)
	require.NoError(t, r.MarkArchiveWritten(ctx, c.ID, run, key, 600, 1))
	res, err := s.ArchiveRun(ctx, c.ID, run)
	require.NoError(t, err)
	require.False(t, res.Written)
	require.True(t, res.Dropped)
	require.False(t, outcomesKept())
	require.Equal(t, want, outcomesOf(t, s, c.ID, run), "read back from the archive")
}
