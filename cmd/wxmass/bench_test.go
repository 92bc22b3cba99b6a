package main

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v3"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/internal/bench"
)

// TestBenchFlags checks that the bench's flags become its bench.Config;
// the bench itself is internal/bench's TestRun.
func TestBenchFlags(t *testing.T) {
	t.Parallel()
	// config runs `wxmass bench args...` in this process with an Action
	// that returns the Config instead of running the bench.
	config := func(t *testing.T, args ...string) (bench.Config, error) {
		t.Helper()
		a := &app{log: zap.NewNop()}
		bc := a.benchCommand()
		var cfg bench.Config
		bc.Action = func(_ context.Context, cmd *cli.Command) error {
			var err error
			cfg, err = benchConfig(cmd)
			return err
		}
		root := &cli.Command{Name: "wxmass", Flags: globalFlags(), Commands: []*cli.Command{bc}}
		err := root.Run(context.Background(), append([]string{"wxmass", "bench"}, args...))
		return cfg, err
	}

	cfg, err := config(t)
	require.NoError(t, err)
	require.Equal(t, bench.Config{
		Recipients: 20000, Concurrency: 100, Rounds: 3, Rate: 100000, Expand: 1000000,
		Latencies: []time.Duration{0, 100 * time.Millisecond},
		Cases:     []bench.Case{bench.CaseAsynq, bench.CasePool, bench.CaseWxmass, bench.CaseExpand},
		// Without --redis-url (or its variable), the bench's own DB 9.
		RedisURL: os.Getenv(envName(flagRedisURL)),
		Prefix:   os.Getenv(envName(flagRedisPrefix)),
	}, cfg)

	cfg, err = config(t, "--bench-recipients", "500", "--bench-concurrency", "20", "--bench-rounds", "2",
		"--bench-latency", "0, 5ms", "--bench-rate", "50", "--bench-expand", "0", "--bench-only", "c,a,c",
		"--bench-cpuprofile", "cpu.out", "--redis-url", "redis://127.0.0.1:6380/3", "--redis-prefix", "p")
	require.NoError(t, err)
	require.Equal(t, bench.Config{
		Recipients: 500, Concurrency: 20, Rounds: 2, Rate: 50, Expand: 0,
		Latencies: []time.Duration{0, 5 * time.Millisecond},
		Cases:     []bench.Case{bench.CaseWxmass, bench.CaseAsynq},
		RedisURL:  "redis://127.0.0.1:6380/3", Prefix: "p", CPUProfile: "cpu.out",
	}, cfg)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bench-only", "a,z"}, `--bench-only: "z" is not a, b, c, expand or fairness`},
		{[]string{"--bench-only", ","}, "--bench-only: no case"},
		{[]string{"--bench-latency", "fast"}, `--bench-latency: "fast" is not a duration`},
		{[]string{"--bench-latency", "-1s"}, `--bench-latency: "-1s" is not a duration`},
		{[]string{"--bench-rounds", "0"}, "--bench-rounds must be positive"},
		{[]string{"--bench-recipients", "0"}, "--bench-recipients must be positive"},
		{[]string{"--bench-concurrency", "-1"}, "--bench-concurrency must be positive"},
		{[]string{"--bench-rate", "0"}, "--bench-rate must be positive"},
		{[]string{"--bench-expand", "-1"}, "--bench-expand must not be negative"},
		{[]string{"--redis-url", ""}, "--redis-url is empty"},
	} {
		_, err := config(t, tc.args...)
		require.ErrorAs(t, err, new(usageError), "%v", tc.args)
		require.ErrorContains(t, err, tc.want)
	}

	// The bench's Config errors name the flag.
	err = benchError(&bench.ConfigError{Field: "RedisURL", Err: os.ErrNotExist})
	require.ErrorAs(t, err, new(usageError))
	require.EqualError(t, err, "--redis-url: "+os.ErrNotExist.Error())
}

// Bad bench flags exit 2 with a message naming the flag, before the bench
// touches Redis.
func TestBenchUsageErrorsExitTwo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bench-only", "a,z"}, `--bench-only: "z"`},
		{[]string{"--bench-latency", "fast"}, `--bench-latency: "fast"`},
		{[]string{"--redis-url", "unix:///nonexistent/redis.sock"}, "--redis-url: "},
	} {
		_, stderr, code := run(t, nil, append([]string{"bench"}, tc.args...)...)
		require.Equal(t, 2, code, stderr)
		require.Contains(t, stderr, tc.want)
	}
}
