package main

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/wxmass/wxmass/internal/bench"
)

const (
	flagBenchRecipients  = "bench-recipients"
	flagBenchConcurrency = "bench-concurrency"
	flagBenchRounds      = "bench-rounds"
	flagBenchLatency     = "bench-latency"
	flagBenchRate        = "bench-rate"
	flagBenchExpand      = "bench-expand"
	flagBenchOnly        = "bench-only"
	flagBenchCPUProfile  = "bench-cpuprofile"

	// benchExpandDefault is the audience of the expansion bench unless
	// --bench-expand says otherwise (0 skips it).
	benchExpandDefault = 1_000_000
)

func (a *app) benchCommand() *cli.Command {
	return &cli.Command{
		Name: "bench",
		Usage: "measure wxmass against bare asynq and a goroutine pool, all sending to an in-process fake WeChat, " +
			"and the expansion of a large audience into send tasks",
		Description: "Runs everything in this process on one Redis (--redis-url, DB 9 by default; the bench deletes " +
			"the asynq queues of that DB and its own keys). See BENCHMARKS.md.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: flagBenchRecipients, Value: bench.RecipientsDefault, Usage: "sends per case and latency", Sources: sources(flagBenchRecipients)},
			&cli.IntFlag{Name: flagBenchConcurrency, Value: bench.ConcurrencyDefault, Usage: "tasks (or goroutines) in flight in every case", Sources: sources(flagBenchConcurrency)},
			&cli.IntFlag{Name: flagBenchRounds, Value: bench.RoundsDefault, Usage: "rounds of cases a, b and c at each latency, run in turn; c/a is the median of the rounds' ratios", Sources: sources(flagBenchRounds)},
			&cli.StringFlag{Name: flagBenchLatency, Value: "0,100ms", Usage: "comma-separated answer latencies of the fake WeChat", Sources: sources(flagBenchLatency)},
			&cli.FloatFlag{Name: flagBenchRate, Value: bench.RateDefault, Usage: "wxmass's rate limit in case (c), sends per second", Sources: sources(flagBenchRate)},
			&cli.IntFlag{Name: flagBenchExpand, Value: benchExpandDefault, Usage: "recipients of the expansion bench (0 skips it)", Sources: sources(flagBenchExpand)},
			&cli.StringFlag{Name: flagBenchOnly, Value: "a,b,c,expand", Usage: "comma-separated cases to run: a (bare asynq), b (goroutine pool), c (wxmass), expand, fairness (not by default)", Sources: sources(flagBenchOnly)},
			&cli.StringFlag{Name: flagBenchCPUProfile, Usage: "write a CPU profile of the whole bench to this file (go tool pprof)", TakesFile: true, Sources: sources(flagBenchCPUProfile)},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg, err := benchConfig(cmd)
			if err != nil {
				return err
			}
			cfg.Logger = a.log.Named("bench")
			return benchError(bench.Run(ctx, cfg, cmd.Root().Writer))
		},
	}
}

// benchConfig turns the flags into the bench's configuration. A flag of 0
// is refused where the Config would take it for its default.
func benchConfig(cmd *cli.Command) (bench.Config, error) {
	cfg := bench.Config{
		Recipients:  cmd.Int(flagBenchRecipients),
		Concurrency: cmd.Int(flagBenchConcurrency),
		Rounds:      cmd.Int(flagBenchRounds),
		Rate:        cmd.Float(flagBenchRate),
		Expand:      cmd.Int(flagBenchExpand),
		CPUProfile:  cmd.String(flagBenchCPUProfile),
	}
	switch {
	case cfg.Rounds <= 0:
		return cfg, usagef("--%s must be positive", flagBenchRounds)
	case cfg.Recipients <= 0:
		return cfg, usagef("--%s must be positive", flagBenchRecipients)
	case cfg.Concurrency <= 0:
		return cfg, usagef("--%s must be positive", flagBenchConcurrency)
	case cfg.Rate <= 0:
		return cfg, usagef("--%s must be positive", flagBenchRate)
	case cfg.Expand < 0:
		return cfg, usagef("--%s must not be negative", flagBenchExpand)
	}
	var err error
	if cfg.Latencies, err = parseLatencies(cmd.String(flagBenchLatency)); err != nil {
		return cfg, err
	}
	if cfg.Cases, err = parseOnly(cmd.String(flagBenchOnly)); err != nil {
		return cfg, err
	}
	// Not the global flags' defaults: the bench's own (DB 9).
	if cmd.IsSet(flagRedisURL) {
		if cfg.RedisURL = cmd.String(flagRedisURL); cfg.RedisURL == "" {
			return cfg, usagef("--%s is empty", flagRedisURL)
		}
	}
	if cmd.IsSet(flagRedisPrefix) {
		cfg.Prefix = cmd.String(flagRedisPrefix)
	}
	return cfg, nil
}

// benchFlagOf names the flag of each bench.Config field.
var benchFlagOf = map[string]string{
	"Recipients":  flagBenchRecipients,
	"Concurrency": flagBenchConcurrency,
	"Rounds":      flagBenchRounds,
	"Latencies":   flagBenchLatency,
	"Rate":        flagBenchRate,
	"Expand":      flagBenchExpand,
	"Cases":       flagBenchOnly,
	"RedisURL":    flagRedisURL,
	"Prefix":      flagRedisPrefix,
	"CPUProfile":  flagBenchCPUProfile,
}

// benchError makes the bench's *bench.ConfigError a usage error that names
// the flag at fault.
func benchError(err error) error {
	var ce *bench.ConfigError
	if !errors.As(err, &ce) {
		return err
	}
	if flag, ok := benchFlagOf[ce.Field]; ok {
		return usagef("--%s: %w", flag, ce.Err)
	}
	return usageError{err}
}

func parseLatencies(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if f == "0" {
			out = append(out, 0)
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil || d < 0 {
			return nil, usagef("--%s: %q is not a duration such as 0 or 100ms", flagBenchLatency, f)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, usagef("--%s: no latency", flagBenchLatency)
	}
	return out, nil
}

func parseOnly(s string) ([]bench.Case, error) {
	var out []bench.Case
	for _, f := range strings.Split(s, ",") {
		switch c := bench.Case(strings.TrimSpace(f)); c {
		case bench.CaseAsynq, bench.CasePool, bench.CaseWxmass, bench.CaseExpand, bench.CaseFairness:
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		case "":
		default:
			return nil, usagef("--%s: %q is not a, b, c, expand or fairness", flagBenchOnly, c)
		}
	}
	if len(out) == 0 {
		return nil, usagef("--%s: no case", flagBenchOnly)
	}
	return out, nil
}
