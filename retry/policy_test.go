package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the zone tests must not depend on the host's zone database

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat"
)

// testBundle holds what the policy tests share.
type testBundle struct {
	policy *Policy
	now    time.Time
	rnd    float64 // the value the injected Rand returns
}

// setup returns a policy over cfg whose Rand returns 0.5 (no jitter), and a
// fixed "now" (2026-03-10 12:34:56.5 in Shanghai).
func setup(t *testing.T, cfg Config) *testBundle {
	t.Helper()
	b := &testBundle{rnd: 0.5, now: time.Date(2026, 3, 10, 12, 34, 56, 500_000_000, shanghai(t))}
	if cfg.Rand == nil {
		cfg.Rand = func() float64 { return b.rnd }
	}
	p, err := New(cfg)
	require.NoError(t, err)
	b.policy = p
	return b
}

func shanghai(t *testing.T) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation("Asia/Shanghai")
	require.NoError(t, err)
	return loc
}

func apiErr(code int) error {
	return &wechat.APIError{Code: code, Msg: "msg", API: wechat.APITemplateSend, RID: "rid-1"}
}

func TestDecideActionPerClass(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		err    error
		class  Class
		action Action
	}{
		{"nil", nil, ClassOK, ActionSucceed},
		{"ok code", apiErr(45065), ClassOK, ActionSucceed},
		{"refresh token", apiErr(40001), ClassRefreshToken, ActionRetry},
		{"retry", apiErr(-1), ClassRetry, ActionRetry},
		{"recipient", apiErr(43004), ClassRecipient, ActionFail},
		{"message", apiErr(47003), ClassMessage, ActionFail},
		{"fatal", apiErr(40037), ClassFatal, ActionStopCampaign},
		{"quota", apiErr(45009), ClassQuota, ActionPause},
		{"unknown", apiErr(12345), ClassUnknown, ActionRetry},
		{"wrapped", fmt.Errorf("send template: %w", apiErr(43004)), ClassRecipient, ActionFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{})
			d := b.policy.Decide(tt.err, 0, b.now)
			require.Equal(t, tt.class, d.Class)
			require.Equal(t, tt.action, d.Action)
			require.NotEmpty(t, d.Meaning)
			require.NotContains(t, d.Meaning, "rid-1")
			require.False(t, d.Ambiguous)
			require.False(t, d.Exhausted)
			if tt.err != nil {
				var e *wechat.APIError
				require.ErrorAs(t, tt.err, &e)
				require.Equal(t, e.Code, d.Code)
			}
			if d.Action != ActionRetry && d.Action != ActionPause {
				require.Zero(t, d.Delay)
			}
			if d.Action != ActionPause {
				require.True(t, d.Until.IsZero())
			}
		})
	}
}

func TestDecideEveryDefaultRule(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{})
	want := map[Class]Action{
		ClassOK:           ActionSucceed,
		ClassRefreshToken: ActionRetry,
		ClassRetry:        ActionRetry,
		ClassRecipient:    ActionFail,
		ClassMessage:      ActionFail,
		ClassFatal:        ActionStopCampaign,
		ClassQuota:        ActionPause,
		ClassRest:         ActionDefer,
	}
	for _, r := range DefaultRules() {
		if r.Code == 0 {
			continue // never an *APIError
		}
		d := b.policy.Decide(apiErr(r.Code), 0, b.now)
		require.Equal(t, r.Class, d.Class, "errcode %d", r.Code)
		require.Equal(t, want[r.Class], d.Action, "errcode %d", r.Code)
		require.Equal(t, r.Meaning, d.Meaning, "errcode %d", r.Code)
		require.False(t, d.Unknown, "errcode %d", r.Code)
	}
}

func TestDecideExponential(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{})
	for attempt, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		d := b.policy.Decide(apiErr(-1), attempt, b.now)
		require.Equal(t, ActionRetry, d.Action, "attempt %d", attempt)
		require.Equal(t, want, d.Delay, "attempt %d", attempt)
	}
}

func TestDecideExponentialJitterAndCap(t *testing.T) {
	t.Parallel()

	capped := Rule{Code: -1, Class: ClassRetry, Delay: Exponential(time.Second, 2, 10*time.Second), MaxAttempts: 100}
	tests := []struct {
		name    string
		rnd     float64
		attempt int
		want    time.Duration
	}{
		{"low jitter", 0, 2, 3200 * time.Millisecond},                  // 4 s × 0.8
		{"mid jitter", 0.5, 2, 4 * time.Second},                        // 4 s × 1
		{"high jitter", 0.75, 2, 4400 * time.Millisecond},              // 4 s × 1.1
		{"capped", 0.5, 5, 10 * time.Second},                           // 32 s → 10 s
		{"capped high jitter stays at cap", 0.99, 5, 10 * time.Second}, // never above Max
		{"capped low jitter", 0, 5, 8 * time.Second},                   // 10 s × 0.8
		{"huge attempt", 0.5, 70, 10 * time.Second},                    // 2^70 s: no overflow
		{"rand above range", 7, 2, 4800 * time.Millisecond},            // clamped just below 1
		{"rand below range", -3, 2, 3200 * time.Millisecond},           // clamped to 0
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{Rules: []Rule{capped}, Rand: func() float64 { return tt.rnd }})
			d := b.policy.Decide(apiErr(-1), tt.attempt, b.now)
			require.Equal(t, ActionRetry, d.Action)
			require.InDelta(t, float64(tt.want), float64(d.Delay), float64(time.Microsecond))
			require.LessOrEqual(t, d.Delay, 10*time.Second)
		})
	}
}

func TestDecideJitterBounds(t *testing.T) {
	t.Parallel()

	src := rand.New(rand.NewPCG(1, 2))
	var mu sync.Mutex
	rnd := func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return src.Float64()
	}
	b := setup(t, Config{Rand: rnd})
	for attempt := range 4 {
		base := time.Second << attempt
		lo, hi := time.Duration(float64(base)*0.8), time.Duration(float64(base)*1.2)
		var below, above bool
		for range 1000 {
			d := b.policy.Decide(apiErr(-1), attempt, b.now)
			require.GreaterOrEqual(t, d.Delay, lo)
			require.Less(t, d.Delay, hi)
			below = below || d.Delay < base
			above = above || d.Delay > base
		}
		require.True(t, below && above, "jitter spreads both ways at attempt %d", attempt)
	}
}

func TestDecideNextMinute(t *testing.T) {
	t.Parallel()

	loc := shanghai(t)
	tests := []struct {
		name string
		now  time.Time
		rnd  float64
		want time.Time // now + Delay
	}{
		{"mid minute", time.Date(2026, 3, 10, 12, 34, 56, 500_000_000, loc), 0, time.Date(2026, 3, 10, 12, 35, 0, 0, loc)},
		{"with jitter", time.Date(2026, 3, 10, 12, 34, 56, 500_000_000, loc), 0.5, time.Date(2026, 3, 10, 12, 35, 1, 500_000_000, loc)},
		{"on the boundary", time.Date(2026, 3, 10, 12, 35, 0, 0, loc), 0, time.Date(2026, 3, 10, 12, 36, 0, 0, loc)},
		{"just before the hour", time.Date(2026, 3, 10, 23, 59, 59, 999_999_999, loc), 0, time.Date(2026, 3, 11, 0, 0, 0, 0, loc)},
		{"utc input", time.Date(2026, 3, 10, 4, 34, 10, 0, time.UTC), 0, time.Date(2026, 3, 10, 4, 35, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{Rand: func() float64 { return tt.rnd }})
			d := b.policy.Decide(apiErr(45011), 0, tt.now)
			require.Equal(t, ClassRetry, d.Class)
			require.Equal(t, ActionRetry, d.Action)
			require.True(t, tt.now.Add(d.Delay).Equal(tt.want), "got %s want %s", tt.now.Add(d.Delay), tt.want)
			require.LessOrEqual(t, d.Delay, time.Minute+NextMinuteSpreadDefault)
		})
	}
}

func TestDecideFixedDelay(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{})
	d := b.policy.Decide(apiErr(45066), 3, b.now)
	require.Equal(t, ActionRetry, d.Action)
	require.Equal(t, time.Minute, d.Delay)
}

func TestDecideQuotaPause(t *testing.T) {
	t.Parallel()

	sh := shanghai(t)
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	havana, err := time.LoadLocation("America/Havana")
	require.NoError(t, err)

	tests := []struct {
		name string
		loc  *time.Location // nil: the default
		hour int
		now  time.Time
		want time.Time
	}{
		{"before midnight", nil, 0, time.Date(2026, 3, 10, 23, 59, 59, 0, sh), time.Date(2026, 3, 11, 0, 0, 0, 0, sh)},
		{"after midnight", nil, 0, time.Date(2026, 3, 11, 0, 0, 1, 0, sh), time.Date(2026, 3, 12, 0, 0, 0, 0, sh)},
		{"exactly midnight", nil, 0, time.Date(2026, 3, 11, 0, 0, 0, 0, sh), time.Date(2026, 3, 12, 0, 0, 0, 0, sh)},
		{"noon", nil, 0, time.Date(2026, 3, 10, 12, 0, 0, 0, sh), time.Date(2026, 3, 11, 0, 0, 0, 0, sh)},
		{"utc input, shanghai evening", nil, 0, time.Date(2026, 3, 10, 15, 30, 0, 0, time.UTC), time.Date(2026, 3, 10, 16, 0, 0, 0, time.UTC)},
		{"utc input, shanghai next day", nil, 0, time.Date(2026, 3, 10, 16, 30, 0, 0, time.UTC), time.Date(2026, 3, 11, 16, 0, 0, 0, time.UTC)},
		{"month end", nil, 0, time.Date(2026, 2, 28, 12, 0, 0, 0, sh), time.Date(2026, 3, 1, 0, 0, 0, 0, sh)},
		{"year end", nil, 0, time.Date(2026, 12, 31, 23, 0, 0, 0, sh), time.Date(2027, 1, 1, 0, 0, 0, 0, sh)},
		{"hour before reset", sh, 8, time.Date(2026, 3, 10, 7, 59, 0, 0, sh), time.Date(2026, 3, 10, 8, 0, 0, 0, sh)},
		{"hour after reset", sh, 8, time.Date(2026, 3, 10, 8, 0, 0, 0, sh), time.Date(2026, 3, 11, 8, 0, 0, 0, sh)},
		{"utc zone", time.UTC, 0, time.Date(2026, 3, 10, 23, 0, 0, 0, sh), time.Date(2026, 3, 10, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1)},
		// 2026-03-08 02:00 does not exist in New York: the reset is at
		// 03:00 EDT, the same instant as 02:00 EST.
		{"dst gap", ny, 2, time.Date(2026, 3, 8, 0, 30, 0, 0, ny), time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC)},
		{"day after dst gap", ny, 2, time.Date(2026, 3, 8, 3, 30, 0, 0, ny), time.Date(2026, 3, 9, 6, 0, 0, 0, time.UTC)},
		// 2026-11-01 01:00 happens twice in New York; the first is the reset.
		{"dst overlap before", ny, 1, time.Date(2026, 11, 1, 4, 30, 0, 0, time.UTC), time.Date(2026, 11, 1, 5, 0, 0, 0, time.UTC)},
		{"dst overlap second 1:30", ny, 1, time.Date(2026, 11, 1, 6, 30, 0, 0, time.UTC), time.Date(2026, 11, 2, 6, 0, 0, 0, time.UTC)},
		// Cuba moves its clocks from 00:00 to 01:00: midnight is skipped.
		{"dst skips midnight", havana, 0, time.Date(2026, 3, 7, 22, 0, 0, 0, havana), time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC)},
		{"day after midnight skipped", havana, 0, time.Date(2026, 3, 8, 1, 30, 0, 0, havana), time.Date(2026, 3, 9, 4, 0, 0, 0, time.UTC)},
		{"dst midnight", ny, 0, time.Date(2026, 3, 7, 23, 0, 0, 0, ny), time.Date(2026, 3, 8, 5, 0, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{QuotaLocation: tt.loc, QuotaResetHour: tt.hour})
			for _, code := range []int{45009, 45028, 48006} {
				d := b.policy.Decide(apiErr(code), 0, tt.now)
				require.Equal(t, ClassQuota, d.Class)
				require.Equal(t, ActionPause, d.Action)
				require.True(t, d.Until.Equal(tt.want), "errcode %d: got %s want %s", code, d.Until, tt.want)
				require.True(t, d.Until.After(tt.now))
				require.Equal(t, d.Until.Sub(tt.now), d.Delay)
				require.False(t, d.Exhausted)
			}
			// A pause never runs out of attempts.
			d := b.policy.Decide(apiErr(45009), 1000, tt.now)
			require.Equal(t, ActionPause, d.Action)
		})
	}
}

func TestDecideQuotaDefaultZone(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{})
	d := b.policy.Decide(apiErr(45009), 0, b.now)
	name, offset := d.Until.Zone()
	require.Equal(t, "CST", name)
	require.Equal(t, 8*60*60, offset)
}

func TestDecideQuotaFixedOverride(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{Rules: []Rule{{Code: 45009, Class: ClassQuota, Delay: Fixed(time.Hour)}}})
	d := b.policy.Decide(apiErr(45009), 0, b.now)
	require.Equal(t, ActionPause, d.Action)
	require.True(t, d.Until.Equal(b.now.Add(time.Hour)))
	require.Equal(t, time.Hour, d.Delay)
	require.Equal(t, "daily api quota reached", d.Meaning, "an empty meaning keeps the default's")
}

func TestDecideMaxAttempts(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		rules  []Rule
		err    error
		budget int
		class  Class
		last   Action
	}{
		{"system busy", nil, apiErr(-1), MaxAttemptsDefault, ClassRetry, ActionFail},
		{"minute quota", nil, apiErr(45011), 10, ClassRetry, ActionFail},
		{"clientmsgid too fast", nil, apiErr(45066), MaxAttemptsDefault, ClassRetry, ActionFail},
		{"override", []Rule{{Code: 43117, Class: ClassRetry, Delay: Fixed(2 * time.Hour), MaxAttempts: 3}}, apiErr(43117), 3, ClassRetry, ActionFail},
		{"single try", []Rule{{Code: -1, Class: ClassRetry, MaxAttempts: 1}}, apiErr(-1), 1, ClassRetry, ActionFail},
		{"token", nil, apiErr(40014), RefreshMaxAttemptsDefault, ClassRefreshToken, ActionStopCampaign},
		{"token override", []Rule{{Code: 42001, Class: ClassRefreshToken, MaxAttempts: 4}}, apiErr(42001), 4, ClassRefreshToken, ActionStopCampaign},
		{"unknown", nil, apiErr(99999), UnknownMaxAttemptsDefault, ClassUnknown, ActionFail},
		{"transport", nil, &wechat.TransportError{Sent: true}, TransportMaxAttemptsDefault, ClassRetry, ActionFail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{Rules: tt.rules})
			for attempt := range tt.budget - 1 {
				d := b.policy.Decide(tt.err, attempt, b.now)
				require.Equal(t, ActionRetry, d.Action, "attempt %d", attempt)
				require.Equal(t, tt.class, d.Class)
				require.Positive(t, d.Delay)
				require.False(t, d.Exhausted)
			}
			for _, attempt := range []int{tt.budget - 1, tt.budget, tt.budget + 10} {
				d := b.policy.Decide(tt.err, attempt, b.now)
				require.Equal(t, tt.last, d.Action, "attempt %d", attempt)
				require.Equal(t, tt.class, d.Class, "the class stays")
				require.True(t, d.Exhausted)
				require.Zero(t, d.Delay)
			}
		})
	}
}

func TestDecideRefreshToken(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{})
	for _, code := range []int{40001, 40014, 42001} {
		d := b.policy.Decide(apiErr(code), 0, b.now)
		require.Equal(t, ClassRefreshToken, d.Class)
		require.Equal(t, ActionRetry, d.Action)
		require.GreaterOrEqual(t, d.Delay, RefreshDelayDefault)
		require.Less(t, d.Delay, RefreshDelayDefault+RefreshSpreadDefault)

		d = b.policy.Decide(apiErr(code), RefreshMaxAttemptsDefault-2, b.now)
		require.Equal(t, ActionRetry, d.Action)

		d = b.policy.Decide(apiErr(code), RefreshMaxAttemptsDefault-1, b.now)
		require.Equal(t, ClassRefreshToken, d.Class)
		require.Equal(t, ActionStopCampaign, d.Action)
		require.Contains(t, d.Meaning, "keeps failing")
		require.Contains(t, d.Meaning, "another system")
		require.Contains(t, d.Meaning, "appsecret changed")
	}
}

func TestDecideTokenAPI40001IsFatal(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{})
	for _, api := range []string{wechat.APIStableToken, wechat.APIToken} {
		d := b.policy.Decide(&wechat.APIError{Code: 40001, API: api}, 0, b.now)
		require.Equal(t, ClassFatal, d.Class)
		require.Equal(t, ActionStopCampaign, d.Action)
		require.Equal(t, 40001, d.Code)
		require.Contains(t, d.Meaning, "appsecret")
	}
	d := b.policy.Decide(&wechat.APIError{Code: 40164, API: wechat.APIStableToken}, 0, b.now)
	require.Equal(t, ClassFatal, d.Class)
}

func TestDecideUnknownCode(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{UnknownMaxAttempts: 4})
	for attempt := range 3 {
		d := b.policy.Decide(apiErr(99999), attempt, b.now)
		require.Equal(t, Decision{
			Class: ClassUnknown, Action: ActionRetry, Code: 99999, Delay: time.Second << attempt,
			Meaning: "unknown errcode 99999", Unknown: true,
		}, d)
	}
	d := b.policy.Decide(apiErr(99999), 3, b.now)
	require.Equal(t, Decision{
		Class: ClassUnknown, Action: ActionFail, Code: 99999,
		Meaning: "unknown errcode 99999", Unknown: true, Exhausted: true,
	}, d)
	b.policy.Decide(apiErr(88888), 0, b.now)
	b.policy.Decide(apiErr(43004), 0, b.now) // known: not counted
	require.Equal(t, map[int]int64{99999: 4, 88888: 1}, b.policy.UnknownCodes())
}

func TestDecideTransport(t *testing.T) {
	t.Parallel()

	dropped := &wechat.TransportError{API: wechat.APITemplateSend, Host: "api.weixin.qq.com", Sent: true, Err: io.ErrUnexpectedEOF}
	tests := []struct {
		name      string
		err       error
		class     Class
		ambiguous bool
		unknown   bool
		meaning   string
		delays    []time.Duration // for attempts 0, 1, ...
	}{
		{
			name:   "not sent",
			err:    &wechat.TransportError{API: wechat.APITemplateSend, Sent: false, Err: errors.New("dial tcp: connection refused")},
			class:  ClassRetry,
			delays: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond, 1600 * time.Millisecond},
		},
		{
			name: "not sent, ctx error inside", err: &wechat.TransportError{Sent: false, Err: context.DeadlineExceeded},
			class: ClassRetry, delays: []time.Duration{200 * time.Millisecond},
		},
		{
			name: "dropped connection", err: dropped, class: ClassRetry, ambiguous: true,
			meaning: "after the request was sent",
			delays:  []time.Duration{time.Second, 2 * time.Second, 4 * time.Second},
		},
		{
			name: "wrapped", err: fmt.Errorf("send template: %w", dropped), class: ClassRetry, ambiguous: true,
			delays: []time.Duration{time.Second},
		},
		{
			name: "http 503", err: &wechat.TransportError{Sent: true, StatusCode: 503}, class: ClassRetry, ambiguous: true,
			meaning: "http status 503", delays: []time.Duration{time.Second},
		},
		{
			name: "http 429", err: &wechat.TransportError{Sent: true, StatusCode: 429}, class: ClassRetry, ambiguous: true,
			meaning: "http status 429", delays: []time.Duration{time.Second},
		},
		{
			name: "transport cap", err: dropped, class: ClassRetry, ambiguous: true,
			delays: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute},
		},
		{
			name: "context canceled", err: context.Canceled, class: ClassRetry, ambiguous: true,
			meaning: "cancelled", delays: []time.Duration{time.Second},
		},
		{
			name: "deadline wrapped", err: fmt.Errorf("send: %w", context.DeadlineExceeded), class: ClassRetry, ambiguous: true,
			delays: []time.Duration{time.Second},
		},
		{
			name: "other error", err: errors.New("render: template missing"), class: ClassUnknown, ambiguous: true,
			meaning: "unclassified error", delays: []time.Duration{time.Second, 2 * time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{})
			for attempt, want := range tt.delays {
				d := b.policy.Decide(tt.err, attempt, b.now)
				require.Equal(t, tt.class, d.Class)
				require.Equal(t, ActionRetry, d.Action)
				require.Equal(t, tt.ambiguous, d.Ambiguous)
				require.Equal(t, tt.unknown, d.Unknown)
				require.Zero(t, d.Code)
				require.Equal(t, want, d.Delay, "attempt %d", attempt)
				require.Contains(t, d.Meaning, tt.meaning)
				require.NotContains(t, d.Meaning, "refused", "the error text stays out of Meaning")
			}
		})
	}
}

func TestDecideTransportBudget(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{TransportMaxAttempts: 2})
	notSent := &wechat.TransportError{Sent: false}
	require.Equal(t, ActionRetry, b.policy.Decide(notSent, 0, b.now).Action)
	d := b.policy.Decide(notSent, 1, b.now)
	require.Equal(t, ActionFail, d.Action)
	require.False(t, d.Ambiguous)
	require.True(t, d.Exhausted)
	require.Equal(t, ActionFail, b.policy.Decide(context.Canceled, 1, b.now).Action)
	require.Equal(t, ActionFail, b.policy.Decide(errors.New("x"), UnknownMaxAttemptsDefault-1, b.now).Action)
}

func TestDecideNegativeAttempt(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{})
	require.Equal(t, b.policy.Decide(apiErr(-1), 0, b.now), b.policy.Decide(apiErr(-1), -5, b.now))
}

func TestNewOverrides(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{Rules: []Rule{
		{Code: 43117, Class: ClassRetry, Delay: Fixed(2 * time.Hour), MaxAttempts: 3, Meaning: "per-user frequency limit"},
		{Code: 45011, Class: ClassRetry},
		{Code: 99999, Class: ClassFatal},
		{Code: 40001, Class: ClassRefreshToken},
		{Code: 45028, Class: ClassQuota},
	}})
	p := b.policy

	r, ok := p.Rule(43117)
	require.True(t, ok)
	require.Equal(t, Rule{Code: 43117, Class: ClassRetry, Delay: Fixed(2 * time.Hour), MaxAttempts: 3, Meaning: "per-user frequency limit"}, r)
	d := p.Decide(apiErr(43117), 0, b.now)
	require.Equal(t, ActionRetry, d.Action)
	require.Equal(t, 2*time.Hour, d.Delay)

	// The whole row is replaced: 45011 without a delay gets the class's
	// default, not next_minute; the meaning is kept.
	r, _ = p.Rule(45011)
	require.Equal(t, Rule{Code: 45011, Class: ClassRetry, Delay: ExponentialDefault(), MaxAttempts: MaxAttemptsDefault, Meaning: "per-minute api quota reached"}, r)

	r, ok = p.Rule(99999)
	require.True(t, ok)
	require.Equal(t, Rule{Code: 99999, Class: ClassFatal, Meaning: "errcode 99999"}, r)
	d = p.Decide(apiErr(99999), 0, b.now)
	require.Equal(t, ActionStopCampaign, d.Action)
	require.False(t, d.Unknown)

	r, _ = p.Rule(40001)
	require.Equal(t, RefreshMaxAttemptsDefault, r.MaxAttempts)
	require.Equal(t, refreshDelay(), r.Delay)

	r, _ = p.Rule(45028)
	require.Equal(t, UntilQuotaReset(), r.Delay)

	_, ok = p.Rule(12345)
	require.False(t, ok)

	// Overrides do not leak into the default table or other policies.
	other := setup(t, Config{})
	r, _ = other.policy.Rule(43117)
	require.Equal(t, ClassRest, r.Class)
	require.Len(t, p.Rules(), len(DefaultRules())+1)
	rules := p.Rules()
	for i := 1; i < len(rules); i++ {
		require.Less(t, rules[i-1].Code, rules[i].Code)
	}
}

func TestNewInvalidRule(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		rules []Rule
		code  int
		field string
		msg   string
	}{
		{"unknown class", []Rule{{Code: 43117, Class: ClassUnknown}}, 43117, "class", `retry: rule for errcode 43117: class "unknown" cannot be given to a rule`},
		{"delay for class", []Rule{{Code: 43117, Class: ClassRecipient, Delay: Fixed(time.Hour)}}, 43117, "delay", `retry: rule for errcode 43117: delay "1h0m0s" is not allowed for class "recipient"`},
		{"quota_reset for retry", []Rule{{Code: -1, Class: ClassRetry, Delay: UntilQuotaReset()}}, -1, "delay", `errcode -1: delay "quota_reset" is not allowed for class "retry"`},
		{"bad exponential", []Rule{{Code: -1, Class: ClassRetry, Delay: Exponential(time.Second, 0, time.Minute)}}, -1, "delay", "exponential factor 0"},
		{"negative attempts", []Rule{{Code: -1, Class: ClassRetry, MaxAttempts: -2}}, -1, "max_attempts", "errcode -1: max_attempts -2 is negative"},
		{"attempts on message", []Rule{{Code: 47003, Class: ClassMessage, MaxAttempts: 2}}, 47003, "max_attempts", "errcode 47003: max_attempts 2"},
		{"code 0", []Rule{{Code: 0, Class: ClassRetry}}, 0, "class", "errcode 0 is success"},
		{"duplicate", []Rule{{Code: 1, Class: ClassFatal}, {Code: 1, Class: ClassMessage}}, 1, "code", "errcode 1: errcode given more than once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(Config{Rules: tt.rules})
			var re *RuleError
			require.ErrorAs(t, err, &re)
			require.Equal(t, tt.code, re.Code)
			require.Equal(t, tt.field, re.Field)
			require.Zero(t, re.Line)
			require.Contains(t, err.Error(), tt.msg)
		})
	}
}

func TestNewInvalidConfig(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		cfg  Config
		msg  string
	}{
		{"hour 24", Config{QuotaResetHour: 24}, "quota reset hour 24 is not in 0..23"},
		{"hour -1", Config{QuotaResetHour: -1}, "quota reset hour -1"},
		{"unknown attempts", Config{UnknownMaxAttempts: -1}, "unknown max attempts -1 is negative"},
		{"transport attempts", Config{TransportMaxAttempts: -1}, "transport max attempts -1 is negative"},
		{"unknown delay", Config{UnknownDelay: Fixed(-time.Second)}, "unknown delay: fixed delay -1s is not positive"},
		{"not-sent delay kind", Config{NotSentDelay: NextMinute(0)}, `not-sent delay "next_minute(spread 0s)" is not exponential or a fixed duration`},
		{"transport delay kind", Config{TransportDelay: UntilQuotaReset()}, `transport delay "quota_reset"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := New(tt.cfg)
			require.ErrorContains(t, err, tt.msg)
		})
	}
}

func TestNewConfigDelays(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{
		UnknownDelay:   Fixed(3 * time.Second),
		NotSentDelay:   Fixed(time.Second),
		TransportDelay: Exponential(5*time.Second, 3, time.Hour),
	})
	require.Equal(t, 3*time.Second, b.policy.Decide(apiErr(99999), 1, b.now).Delay)
	require.Equal(t, time.Second, b.policy.Decide(&wechat.TransportError{}, 2, b.now).Delay)
	require.Equal(t, 45*time.Second, b.policy.Decide(&wechat.TransportError{Sent: true}, 2, b.now).Delay)
}

func TestConfigWithDefaults(t *testing.T) {
	t.Parallel()

	c := Config{}.WithDefaults()
	require.Equal(t, "Asia/Shanghai", c.QuotaLocation.String())
	require.Equal(t, UnknownMaxAttemptsDefault, c.UnknownMaxAttempts)
	require.Equal(t, TransportMaxAttemptsDefault, c.TransportMaxAttempts)
	require.Equal(t, ExponentialDefault(), c.UnknownDelay)
	require.Equal(t, Exponential(NotSentBaseDefault, 2, NotSentMaxDefault), c.NotSentDelay)
	require.Equal(t, Exponential(TransportBaseDefault, 2, TransportMaxDefault), c.TransportDelay)
	require.NotNil(t, c.Rand)
	r := c.Rand()
	require.True(t, r >= 0 && r < 1)
}

func TestDecideConcurrent(t *testing.T) {
	t.Parallel()

	// The default Rand is safe for concurrent use; run with -race.
	p, err := New(Config{})
	require.NoError(t, err)
	now := time.Now()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 100 {
				_ = p.Decide(apiErr(-1), (i+j)%4, now)
				_ = p.Decide(apiErr(45009), 0, now)
			}
		})
	}
	wg.Wait()
}

func BenchmarkDecide(b *testing.B) {
	p, err := New(Config{})
	require.NoError(b, err)
	now := time.Now()
	errs := []error{nil, apiErr(-1), apiErr(43004), apiErr(45009), &wechat.TransportError{Sent: true}}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		_ = p.Decide(errs[i%len(errs)], 1, now)
	}
}
