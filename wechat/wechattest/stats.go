package wechattest

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of what the fake received and answered. Every call is
// counted once in Calls and once in either OK, Errors or Faults.HTTP5xx;
// once it has ended, it is also counted once in Answered, Dropped or
// Abandoned, so Calls minus those three is the number of calls in flight.
type Stats struct {
	// APIs maps every API name (such as "message/template/send") to its
	// counters, including APIs that were never called.
	APIs map[string]APIStats `json:"apis"`
	// Deliveries is the number of recorded deliveries, over all send APIs.
	Deliveries int64 `json:"deliveries"`
	// DuplicatesDelivered is the number of deliveries whose (API, openid,
	// body hash) had already been delivered: the same message reaching the
	// same user again. client_msg_id dedupe keeps it at 0 for template sends
	// retried within the dedupe window.
	DuplicatesDelivered int64 `json:"duplicates_delivered"`
	// Receipts counts the TEMPLATESENDJOBFINISH receipts pushed to
	// Config.Callback.URL (all zero without one).
	Receipts ReceiptStats `json:"receipts"`
	// Interactions counts the users' interactions recorded (Interact) and
	// pushed (PushInteraction); they are not counted in Receipts.
	Interactions InteractionStats `json:"interactions"`
}

// APIStats are the counters of one API, summed over all accounts.
type APIStats struct {
	// Calls is the number of requests received, whatever their outcome.
	Calls int64 `json:"calls"`
	// OK is the number of calls answered with success (errcode 0, or a
	// token), including template sends deduped by client_msg_id.
	OK int64 `json:"ok"`
	// Accepted is the number of deliveries recorded (send APIs only).
	Accepted int64 `json:"accepted"`
	// Deduped is the number of template sends answered from the
	// client_msg_id window instead of delivered again.
	Deduped int64 `json:"deduped"`
	// Errors maps each errcode answered to its count.
	Errors map[int]int64 `json:"errors"`
	// Faults counts the injected faults.
	Faults FaultStats `json:"faults"`
	// TokensIssued is the number of new access_tokens issued (token APIs
	// only).
	TokensIssued int64 `json:"tokens_issued"`
	// Answered is the number of calls whose answer was written and flushed
	// without error (see AnswerAnswered). It is counted just before the
	// write and moved to Abandoned when the write fails.
	Answered int64 `json:"answered"`
	// Dropped is the number of connections the DropAfterRecord fault closed
	// instead of answering (see AnswerDropped).
	Dropped int64 `json:"dropped"`
	// Abandoned is the number of calls whose client went away before the
	// answer could be written (see AnswerAbandoned).
	Abandoned int64 `json:"abandoned"`
	// Peak1s is the most calls received in any sliding one-second window of
	// the fake's clock (calls exactly one second apart are in different
	// windows).
	Peak1s int `json:"peak_1s"`
}

// FaultStats counts the faults injected into one API.
type FaultStats struct {
	// HTTP5xx counts 502 and 503 answers.
	HTTP5xx int64 `json:"http_5xx"`
	// SystemError counts injected errcode -1 answers.
	SystemError int64 `json:"system_error"`
	// DropAfterRecord counts connections closed instead of answered.
	DropAfterRecord int64 `json:"drop_after_record"`
	// Slow counts delayed answers.
	Slow int64 `json:"slow"`
	// InvalidateTokens counts token invalidations.
	InvalidateTokens int64 `json:"invalidate_tokens"`
}

// apiStats are the live counters of one API.
type apiStats struct {
	calls, ok, accepted, deduped, tokensIssued atomic.Int64

	http5xx, sysErr, drop, slow, invalidate atomic.Int64

	answered, dropped, abandoned atomic.Int64

	errMu  sync.Mutex
	errors map[int]int64

	peak peakWindow
}

// count records the outcome of a call.
func (st *apiStats) count(out *outcome) {
	if out.code == 0 {
		st.ok.Add(1)
		if out.accepted {
			st.accepted.Add(1)
		}
		if out.deduped {
			st.deduped.Add(1)
		}
		return
	}
	st.errMu.Lock()
	if st.errors == nil {
		st.errors = make(map[int]int64)
	}
	st.errors[out.code]++
	st.errMu.Unlock()
}

func (st *apiStats) snapshot() APIStats {
	st.errMu.Lock()
	errs := make(map[int]int64, len(st.errors))
	for code, n := range st.errors {
		errs[code] = n
	}
	st.errMu.Unlock()
	// Ended calls first, so that Calls is never less than their sum.
	answered, dropped, abandoned := st.answered.Load(), st.dropped.Load(), st.abandoned.Load()
	return APIStats{
		Calls:    st.calls.Load(),
		OK:       st.ok.Load(),
		Accepted: st.accepted.Load(),
		Deduped:  st.deduped.Load(),
		Errors:   errs,
		Faults: FaultStats{
			HTTP5xx:          st.http5xx.Load(),
			SystemError:      st.sysErr.Load(),
			DropAfterRecord:  st.drop.Load(),
			Slow:             st.slow.Load(),
			InvalidateTokens: st.invalidate.Load(),
		},
		TokensIssued: st.tokensIssued.Load(),
		Answered:     answered,
		Dropped:      dropped,
		Abandoned:    abandoned,
		Peak1s:       st.peak.max(),
	}
}

// peakWindow tracks the most events in any sliding one-second window. It
// keeps the times of the events of the last second in a ring buffer, so its
// memory is bounded by the peak rate.
type peakWindow struct {
	mu   sync.Mutex
	ring []int64 // Unix nanoseconds; len is a power of two
	head int
	n    int
	last int64
	peak int
}

// observe reads the clock and counts an event at that time, which it
// returns. Reading the clock under the lock keeps the times in order; a
// clock that goes back is treated as standing still.
func (p *peakWindow) observe(now func() time.Time) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := now()
	ns := max(t.UnixNano(), p.last)
	p.last = ns
	mask := len(p.ring) - 1
	for p.n > 0 && ns-p.ring[p.head] >= int64(time.Second) {
		p.head = (p.head + 1) & mask
		p.n--
	}
	if p.n == len(p.ring) {
		p.grow()
		mask = len(p.ring) - 1
	}
	p.ring[(p.head+p.n)&mask] = ns
	p.n++
	p.peak = max(p.peak, p.n)
	return t
}

func (p *peakWindow) grow() {
	size := max(2*len(p.ring), 64)
	ring := make([]int64, size)
	for i := 0; i < p.n; i++ {
		ring[i] = p.ring[(p.head+i)&(len(p.ring)-1)]
	}
	p.ring, p.head = ring, 0
}

func (p *peakWindow) max() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peak
}
