package wechattest

import (
	"sync"
	"time"
)

// limiter enforces one Limit for one (account, API) pair and counts the
// day's calls for openapi/quota/get even when the API is unlimited.
//
// The per-second limit is a sliding window, not aligned buckets: a call is
// refused when Limit.PerSecond calls were already admitted in the last
// second. This is the same window Stats.Peak1s measures, so a client that
// never sees 45011 cannot have produced a Peak1s above the limit.
type limiter struct {
	mu    sync.Mutex
	limit Limit
	// ring holds the admission times (Unix nanoseconds) of the last
	// limit.PerSecond admitted calls, oldest at head.
	ring []int64
	head int
	n    int
	day  int // the day of used, as yyyymmdd in the quota location
	used int
}

func newLimiter(l Limit) *limiter {
	lim := &limiter{limit: l}
	if l.PerSecond > 0 {
		lim.ring = make([]int64, l.PerSecond)
	}
	return lim
}

// dayOf returns the calendar day of t in loc as yyyymmdd.
func dayOf(t time.Time, loc *time.Location) int {
	y, m, d := t.In(loc).Date()
	return y*10000 + int(m)*100 + d
}

// rollDay starts a new day's count when the day changed. l.mu is held.
func (l *limiter) rollDay(now time.Time, loc *time.Location) {
	if d := dayOf(now, loc); d != l.day {
		l.day, l.used = d, 0
	}
}

// admit counts a call at now and returns 0, or the errcode that refuses it:
// 45009 when the daily limit is used up, 45011 when the per-second limit
// is. Refused calls are not counted.
func (l *limiter) admit(now time.Time, loc *time.Location) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rollDay(now, loc)
	if l.limit.Daily > 0 && l.used >= l.limit.Daily {
		return 45009
	}
	if l.limit.PerSecond > 0 {
		t := now.UnixNano()
		if l.n == len(l.ring) {
			if t-l.ring[l.head] < int64(time.Second) {
				return 45011
			}
			l.head = (l.head + 1) % len(l.ring)
			l.n--
		}
		l.ring[(l.head+l.n)%len(l.ring)] = t
		l.n++
	}
	l.used++
	return 0
}

// usage returns the day's count at now.
func (l *limiter) usage(now time.Time, loc *time.Location) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rollDay(now, loc)
	return l.used
}

// reset clears the day's count.
func (l *limiter) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.used = 0
}
