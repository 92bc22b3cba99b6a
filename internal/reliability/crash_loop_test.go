//go:build reliability

package reliability

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestWorkerCrashLoop: 50,000 template recipients, three worker processes,
// and every 3 s a random worker is killed with SIGKILL and started again,
// until the run completes (invariant 6: kill -9 of any worker at any moment
// loses nothing). A killed worker's tasks in flight come back when asynq
// finds their lease expired, and a recipient whose send reached WeChat
// before the kill is not messaged again: its retry carries the same
// client_msg_id. So that kills do land between WeChat's acceptance and the
// outcome record (a window of a millisecond or so otherwise), 5 % of the
// answers come 300 ms after the fake has recorded the delivery.
func TestWorkerCrashLoop(t *testing.T) {
	const (
		n       = 50000
		workers = 3
		every   = 3 * time.Second
	)
	begin := time.Now()
	rs := StartRedis(t, redistest.ServerConfig{})
	fake := StartFake(t, wechattest.Config{Faults: wechattest.Faults{Slow: 0.05, SlowDelay: 300 * time.Millisecond}})
	f := StartFleet(t, FleetConfig{RedisURL: rs.URL(), Fake: fake, Workers: workers, Rate: 1000, Burst: 100})
	run := f.Launch(t, campaigns.KindTemplate, OpenIDs("CRASH", n))

	seed := uint64(time.Now().UnixNano())
	t.Logf("kill order seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var lastKill time.Time
	rec := run.Wait(t, 12*time.Minute, Hook{Every: every, Do: func(rdb.RunRecord) {
		i := rng.IntN(workers)
		f.Kill(t, i)
		f.Start(t, i)
		lastKill = time.Now()
	}})

	s := Check(t, run)
	assert.EqualValues(t, n, rec.Counters[rdb.OutcomeSent], "every recipient was sent")
	st := fake.Stats().APIs[run.Kind.API()]
	_, kills := f.Counts()
	s.Note("%d kills -9 every %s", kills, every)
	s.Note("last kill %s before the end", run.Finished.Sub(lastKill).Round(100*time.Millisecond))
	s.Note("%d template calls, %d answered from the client_msg_id window (sends cut off by a kill, sent again)", st.Calls, st.Deduped)
	s.Elapsed = time.Since(begin)
	Report(t, s)
}
