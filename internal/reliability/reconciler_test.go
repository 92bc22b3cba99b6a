//go:build reliability

package reliability

import (
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestFleetRestartAfterLostTasks: a 2,000-recipient template campaign on
// two worker processes; at 30 % both are killed with SIGKILL, every task
// of the run that is not active (queued sends, the next expand task) is
// deleted with asynq's Inspector, as a failover might lose them, and the
// whole fleet is started again. Nothing of the run is queued any more but
// the sends the killed workers left active (which the rescue brings
// back): the one worker that holds the reconciler's lease queues the
// expanded recipients without an outcome and the lost expand task again
// once the run has made no progress for --stall-timeout. The run
// completes, every recipient once.
func TestFleetRestartAfterLostTasks(t *testing.T) {
	const (
		n       = 2000
		workers = 2
	)
	begin := time.Now()
	rs := StartRedis(t, redistest.ServerConfig{})
	fake := StartFake(t, wechattest.Config{Faults: wechattest.Faults{Latency: 20 * time.Millisecond}})
	f := StartFleet(t, FleetConfig{RedisURL: rs.URL(), Fake: fake, Workers: workers, Rate: 200, Burst: 20, Concurrency: 20,
		Env: []string{"WXMASS_RECONCILE_INTERVAL=500ms", "WXMASS_STALL_TIMEOUT=3s", "WXMASS_WINDOW=300", "WXMASS_CHUNK_SIZE=100"}})
	run := f.Launch(t, campaigns.KindTemplate, OpenIDs("LOST", n))
	ins := asynq.NewInspector(asynq.RedisClientOpt{Addr: rs.Addr()})
	t.Cleanup(func() { _ = ins.Close() })

	var deleted int
	var at rdb.RunRecord
	rec := run.Wait(t, 3*time.Minute, Hook{At: 0.3, Do: func(r rdb.RunRecord) {
		for i := range workers {
			f.Kill(t, i)
		}
		for _, q := range []string{task.QueueBulk, task.QueueControl} {
			for _, del := range []func(string) (int, error){ins.DeleteAllPendingTasks, ins.DeleteAllScheduledTasks, ins.DeleteAllRetryTasks} {
				k, err := del(q)
				require.NoError(t, err)
				deleted += k
			}
		}
		var err error
		at, err = run.Record(t.Context())
		require.NoError(t, err)
		for i := range workers {
			f.Start(t, i)
		}
	}})

	s := Check(t, run)
	assert.EqualValues(t, n, rec.Counters[rdb.OutcomeSent], "every recipient was sent")
	require.Positive(t, deleted, "tasks were deleted")
	reconciled := f.CountLog("run without progress: queued its lost tasks again")
	assert.Positive(t, reconciled, "the reconciler queued the lost tasks again")
	s.Note("both workers killed at %d/%d settled (%d expanded); %d tasks deleted; the fleet restarted", at.Settled(), n, at.Expanded, deleted)
	s.Note("reconciled %d times; %d template calls, %d answered from the client_msg_id window", reconciled, fake.Stats().APIs[run.Kind.API()].Calls, fake.Stats().APIs[run.Kind.API()].Deduped)
	s.Elapsed = time.Since(begin)
	Report(t, s)
}
