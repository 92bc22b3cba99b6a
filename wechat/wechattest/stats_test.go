package wechattest

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// peak1s is the reference for peakWindow: the most of times that fall in any
// sliding one-second window [t, t+1s), by brute force over sorted times.
func peak1s(times []time.Time) int {
	ts := slices.Clone(times)
	slices.SortFunc(ts, time.Time.Compare)
	best, lo := 0, 0
	for hi := range ts {
		for ts[hi].Sub(ts[lo]) >= time.Second {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

func TestPeak1s(t *testing.T) {
	t.Parallel()
	base := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	ms := func(offsets ...int) []time.Time {
		var out []time.Time
		for _, o := range offsets {
			out = append(out, base.Add(time.Duration(o)*time.Millisecond))
		}
		return out
	}
	cases := []struct {
		name  string
		times []time.Time
		want  int
	}{
		{"none", nil, 0},
		{"one", ms(0), 1},
		{"same instant", ms(5, 5, 5), 3},
		{"exactly one second apart are separate", ms(0, 1000), 1},
		{"just under one second", ms(0, 999), 2},
		// Aligned one-second buckets would see 2 and 2; a sliding window
		// across the bucket boundary sees 4.
		{"across a bucket boundary", ms(100, 800, 900, 1100, 1200, 1950), 4},
		{"burst after a gap", ms(0, 3000, 3001, 3002, 3999, 4000), 4},
		{"steady 10 per second", func() []time.Time {
			var out []time.Time
			for i := range 50 {
				out = append(out, base.Add(time.Duration(i)*100*time.Millisecond))
			}
			return out
		}(), 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, peak1s(tc.times))
			var p peakWindow
			for _, ts := range tc.times {
				require.Equal(t, ts, p.observe(func() time.Time { return ts }))
			}
			require.Equal(t, tc.want, p.max())
		})
	}
}

func TestPeakWindowMatchesReference(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	for range 50 {
		var times []time.Time
		at := base
		for range 500 {
			at = at.Add(time.Duration(rng.IntN(30)) * time.Millisecond)
			times = append(times, at)
		}
		var p peakWindow
		for _, ts := range times {
			p.observe(func() time.Time { return ts })
		}
		require.Equal(t, peak1s(times), p.max())
	}
}

func TestPeak1sThroughServer(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tok := b.token(t)
	body := mustJSON(t, templateBody(openID("peak"), ""))
	for _, step := range []time.Duration{0, 300, 300, 300, 50, 50, 2000} {
		b.clock.Advance(step * time.Millisecond)
		b.send(t, nameTemplateSend, tok, body)
	}
	// Calls at 0, 300, 600, 900, 950, 1000, 3000 ms: [0, 1000) holds five.
	st := b.srv.Stats()
	require.Equal(t, 5, st.APIs[nameTemplateSend].Peak1s)
	require.Equal(t, 1, st.APIs[nameStableToken].Peak1s)
	require.Zero(t, st.APIs[nameUserGet].Peak1s)
}

func TestStatsJSON(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tok := b.token(t)
	b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(openID("json"), "")))
	b.send(t, nameTemplateSend, tok, "")
	raw, err := json.Marshal(b.srv.Stats())
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	require.Contains(t, m, "duplicates_delivered")
	apis := m["apis"].(map[string]any)
	require.Len(t, apis, int(apiCount))
	tpl := apis[nameTemplateSend].(map[string]any)
	require.EqualValues(t, 2, tpl["calls"])
	require.EqualValues(t, 1, tpl["accepted"])
	require.Equal(t, map[string]any{"44002": 1.0}, tpl["errors"])
	require.Contains(t, tpl, "peak_1s")
	require.Contains(t, tpl["faults"], "http_5xx")
	require.EqualValues(t, 1, apis[nameStableToken].(map[string]any)["tokens_issued"])

	// Every call is counted once: OK + errors + HTTP 5xx.
	for name, st := range b.srv.Stats().APIs {
		var errs int64
		for _, n := range st.Errors {
			errs += n
		}
		require.Equal(t, st.Calls, st.OK+errs+st.Faults.HTTP5xx, name)
	}
}
