package bench

import (
	"fmt"
	"math"
	"slices"
	"time"

	"go.uber.org/zap"
)

// Case is one thing Run measures.
type Case string

// The cases of Run. CaseAsynq, CasePool and CaseWxmass send the same
// template message to the same number of recipients through an in-process
// fake WeChat; CaseExpand expands a large audience into send tasks.
const (
	CaseAsynq  Case = "a"      // (a) a minimal asynq handler
	CasePool   Case = "b"      // (b) a plain goroutine pool
	CaseWxmass Case = "c"      // (c) wxmass: a campaign from start to the last outcome
	CaseExpand Case = "expand" // the expansion of Config.Expand recipients
	// CaseFairness runs campaigns side by side on two accounts at 300/s
	// and prints how they share WeChat (see the README's Fair sharing).
	// Not run unless asked for.
	CaseFairness Case = "fairness"
)

// Defaults of Config.
const (
	RecipientsDefault  = 20000
	ConcurrencyDefault = 100
	RoundsDefault      = 3
	RateDefault        = 100000
	// RedisURLDefault is DB 9 of the local Redis, whose asynq queues Run
	// deletes.
	RedisURLDefault = "redis://127.0.0.1:6379/9"
	PrefixDefault   = "wxmassbench"
)

// latenciesDefault are the fake WeChat's answer latencies by default.
var latenciesDefault = []time.Duration{0, 100 * time.Millisecond}

// Config configures Run. The zero Config is the bench of BENCHMARKS.md
// without the expansion case.
type Config struct {
	// Recipients is the number of sends of every case at every latency
	// and round. Default: RecipientsDefault.
	Recipients int
	// Concurrency is the number of tasks (or goroutines) in flight in
	// every case. Default: ConcurrencyDefault.
	Concurrency int
	// Rounds is how many times cases a, b and c run, in turn, at each
	// latency; c/a is reported as the median of the rounds' ratios.
	// Default: RoundsDefault.
	Rounds int
	// Latencies are the fake WeChat's answer latencies, measured one
	// after the other. Default: 0 and 100 ms.
	Latencies []time.Duration
	// Rate is wxmass's rate limit in case c, in sends per second (high,
	// so that the limiter is not what is measured). Default: RateDefault.
	Rate float64
	// Expand is the number of recipients of CaseExpand; 0 skips that case.
	// (`wxmass bench` expands 1,000,000.)
	Expand int
	// Cases are the cases to run: CaseAsynq, CasePool, CaseWxmass at every
	// latency, then CaseExpand, whatever their order here. Default: all
	// four.
	Cases []Case
	// RedisURL is a single Redis server (redis:// or rediss://, with its
	// DB). Run deletes the asynq queues of that DB and refuses a DB that
	// live asynq servers use. Default: RedisURLDefault.
	RedisURL string
	// Prefix starts the keys Run writes (followed by a random part of its
	// own); Run deletes them when it ends. Default: PrefixDefault.
	Prefix string
	// CPUProfile is a file to write a CPU profile of the whole bench to
	// (for go tool pprof). Default: none.
	CPUProfile string
	// Logger receives the bench's warnings (and those of the wxmass
	// components it runs). Default: no logs.
	Logger *zap.Logger
}

// WithDefaults returns c with every zero field set to its default. It does
// not validate c; Run does.
func (c Config) WithDefaults() Config {
	if c.Recipients == 0 {
		c.Recipients = RecipientsDefault
	}
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	if c.Rounds == 0 {
		c.Rounds = RoundsDefault
	}
	if len(c.Latencies) == 0 {
		c.Latencies = latenciesDefault
	}
	if c.Rate == 0 {
		c.Rate = RateDefault
	}
	if len(c.Cases) == 0 {
		c.Cases = []Case{CaseAsynq, CasePool, CaseWxmass, CaseExpand}
	}
	if c.RedisURL == "" {
		c.RedisURL = RedisURLDefault
	}
	if c.Prefix == "" {
		c.Prefix = PrefixDefault
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// ConfigError is a Config field Run cannot use: a bad value, or a Redis
// URL that names no single server or a DB in use. Field is the field's
// name, such as "RedisURL".
type ConfigError struct {
	Field string
	Err   error
}

func (e *ConfigError) Error() string { return "bench: " + e.Field + ": " + e.Err.Error() }

func (e *ConfigError) Unwrap() error { return e.Err }

func configErrorf(field, format string, a ...any) error {
	return &ConfigError{Field: field, Err: fmt.Errorf(format, a...)}
}

// validate checks c, with its defaults applied.
func (c Config) validate() error {
	switch {
	case c.Recipients < 0:
		return configErrorf("Recipients", "%d is negative", c.Recipients)
	case c.Concurrency < 0:
		return configErrorf("Concurrency", "%d is negative", c.Concurrency)
	case c.Rounds < 0:
		return configErrorf("Rounds", "%d is negative", c.Rounds)
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return configErrorf("Rate", "%v is not a positive number", c.Rate)
	case c.Expand < 0:
		return configErrorf("Expand", "%d is negative", c.Expand)
	}
	for _, l := range c.Latencies {
		if l < 0 {
			return configErrorf("Latencies", "%s is negative", l)
		}
	}
	for _, k := range c.Cases {
		switch k {
		case CaseAsynq, CasePool, CaseWxmass, CaseExpand, CaseFairness:
		default:
			return configErrorf("Cases", "%q is not a, b, c, expand or fairness", k)
		}
	}
	return nil
}

// has reports whether c runs case k.
func (c Config) has(k Case) bool { return slices.Contains(c.Cases, k) }
