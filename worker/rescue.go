package worker

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/internal/task"
)

// RescueIntervalDefault is ServerConfig.RescueInterval's default.
const RescueIntervalDefault = 5 * time.Second

// rescuePage is how many active tasks one look at a queue reads at a time.
const rescuePage = 500

// rescuer looks for send tasks whose worker died (kill -9, a lost
// machine) and queues a replacement of each at once.
//
// asynq keeps such a task active until its recoverer finds its lease
// expired for 30 s: asynq v0.26 fixes the lease at 30 s (extended every 5 s
// while the worker lives) and runs the recoverer once a minute, with no
// setting for either, so a killed worker's sends come back about a minute
// after the kill. asynq's Inspector tells, as soon as a lease has expired,
// that its task is orphaned; a worker whose lease expires has its
// handler's context cancelled by asynq, so an orphaned task's handler no
// longer runs. The replacement (task.RescueID) then runs at once: it finds
// the attempt record the dead worker left open and does what the original
// would have (a customer-service or subscribe recipient is recorded
// unknown; a template one is sent again with the same client_msg_id). When
// asynq brings the original back, its recipient is settled. Every worker
// runs a rescuer; the replacement's id makes the rescues of one task one.
type rescuer struct {
	ins    *asynq.Inspector
	w      *Worker
	every  time.Duration
	queues []string
}

func (r *rescuer) run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.scan(ctx)
		}
	}
}

// scan queues a replacement of every orphaned send task, and returns how
// many it queued (or found queued already).
func (r *rescuer) scan(ctx context.Context) int {
	n := 0
	for _, q := range r.queues {
		for page := 1; ctx.Err() == nil; page++ {
			tasks, err := r.ins.ListActiveTasks(q, asynq.PageSize(rescuePage), asynq.Page(page))
			if err != nil {
				if !errors.Is(err, asynq.ErrQueueNotFound) {
					r.w.log.Debug("list active tasks", zap.String("queue", q), zap.Error(err))
				}
				break
			}
			for _, ti := range tasks {
				if !ti.IsOrphaned || !task.IsSend(ti.Type) {
					continue
				}
				if err := r.w.producer.Rescue(ctx, ti.Type, q, ti.ID, ti.Payload); err != nil {
					r.w.log.Warn("rescue a send whose worker died", zap.String("task_id", maskTaskID(ti.ID)), zap.Error(err))
					continue
				}
				n++
			}
			if len(tasks) < rescuePage {
				break
			}
		}
	}
	if n > 0 {
		r.w.log.Warn("sends whose worker died queued again", zap.Int("tasks", n))
	}
	return n
}
