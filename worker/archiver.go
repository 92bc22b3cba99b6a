package worker

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/campaigns"
)

// Defaults of the archiver's Config fields.
const (
	// ArchiveAfterDefault is how long after its end a finished run's
	// per-recipient data is archived.
	ArchiveAfterDefault = 24 * time.Hour
	// RetentionDefault is how long after its end a run's archive is kept.
	RetentionDefault = 180 * 24 * time.Hour
	// ReceiptWindowDefault is how long after its end a run's msgid index
	// entries are kept for delivery receipts, when archiving comes later.
	// WeChat pushes TEMPLATESENDJOBFINISH seconds after a send, and
	// retries a push for a few seconds only; three days also cover a
	// callback endpoint that was down over a weekend.
	ReceiptWindowDefault = 72 * time.Hour
	// ArchiveIntervalDefault is how often the reconciler's lease holder
	// looks for runs to archive, expire or unindex.
	ArchiveIntervalDefault = 5 * time.Minute
	// ArchiveBatchDefault bounds the runs archived in one pass.
	ArchiveBatchDefault = 4
)

// archiver archives finished runs (campaigns.Store.ArchiveRun), removes the
// msgid index entries of runs past their receipt window and the archives
// of runs past their retention. It runs in the reconciler's lease holder,
// one pass every ArchiveInterval; each pass is bounded (ArchiveBatch runs
// archived), and every step is safe to repeat, so a pass cut short by a
// crash or a lost lease is finished by a later one, in any process.
type archiver struct {
	w    *Worker
	last time.Time
}

// due reports whether a pass is due at now.
func (a *archiver) due(now time.Time) bool {
	return a.w.cfg.ArchiveStore != nil && (a.last.IsZero() || now.Sub(a.last) >= a.w.cfg.ArchiveInterval)
}

// archivePass is what one pass did.
type archivePass struct {
	Archived, Expired, MsgIDs, Errors int
}

// pass makes one pass at now. Before each run it archives, it calls
// renew, which renews the reconciler's lease when due and reports whether
// this process still holds it: archiving a big run takes a while, and a
// lease lapsed meanwhile would let another process work on the same runs.
func (a *archiver) pass(ctx context.Context, now time.Time, renew func() bool) archivePass {
	a.last = now
	w := a.w
	cfg := w.cfg
	store := cfg.ArchiveStore
	var res archivePass
	var todo []campaigns.RunArchive
	err := store.FinishedRuns(ctx, func(ra campaigns.RunArchive) error {
		age := now.Sub(ra.Finished)
		switch {
		case ra.Archive == "" || ra.Archive == campaigns.ArchiveWritten:
			if age >= cfg.ArchiveAfter {
				todo = append(todo, ra)
			} else if !ra.MsgIDsDropped && age >= cfg.ReceiptWindow {
				a.step(ctx, "msgids", ra, &res, func() error { return store.DropMsgIDs(ctx, ra.ID, ra.Run) })
			}
		case ra.Archive == campaigns.ArchiveDone && age >= cfg.Retention:
			a.step(ctx, "expire", ra, &res, func() error { return store.ExpireArchive(ctx, ra.ID, ra.Run) })
		}
		return ctx.Err()
	})
	if err != nil && ctx.Err() == nil {
		w.log.Warn("archiver: list finished runs", zap.Error(err))
		cfg.Metrics.ArchiveError("list")
		res.Errors++
	}
	for i, ra := range todo {
		if i >= cfg.ArchiveBatch || ctx.Err() != nil || !renew() {
			break
		}
		a.step(ctx, "archive", ra, &res, func() error {
			r, err := store.ArchiveRun(ctx, ra.ID, ra.Run)
			if r.Written {
				cfg.Metrics.ArchiveWritten(r.Records, r.Bytes)
			}
			if err == nil && r.Dropped {
				w.log.Info("run archived", zap.String("campaign_id", ra.ID), zap.Int("run", ra.Run),
					zap.Int64("records", r.Records), zap.Int64("bytes", r.Bytes))
			}
			return err
		})
	}
	return res
}

// step runs one step of a pass and counts it.
func (a *archiver) step(ctx context.Context, action string, ra campaigns.RunArchive, res *archivePass, fn func() error) {
	m := a.w.cfg.Metrics
	if err := fn(); err != nil {
		if ctx.Err() != nil || errors.Is(err, campaigns.ErrNotFound) {
			return // shutting down, or deleted meanwhile
		}
		a.w.log.Warn("archiver: "+action, zap.String("campaign_id", ra.ID), zap.Int("run", ra.Run), zap.Error(err))
		m.ArchiveError(action)
		res.Errors++
		return
	}
	switch action {
	case "archive":
		m.Archived("archived")
		res.Archived++
	case "expire":
		m.Archived("expired")
		res.Expired++
	case "msgids":
		m.Archived("msgids")
		res.MsgIDs++
	}
}

func (c *Config) archiveDefaults() {
	if c.ArchiveAfter <= 0 {
		c.ArchiveAfter = ArchiveAfterDefault
	}
	if c.ReceiptWindow <= 0 {
		c.ReceiptWindow = ReceiptWindowDefault
	}
	if c.Retention <= 0 {
		c.Retention = RetentionDefault
	}
	if c.ArchiveInterval <= 0 {
		c.ArchiveInterval = ArchiveIntervalDefault
	}
	if c.ArchiveBatch <= 0 {
		c.ArchiveBatch = ArchiveBatchDefault
	}
}
