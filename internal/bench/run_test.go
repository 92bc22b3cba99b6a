package bench_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/bench"
	"github.com/wxmass/wxmass/internal/redistest"
)

// TestRun runs a tiny bench and checks that every row of the tables is
// there; the figures themselves are for BENCHMARKS.md, not for assertions.
func TestRun(t *testing.T) {
	t.Parallel()
	c := redistest.Client(t, redistest.DBBenchRun)
	prefix := redistest.Prefix(t, c)
	opt := redistest.Options(t, redistest.DBBenchRun)
	var out bytes.Buffer
	err := bench.Run(t.Context(), bench.Config{
		Recipients:  500,
		Concurrency: 20,
		Latencies:   []time.Duration{0},
		Rounds:      2,
		Expand:      5000,
		RedisURL:    fmt.Sprintf("redis://%s/%d", opt.Addr, opt.DB),
		Prefix:      prefix,
	}, &out)
	require.NoError(t, err, out.String())
	for _, row := range []string{
		`0s +1 +\(a\) bare asynq +500 `,
		`0s +1 +\(b\) goroutine pool +500 `,
		`0s +1 +\(c\) wxmass +500 `,
		`0s +2 +\(c\) wxmass +500 `,
		`latency 0s: c/a = \d+\.\d\d, the median of \d+\.\d\d, \d+\.\d\d `,
		`expand, window >= audience +5000 `,
		`expand, window 20000 \(fill\) +5000 `,
	} {
		require.Regexp(t, row, out.String())
	}
}
