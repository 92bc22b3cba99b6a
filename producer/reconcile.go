package producer

import (
	"context"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/task"
)

// Requeued counts what one reconciliation of a run queued again: tasks of
// the run that were lost (no task of their id in any queue), and the run
// finished because all its recipients had outcomes.
type Requeued struct {
	Launch, Expand, Settle bool
	Sends                  int    // recipients queued again
	Finished               string // the state the run finished in, or ""
}

// Any reports whether anything was queued or finished.
func (r Requeued) Any() bool {
	return r.Launch || r.Expand || r.Settle || r.Sends > 0 || r.Finished != ""
}

// Reconcile puts a live run whose tasks may have been lost back on track
// (worker's reconciler calls it for a run without progress): every task is
// queued under its deterministic id, so a task still queued, scheduled,
// retried or active (or archived) keeps its place and nothing is queued
// twice.
//
//   - A stopping run gets its settle task.
//   - A run whose audience is not known yet gets its launch task.
//   - A running run whose recipients all have outcomes is finished.
//   - A running run's expanded recipients [0, Expanded) without an outcome
//     get their send tasks (through the same handler and attempt rules as
//     any send: a recipient whose attempt is open is not messaged twice);
//     they are inside the window already. A run not fully expanded gets the
//     expand task of its next chunk.
//
// A paused run only gets a lost launch task: its sends wait anyway.
func (p *Producer) Reconcile(ctx context.Context, c *campaigns.Campaign, runNo int) (Requeued, error) {
	var out Requeued
	run, err := p.store.Run(ctx, c.ID, runNo)
	if err != nil {
		return out, err
	}
	switch {
	case run.State == string(campaigns.StateStopping):
		out.Settle, err = p.requeueSettle(ctx, c.ID, runNo, 0)
		return out, err
	case !live(run.State):
		return out, nil
	case run.Size < 0:
		out.Launch, err = p.requeueLaunch(ctx, c.ID, runNo)
		return out, err
	case run.State != string(campaigns.StateRunning):
		return out, nil
	case run.Settled() >= run.Size:
		out.Finished, err = p.store.FinishRun(ctx, c, runNo)
		if out.Finished != "" {
			p.finished(ctx, c, runNo, out.Finished)
		}
		return out, err
	}
	size := int64(p.cfg.ChunkSize)
	for start := int64(0); start < run.Expanded; start += size {
		openids, err := p.store.AudienceRange(ctx, run.Audience, start, min(start+size, run.Expanded)-1)
		if err != nil {
			return out, err
		}
		has, err := p.store.HasOutcomes(ctx, c.ID, runNo, openids)
		if err != nil {
			return out, err
		}
		n, err := p.requeueSends(ctx, c, runNo, sendQueue(run), openids, has)
		out.Sends += n
		if err != nil {
			return out, err
		}
	}
	if run.Expanded < run.Size {
		out.Expand, err = p.requeueExpand(ctx, c.ID, runNo, int(run.Expanded/size))
	}
	return out, err
}

// sendQueue is the queue of a run's send tasks: a transactional send's own
// queue, ahead of bulk campaigns, or the bulk queue.
func sendQueue(run campaigns.RunRecord) string {
	if run.Transactional {
		return task.QueueTransactional
	}
	return task.QueueBulk
}

// requeueSends queues the send task of each of openids that has no outcome
// (has[i] false), EnqueueParallel at a time, on queue. It returns how many
// it queued; the others had their task.
func (p *Producer) requeueSends(ctx context.Context, c *campaigns.Campaign, run int, queue string, openids []string, has []bool) (int, error) {
	typ := SendTaskType(c.Kind)
	var n atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.cfg.EnqueueParallel)
	for i, o := range openids {
		if has[i] {
			continue
		}
		g.Go(func() error {
			ok, err := p.requeueSend(gctx, typ, queue, c.ID, run, o)
			if ok {
				n.Add(1)
			}
			return err
		})
	}
	err := g.Wait()
	return int(n.Load()), err
}
