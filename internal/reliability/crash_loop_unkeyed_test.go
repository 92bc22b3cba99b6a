//go:build reliability

package reliability

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestWorkerCrashLoopUnkeyed: 2,000 customer-service and 2,000 subscribe
// recipients, the sends WeChat gives no dedupe key, on three worker
// processes one of which is killed with SIGKILL every 2 to 3 s, and
// started again, until both runs complete. WeChat takes 100 ms to answer
// (so kills land during calls), drops 2 % of connections after taking the
// message and answers 2 % of calls after the client's timeout.
//
// A send in flight at a kill comes back (asynq's recoverer) and finds its
// attempt open: its recipient is recorded unknown and not sent again. So
// nobody is messaged twice, and unknown is reported only for a recipient
// whose answer was lost or whose attempt a killed worker began. The time
// from a kill to the pickup of its sends is measured (the README's
// failure table quotes it).
func TestWorkerCrashLoopUnkeyed(t *testing.T) {
	const (
		n       = 2000
		workers = 3
	)
	begin := time.Now()
	rs := StartRedis(t, redistest.ServerConfig{})
	fake := StartFake(t, wechattest.Config{Seed: 5, Faults: wechattest.Faults{
		Latency: 100 * time.Millisecond, DropAfterRecord: 0.02, Slow: 0.02, SlowDelay: 4 * time.Second,
	}})
	f := StartFleet(t, FleetConfig{RedisURL: rs.URL(), Fake: fake, Workers: workers, Rate: 200, Burst: 20, Concurrency: 40,
		Env: []string{"WXMASS_WECHAT_TIMEOUT=2s"}})
	custom := f.Launch(t, campaigns.KindCustom, OpenIDs("KILLCS", n))
	subscribe := f.Launch(t, campaigns.KindSubscribe, OpenIDs("KILLSUB", n))
	ctx := context.Background()

	// inFlight are the recipients whose attempt a killed worker had open,
	// with when it was killed.
	type pending struct {
		run    *Run
		openid string
		killed time.Time
	}
	var inFlight []pending
	seed := uint64(time.Now().UnixNano())
	t.Logf("kill seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	next := time.Now().Add(2 * time.Second)
	kill := Hook{Every: 100 * time.Millisecond, Do: func(rdb.RunRecord) {
		if time.Now().Before(next) {
			return
		}
		next = time.Now().Add(2*time.Second + time.Duration(rng.Int64N(int64(time.Second))))
		i := rng.IntN(workers)
		pid := f.Pid(i)
		f.Kill(t, i)
		at := time.Now()
		for _, r := range []*Run{custom, subscribe} {
			for _, o := range f.openAttempts(t, r, pid) {
				inFlight = append(inFlight, pending{r, o, at})
			}
		}
		f.Start(t, i)
	}}
	custom.Wait(t, 8*time.Minute, kill)
	subscribe.Wait(t, 8*time.Minute, kill)

	// Each killed send's pickup: its recipient's outcome, which the send
	// task records when it comes back and finds the attempt open.
	var pickups []time.Duration
	for _, p := range inFlight {
		o, ok, err := f.store.Outcome(ctx, p.run.Campaign, p.run.Number, p.openid)
		require.NoError(t, err)
		require.True(t, ok)
		// In flight at the kill: unknown, never sent again.
		assert.Equal(t, campaigns.OutcomeUnknown, o.Status, "%s was in flight at a kill: %+v", p.openid, o)
		if o.At.After(p.killed) {
			pickups = append(pickups, o.At.Sub(p.killed))
		}
	}
	_, kills := f.Counts()
	for _, r := range []*Run{custom, subscribe} {
		s := Check(t, r)
		assert.Zero(t, s.Duplicates, "nobody messaged twice")
		s.Note("%d kills -9 every 2-3 s (both runs)", kills)
		if r == custom && len(pickups) > 0 {
			slices.Sort(pickups)
			s.Note("%d sends of both runs in flight at a kill, picked up again %s (median %s) to %s after it",
				len(inFlight), pickups[0].Round(time.Second), pickups[len(pickups)/2].Round(time.Second), pickups[len(pickups)-1].Round(time.Second))
		}
		s.Elapsed = time.Since(begin)
		Report(t, s)
	}
	assert.NotEmpty(t, inFlight, "kills landed during calls")
}
