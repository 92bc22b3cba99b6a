package worker

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat"
)

func TestBrake(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	const key = "wx1:message/template/send"

	t.Run("trips once a window when most calls fail", func(t *testing.T) {
		t.Parallel()
		var b brake
		trips := 0
		for i := range 3 * brakeMinFailures {
			if b.observe(key, true, t0.Add(time.Duration(i)*time.Millisecond)) {
				trips++
				require.Equal(t, brakeMinFailures-1, i, "trips at the brakeMinFailures-th failure")
			}
		}
		require.Equal(t, 1, trips)
		next := 0
		for i := range brakeMinFailures {
			if b.observe(key, true, t0.Add(brakeWindow+time.Duration(i)*time.Millisecond)) {
				next++
			}
		}
		require.Equal(t, 1, next, "trips again in the next window")
		require.False(t, b.observe("wx2:message/template/send", true, t0), "counts per key")
	})

	t.Run("usual noise never trips it", func(t *testing.T) {
		t.Parallel()
		var b brake
		// 10 % of the calls fail, 1,000 calls a second, for a minute.
		for i := range 60000 {
			require.False(t, b.observe(key, i%10 == 0, t0.Add(time.Duration(i)*time.Millisecond)), "call %d", i)
		}
	})

	t.Run("a quiet account's few failures do not trip it", func(t *testing.T) {
		t.Parallel()
		var b brake
		for i := range 100 {
			// Five calls a second, all failing.
			require.False(t, b.observe(key, true, t0.Add(time.Duration(i)*200*time.Millisecond)))
		}
	})

	t.Run("a success share above the threshold holds it", func(t *testing.T) {
		t.Parallel()
		var b brake
		for range 25 {
			b.observe(key, false, t0)
		}
		for i := range 99 {
			// 99 failures and 25 successes: 79.8 % < 80 %.
			require.False(t, b.observe(key, true, t0), "failure %d", i)
		}
		require.True(t, b.observe(key, true, t0), "100 of 125 is 80 %")
	})
}

func TestOutageFailure(t *testing.T) {
	t.Parallel()
	p, err := retry.New(retry.Config{})
	require.NoError(t, err)
	now := time.Now()
	for _, tt := range []struct {
		name string
		err  error
		want bool
	}{
		{"ok", nil, false},
		{"http 502", &wechat.TransportError{API: wechat.APITemplateSend, StatusCode: http.StatusBadGateway, Sent: true, Err: errors.New("bad gateway")}, true},
		{"dropped connection", &wechat.TransportError{API: wechat.APITemplateSend, Sent: true, Err: errors.New("EOF")}, true},
		{"connection refused", &wechat.TransportError{API: wechat.APITemplateSend, Err: errors.New("connect: connection refused")}, true},
		{"system busy", &wechat.APIError{Code: -1, API: wechat.APITemplateSend}, true},
		{"minute quota", &wechat.APIError{Code: 45011, API: wechat.APITemplateSend}, false},
		{"unfollowed", &wechat.APIError{Code: 43004, API: wechat.APITemplateSend}, false},
		{"token invalid", &wechat.APIError{Code: 40001, API: wechat.APITemplateSend}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, outageFailure(p.Decide(tt.err, 0, now)))
		})
	}
}
