package retry

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDelaySpecWait(t *testing.T) {
	t.Parallel()

	now := time.Date(2026, 3, 10, 12, 34, 56, 0, time.UTC)
	tests := []struct {
		name    string
		spec    DelaySpec
		attempt int
		rnd     float64
		want    time.Duration
	}{
		{"exponential first", Exponential(time.Second, 2, time.Minute), 0, 0.5, time.Second},
		{"exponential factor 3", Exponential(time.Second, 3, time.Hour), 3, 0.5, 27 * time.Second},
		{"exponential factor 1", Exponential(time.Second, 1, time.Hour), 30, 0.5, time.Second},
		{"exponential overflow", Exponential(time.Second, 2, time.Hour), 1 << 30, 0.5, time.Hour},
		{"exponential max int attempt", Exponential(time.Second, 2, time.Hour), math.MaxInt, 0, 48 * time.Minute},
		{"exponential negative attempt", Exponential(time.Second, 2, time.Hour), -4, 0.5, time.Second},
		{"exponential no jitter", DelaySpec{Kind: DelayExponential, Base: time.Second, Factor: 2, Max: time.Hour}, 1, 0, 2 * time.Second},
		{"fixed", Fixed(time.Minute), 4, 0.9, time.Minute},
		{"fixed with spread", DelaySpec{Kind: DelayFixed, Base: time.Minute, Spread: 10 * time.Second}, 0, 0.5, time.Minute + 5*time.Second},
		{"next minute", NextMinute(0), 0, 0.9, 4 * time.Second},
		{"next minute spread", NextMinute(2 * time.Second), 0, 0.5, 5 * time.Second},
		{"none", DelaySpec{}, 0, 0.5, 0},
		{"quota reset is computed by the policy", UntilQuotaReset(), 0, 0.5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.spec.wait(tt.attempt, now, func() float64 { return tt.rnd })
			require.InDelta(t, float64(tt.want), float64(got), float64(time.Microsecond))
		})
	}
}

func TestDelaySpecString(t *testing.T) {
	t.Parallel()

	require.Equal(t, "exponential", ExponentialDefault().String())
	require.Equal(t, "exponential(base 200ms, factor 2, max 10s, jitter 0.2)", Exponential(200*time.Millisecond, 2, 10*time.Second).String())
	require.Equal(t, "next_minute", NextMinute(NextMinuteSpreadDefault).String())
	require.Equal(t, "next_minute(spread 0s)", NextMinute(0).String())
	require.Equal(t, "2h0m0s", Fixed(2*time.Hour).String())
	require.Equal(t, "1s(spread 1s)", refreshDelay().String())
	require.Equal(t, "quota_reset", UntilQuotaReset().String())
	require.Equal(t, "none", DelaySpec{}.String())
}

func TestDelaySpecValidate(t *testing.T) {
	t.Parallel()

	valid := []DelaySpec{
		{}, ExponentialDefault(), NextMinute(0), NextMinute(time.Second), Fixed(1), UntilQuotaReset(),
		Exponential(time.Second, 1, time.Second),
	}
	for _, d := range valid {
		require.Empty(t, d.validate(), "%s", d)
	}
	invalid := []DelaySpec{
		Exponential(-1, 2, time.Second),
		Exponential(time.Second, math.NaN(), time.Minute),
		Exponential(time.Second, math.Inf(1), time.Minute),
		{Kind: DelayExponential, Base: 1, Factor: 2, Max: 1, Jitter: -0.1},
		{Kind: DelayExponential, Base: 1, Factor: 2, Max: 1, Jitter: math.NaN()},
		{Kind: DelayFixed, Base: time.Second, Spread: -1},
		{Kind: -1},
	}
	for _, d := range invalid {
		require.NotEmpty(t, d.validate(), "%#v", d)
	}
}
