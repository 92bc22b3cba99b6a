package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestCampaignStatusShowsWaiting: while the run's status answer has a
// waiting object (the account's circuit breaker is open), `campaign status`
// and `watch` say since when the run waits for WeChat; without one they
// say nothing of it.
func TestCampaignStatusShowsWaiting(t *testing.T) {
	t.Parallel()
	var st runStatus
	require.NoError(t, json.Unmarshal([]byte(`{"campaign":"c1","account":"a","run":1,"state":"running","size":10,"settled":4,
		"started":"2026-12-06T22:00:00Z","counters":{"sent":4},"waiting":{"reason":"wechat_unreachable","since":"2026-12-06T22:05:00Z"}}`), &st))
	var b strings.Builder
	require.NoError(t, printRunReport(&b, st))
	require.Contains(t, b.String(), "waiting for WeChat since 2026-12-06T22:05:00Z (wechat_unreachable)")
	require.Contains(t, progressLine(st, 0), "waiting for WeChat since 22:05:00")

	st.Waiting = nil
	b.Reset()
	require.NoError(t, printRunReport(&b, st))
	require.NotContains(t, b.String(), "waiting")
	require.NotContains(t, progressLine(st, 0), "waiting")
}
