package ratelimit

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/internal/rdb"
)

// Slowdown cuts the rate of the bucket key for every process, as a sender
// should on WeChat's errcode 45011 (per-minute quota reached). The bucket's
// rate factor (1 normally) is multiplied by Config.SlowdownCut, not below
// Config.SlowdownFloor, then climbs back linearly to 1 over
// Config.SlowdownRecovery. Calls within Config.SlowdownHold of the last cut
// are ignored, so that a flurry of 45011s from one overload cuts once. The
// state lives in Redis next to the bucket; the rate stays a fraction of
// whatever Limit later callers pass. Slowdown returns when Redis has
// answered, or with an error wrapping ctx.Err() or the Redis failure.
func (l *Limiter) Slowdown(ctx context.Context, key string) error {
	s, err := l.rdb.SlowRate(ctx, key, rdb.RateSlowdown{
		Cut:      l.cfg.SlowdownCut,
		Floor:    l.cfg.SlowdownFloor,
		Hold:     l.cfg.SlowdownHold,
		Recovery: l.cfg.SlowdownRecovery,
	})
	if err != nil {
		return fmt.Errorf("ratelimit: slowdown %s: %w", key, err)
	}
	if s.Applied {
		l.log.Info("rate slowed down", zap.String("key", key), zap.Float64("factor", s.Factor),
			zap.Duration("recovered_in", s.RecoveredIn))
	}
	return nil
}

// Pause stops the bucket key from granting tokens to any process until
// until, by the Redis server's clock, or until Resume; meanwhile Wait
// returns a *PausedError. It is meant for WeChat's errcode 45009 (daily
// quota reached), with until the quota's reset. A pause is only extended:
// one that ends later stays. Callers of this process waiting for the bucket
// get the *PausedError at once; other processes' callers get it at their
// leaser's next call. An until already past does nothing. Pause returns
// when Redis has answered, or with an error wrapping ctx.Err() or the Redis
// failure.
func (l *Limiter) Pause(ctx context.Context, key string, until time.Time) error {
	p, err := l.rdb.PauseRate(ctx, key, until)
	if err != nil {
		return fmt.Errorf("ratelimit: pause %s: %w", key, err)
	}
	l.paused(key, p, PauseQuota)
	return nil
}

// PauseOutage is Pause for an outage (WeChat unreachable for the account:
// its circuit breaker opened), with until the end of the breaker's lease,
// extended while it stays open. The outage pause is kept apart from the
// quota pause in Redis: Resume does not end it, and ResumeOutage does not
// end a quota pause. Waiters get a *PausedError whose Reason is
// PauseOutage (unless a quota pause ends later).
func (l *Limiter) PauseOutage(ctx context.Context, key string, until time.Time) error {
	p, err := l.rdb.PauseRateOutage(ctx, key, until)
	if err != nil {
		return fmt.Errorf("ratelimit: pause outage %s: %w", key, err)
	}
	l.paused(key, p, PauseOutage)
	return nil
}

// paused makes this process's callers of key see the pause p at once.
func (l *Limiter) paused(key string, p rdb.RatePause, reason PauseReason) {
	if p.For <= 0 {
		return
	}
	l.log.Info("rate paused", zap.String("key", key), zap.Time("until", p.Until), zap.String("reason", string(reason)))
	if b := l.lookup(key); b != nil {
		b.mu.Lock()
		if p.Until.After(b.pausedUntil) || !l.cfg.NowFunc().Before(b.pauseCheck) {
			b.pausedUntil, b.pausedReason = p.Until, reason
		}
		b.pauseCheck = l.cfg.NowFunc().Add(min(p.For, l.cfg.PauseRecheck))
		b.failAll(&PausedError{Key: key, Until: b.pausedUntil, Reason: b.pausedReason})
		b.mu.Unlock()
	}
}

// Resume ends a pause of the bucket key. This process's callers see it at
// once, other processes' within Config.PauseRecheck. Resuming a bucket that
// is not paused does nothing. Resume returns when Redis has answered, or
// with an error wrapping ctx.Err() or the Redis failure.
func (l *Limiter) Resume(ctx context.Context, key string) error {
	was, err := l.rdb.ResumeRate(ctx, key)
	if err != nil {
		return fmt.Errorf("ratelimit: resume %s: %w", key, err)
	}
	l.resumed(key, was, PauseQuota)
	return nil
}

// ResumeOutage ends an outage pause of the bucket key (PauseOutage); a
// quota pause stays. Callers see it as they see Resume.
func (l *Limiter) ResumeOutage(ctx context.Context, key string) error {
	was, err := l.rdb.ResumeRateOutage(ctx, key)
	if err != nil {
		return fmt.Errorf("ratelimit: resume outage %s: %w", key, err)
	}
	l.resumed(key, was, PauseOutage)
	return nil
}

// resumed makes this process look at Redis again at the next call of key.
func (l *Limiter) resumed(key string, was bool, reason PauseReason) {
	if was {
		l.log.Info("rate resumed", zap.String("key", key), zap.String("reason", string(reason)))
	}
	if b := l.lookup(key); b != nil {
		b.mu.Lock()
		b.pauseCheck = time.Time{}
		b.mu.Unlock()
	}
}

// State describes a bucket, as all processes share it, at one moment of
// the Redis server's clock.
type State struct {
	// Limit is the Limit of the latest Wait that reached Redis, from any
	// process, with Burst less Config.Headroom: the bucket's capacity. It is zero when the bucket has not been used since it was
	// last full (Redis then keeps nothing): it is full at whatever Limit
	// the next Wait passes.
	Limit Limit
	// Tokens is what the bucket holds now, fractions included.
	Tokens float64
	// Rate is the effective rate now, in tokens per second: Limit.Rate
	// times Factor.
	Rate float64
	// Factor is the slowdown factor: 1 normally, less after a Slowdown.
	Factor float64
	// RecoversAt is when Factor is back at 1; zero when it is 1.
	RecoversAt time.Time
	// PausedUntil is when a quota pause ends; zero when not paused.
	PausedUntil time.Time
	// OutageUntil is when an outage pause ends (PauseOutage); zero when
	// there is none.
	OutageUntil time.Time
	// At is the Redis server's time of the reading.
	At time.Time
}

// Paused reports whether the bucket was paused at the time of the reading.
func (s State) Paused() bool { return s.PausedUntil.After(s.At) || s.OutageUntil.After(s.At) }

// State reads the bucket key from Redis, for status displays. It returns
// when Redis has answered, or with an error wrapping ctx.Err() or the Redis
// failure.
func (l *Limiter) State(ctx context.Context, key string) (State, error) {
	info, err := l.rdb.RateInfo(ctx, key)
	if err != nil {
		return State{}, fmt.Errorf("ratelimit: state %s: %w", key, err)
	}
	return State{
		Limit:       Limit{Rate: info.Rate, Burst: info.Burst},
		Tokens:      info.Tokens,
		Rate:        info.Rate * info.Factor,
		Factor:      info.Factor,
		RecoversAt:  info.RecoveredAt,
		PausedUntil: info.PausedUntil,
		OutageUntil: info.OutageUntil,
		At:          info.At,
	}, nil
}
