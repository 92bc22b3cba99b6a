package ratelimit

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Defaults of Config.
const (
	// MaxBatchDefault is the most tokens one Redis call asks for.
	MaxBatchDefault = 256
	// MaxPauseDefault is the longest a leaser sleeps between Redis calls
	// while callers wait.
	MaxPauseDefault = 50 * time.Millisecond
	// BatchWindowDefault is the least time between a process's Redis calls
	// for one bucket while the bucket keeps up with demand.
	BatchWindowDefault = 10 * time.Millisecond
	// MaxWaitDefault is the longest a caller waits for a token.
	MaxWaitDefault = 10 * time.Second
	// PauseRecheckDefault is how long a process trusts a pause it learnt
	// from Redis before it asks again.
	PauseRecheckDefault = time.Second
	// SlowdownCutDefault halves a bucket's rate on each Slowdown.
	SlowdownCutDefault = 0.5
	// SlowdownFloorDefault keeps a slowed bucket at a tenth of its rate at
	// least.
	SlowdownFloorDefault = 0.1
	// SlowdownHoldDefault is how long after a cut further Slowdowns are
	// ignored.
	SlowdownHoldDefault = 5 * time.Second
	// SlowdownRecoveryDefault is how long a slowed bucket takes to recover
	// its full rate.
	SlowdownRecoveryDefault = time.Minute
	// IdleTimeoutDefault is how long a leaser lives without callers.
	IdleTimeoutDefault = time.Minute
	// HeadroomDefault is the default of Config.Headroom.
	HeadroomDefault = 40 * time.Millisecond
	// PrefetchDefault is the default of Config.Prefetch (at most half the
	// Headroom).
	PrefetchDefault = 20 * time.Millisecond
)

// Config configures a Limiter. The zero Config is valid: every zero field
// takes the default named after it. Negative values are errors.
//
// The Slowdown fields are read when Slowdown is called and stored in Redis
// with the cut, so every process follows the recovery of the process that
// cut; processes sharing buckets should still use the same values.
type Config struct {
	// MaxBatch is the most tokens a leaser asks Redis for in one call
	// (MaxBatchDefault). Callers beyond it are served by the next call.
	MaxBatch int
	// Headroom is how much of the rate, in time, is kept out of each
	// bucket's burst (HeadroomDefault): a bucket holds at most
	// Burst - ceil(Rate × (Headroom + Prefetch)) tokens, at least one. Tokens are
	// counted when Redis grants them, but WeChat counts calls when they
	// arrive; the headroom absorbs the jitter between the two, so that
	// WeChat never sees more than Rate + Burst in a second. Negative means
	// none.
	Headroom time.Duration
	// Prefetch is how far ahead of demand a process takes tokens while its
	// bucket has plenty (PrefetchDefault, or half the Headroom if that is
	// less). The leaser then asks Redis, on top of the callers waiting, for
	// about as many tokens as this process's callers took over the last
	// Prefetch, and callers that find one of those take it at once, without
	// waiting for a Redis call. A token taken ahead is used within Prefetch
	// of its grant or dropped, and, like the Headroom, Prefetch's worth of
	// the rate is kept out of the bucket: a bucket holds at most Burst -
	// ceil(Rate × (Headroom + Prefetch)) tokens. Nothing is taken ahead
	// while Redis grants fewer tokens than asked for (the bucket is at its
	// limit). Negative means none: every caller waits for a Redis call, as
	// it does when Headroom is negative and Prefetch unset.
	Prefetch time.Duration
	// MaxPause is the longest a leaser sleeps between two Redis calls while
	// callers are waiting and the bucket is short (MaxPauseDefault). It
	// bounds a saturated process's calls to about 1/MaxPause a second, and
	// delays a high-priority caller by up to as much.
	MaxPause time.Duration
	// BatchWindow is the least time between two Redis calls of one bucket
	// in this process while the bucket has tokens to spare: callers that
	// arrive within it share the next call (BatchWindowDefault). It adds
	// up to this much latency to a Wait under load, and bounds an
	// unsaturated process's calls to 1/BatchWindow a second.
	BatchWindow time.Duration
	// MaxWait is the longest a caller waits for a token (MaxWaitDefault).
	// A caller whose turn is estimated to come later gets an *Error at
	// once, and one still waiting after MaxWait gets it then.
	MaxWait time.Duration
	// PauseRecheck is how long a process answers Wait with a *PausedError
	// from memory, without asking Redis, after it learnt of a pause
	// (PauseRecheckDefault). A Resume in another process reaches this one
	// within this time.
	PauseRecheck time.Duration
	// SlowdownCut multiplies a bucket's rate factor on each Slowdown; it
	// must be in (0, 1) (SlowdownCutDefault).
	SlowdownCut float64
	// SlowdownFloor is the lowest rate factor Slowdown goes to, in (0, 1]
	// (SlowdownFloorDefault).
	SlowdownFloor float64
	// SlowdownHold is how long after a cut further Slowdowns of the bucket
	// are ignored, so that the 45011s of sends already in flight count
	// once (SlowdownHoldDefault).
	SlowdownHold time.Duration
	// SlowdownRecovery is how long a slowed bucket's rate takes to climb
	// back, linearly, to the full rate (SlowdownRecoveryDefault).
	SlowdownRecovery time.Duration
	// IdleTimeout is how long a leaser goroutine lives without callers
	// (IdleTimeoutDefault).
	IdleTimeout time.Duration
	// NowFunc is the clock for callers' deadlines and the leasers'
	// schedules (time.Now). Buckets use the Redis server's clock.
	NowFunc func() time.Time
	// DayEnd returns the end of the quota day that holds t, for limits with
	// a Daily quota (DayEndDefault: midnight in China, where WeChat's
	// quotas reset).
	DayEnd func(t time.Time) time.Time
	// Logger receives slowdowns, pauses and resumes; nil means none.
	Logger *zap.Logger
}

// chinaTime is UTC+8, which has had no daylight saving time since 1991.
var chinaTime = time.FixedZone("UTC+8", 8*60*60)

// DayEndDefault returns the next midnight in China after t.
func DayEndDefault(t time.Time) time.Time {
	y, m, d := t.In(chinaTime).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, chinaTime)
}

// WithDefaults returns c with every zero field set to its default. It does
// not validate c; New does.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.MaxBatch == 0 {
		c.MaxBatch = MaxBatchDefault
	}
	def(&c.MaxPause, MaxPauseDefault)
	if c.Headroom == 0 {
		c.Headroom = HeadroomDefault
	}
	if c.Prefetch == 0 {
		c.Prefetch = min(PrefetchDefault, c.Headroom/2)
		if c.Headroom < 0 {
			c.Prefetch = -1
		}
	}
	def(&c.BatchWindow, BatchWindowDefault)
	def(&c.MaxWait, MaxWaitDefault)
	def(&c.PauseRecheck, PauseRecheckDefault)
	if c.SlowdownCut == 0 {
		c.SlowdownCut = SlowdownCutDefault
	}
	if c.SlowdownFloor == 0 {
		c.SlowdownFloor = SlowdownFloorDefault
	}
	def(&c.SlowdownHold, SlowdownHoldDefault)
	def(&c.SlowdownRecovery, SlowdownRecoveryDefault)
	def(&c.IdleTimeout, IdleTimeoutDefault)
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	if c.DayEnd == nil {
		c.DayEnd = DayEndDefault
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

func (c Config) validate() error {
	var errs []error
	if c.MaxBatch < 0 {
		errs = append(errs, fmt.Errorf("max batch %d is negative", c.MaxBatch))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"max pause", c.MaxPause},
		{"batch window", c.BatchWindow},
		{"max wait", c.MaxWait},
		{"pause recheck", c.PauseRecheck},
		{"slowdown hold", c.SlowdownHold},
		{"slowdown recovery", c.SlowdownRecovery},
		{"idle timeout", c.IdleTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %s is negative", d.name, d.v))
		}
	}
	if !(c.SlowdownCut > 0 && c.SlowdownCut < 1) {
		errs = append(errs, fmt.Errorf("slowdown cut %v is not in (0, 1)", c.SlowdownCut))
	}
	if !(c.SlowdownFloor > 0 && c.SlowdownFloor <= 1) {
		errs = append(errs, fmt.Errorf("slowdown floor %v is not in (0, 1]", c.SlowdownFloor))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("ratelimit: config: %w", err)
	}
	return nil
}
