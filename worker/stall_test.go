package worker_test

import (
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestStalledRunIsExpandedAgain: recipients whose send tasks are gone
// without an outcome (as when a Redis primary change keeps a task's
// acknowledgement and loses the outcome recorded just before it) would
// leave the run running forever. Once it has made no progress for
// StallTimeout, the reconciler queues them again: the lost recipients get new
// tasks, nobody else is queued twice, and the run completes.
func TestStalledRunIsExpandedAgain(t *testing.T) {
	const (
		n    = 200
		lost = 10
	)
	ids := openIDs(n)
	b := setup(t, wechattest.Config{})
	// 50 a second: the last recipients are still queued seconds after the
	// expansion, when their tasks are deleted.
	p := b.process(t, procConfig{rate: 50, burst: 5, stall: 300 * time.Millisecond, reconcile: 100 * time.Millisecond})
	c := b.fileCampaign(t, campaigns.KindTemplate, wechattest.TemplateIDDefault, ids)
	run, err := p.producer.Start(t.Context(), c.ID)
	require.NoError(t, err)
	ins := asynq.NewInspector(b.opt)
	defer ins.Close()
	// Delete the tasks of lost recipients still pending, whichever they are:
	// which ones a loaded machine has not yet taken is chance.
	byID := make(map[string]string, n)
	for _, o := range ids {
		byID[task.SendID(c.ID, run, o)] = o
	}
	deleted := map[string]bool{}
	require.Eventually(t, func() bool {
		pending, err := ins.ListPendingTasks(task.QueueBulk, asynq.PageSize(n))
		if err != nil {
			return false
		}
		for i := len(pending) - 1; i >= 0 && len(deleted) < lost; i-- {
			id := pending[i].ID
			if _, ok := byID[id]; ok && !deleted[id] && ins.DeleteTask(task.QueueBulk, id) == nil {
				deleted[id] = true
			}
		}
		return len(deleted) == lost
	}, 10*time.Second, 10*time.Millisecond, "%d send tasks are pending, and deleted before they are sent", lost)

	rec := b.waitSettled(t, c.ID, run, time.Minute)
	b.truth(t, c, nil, run)
	require.Equal(t, string(campaigns.StateCompleted), rec.State)
	require.EqualValues(t, n, rec.Counters["sent"], "%v", rec.Counters)
	st := b.fake.Stats()
	require.EqualValues(t, 0, st.DuplicatesDelivered, "nobody was queued twice")
	require.Len(t, b.fake.Deliveries(), n)
}
