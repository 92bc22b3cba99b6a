package producer

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/campaigns"
)

// RetryFailed starts a new run of campaign id over the recipients of run
// from that match f (by default, every failed one), and queues its launch.
// It returns the new run and its size.
func (p *Producer) RetryFailed(ctx context.Context, id string, from int, f campaigns.RetryFilter) (int, int64, error) {
	c, err := p.store.Get(ctx, id)
	if err != nil {
		return 0, 0, err
	}
	run, n, err := p.store.StartRetryRun(ctx, c, from, f)
	if err != nil {
		return 0, 0, err
	}
	if err := p.enqueueLaunch(ctx, id, run); err != nil {
		if ferr := p.store.Fail(ctx, id, run, "could not queue the launch: "+err.Error()); ferr != nil {
			return 0, 0, errors.Join(err, ferr)
		}
		return 0, 0, err
	}
	p.cfg.Logger.Info("retry run started", zap.String("campaign_id", id), zap.Int("run", run), zap.Int("from_run", from), zap.Int64("recipients", n))
	return run, n, nil
}
