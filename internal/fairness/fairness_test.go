package fairness_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/fairness"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestMeasure: two groups, a sending 10/s from t0 for 5 s, b 5/s from
// t0+2 s for 2 s (its first 200 ms after its start): the overlap is b's
// two seconds, the rates and shares are those of that time.
func TestMeasure(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_800_000_000, 0)
	var ds []wechattest.Delivery
	for i := range 50 {
		ds = append(ds, wechattest.Delivery{API: "t", AppID: "wxa", OpenID: "oA", Time: t0.Add(time.Duration(i) * 100 * time.Millisecond)})
	}
	for i := range 11 {
		ds = append(ds, wechattest.Delivery{API: "t", AppID: "wxb", OpenID: "oB", Time: t0.Add(2*time.Second + time.Duration(i)*200*time.Millisecond)})
	}
	ds = append(ds, wechattest.Delivery{API: "c", AppID: "wxb", OpenID: "oB", Time: t0}) // another API
	rep := fairness.Measure(ds,
		fairness.Group{Name: "a", AppID: "wxa", API: "t", Has: fairness.Prefixed("oA"), Start: t0, Rate: 10},
		fairness.Group{Name: "b", AppID: "wxb", API: "t", Has: fairness.Prefixed("oB"), Start: t0.Add(1800 * time.Millisecond), Rate: 5},
	)
	t.Log(rep)
	require.Equal(t, 2.0, rep.Seconds())
	require.Equal(t, 200*time.Millisecond, rep.Groups[1].First)
	require.Equal(t, 20, rep.Groups[0].During)
	require.Equal(t, 10, rep.Groups[1].During)
	require.InDelta(t, 1.0, rep.Groups[0].OfRate, 1e-9)
	require.InDelta(t, 1.0, rep.Groups[1].OfRate, 1e-9)
	require.InDelta(t, 2.0/3, rep.Groups[0].Share, 1e-9)
	require.Equal(t, 11, rep.Groups[1].Sends)
}
