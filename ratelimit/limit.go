package ratelimit

import (
	"fmt"
	"math"
	"strconv"
)

// Limit is the rate of one bucket: Rate tokens per second on average, with
// up to Burst tokens at once after a quiet spell. All processes together
// take at most Rate + Burst tokens in any one-second window. Limit is passed
// with every Wait, so configuration changes apply without a restart; the
// latest Limit passed for a key is the one its leaser uses.
type Limit struct {
	// Rate is the refill rate in tokens per second; it must be positive
	// and finite.
	Rate float64
	// Burst is the bucket's capacity; it must be at least 1. A Burst below
	// Rate × Config.MaxPause makes leasers call Redis more often (see the
	// package documentation).
	Burst int
	// Daily is the most tokens the bucket grants in one quota day (see
	// Config.DayEnd), across all processes; 0 means no daily quota. Once
	// they are granted, Wait answers *PausedError until the day ends.
	// Tokens are counted when Redis grants them, so the count includes the
	// few a process leased and did not use.
	Daily int64
}

func (l Limit) validate() error {
	if !(l.Rate > 0 && l.Rate <= math.MaxFloat64) {
		return fmt.Errorf("%w: rate %v is not a positive finite number", ErrInvalidLimit, l.Rate)
	}
	if l.Burst < 1 {
		return fmt.Errorf("%w: burst %d is less than 1", ErrInvalidLimit, l.Burst)
	}
	if l.Daily < 0 {
		return fmt.Errorf("%w: daily quota %d is negative", ErrInvalidLimit, l.Daily)
	}
	return nil
}

// Priority orders the callers waiting for one bucket within a process:
// every caller of a higher priority is served before any of a lower one,
// and callers of one priority in arrival order. Priorities do not reach
// across processes; Redis serves processes as they ask.
type Priority int

const (
	// PriorityLow is for bulk campaign sends. It is the zero value.
	PriorityLow Priority = iota
	// PriorityHigh is for transactional sends, which go before bulk ones.
	PriorityHigh

	priorities = 2
)

// index clamps p to a queue index.
func (p Priority) index() int {
	return min(max(int(p), 0), priorities-1)
}

// String returns "low", "high" or the number.
func (p Priority) String() string {
	switch p {
	case PriorityLow:
		return "low"
	case PriorityHigh:
		return "high"
	}
	return strconv.Itoa(int(p))
}
