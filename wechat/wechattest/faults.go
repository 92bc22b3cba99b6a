package wechattest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// SlowDelayDefault is Faults.SlowDelay when Faults.Slow is set and SlowDelay
// is 0.
const SlowDelayDefault = 2 * time.Second

// Faults are the rates, each in [0, 1], at which the fake injects failures
// into the send APIs (template/send, custom/send, subscribe/bizsend), and the
// base latency of their answers. Each send call draws one number per fault
// kind from a PRNG seeded by Config.Seed, so a sequential client sees the
// same faults on every run. The zero Faults injects nothing and answers at
// once.
type Faults struct {
	// SystemError answers errcode -1 "system error" instead of handling the
	// call. Nothing is delivered.
	SystemError float64 `yaml:"system_error"`
	// HTTP5xx answers HTTP 502 or 503 with an HTML body instead of handling
	// the call, like a failing front-end proxy. Nothing is delivered.
	HTTP5xx float64 `yaml:"http_5xx"`
	// DropAfterRecord handles the call (recording the delivery when it is
	// accepted) and then closes the connection without answering, so the
	// client cannot know whether the message went out.
	DropAfterRecord float64 `yaml:"drop_after_record"`
	// Slow handles the call and then waits SlowDelay before answering. The
	// wait ends early, without an answer, when the request's context ends.
	Slow float64 `yaml:"slow"`
	// SlowDelay is the wait of a Slow call, in real time (not scaled by
	// TimeScale). Default: SlowDelayDefault when Slow is set.
	SlowDelay time.Duration `yaml:"slow_delay"`
	// InvalidateTokens invalidates every access_token of every account before
	// the call is handled, as if another system had refreshed them; the call
	// itself then answers 40001.
	InvalidateTokens float64 `yaml:"invalidate_tokens"`
	// Latency delays the answer of every send call (HTTP 5xx answers and
	// dropped connections included) after the call is handled, and after a
	// Slow call's SlowDelay, in real time (not scaled by TimeScale). The
	// wait ends early, without an answer, when the request's context ends:
	// when the client goes away, so that a test can kill a client while its
	// calls are in flight. Default: 0, no delay.
	Latency time.Duration `yaml:"latency"`
}

// faultFieldError names the Faults field that is invalid.
type faultFieldError struct{ field, key, reason string }

// withDefaults validates f (rates in [0, 1], durations not negative) and
// fills in SlowDelay.
func (f Faults) withDefaults() (Faults, *faultFieldError) {
	rates := []struct {
		field, key string
		v          float64
	}{
		{"SystemError", "system_error", f.SystemError},
		{"HTTP5xx", "http_5xx", f.HTTP5xx},
		{"DropAfterRecord", "drop_after_record", f.DropAfterRecord},
		{"Slow", "slow", f.Slow},
		{"InvalidateTokens", "invalidate_tokens", f.InvalidateTokens},
	}
	for _, r := range rates {
		if !(r.v >= 0 && r.v <= 1) { // Also false for NaN.
			return Faults{}, &faultFieldError{r.field, r.key, fmt.Sprintf("rate %v is not in [0, 1]", r.v)}
		}
	}
	if f.SlowDelay < 0 {
		return Faults{}, &faultFieldError{"SlowDelay", "slow_delay", fmt.Sprintf("%v is negative", f.SlowDelay)}
	}
	if f.Latency < 0 {
		return Faults{}, &faultFieldError{"Latency", "latency", fmt.Sprintf("%v is negative", f.Latency)}
	}
	if f.Slow > 0 && f.SlowDelay == 0 {
		f.SlowDelay = SlowDelayDefault
	}
	return f, nil
}

// faultsJSON is the JSON form of Faults, used by the /fake/faults endpoint.
type faultsJSON struct {
	SystemError      float64 `json:"system_error"`
	HTTP5xx          float64 `json:"http_5xx"`
	DropAfterRecord  float64 `json:"drop_after_record"`
	Slow             float64 `json:"slow"`
	SlowDelay        string  `json:"slow_delay,omitempty"`
	InvalidateTokens float64 `json:"invalidate_tokens"`
	Latency          string  `json:"latency,omitempty"`
}

// MarshalJSON encodes f with snake_case keys, and SlowDelay and Latency as Go
// duration strings such as "2s" (omitted when 0).
func (f Faults) MarshalJSON() ([]byte, error) {
	j := faultsJSON{
		SystemError:      f.SystemError,
		HTTP5xx:          f.HTTP5xx,
		DropAfterRecord:  f.DropAfterRecord,
		Slow:             f.Slow,
		InvalidateTokens: f.InvalidateTokens,
	}
	if f.SlowDelay != 0 {
		j.SlowDelay = f.SlowDelay.String()
	}
	if f.Latency != 0 {
		j.Latency = f.Latency.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes the form MarshalJSON writes. Unknown keys are an
// error.
func (f *Faults) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var j faultsJSON
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("faults: %w", err)
	}
	slowDelay, err := parseJSONDuration("slow_delay", j.SlowDelay)
	if err != nil {
		return err
	}
	latency, err := parseJSONDuration("latency", j.Latency)
	if err != nil {
		return err
	}
	*f = Faults{
		SystemError:      j.SystemError,
		HTTP5xx:          j.HTTP5xx,
		DropAfterRecord:  j.DropAfterRecord,
		Slow:             j.Slow,
		SlowDelay:        slowDelay,
		InvalidateTokens: j.InvalidateTokens,
		Latency:          latency,
	}
	return nil
}

// parseJSONDuration parses the duration string of the JSON key key; "" is 0.
func parseJSONDuration(key, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("faults: %s: %w", key, err)
	}
	return d, nil
}

// faultDraw is what the PRNG chose for one call.
type faultDraw struct {
	status     int // 502 or 503, or 0
	invalidate bool
	sysErr     bool
	slow       time.Duration
	drop       bool
	latency    time.Duration // Faults.Latency, for every send call
}

// faultInjector draws faults. The rates are read without locking; the PRNG
// is locked only when some rate is not zero.
type faultInjector struct {
	cur atomic.Pointer[Faults]
	mu  sync.Mutex
	rng *rand.Rand
}

func newFaultInjector(seed int64, f Faults) *faultInjector {
	fi := &faultInjector{rng: rand.New(rand.NewPCG(uint64(seed), 0x9e3779b97f4a7c15))}
	fi.cur.Store(&f)
	return fi
}

// draw decides the faults of one send call. It always consumes the same
// number of PRNG values for the same rates, so sequential runs repeat.
func (fi *faultInjector) draw() faultDraw {
	f := fi.cur.Load()
	if f.SystemError == 0 && f.HTTP5xx == 0 && f.DropAfterRecord == 0 && f.Slow == 0 && f.InvalidateTokens == 0 {
		return faultDraw{latency: f.Latency}
	}
	fi.mu.Lock()
	defer fi.mu.Unlock()
	d := faultDraw{latency: f.Latency}
	if fi.rng.Float64() < f.HTTP5xx {
		d.status = http.StatusBadGateway
		if fi.rng.IntN(2) == 1 {
			d.status = http.StatusServiceUnavailable
		}
	}
	d.invalidate = fi.rng.Float64() < f.InvalidateTokens
	d.sysErr = fi.rng.Float64() < f.SystemError
	if fi.rng.Float64() < f.Slow {
		d.slow = f.SlowDelay
	}
	d.drop = fi.rng.Float64() < f.DropAfterRecord
	return d
}

// base returns the faults of a send call that is refused before faults are
// drawn (wrong method, unreadable body): the latency only.
func (fi *faultInjector) base() faultDraw {
	return faultDraw{latency: fi.cur.Load().Latency}
}

// wait blocks for d or until ctx ends, and reports whether d passed.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// HTTP/2 cannot hijack; aborting the handler resets the stream.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close() // Closing is the point; its error changes nothing.
}
