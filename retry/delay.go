package retry

import (
	"fmt"
	"math"
	"time"
)

// DelayKind selects how a DelaySpec computes the wait.
type DelayKind int

// The delay kinds.
const (
	// DelayNone is the zero DelayKind: the rule sets no delay. Classes that
	// do not retry or pause must use it; for retry, refresh_token and quota
	// rules New replaces it with the class's default.
	DelayNone DelayKind = iota
	// DelayExponential waits Base × Factor^attempt, capped at Max, with
	// ±Jitter spread.
	DelayExponential
	// DelayNextMinute waits until the next minute boundary after now, plus
	// up to Spread.
	DelayNextMinute
	// DelayFixed waits Base, plus up to Spread.
	DelayFixed
	// DelayQuotaReset waits until the next daily quota reset
	// (Config.QuotaResetHour in Config.QuotaLocation). Only quota rules may
	// use it.
	DelayQuotaReset
)

// String returns the name of k used in the rules file: "none",
// "exponential", "next_minute", "fixed" or "quota_reset", or
// "delay_kind(N)" for another value.
func (k DelayKind) String() string {
	switch k {
	case DelayNone:
		return "none"
	case DelayExponential:
		return "exponential"
	case DelayNextMinute:
		return "next_minute"
	case DelayFixed:
		return "fixed"
	case DelayQuotaReset:
		return "quota_reset"
	}
	return fmt.Sprintf("delay_kind(%d)", int(k))
}

// Defaults of the delay constructors and of the policy.
const (
	// JitterDefault is the ±fraction of spread Exponential gives a delay:
	// 0.2 means the delay is multiplied by a factor in [0.8, 1.2).
	JitterDefault = 0.2
	// NextMinuteSpreadDefault is the most DelayNextMinute adds after the
	// boundary, so that throttled sends do not all fire in the same
	// instant.
	NextMinuteSpreadDefault = 3 * time.Second
	// ExponentialBaseDefault is the first delay of the default exponential
	// backoff: 1 s, then 2 s, 4 s, ... (wechat-api.md §8.2, errcode -1).
	ExponentialBaseDefault = time.Second
	// ExponentialFactorDefault is the growth factor of the default
	// exponential backoff.
	ExponentialFactorDefault = 2.0
	// ExponentialMaxDefault caps the default exponential backoff.
	ExponentialMaxDefault = 5 * time.Minute
)

// DelaySpec describes the wait before a retry, or the length of a pause.
// Build one with Exponential, NextMinute, Fixed or UntilQuotaReset; the
// zero DelaySpec is DelayNone.
type DelaySpec struct {
	// Kind selects the computation.
	Kind DelayKind
	// Base is the first delay of DelayExponential and the delay of
	// DelayFixed. It must be positive for both.
	Base time.Duration
	// Factor multiplies the delay of DelayExponential after each attempt.
	// It must be at least 1.
	Factor float64
	// Max caps the delay of DelayExponential, jitter included. It must be
	// at least Base.
	Max time.Duration
	// Jitter is the ±fraction of spread of DelayExponential, in [0, 1):
	// 0.2 multiplies the delay by a random factor in [0.8, 1.2) before the
	// cap. Zero means no jitter.
	Jitter float64
	// Spread is the most DelayNextMinute and DelayFixed add at random to
	// the wait (never subtract, so a "wait at least" rule holds). Zero
	// means none; it must not be negative.
	Spread time.Duration
}

// Exponential returns a DelayExponential spec: base × factor^attempt,
// capped at maxDelay, with JitterDefault jitter.
func Exponential(base time.Duration, factor float64, maxDelay time.Duration) DelaySpec {
	return DelaySpec{Kind: DelayExponential, Base: base, Factor: factor, Max: maxDelay, Jitter: JitterDefault}
}

// ExponentialDefault returns the default exponential backoff: 1 s × 2^attempt,
// ±20 % jitter, capped at 5 minutes. It is what the rules file means by
// "exponential" and what a retry rule without a delay gets.
func ExponentialDefault() DelaySpec {
	return Exponential(ExponentialBaseDefault, ExponentialFactorDefault, ExponentialMaxDefault)
}

// NextMinute returns a DelayNextMinute spec that adds up to spread after the
// boundary.
func NextMinute(spread time.Duration) DelaySpec {
	return DelaySpec{Kind: DelayNextMinute, Spread: spread}
}

// Fixed returns a DelayFixed spec of d, without spread.
func Fixed(d time.Duration) DelaySpec {
	return DelaySpec{Kind: DelayFixed, Base: d}
}

// UntilQuotaReset returns a DelayQuotaReset spec.
func UntilQuotaReset() DelaySpec {
	return DelaySpec{Kind: DelayQuotaReset}
}

// String describes d the way the rules file spells it: "exponential",
// "next_minute", "quota_reset", a Go duration for DelayFixed, or "none".
// Non-default parameters are added in parentheses.
func (d DelaySpec) String() string {
	switch d.Kind {
	case DelayExponential:
		if d == ExponentialDefault() {
			return "exponential"
		}
		return fmt.Sprintf("exponential(base %s, factor %g, max %s, jitter %g)", d.Base, d.Factor, d.Max, d.Jitter)
	case DelayNextMinute:
		if d.Spread == NextMinuteSpreadDefault {
			return "next_minute"
		}
		return fmt.Sprintf("next_minute(spread %s)", d.Spread)
	case DelayFixed:
		if d.Spread == 0 {
			return d.Base.String()
		}
		return fmt.Sprintf("%s(spread %s)", d.Base, d.Spread)
	}
	return d.Kind.String()
}

// validate checks the parameters d's kind uses. It returns a reason for an
// error message, or "" when d is valid.
func (d DelaySpec) validate() string {
	switch d.Kind {
	case DelayNone, DelayQuotaReset:
		return ""
	case DelayExponential:
		switch {
		case d.Base <= 0:
			return fmt.Sprintf("exponential base %s is not positive", d.Base)
		case math.IsNaN(d.Factor) || d.Factor < 1 || math.IsInf(d.Factor, 0):
			return fmt.Sprintf("exponential factor %g is not a finite number >= 1", d.Factor)
		case d.Max < d.Base:
			return fmt.Sprintf("exponential max %s is less than base %s", d.Max, d.Base)
		case math.IsNaN(d.Jitter) || d.Jitter < 0 || d.Jitter >= 1:
			return fmt.Sprintf("exponential jitter %g is not in [0, 1)", d.Jitter)
		}
		return ""
	case DelayNextMinute:
		if d.Spread < 0 {
			return fmt.Sprintf("next_minute spread %s is negative", d.Spread)
		}
		return ""
	case DelayFixed:
		switch {
		case d.Base <= 0:
			return fmt.Sprintf("fixed delay %s is not positive", d.Base)
		case d.Spread < 0:
			return fmt.Sprintf("fixed delay spread %s is negative", d.Spread)
		}
		return ""
	}
	return fmt.Sprintf("delay kind %d is not defined", int(d.Kind))
}

// wait returns how long to wait after now before try number attempt+1.
// rnd returns a number in [0, 1). DelayQuotaReset and DelayNone are not
// handled here (the caller computes the reset time) and return 0.
func (d DelaySpec) wait(attempt int, now time.Time, rnd func() float64) time.Duration {
	switch d.Kind {
	case DelayExponential:
		return d.exponential(attempt, rnd)
	case DelayNextMinute:
		boundary := now.Truncate(time.Minute).Add(time.Minute)
		return boundary.Sub(now) + spread(d.Spread, rnd)
	case DelayFixed:
		return d.Base + spread(d.Spread, rnd)
	}
	return 0
}

// exponential computes Base × Factor^attempt × (1 ± Jitter), capped at Max.
// It works in float64 so that a large attempt cannot overflow.
func (d DelaySpec) exponential(attempt int, rnd func() float64) time.Duration {
	if attempt < 0 {
		attempt = 0
	}
	f := float64(d.Base) * math.Pow(d.Factor, float64(attempt))
	if f > float64(d.Max) || math.IsInf(f, 0) || math.IsNaN(f) {
		f = float64(d.Max)
	}
	if d.Jitter > 0 {
		f *= 1 + d.Jitter*(2*unit(rnd)-1)
	}
	if f > float64(d.Max) {
		f = float64(d.Max)
	}
	if f < 0 {
		f = 0
	}
	return time.Duration(f)
}

// spread returns a random duration in [0, limit).
func spread(limit time.Duration, rnd func() float64) time.Duration {
	if limit <= 0 {
		return 0
	}
	return time.Duration(unit(rnd) * float64(limit))
}

// unit calls rnd and clamps its result to [0, 1), so that a faulty injected
// source cannot produce a negative or runaway delay.
func unit(rnd func() float64) float64 {
	r := rnd()
	if !(r >= 0) { // also catches NaN
		return 0
	}
	if r >= 1 {
		return math.Nextafter(1, 0)
	}
	return r
}
