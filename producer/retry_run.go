package producer

import (
	"context"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/campaigns"
)

// RetryFailed starts a new run of campaign id over the recipients of run
// from that match f (by default, every failed one), and queues its launch.
// It returns the new run, its size and what it risks (see
// campaigns.RetryResult).
func (p *Producer) RetryFailed(ctx context.Context, id string, from int, f campaigns.RetryFilter) (campaigns.RetryResult, error) {
	c, err := p.store.Get(ctx, id)
	if err != nil {
		return campaigns.RetryResult{}, err
	}
	res, err := p.store.StartRetryRun(ctx, c, from, f)
	if err != nil {
		return campaigns.RetryResult{}, err
	}
	if err := p.enqueueLaunch(ctx, id, res.Run); err != nil {
		return campaigns.RetryResult{}, p.abandon(ctx, c, res.Run, "could not queue the launch", err)
	}
	p.cfg.Logger.Info("retry run started", zap.String("campaign_id", id), zap.Int("run", res.Run), zap.Int("from_run", from),
		zap.Int64("recipients", res.Size), zap.Int64("unknown", res.Unknown), zap.Int64("may_duplicate", res.MayDuplicate))
	return res, nil
}
