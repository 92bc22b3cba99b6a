package ratelimit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wxmass/wxmass/ratelimit"
)

// BenchmarkWait measures a Wait on a bucket whose rate is far above demand,
// so that only the Limiter counts: the hand-off through the leaser, and its
// Redis calls, each shared by the callers waiting at the time. It reports
// Redis calls per token as calls/op.
//
// With the default BatchWindow, ns/op is mostly the window's latency
// divided among the goroutines (one call per window serves them all). With
// a 1 µs window the leaser calls Redis as fast as answers come back, and
// ns/op shows the overhead proper: one round trip shared by the callers
// that queued during the previous one.
func BenchmarkWait(b *testing.B) {
	for _, window := range []time.Duration{ratelimit.BatchWindowDefault, time.Microsecond} {
		for _, par := range []int{1, 128} {
			b.Run(fmt.Sprintf("window=%s/goroutines=%dxGOMAXPROCS", window, par), func(b *testing.B) {
				bundle := setup(b)
				p := bundle.process(b, ratelimit.Config{BatchWindow: window})
				lim := ratelimit.Limit{Rate: 1e9, Burst: 1e9}
				ctx := b.Context()
				if err := p.lim.Wait(ctx, key, lim, ratelimit.PriorityLow); err != nil {
					b.Fatal(err)
				}
				calls := p.hook.calls.Load()
				b.SetParallelism(par)
				b.ReportAllocs()
				b.ResetTimer()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := p.lim.Wait(ctx, key, lim, ratelimit.PriorityLow); err != nil {
							b.Error(err)
							return
						}
					}
				})
				b.StopTimer()
				b.ReportMetric(float64(p.hook.calls.Load()-calls)/float64(b.N), "calls/op")
			})
		}
	}
}
