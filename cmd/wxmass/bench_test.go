package main

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/redistest"
)

// TestBench runs a tiny bench through the binary and checks that every row
// of the table is there; the figures themselves are for BENCHMARKS.md, not
// for assertions.
func TestBench(t *testing.T) {
	t.Parallel()
	c := redistest.Client(t, redistest.DBCmdBench)
	prefix := redistest.Prefix(t, c)
	opt := redistest.Options(t, redistest.DBCmdBench)
	env := []string{
		fmt.Sprintf("WXMASS_REDIS_URL=redis://%s/%d", opt.Addr, opt.DB),
		"WXMASS_REDIS_PREFIX=" + prefix,
		"WXMASS_BENCH_RECIPIENTS=500",
		"WXMASS_BENCH_CONCURRENCY=20",
		"WXMASS_BENCH_LATENCY=0",
		"WXMASS_BENCH_ROUNDS=2",
		"WXMASS_BENCH_EXPAND=5000",
	}
	stdout, stderr, code := run(t, env, "bench", "--log-level", "warn")
	require.Equal(t, 0, code, "stderr: %s\nstdout: %s", stderr, stdout)
	for _, row := range []string{
		`0s +1 +\(a\) bare asynq +500 `,
		`0s +1 +\(b\) goroutine pool +500 `,
		`0s +1 +\(c\) wxmass +500 `,
		`0s +2 +\(c\) wxmass +500 `,
		`latency 0s: c/a = \d+\.\d\d, the median of \d+\.\d\d, \d+\.\d\d `,
		`expand, window >= audience +5000 `,
		`expand, window 20000 \(fill\) +5000 `,
	} {
		require.Regexp(t, row, stdout)
	}

	_, stderr, code = run(t, env, "bench", "--bench-only", "a,z")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `--bench-only: "z"`)
	_, stderr, code = run(t, env, "bench", "--bench-latency", "fast")
	require.Equal(t, 2, code)
	require.Contains(t, stderr, `--bench-latency: "fast"`)
}
