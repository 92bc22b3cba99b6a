package rdb_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
)

// roundTrips counts a client's round trips: commands and pipelines.
type roundTrips struct{ n atomic.Int64 }

func (h *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// TestSendOpsShareRoundTrips: the attempts and outcome records of many
// concurrent sends go in few round trips, and each caller still gets its
// own answer: its attempt, its variables, whether its recipient has an
// outcome, and for exactly one of them that the run completed.
func TestSendOpsShareRoundTrips(t *testing.T) {
	t.Parallel()
	const n = 400
	c := redistest.Client(t, redistest.DBDefault)
	hook := &roundTrips{}
	c.AddHook(hook)
	r := rdb.New(c, redistest.Prefix(t, c))
	ctx := t.Context()
	require.NoError(t, r.CreateCampaign(ctx, "c1", []byte(`{}`), "draft", timeNow()))
	entries := make([]rdb.AudienceEntry, n)
	for i := range entries {
		entries[i] = rdb.AudienceEntry{OpenID: fmt.Sprint("o", i)}
		if i%2 == 0 {
			entries[i].Vars = fmt.Sprintf(`{"name":"n%d"}`, i)
		}
	}
	_, _, err := r.AppendAudience(ctx, "c1", entries, "draft")
	require.NoError(t, err)
	run, err := r.StartRun(ctx, "c1", "running", "running", n, r.Keys().Audience("c1"), "draft")
	require.NoError(t, err)
	before := hook.n.Load()

	start := make(chan struct{})
	var completed atomic.Int64
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			openid := fmt.Sprint("o", i)
			b, err := r.BeginAttempt(ctx, "c1", run, openid, beginOpts(true))
			require.NoError(t, err)
			require.Equal(t, rdb.BeginSend, b.Action)
			require.Equal(t, 1, b.Attempt)
			require.Equal(t, run, b.ClientMsgRun)
			if i%2 == 0 {
				require.Equal(t, fmt.Sprintf(`{"name":"n%d"}`, i), b.Vars)
			} else {
				require.Empty(t, b.Vars)
			}
			o := rdb.Outcome{Status: rdb.OutcomeSent, MsgID: int64(1<<55) + int64(i)}
			if i%5 == 0 {
				o = rdb.Outcome{Status: rdb.OutcomeFailed, Code: 43004, Class: "recipient"}
			}
			rec, err := r.RecordOutcome(ctx, "c1", run, "completed", rdb.Settle{OpenID: openid, Outcome: o, Mode: rdb.RecordAnswered})
			require.NoError(t, err)
			require.Equal(t, 1, rec.New, "the first outcome is recorded")
			require.Equal(t, []rdb.Stored{rdb.StoredAsGiven}, rec.Stored)
			if rec.Finished != "" {
				require.Equal(t, "completed", rec.Finished)
				completed.Add(1)
			}
			// Recorded again (a redelivered task): no second outcome. (It
			// may share the round trip that completes the run, and be the
			// caller told so.)
			rec, err = r.RecordOutcome(ctx, "c1", run, "completed", rdb.Settle{OpenID: openid,
				Outcome: rdb.Outcome{Status: rdb.OutcomeFailed, Class: "exhausted"}, Mode: rdb.RecordUnanswered})
			require.NoError(t, err)
			require.Zero(t, rec.New, "a second outcome is not")
			require.Equal(t, []rdb.Stored{rdb.StoredNothing}, rec.Stored)
			if rec.Finished != "" {
				completed.Add(1)
			}
			b, err = r.BeginAttempt(ctx, "c1", run, openid, beginOpts(false))
			require.NoError(t, err)
			require.Equal(t, rdb.BeginDone, b.Action)
		})
	}
	close(start)
	wg.Wait()

	ops := int64(4 * n)
	trips := hook.n.Load() - before
	t.Logf("%d attempts and outcome records in %d round trips", ops, trips)
	require.Less(t, trips, ops/2, "concurrent send ops share round trips")
	require.EqualValues(t, 1, completed.Load(), "exactly one caller learns that the run completed")

	rec, err := r.GetRun(ctx, "c1", run)
	require.NoError(t, err)
	require.Equal(t, "completed", rec.State)
	require.EqualValues(t, n, rec.Counters["total"])
	require.EqualValues(t, n/5, rec.Counters["failed"])
	require.EqualValues(t, n/5, rec.Counters["code:43004"])
	require.EqualValues(t, n/5, rec.Counters["class:recipient"])
	require.EqualValues(t, n-n/5, rec.Counters["sent"])
	require.Zero(t, rec.Counters["class:exhausted"])
	id, rn, openid, ok, err := r.LookupMsgID(ctx, int64(1<<55)+7)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []any{"c1", run, "o7"}, []any{id, rn, openid})
}

// TestSendOpsFailTogether: when Redis cannot be reached, every grouped
// caller gets an error rather than waiting forever, and a caller whose
// context ends stops waiting.
func TestSendOpsFailTogether(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100e6})
	t.Cleanup(func() { _ = c.Close() })
	r := rdb.New(c, "x")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			switch i % 3 {
			case 0:
				_, err := r.BeginAttempt(t.Context(), "c1", 1, fmt.Sprint("o", i), beginOpts(true))
				require.Error(t, err)
			case 1:
				require.Error(t, r.EndAttempt(t.Context(), "c1", 1, rdb.EndAttempt{OpenID: fmt.Sprint("o", i), Lost: true}))
			default:
				_, err := r.RecordOutcome(t.Context(), "c1", 1, "completed", rdb.Settle{OpenID: fmt.Sprint("o", i), Outcome: rdb.Outcome{Status: rdb.OutcomeSent}})
				require.Error(t, err)
			}
		})
	}
	wg.Wait()

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := r.BeginAttempt(ctx, "c1", 1, "o1", beginOpts(false))
	require.ErrorIs(t, err, context.Canceled)
}

// beginOpts are the BeginAttempt options of a template campaign's send in
// these tests.
func beginOpts(vars bool) rdb.BeginOptions {
	return rdb.BeginOptions{DoneState: "completed", Dedupe: true, Window: 9 * time.Minute, Grace: 3 * time.Second, Proc: "test", Vars: vars}
}
