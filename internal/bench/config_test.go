package bench_test

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/internal/bench"
)

func TestConfigWithDefaults(t *testing.T) {
	t.Parallel()
	cfg := bench.Config{}.WithDefaults()
	require.NotNil(t, cfg.Logger)
	cfg.Logger = nil
	require.Equal(t, bench.Config{
		Recipients:  bench.RecipientsDefault,
		Concurrency: bench.ConcurrencyDefault,
		Rounds:      bench.RoundsDefault,
		Latencies:   []time.Duration{0, 100 * time.Millisecond},
		Rate:        bench.RateDefault,
		Cases:       []bench.Case{bench.CaseAsynq, bench.CasePool, bench.CaseWxmass, bench.CaseExpand},
		RedisURL:    bench.RedisURLDefault,
		Prefix:      bench.PrefixDefault,
	}, cfg, "Expand stays 0: no expansion case")

	log := zap.NewExample()
	set := bench.Config{Recipients: 1, Concurrency: 2, Rounds: 3, Latencies: []time.Duration{time.Second}, Rate: 4, Expand: 5,
		Cases: []bench.Case{bench.CaseExpand}, RedisURL: "redis://h/1", Prefix: "p", CPUProfile: "f", Logger: log}
	require.Equal(t, set, set.WithDefaults(), "what is set stays")
}

// Run refuses a Config it cannot use with a *ConfigError naming the field,
// before it talks to Redis, and never shows a password.
func TestRunRefusesConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		cfg   bench.Config
		field string
		want  string
	}{
		{"negative recipients", bench.Config{Recipients: -1}, "Recipients", "-1 is negative"},
		{"negative concurrency", bench.Config{Concurrency: -1}, "Concurrency", "-1 is negative"},
		{"negative rounds", bench.Config{Rounds: -2}, "Rounds", "-2 is negative"},
		{"NaN rate", bench.Config{Rate: math.NaN()}, "Rate", "NaN is not a positive number"},
		{"negative expand", bench.Config{Expand: -5}, "Expand", "-5 is negative"},
		{"negative latency", bench.Config{Latencies: []time.Duration{-time.Second}}, "Latencies", "-1s is negative"},
		{"unknown case", bench.Config{Cases: []bench.Case{"z"}}, "Cases", `"z" is not a, b, c, expand or fairness`},
		{"bad URL", bench.Config{RedisURL: "http://:hunter2@127.0.0.1:1/9"}, "RedisURL", "invalid URL scheme"},
		{"not for asynq", bench.Config{RedisURL: "unix://:hunter2@/tmp/redis.sock"}, "RedisURL", "scheme"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			err := bench.Run(t.Context(), tc.cfg, &out)
			var ce *bench.ConfigError
			require.ErrorAs(t, err, &ce)
			require.Equal(t, tc.field, ce.Field)
			require.ErrorContains(t, err, "bench: "+tc.field+": ")
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "hunter2")
			require.Empty(t, out.String(), "nothing measured")
		})
	}
}
