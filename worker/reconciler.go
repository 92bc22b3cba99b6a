package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/producer"
)

// reconcilerLease is the name of the lease whose holder reconciles.
const reconcilerLease = "reconciler"

// reconciler looks after every live run of the fleet, in the one process
// that holds its lease: a run that made no progress for StallTimeout has
// its lost tasks queued again (producer.Producer.Reconcile), and one whose
// recipients all have outcomes is finished. Whichever process handled the
// run before does not matter. Only its loop uses it.
type reconciler struct {
	w     *Worker
	token string // this process's claim on the lease
	held  bool
	seen  map[liveRun]progress
	arch  archiver
}

// liveRun names a run the reconciler watches.
type liveRun struct {
	id  string
	run int
}

// progress is what the reconciler last saw of a run.
type progress struct {
	settled int64
	since   time.Time // since when the run has had that many outcomes
}

func newReconciler(w *Worker) *reconciler {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return &reconciler{w: w, token: hex.EncodeToString(b), seen: map[liveRun]progress{}, arch: archiver{w: w}}
}

// loop reconciles every ReconcileInterval until ctx ends, then gives the
// lease up.
func (r *reconciler) loop(ctx context.Context) {
	defer r.release()
	t := time.NewTicker(r.w.cfg.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.tick(ctx)
		}
	}
}

// tick takes or renews the lease and, holding it, reconciles every live
// run.
func (r *reconciler) tick(ctx context.Context) {
	w := r.w
	held, err := w.store.TakeLease(ctx, reconcilerLease, r.token, 3*w.cfg.ReconcileInterval)
	if err != nil {
		w.log.Warn("reconciler lease", zap.Error(err))
		return
	}
	if held != r.held {
		w.log.Info("reconciler lease", zap.Bool("held", held))
		r.held = held
	}
	if !held {
		clear(r.seen) // a later holding starts its watch afresh
		return
	}
	// Runs that finished without leaving their bucket's registry (their
	// process crashed) are dropped from it.
	if err := w.producer.PruneBuckets(ctx); err != nil {
		w.log.Warn("reconciler: prune the buckets' runs", zap.Error(err))
	}
	runs, err := w.store.LiveRuns(ctx)
	if err != nil {
		w.log.Warn("reconciler: list live runs", zap.Error(err))
		return
	}
	now := w.cfg.NowFunc()
	// A long pass (many runs, a slow Redis, big runs to archive) renews
	// the lease as it goes: a lease lapsed mid-pass would let a second
	// process work on the same runs at the same time.
	renewed := now
	stillHeld := func() bool {
		if t := w.cfg.NowFunc(); t.Sub(renewed) >= w.cfg.ReconcileInterval {
			if !r.renew(ctx) {
				return false
			}
			renewed = t
		}
		return true
	}
	live := make(map[liveRun]bool, len(runs))
	for _, lr := range runs {
		k := liveRun{id: lr.ID, run: lr.Run}
		live[k] = true
		if ctx.Err() != nil {
			return
		}
		if !stillHeld() {
			return
		}
		r.run(ctx, k, now)
	}
	for k := range r.seen {
		if !live[k] {
			delete(r.seen, k)
		}
	}
	if r.arch.due(now) {
		r.arch.pass(ctx, now, stillHeld)
	}
}

// renew renews the lease in the middle of a pass, and reports whether this
// process still holds it.
func (r *reconciler) renew(ctx context.Context) bool {
	held, err := r.w.store.TakeLease(ctx, reconcilerLease, r.token, 3*r.w.cfg.ReconcileInterval)
	if err != nil {
		r.w.log.Warn("reconciler lease", zap.Error(err))
		return false
	}
	if !held {
		r.w.log.Warn("reconciler lease lost during a pass")
		r.held = false
		clear(r.seen)
	}
	return held
}

// run reconciles one live run.
func (r *reconciler) run(ctx context.Context, k liveRun, now time.Time) {
	w := r.w
	rec, err := w.store.Run(ctx, k.id, k.run)
	if err != nil {
		w.log.Warn("reconciler: read run", zap.String("campaign_id", k.id), zap.Int("run", k.run), zap.Error(err))
		return
	}
	done := rec.Size >= 0 && rec.Settled() >= rec.Size
	p, ok := r.seen[k]
	if !ok || p.settled != rec.Settled() {
		r.seen[k] = progress{settled: rec.Settled(), since: now}
		if !done {
			return
		}
	} else if !done && now.Sub(p.since) < w.cfg.StallTimeout {
		return
	}
	c, err := w.store.Get(ctx, k.id)
	if err != nil {
		w.log.Warn("reconciler: read campaign", zap.String("campaign_id", k.id), zap.Error(err))
		return
	}
	w.cfg.Metrics.Reconciled("reconcile", 1)
	res, err := w.producer.Reconcile(ctx, c, k.run)
	// Look again after another StallTimeout, whatever this did.
	r.seen[k] = progress{settled: rec.Settled(), since: now}
	if err != nil {
		w.log.Warn("reconciler: reconcile run", zap.String("campaign_id", k.id), zap.Int("run", k.run), zap.Error(err))
	}
	r.count(res)
	if res.Any() {
		w.log.Warn("run without progress: queued its lost tasks again", zap.String("campaign_id", k.id), zap.Int("run", k.run),
			zap.String("state", rec.State), zap.Int64("settled", rec.Settled()), zap.Int64("size", rec.Size),
			zap.Int("sends", res.Sends), zap.Bool("launch", res.Launch), zap.Bool("expand", res.Expand),
			zap.Bool("settle", res.Settle), zap.String("finished", res.Finished))
	}
}

// count counts what a reconciliation did.
func (r *reconciler) count(res producer.Requeued) {
	m := r.w.cfg.Metrics
	m.Reconciled("send", res.Sends)
	for action, did := range map[string]bool{"launch": res.Launch, "expand": res.Expand, "settle": res.Settle, "finish": res.Finished != ""} {
		if did {
			m.Reconciled(action, 1)
		}
	}
}

// release gives the lease up, so that another process takes it over at
// once rather than when it lapses.
func (r *reconciler) release() {
	if !r.held {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := r.w.store.ReleaseLease(ctx, reconcilerLease, r.token); err != nil {
		r.w.log.Warn("release reconciler lease", zap.Error(err))
	}
}
