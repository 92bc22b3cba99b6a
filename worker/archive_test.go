package worker_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "gocloud.dev/blob/fileblob"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/wechat/wechattest"
	"github.com/wxmass/wxmass/worker"
)

// TestArchiverAgesFinishedRuns: a template run of 1,500 recipients is sent
// through the fake and checked against its record; then the reconciler's
// lease holder, on a clock moved forward, removes the run's msgid index
// entries once its receipt window has passed (a receipt then changes
// nothing), archives it once --archive-after has passed (the outcomes read
// back from the archive are the ones sent, and each recipient's truth
// still holds against the fake's record), and removes its archive once the
// retention has passed; wxmass_archived_runs_total counts each.
func TestArchiverAgesFinishedRuns(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{})
	dir := t.TempDir()
	a, err := campaigns.OpenArchive("file://" + filepath.ToSlash(dir))
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	rm := newReconcilerMetrics(t)
	p := b.process(t, procConfig{reconcile: 100 * time.Millisecond, metrics: rm.m, archive: a, now: now,
		archiveCfg: worker.Config{ArchiveAfter: 24 * time.Hour, ReceiptWindow: time.Hour, Retention: 48 * time.Hour, ArchiveInterval: 100 * time.Millisecond}})
	c := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, openIDs(1500))
	run, err := p.producer.Start(t.Context(), c.ID)
	require.NoError(t, err)
	b.waitSettled(t, c.ID, run, 60*time.Second)
	b.truth(t, c, nil, run)
	sent := b.outcomes(t, c.ID, run)
	var msgid int64
	var openid string
	for o, out := range sent {
		if out.MsgID != 0 {
			msgid, openid = out.MsgID, o
			break
		}
	}
	require.NotZero(t, msgid)
	state := func() string {
		ra, err := b.rdb.GetRunArchive(t.Context(), c.ID, run)
		require.NoError(t, err)
		if ra.MsgIDsDropped && ra.Archive == "" {
			return "msgids"
		}
		return ra.Archive
	}
	runs := func(action string) float64 {
		mfs, err := rm.reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "wxmass_archived_runs_total" {
				for _, m := range mf.GetMetric() {
					if m.GetLabel()[0].GetValue() == action {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return 0
	}
	require.Never(t, func() bool { return state() != "" }, 500*time.Millisecond, 50*time.Millisecond, "a fresh run is left alone")

	offset.Store(int64(2 * time.Hour))
	require.Eventually(t, func() bool { return state() == "msgids" }, 10*time.Second, 50*time.Millisecond)
	rr, err := b.store.ApplyReceipt(t.Context(), msgid, openid, true, "")
	require.NoError(t, err)
	require.False(t, rr.Found, "a receipt after the receipt window is ignored")
	require.Equal(t, sent, b.outcomes(t, c.ID, run))

	offset.Store(int64(25 * time.Hour))
	require.Eventually(t, func() bool { return state() == campaigns.ArchiveDone }, 20*time.Second, 50*time.Millisecond)
	require.Zero(t, b.redis.Exists(t.Context(), b.rdb.Keys().Outcomes(c.ID, run)).Val())
	archived := b.store.WithArchive(a)
	got := map[string]campaigns.Outcome{}
	require.NoError(t, archived.ScanOutcomes(t.Context(), c.ID, run, func(o string, out campaigns.Outcome) error {
		got[o] = out
		return nil
	}))
	require.Equal(t, sent, got)
	bs := b.store
	b.store = archived
	b.truth(t, c, nil, run)
	b.store = bs

	offset.Store(int64(49 * time.Hour))
	require.Eventually(t, func() bool { return state() == campaigns.ArchiveExpired }, 10*time.Second, 50*time.Millisecond)
	err = archived.ScanOutcomes(t.Context(), c.ID, run, func(string, campaigns.Outcome) error { return nil })
	require.ErrorIs(t, err, campaigns.ErrRecipientsExpired)
	var files []string
	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasSuffix(path, ".attrs") {
			files = append(files, path)
		}
		return err
	}))
	require.Empty(t, files)
	require.Equal(t, []float64{1, 1, 1}, []float64{runs("msgids"), runs("archived"), runs("expired")})
}
