//go:build reliability

package reliability

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestMassCrashLoop: a mass campaign to 40,001 openids (5 batches of 8,000
// or so), three worker processes, and every 1.5 s a random worker killed
// with SIGKILL and started again, until the run completes. The fake answers
// mass/send a second after it recorded the job; twice, when a job appears
// at the fake that wxmass has not recorded, every worker is killed right
// then (between WeChat's acceptance and the worker reading the answer) and
// started again: the batch's retry carries the same clientmsgid and is
// answered 45065 with the job WeChat has. The fake holds exactly one job
// per batch, every openid is in exactly one job, and each batch's recorded
// msg_id is its job's. Results come from mass/get (the workers have no
// callback).
func TestMassCrashLoop(t *testing.T) {
	const (
		n       = 40001
		workers = 3
		every   = 1500 * time.Millisecond
	)
	begin := time.Now()
	rs := StartRedis(t, redistest.ServerConfig{})
	fake := StartFake(t, wechattest.Config{Mass: wechattest.MassConfig{Sending: time.Second, Latency: time.Second}})
	f := StartFleet(t, FleetConfig{RedisURL: rs.URL(), Fake: fake, Workers: workers, Rate: 1000, Burst: 100,
		Env: []string{"WXMASS_MASS_POLL_AFTER=1s", "WXMASS_MASS_POLL_INTERVAL=1s"}})
	openids := OpenIDs("MASS", n)
	run := f.Launch(t, campaigns.KindMass, openids)

	seed := uint64(time.Now().UnixNano())
	t.Logf("kill order seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	killedAt := map[int64]bool{}
	midCall := 0
	rec := run.Wait(t, 5*time.Minute, Hook{Every: every, Do: func(rdb.RunRecord) {
		i := rng.IntN(workers)
		f.Kill(t, i)
		f.Start(t, i)
	}}, Hook{Every: 50 * time.Millisecond, Do: func(rdb.RunRecord) {
		if midCall == 2 {
			return
		}
		recorded := map[int64]bool{}
		bs, err := f.store.MassBatches(context.Background(), run.Campaign, run.Number)
		require.NoError(t, err)
		for _, b := range bs {
			if b.Submission != nil {
				recorded[b.Submission.MsgID] = true
			}
		}
		for _, j := range fake.MassJobs() {
			if recorded[j.MsgID] || killedAt[j.MsgID] {
				continue
			}
			// WeChat took the job; its answer is still on the way.
			killedAt[j.MsgID] = true
			midCall++
			for i := range workers {
				f.Kill(t, i)
			}
			for i := range workers {
				f.Start(t, i)
			}
			return
		}
	}})

	batches := campaigns.MassBatches(n)
	assert.Equal(t, string(campaigns.StateCompleted), rec.State)
	assert.EqualValues(t, len(batches), rec.Size)
	assert.EqualValues(t, len(batches), rec.Counters[rdb.OutcomeSent], "every batch sent: %v", rec.Counters)

	jobs := map[string]wechattest.MassJob{}
	for _, j := range fake.MassJobs() {
		_, dup := jobs[j.ClientMsgID]
		assert.False(t, dup, "one job per clientmsgid")
		jobs[j.ClientMsgID] = j
	}
	assert.Len(t, jobs, len(batches), "exactly one job per batch at the fake")
	records, err := f.store.MassBatches(context.Background(), run.Campaign, run.Number)
	require.NoError(t, err)
	byKey := map[string]campaigns.MassBatchRecord{}
	dups := 0
	for _, b := range records {
		byKey[b.Key] = b
		if b.Submission != nil && b.Submission.Duplicate {
			dups++
		}
	}
	seen := make(map[string]int, n)
	for _, b := range batches {
		j, ok := jobs[campaigns.MassClientMsgID(run.Campaign, run.Number, b.Key())]
		if !assert.True(t, ok, "batch %s has its job", b.Key()) {
			continue
		}
		assert.Equal(t, openids[b.From:b.To], j.Delivered, "batch %s reached exactly its openids", b.Key())
		if r := byKey[b.Key()]; assert.NotNil(t, r.Submission, "batch %s recorded", b.Key()) {
			assert.Equal(t, j.MsgID, r.Submission.MsgID, "batch %s records its job's msg_id", b.Key())
			assert.NotNil(t, r.Result, "batch %s has its result", b.Key())
		}
		for _, o := range j.Delivered {
			seen[o]++
		}
	}
	twice := 0
	for _, k := range seen {
		if k > 1 {
			twice++
		}
	}
	assert.Len(t, seen, n, "every openid got the message")
	assert.Zero(t, twice, "no openid got it twice")
	assert.Equal(t, 2, midCall, "every worker was killed twice while WeChat's answer was on its way")
	assert.GreaterOrEqual(t, dups, 1, "a batch whose answer a kill lost was recorded from WeChat's 45065")

	_, kills := f.Counts()
	calls := fake.MassCalls()
	s := Summary{Scenario: t.Name(), Recipients: n, Outcomes: map[string]int{}, Duplicates: int64(twice),
		Peak1s: fake.Peak1s(wechattest.AppIDDefault, wechat.APIMassSend), Limit: 2, Duration: run.Finished.Sub(run.Started)}
	for _, st := range campaigns.OutcomeStatuses {
		if c := rec.Counters[st]; c > 0 {
			s.Outcomes[st+" batches"] = int(c)
		}
	}
	s.Note("%d kills -9 (every %s, and of every worker twice while WeChat's answer was on its way)", kills, every)
	s.Note("the mass APIs' limit is 60 a minute, one a second: two calls a second apart may share a one-second window")
	s.Note("%d mass/send calls for %d batches, %d batches recorded from a 45065 answer", calls[wechat.APIMassSend], len(batches), dups)
	s.Note("%d mass/get calls", calls[wechat.APIMassGet])
	s.Elapsed = time.Since(begin)
	Report(t, s)
}
