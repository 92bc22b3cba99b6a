package api_test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "gocloud.dev/blob/fileblob"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
)

// archiveSetup is setup with a Store that archives to a new directory. It
// returns the bundle, the directory and a copy of the server's Store whose
// clock is an hour ahead, to archive runs that have just ended (a run is
// archived only after the dedupe window).
func archiveSetup(t *testing.T) (*testBundle, string, *campaigns.Store) {
	t.Helper()
	dir := t.TempDir()
	a, err := campaigns.OpenArchive("file://" + filepath.ToSlash(dir))
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Close() })
	var store *campaigns.Store
	b := setup(t, func(c *api.Config) {
		c.Store = c.Store.WithArchive(a)
		store = c.Store
		// The producer (retry runs) reads through the same Store.
		client, err := producer.NewClient(redistest.Client(t, redistest.DBAPI))
		require.NoError(t, err)
		t.Cleanup(func() { _ = client.Close() })
		reg, err := account.NewRegistry(&account.Account{AppID: appID, Default: ratelimit.Limit{Rate: 10, Burst: 1}})
		require.NoError(t, err)
		c.Producer = producer.New(client.Client, store, reg, nil, producer.Config{})
	})
	b.store = store
	return b, dir, store.WithClock(func() time.Time { return time.Now().Add(time.Hour) })
}

// archiveFiles lists the files under dir, but the bucket's attribute files.
func archiveFiles(t *testing.T, dir string) []string {
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

// TestArchivedRunAnswersAsBefore: a finished run of 1,500 recipients (sent
// with msgids, delivered, failed by errcode, unknown, skipped) is archived;
// its report JSON, its HTML page and its CSV export (no filter, status,
// errcode, both, and a filter matching nothing) are byte for byte what
// they were before, and its outcomes, attempts and msgid index entries
// are gone from Redis. A receipt for one of its msgids then changes
// nothing. Retry-failed of the archived run starts a run of exactly its
// failed recipients. Once retention removes its archive, the export and
// a retry of it answer 410 recipients_expired and the report says
// "recipients":"expired"; the page still shows the summary. Deleting the
// campaign is refused while its retry run is live, and once that has
// settled and been archived too, removes every key and every archive file.
func TestArchivedRunAnswersAsBefore(t *testing.T) {
	t.Parallel()
	b, dir, archiver := archiveSetup(t)
	ctx := t.Context()
	const n = 1500
	openids := make([]string, n)
	for i := range openids {
		openids[i] = fmt.Sprintf("oTX%025d", i+1)
	}
	a := b.json(t, "POST", "/v1/campaigns", strings.Replace(inlineCampaign,
		`["oTX0000000000000000000000001","oTX0000000000000000000000002"]`, `["`+strings.Join(openids, `","`)+`"]`, 1))
	require.Equal(t, http.StatusCreated, a.status, a.raw)
	id := a.body["id"].(string)
	require.Equal(t, http.StatusAccepted, b.json(t, "POST", "/v1/campaigns/"+id+"/start", "").status)
	var settles []rdb.Settle
	var failed []string
	for i, openid := range openids {
		var o rdb.Outcome
		switch i % 6 {
		case 0, 1:
			o = rdb.Outcome{Status: rdb.OutcomeSent, MsgID: int64(1_000_000 + i)}
		case 2:
			o = rdb.Outcome{Status: rdb.OutcomeFailed, Code: 43004, Class: "recipient", Detail: "user unfollowed, a|b"}
			failed = append(failed, openid)
		case 3:
			o = rdb.Outcome{Status: rdb.OutcomeFailed, Code: -1, Class: "exhausted", Detail: "system busy"}
			failed = append(failed, openid)
		case 4:
			o = rdb.Outcome{Status: rdb.OutcomeUnknown, Detail: "answer lost: WeChat may have delivered it"}
		case 5:
			o = rdb.Outcome{Status: rdb.OutcomeSkipped, Detail: "=cmd"}
		}
		settles = append(settles, rdb.Settle{OpenID: openid, Outcome: o})
	}
	for i := 0; i < n; i += 500 {
		_, err := b.rdb.RecordOutcomes(ctx, id, 1, "completed", settles[i:i+500]...)
		require.NoError(t, err)
	}
	// A receipt turns one sent into delivered before the archive.
	_, err := b.store.ApplyReceipt(ctx, 1_000_000, openids[0], true, "")
	require.NoError(t, err)

	run := "/v1/campaigns/" + id + "/runs/1"
	paths := []string{run + "/report", run + "/report.html", run + "/outcomes.csv", run + "/outcomes.csv?status=failed",
		run + "/outcomes.csv?errcode=43004", run + "/outcomes.csv?status=failed&errcode=43004", run + "/outcomes.csv?status=unknown",
		run + "/outcomes.csv?status=delivered", run + "/outcomes.csv?errcode=45015"}
	before := map[string]string{}
	for _, p := range paths {
		res := b.raw(t, p)
		require.Equal(t, http.StatusOK, res.status, p)
		before[p] = res.body
	}
	require.Len(t, strings.Split(strings.TrimSpace(before[run+"/outcomes.csv"]), "\n"), n+1)

	res, err := archiver.ArchiveRun(ctx, id, 1)
	require.NoError(t, err)
	require.True(t, res.Written)
	require.True(t, res.Dropped)
	require.EqualValues(t, n, res.Records)
	keys := b.rdb.Keys()
	for _, k := range []string{keys.Outcomes(id, 1), keys.Attempts(id, 1)} {
		require.Zero(t, b.rdb.Client().Exists(ctx, k).Val(), k)
	}
	_, _, _, found, err := b.rdb.LookupMsgID(ctx, 1_000_001)
	require.NoError(t, err)
	require.False(t, found, "the msgid index entries of an archived run are gone")
	for _, p := range paths {
		res := b.raw(t, p)
		require.Equal(t, http.StatusOK, res.status, p)
		require.Equal(t, before[p], res.body, "%s differs after the archive", p)
	}
	// Archiving again changes nothing.
	res, err = archiver.ArchiveRun(ctx, id, 1)
	require.NoError(t, err)
	require.False(t, res.Written || res.Dropped)

	// A receipt for an archived run is ignored.
	rr, err := b.store.ApplyReceipt(ctx, 1_000_001, openids[1], true, "")
	require.NoError(t, err)
	require.False(t, rr.Found)
	require.Equal(t, before[run+"/outcomes.csv"], b.raw(t, run+"/outcomes.csv").body)

	// Retry-failed of the archived run: exactly its failed recipients.
	r := b.json(t, "POST", run+"/retry", "")
	require.Equal(t, http.StatusAccepted, r.status, r.raw)
	require.EqualValues(t, len(failed), r.body["size"], r.raw)
	got, err := b.rdb.AudienceRange(ctx, keys.RunAudience(id, 2), 0, -1)
	require.NoError(t, err)
	require.ElementsMatch(t, failed, got)

	// Retention.
	require.NoError(t, archiver.ExpireArchive(ctx, id, 1))
	gone := b.json(t, "GET", run+"/outcomes.csv", "")
	require.Equal(t, http.StatusGone, gone.status, gone.raw)
	require.Equal(t, api.CodeRecipientsExpired, gone.errCode())
	rep := b.json(t, "GET", run+"/report", "")
	require.Equal(t, http.StatusOK, rep.status)
	require.Equal(t, "expired", rep.body["recipients"])
	require.Equal(t, before[run+"/report"], strings.Replace(rep.raw, `,"recipients":"expired"`, "", 1), "the summary is kept")
	require.Equal(t, http.StatusOK, b.raw(t, run+"/report.html").status)
	require.Empty(t, archiveFiles(t, dir), "the expired archive file is removed")

	// Delete: refused while run 2 is live; then everything goes, archives
	// included.
	status, body := b.deleteCampaign(t, id, testKey)
	require.Equal(t, http.StatusConflict, status, body)
	var retry []rdb.Settle
	for _, openid := range failed {
		retry = append(retry, rdb.Settle{OpenID: openid, Outcome: rdb.Outcome{Status: rdb.OutcomeSent, MsgID: 7}})
	}
	_, err = b.rdb.RecordOutcomes(ctx, id, 2, "completed", retry...)
	require.NoError(t, err)
	gone = b.json(t, "POST", run+"/retry", "")
	require.Equal(t, http.StatusGone, gone.status, "a retry of a run whose archive expired: %s", gone.raw)
	require.Equal(t, api.CodeRecipientsExpired, gone.errCode())
	_, err = archiver.ArchiveRun(ctx, id, 2)
	require.NoError(t, err)
	require.Len(t, archiveFiles(t, dir), 1)
	status, body = b.deleteCampaign(t, id, testKey)
	require.Equal(t, http.StatusNoContent, status, body)
	require.Empty(t, b.keysOf(t, id))
	require.Empty(t, archiveFiles(t, dir), "deleting the campaign deletes its archives")
}
