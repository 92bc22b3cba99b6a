package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/campaigns"
)

// launchMass cuts a mass run into its batches (campaigns.Store.LaunchMass),
// counts how many of its recipients WeChat will filter for their monthly
// (daily) cap by wxmass's own count, and queues the first expand task,
// which queues one send task per batch.
func (p *Producer) launchMass(ctx context.Context, c *campaigns.Campaign, run int) error {
	log := p.cfg.Logger.With(zap.String("campaign_id", c.ID), zap.Int("run", run))
	n, batches, fin, err := p.store.LaunchMass(ctx, c, run)
	if err != nil {
		return err
	}
	if fin != "" {
		p.finished(ctx, c, run, fin)
		return nil
	}
	if capped, err := p.massCapped(ctx, c, n); err != nil {
		log.Warn("count the recipients over their mass cap", zap.Error(err))
	} else {
		if err := p.store.SetMassCapped(ctx, c.ID, run, capped); err != nil {
			return err
		}
		if capped > 0 || capped == campaigns.MassCappedEveryone {
			log.Warn("recipients already got their mass messages of the period: WeChat will filter them",
				zap.Int64("capped", capped), zap.Int64("recipients", n))
		}
	}
	log.Info("mass run cut into batches", zap.Int("batches", len(batches)), zap.Int64("recipients", n))
	return p.enqueueExpand(ctx, c.ID, run, 0)
}

// massCapped counts the recipients of a mass run to a list of n that got
// their period's cap already, a slice at a time; for a send to all, every
// follower or none; a tag's members are not known without fetching them,
// so a send to a tag counts only sends to all.
func (p *Producer) massCapped(ctx context.Context, c *campaigns.Campaign, n int64) (int64, error) {
	acct, err := p.accounts.Get(c.Account)
	if err != nil {
		return 0, err
	}
	sub, now := acct.Mass.Subscription(), time.Now()
	if c.Audience.Source == campaigns.SourceFollowers || c.Audience.Source == campaigns.SourceTag {
		all, err := p.store.MassCappedAll(ctx, acct.AppID, sub, now)
		if err != nil || !all {
			return 0, err
		}
		return campaigns.MassCappedEveryone, nil
	}
	var capped int64
	const slice = 10000
	for from := int64(0); from < n; from += slice {
		openids, err := p.store.MassRecipients(ctx, c.ID, campaigns.MassBatch{From: from, To: min(from+slice, n)})
		if err != nil {
			return 0, err
		}
		k, err := p.store.MassCapped(ctx, acct.AppID, sub, openids, now)
		if err != nil {
			return 0, err
		}
		capped += k
	}
	return capped, nil
}

// ErrMassListOnSubscription is returned by Start for a mass campaign to a
// list on a subscription account: WeChat does not let one use mass/send
// (48001); it sends to all followers or a tag.
var ErrMassListOnSubscription = errors.New("producer: a subscription account cannot send a mass message to a list (mass/send): send it to all followers or a tag")

// massWarnMax bounds the list MassWarnings counts before a start; a longer
// one is counted by its launch (RunRecord.MassCapped).
const massWarnMax = 1_000_000

// MassWarnings says, before a mass campaign's run starts, whom WeChat will
// filter by wxmass's own count: recipients of a list who got their
// month's (a subscription account's day's) mass messages already, or
// everyone when sends to all reached the cap. It returns nothing for other
// kinds, or a list longer than a million (its launch counts it).
func (p *Producer) MassWarnings(ctx context.Context, c *campaigns.Campaign) ([]string, error) {
	if c.Kind != campaigns.KindMass {
		return nil, nil
	}
	acct, err := p.accounts.Get(c.Account)
	if err != nil {
		return nil, err
	}
	var n int64
	if c.Audience.Source == campaigns.SourceInline || c.Audience.Source == campaigns.SourceFile {
		if n, err = p.store.AudienceLen(ctx, c.ID); err != nil || n > massWarnMax {
			return nil, err
		}
	}
	capped, err := p.massCapped(ctx, c, n)
	if err != nil {
		return nil, err
	}
	period := "this calendar month (Asia/Shanghai)"
	limit := campaigns.MassMonthlyCap
	if acct.Mass.Subscription() {
		period, limit = "today (Asia/Shanghai)", campaigns.MassDailyCap
	}
	switch {
	case capped == campaigns.MassCappedEveryone:
		return []string{fmt.Sprintf("sends to all reached %d mass message(s) %s already: WeChat will filter every follower", limit, period)}, nil
	case capped > 0:
		return []string{fmt.Sprintf("%d of %d recipients got %d mass message(s) %s already, by wxmass's count: WeChat will filter them", capped, n, limit, period)}, nil
	}
	return nil, nil
}
