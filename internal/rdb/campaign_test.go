package rdb_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/rdb"
)

func TestCampaignCreateUpdate(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	require.NoError(t, r.CreateCampaign(ctx, "c1", []byte(`{"a":1}`), "draft", timeNow()))
	require.ErrorIs(t, r.CreateCampaign(ctx, "c1", []byte(`{}`), "draft", timeNow()), rdb.ErrCampaignExists)

	rec, err := r.GetCampaign(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, `{"a":1}`, string(rec.Doc))
	require.Equal(t, "draft", rec.State)
	require.Equal(t, 0, rec.Run)

	require.NoError(t, r.UpdateCampaign(ctx, "c1", []byte(`{"a":2}`), "", "draft"))
	err = r.UpdateCampaign(ctx, "c1", []byte(`{"a":3}`), "", "running")
	var se *rdb.StateError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "draft", se.State)
	require.ErrorIs(t, err, rdb.ErrState)
	rec, err = r.GetCampaign(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, `{"a":2}`, string(rec.Doc), "a refused update changes nothing")

	_, err = r.GetCampaign(ctx, "nope")
	require.ErrorIs(t, err, rdb.ErrCampaignNotFound)
}

func TestAudienceDedupeAndState(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	require.NoError(t, r.CreateCampaign(ctx, "c1", []byte(`{}`), "draft", timeNow()))
	added, dups, err := r.AppendAudience(ctx, "c1", []rdb.AudienceEntry{{OpenID: "a", Vars: `{"n":"1"}`}, {OpenID: "b"}, {OpenID: "a"}}, "draft")
	require.NoError(t, err)
	require.Equal(t, 2, added)
	require.Equal(t, 1, dups)
	added, dups, err = r.AppendAudience(ctx, "c1", []rdb.AudienceEntry{{OpenID: "b"}, {OpenID: "c"}}, "draft")
	require.NoError(t, err)
	require.Equal(t, 1, added)
	require.Equal(t, 1, dups)
	n, err := r.AudienceLen(ctx, "c1")
	require.NoError(t, err)
	require.EqualValues(t, 3, n)
	ids, err := r.AudienceRange(ctx, r.Keys().Audience("c1"), 0, -1)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, ids)

	_, _, err = r.AppendAudience(ctx, "c1", []rdb.AudienceEntry{{OpenID: "d"}}, "running")
	require.ErrorIs(t, err, rdb.ErrState)
	_, _, err = r.AppendAudience(ctx, "missing", []rdb.AudienceEntry{{OpenID: "d"}}, "draft")
	require.ErrorIs(t, err, rdb.ErrCampaignNotFound)
}

func TestOutcomesExactlyOnceAndCompletion(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	require.NoError(t, r.CreateCampaign(ctx, "c1", []byte(`{}`), "draft", timeNow()))
	run, err := r.StartRun(ctx, "c1", "running", "running", 100, r.Keys().Audience("c1"), "draft")
	require.NoError(t, err)
	require.Equal(t, 1, run)

	// 100 recipients, each recorded by 4 racing goroutines (redelivered
	// tasks): exactly one outcome each, and counters that add up.
	var wg sync.WaitGroup
	completions := make(chan string, 400)
	for i := range 100 {
		for range 4 {
			wg.Go(func() {
				o := rdb.Outcome{Status: rdb.OutcomeSent, MsgID: int64(1<<60) + int64(i)}
				if i%10 == 0 {
					o = rdb.Outcome{Status: rdb.OutcomeFailed, Code: 43004, Class: "recipient", Detail: "user unfollowed | x"}
				}
				rec, err := r.RecordOutcomes(ctx, "c1", run, "completed", rdb.Settle{OpenID: fmt.Sprint("o", i), Outcome: o})
				require.NoError(t, err)
				completions <- rec.Finished
			})
		}
	}
	wg.Wait()
	close(completions)
	n := 0
	for fin := range completions {
		if fin != "" {
			require.Equal(t, "completed", fin)
			n++
		}
	}
	require.Equal(t, 1, n, "the run completes exactly once")

	rec, err := r.GetRun(ctx, "c1", run)
	require.NoError(t, err)
	require.Equal(t, "completed", rec.State)
	require.False(t, rec.Finished.IsZero())
	require.EqualValues(t, 100, rec.Counters["total"])
	require.EqualValues(t, 90, rec.Counters["sent"])
	require.EqualValues(t, 10, rec.Counters["failed"])
	require.EqualValues(t, 10, rec.Counters["code:43004"])
	require.EqualValues(t, 10, rec.Counters["class:recipient"])
	c, err := r.GetCampaign(ctx, "c1")
	require.NoError(t, err)
	require.Equal(t, "completed", c.State)

	o, ok, err := r.GetOutcome(ctx, "c1", run, "o10")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 43004, o.Code)
	require.Equal(t, "user unfollowed / x", o.Detail)

	id, rn, openid, ok, err := r.LookupMsgID(ctx, int64(1<<60)+7)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, "c1", id)
	require.Equal(t, run, rn)
	require.Equal(t, "o7", openid)

	count := 0
	require.NoError(t, r.ScanOutcomes(ctx, "c1", run, func(string, rdb.Outcome) error { count++; return nil }))
	require.Equal(t, 100, count)
}

func TestStatesAndAnnounce(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	require.NoError(t, r.CreateCampaign(ctx, "c1", []byte(`{}`), "draft", timeNow()))
	run, err := r.StartRun(ctx, "c1", "running", "running", 10, "x", "draft")
	require.NoError(t, err)
	_, err = r.StartRun(ctx, "c1", "running", "running", 10, "x", "draft")
	require.ErrorIs(t, err, rdb.ErrState)

	sub := r.Subscribe(ctx)
	defer sub.Close()
	_, err = sub.Receive(ctx) // subscription confirmation
	require.NoError(t, err)

	require.NoError(t, r.SetStates(ctx, "c1", run, "paused", "paused", "", "running"))
	msg, err := sub.ReceiveMessage(ctx)
	require.NoError(t, err)
	require.Equal(t, "c1", msg.Payload)
	st, err := r.GetRunState(ctx, "c1", run)
	require.NoError(t, err)
	require.Equal(t, "paused", st)
	require.ErrorIs(t, r.SetStates(ctx, "c1", run, "paused", "paused", "", "running"), rdb.ErrState)

	require.NoError(t, r.SetStates(ctx, "c1", run, "failed", "failed", "errcode 40037", "running", "paused"))
	rec, err := r.GetRun(ctx, "c1", run)
	require.NoError(t, err)
	require.Equal(t, "failed", rec.State)
	require.Equal(t, "errcode 40037", rec.Reason)
}

func TestParseOutcomeRejects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "sent", "sent|x||||1", "sent||||x|y", "sent|||x||1"} {
		_, err := rdb.ParseOutcome(s)
		require.Error(t, err, s)
	}
}

// FuzzParseOutcome: stored outcomes come back from Redis, which anything may
// write; parsing never panics, and what encodes parses back.
func FuzzParseOutcome(f *testing.F) {
	f.Add("sent|||3717005636572528642||1732500000000", "failed", 43004, "recipient", int64(0), "user unfollowed")
	f.Add("cancelled||||campaign cancelled|1", "skipped", 0, "", int64(0), "a|b")
	f.Fuzz(func(t *testing.T, raw, status string, code int, class string, msgid int64, detail string) {
		_, _ = rdb.ParseOutcome(raw)
		if strings.Contains(status, "|") || strings.Contains(class, "|") {
			return
		}
		o := rdb.Outcome{Status: status, Code: code, Class: class, MsgID: msgid, Detail: detail}
		got, err := rdb.ParseOutcome(rdb.EncodeOutcome(o) + "|1732500000000")
		require.NoError(t, err)
		require.Equal(t, status, got.Status)
		require.Equal(t, code, got.Code)
		require.Equal(t, class, got.Class)
		require.Equal(t, msgid, got.MsgID)
		require.Equal(t, strings.ReplaceAll(detail, "|", "/"), got.Detail)
	})
}

func TestCountCampaignStates(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	for i := range 3 {
		require.NoError(t, r.CreateCampaign(ctx, fmt.Sprint("c", i), []byte(`{}`), "draft", timeNow()))
	}
	_, err := r.StartRun(ctx, "c1", "running", "running", 1, "x", "draft")
	require.NoError(t, err)
	n, err := r.CountCampaignStates(ctx)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"draft": 2, "running": 1}, n)
}
