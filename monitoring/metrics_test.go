package monitoring_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/monitoring"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := monitoring.NewMetrics(reg)
	require.NoError(t, err)
	m.Outcome("wx1", "template", "sent", "")
	m.Outcomes("wx1", "template", "cancelled", "", 3)
	m.Outcomes("wx1", "template", "cancelled", "", 0)
	m.SendDuration("wx1", "template", 80*time.Millisecond)
	m.RateWait("wx1", "message/template/send", time.Millisecond)
	m.TokenRefresh("wx1", nil)
	m.TokenRefresh("wx1", errors.New("40164"))
	m.Outcome("wx1", "custom", "unknown", "")
	m.RunFinished("wx1", "completed")
	m.RunFinished("wx1", "failed")
	m.Resolved("wx1", "template", "sent")
	m.DeclareCallbackRefusals("wx1", []string{"replay", "decrypt"})
	m.CallbackRefused("wx1", "replay")
	m.CallbackRefused("wx1", "replay")
	m.CallbackRefused("wx1", "bad_signature")
	m.Reconciled("reconcile", 1)
	m.Reconciled("send", 7)
	m.Reconciled("expand", 0)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP wxmass_reconciler_actions_total What the reconciler (one process of the fleet at a time) did to runs without progress, by action: reconcile (runs found without progress, or done but not finished, and reconciled), send (recipients queued again), launch, expand, settle (lost tasks queued again), finish (runs whose recipients all had outcomes, finished).
# TYPE wxmass_reconciler_actions_total counter
wxmass_reconciler_actions_total{action="expand"} 0
wxmass_reconciler_actions_total{action="finish"} 0
wxmass_reconciler_actions_total{action="launch"} 0
wxmass_reconciler_actions_total{action="reconcile"} 1
wxmass_reconciler_actions_total{action="send"} 7
wxmass_reconciler_actions_total{action="settle"} 0
# HELP wxmass_callback_refused_total Requests to the WeChat callback receiver refused (or pushes discarded without effect), by account and reason (bad_signature, stale_timestamp, replay, receipt_mismatch...).
# TYPE wxmass_callback_refused_total counter
wxmass_callback_refused_total{account="wx1",reason="bad_signature"} 1
wxmass_callback_refused_total{account="wx1",reason="decrypt"} 0
wxmass_callback_refused_total{account="wx1",reason="replay"} 2
# HELP wxmass_runs_finished_total Campaign runs this process saw finish (every recipient has an outcome), by account and the state they finished in (completed, failed, cancelled).
# TYPE wxmass_runs_finished_total counter
wxmass_runs_finished_total{account="wx1",state="completed"} 1
wxmass_runs_finished_total{account="wx1",state="failed"} 1
# HELP wxmass_sends_total Recipients settled (each once, when it first gets an outcome), by account, message kind, outcome (sent, failed, unknown, skipped, cancelled) and errcode class.
# TYPE wxmass_sends_total counter
wxmass_sends_total{account="wx1",class="",kind="custom",outcome="unknown"} 1
wxmass_sends_total{account="wx1",class="",kind="template",outcome="cancelled"} 3
wxmass_sends_total{account="wx1",class="",kind="template",outcome="sent"} 1
# HELP wxmass_token_refreshes_total access_token fetches by this process, by account and result (ok, error).
# TYPE wxmass_token_refreshes_total counter
wxmass_token_refreshes_total{account="wx1",result="error"} 1
wxmass_token_refreshes_total{account="wx1",result="ok"} 1
# HELP wxmass_unknown_resolved_total Recipients whose unknown outcome a late answer replaced, by account, message kind and the outcome it became (sent, failed).
# TYPE wxmass_unknown_resolved_total counter
wxmass_unknown_resolved_total{account="wx1",kind="template",outcome="sent"} 1
`), "wxmass_sends_total", "wxmass_token_refreshes_total", "wxmass_runs_finished_total", "wxmass_unknown_resolved_total",
		"wxmass_callback_refused_total", "wxmass_reconciler_actions_total"))
	require.Equal(t, 1, testutil.CollectAndCount(reg, "wxmass_send_duration_seconds"))

	// A second registration of the same metrics is an error, not a panic.
	_, err = monitoring.NewMetrics(reg)
	require.Error(t, err)

	// A nil *Metrics records nothing and does not panic.
	var none *monitoring.Metrics
	none.Outcome("wx1", "template", "sent", "")
	none.SendDuration("wx1", "template", time.Second)
	none.TokenRefresh("wx1", nil)
	none.CallbackRefused("wx1", "replay")
}

func TestFormatPayloadMasksOpenIDs(t *testing.T) {
	t.Parallel()
	const openid = "oW1234567890abcdefghijklmnop"
	got := monitoring.FormatPayload(task.TypeSendTemplate, task.EncodeSend(task.Send{Run: task.Run{Campaign: "c1", Run: 2}, OpenID: openid}))
	require.Equal(t, "campaign c1 run 2 openid "+monitoring.MaskOpenID(openid), got)
	require.NotContains(t, got, openid)
	require.Equal(t, "(undecodable send payload)", monitoring.FormatPayload(task.TypeSendCustom, []byte("x")))
	require.Equal(t, `{"c":"c1","r":2}`, monitoring.FormatPayload(task.TypeLaunch, []byte(`{"c":"c1","r":2}`)))
}

func TestStateCollector(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(monitoring.NewStateCollector(func(context.Context) (map[string]int64, error) {
		return map[string]int64{"running": 2, "completed": 5}, nil
	}))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP wxmass_campaigns Campaigns by state (draft, scheduled, running, paused, stopping, completed, cancelled, failed).
# TYPE wxmass_campaigns gauge
wxmass_campaigns{state="cancelled"} 0
wxmass_campaigns{state="completed"} 5
wxmass_campaigns{state="draft"} 0
wxmass_campaigns{state="failed"} 0
wxmass_campaigns{state="paused"} 0
wxmass_campaigns{state="running"} 2
wxmass_campaigns{state="scheduled"} 0
wxmass_campaigns{state="stopping"} 0
`)))
	bad := prometheus.NewRegistry()
	bad.MustRegister(monitoring.NewStateCollector(func(context.Context) (map[string]int64, error) {
		return nil, errors.New("redis down")
	}))
	_, err := bad.Gather()
	require.ErrorContains(t, err, "redis down")
}
