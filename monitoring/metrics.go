package monitoring

import (
	"context"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are wxmass's Prometheus metrics. Labels name accounts, message
// kinds, APIs, outcomes, classes and queues, never a user, a campaign or a
// task, so their number stays small. A nil *Metrics records nothing, so
// code can take one optionally. Safe for concurrent use.
type Metrics struct {
	outcomes  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	rateWait  *prometheus.HistogramVec
	refreshes *prometheus.CounterVec
	runsEnded *prometheus.CounterVec
	resolved  *prometheus.CounterVec
	refused   *prometheus.CounterVec
	reconcile *prometheus.CounterVec
	archive   *archiveMetrics
	breaker   *breakerMetrics // breaker_metrics.go
	protect   *protectMetrics // protect_metrics.go
	admitted  *prometheus.CounterVec
	pending   *prometheus.GaugeVec
}

// NewMetrics registers wxmass's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxmass_sends_total",
			Help: "Recipients settled (each once, when it first gets an outcome), by account, message kind, outcome (sent, failed, unknown, skipped, cancelled) and errcode class.",
		}, []string{"account", "kind", "outcome", "class"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wxmass_send_duration_seconds",
			Help:    "Duration of WeChat send API calls, by account and message kind.",
			Buckets: []float64{.005, .01, .025, .05, .1, .2, .35, .5, 1, 2.5, 5, 10},
		}, []string{"account", "kind"}),
		rateWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "wxmass_rate_wait_seconds",
			Help:    "Time a send waited for a token of the shared rate limit, by account and API.",
			Buckets: []float64{.0001, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"account", "api"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxmass_token_refreshes_total",
			Help: "access_token fetches by this process, by account and result (ok, error).",
		}, []string{"account", "result"}),
		runsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxmass_runs_finished_total",
			Help: "Campaign runs this process saw finish (every recipient has an outcome), by account and the state they finished in (completed, failed, cancelled).",
		}, []string{"account", "state"}),
		resolved: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxmass_unknown_resolved_total",
			Help: "Recipients whose unknown outcome a late answer replaced, by account, message kind and the outcome it became (sent, failed).",
		}, []string{"account", "kind", "outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxmass_callback_refused_total",
			Help: "Requests to the WeChat callback receiver refused (or pushes discarded without effect), by account and reason (bad_signature, stale_timestamp, replay, receipt_mismatch...).",
		}, []string{"account", "reason"}),
		reconcile: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxmass_reconciler_actions_total",
			Help: "What the reconciler (one process of the fleet at a time) did to runs without progress, by action: reconcile (runs found without progress, or done but not finished, and reconciled), send (recipients queued again), launch, expand, settle (lost tasks queued again), finish (runs whose recipients all had outcomes, finished).",
		}, []string{"action"}),
		archive: newArchiveMetrics(),
	}
	m.admitted = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wxmass_bucket_admitted_total",
		Help: "Recipients of bulk campaigns the expansion admitted into the bulk queue, by account and API (see the README's Fair sharing).",
	}, []string{"account", "api"})
	m.pending = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "wxmass_bucket_admitted_pending",
		Help: "Recipients admitted into the bulk queue and not settled yet, over the live runs of an (account, API) bucket, as this process's latest expansion saw them.",
	}, []string{"account", "api"})
	for _, a := range []string{"reconcile", "send", "launch", "expand", "settle", "finish"} {
		m.reconcile.WithLabelValues(a)
	}
	for _, c := range append([]prometheus.Collector{m.outcomes, m.latency, m.rateWait, m.refreshes, m.runsEnded, m.resolved, m.refused, m.reconcile, m.admitted, m.pending}, m.archive.collectors()...) {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	var err error
	if m.protect, err = newProtectMetrics(reg); err != nil {
		return nil, err
	}
	if m.breaker, err = newBreakerMetrics(reg); err != nil {
		return nil, err
	}
	return m, nil
}

// Outcome counts a settled recipient.
func (m *Metrics) Outcome(account, kind, outcome, class string) {
	if m == nil {
		return
	}
	m.outcomes.WithLabelValues(account, kind, outcome, class).Inc()
}

// Outcomes counts n settled recipients with the same outcome.
func (m *Metrics) Outcomes(account, kind, outcome, class string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.outcomes.WithLabelValues(account, kind, outcome, class).Add(float64(n))
}

// SendDuration records the duration of one WeChat send call.
func (m *Metrics) SendDuration(account, kind string, d time.Duration) {
	if m == nil {
		return
	}
	m.latency.WithLabelValues(account, kind).Observe(d.Seconds())
}

// RateWait records how long a send waited for a rate token.
func (m *Metrics) RateWait(account, api string, d time.Duration) {
	if m == nil {
		return
	}
	m.rateWait.WithLabelValues(account, api).Observe(d.Seconds())
}

// TokenRefresh counts an access_token fetch.
func (m *Metrics) TokenRefresh(account string, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.refreshes.WithLabelValues(account, result).Inc()
}

// RunFinished counts a run this process saw finish in state (completed,
// failed, cancelled).
func (m *Metrics) RunFinished(account, state string) {
	if m == nil {
		return
	}
	m.runsEnded.WithLabelValues(account, state).Inc()
}

// Reconciled counts n actions of the reconciler (see
// wxmass_reconciler_actions_total).
func (m *Metrics) Reconciled(action string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.reconcile.WithLabelValues(action).Add(float64(n))
}

// Resolved counts a recipient whose unknown outcome a late answer
// replaced with outcome.
func (m *Metrics) Resolved(account, kind, outcome string) {
	if m == nil {
		return
	}
	m.resolved.WithLabelValues(account, kind, outcome).Inc()
}

// CallbackRefused counts a request the callback receiver of account
// refused, or a push it discarded, by reason (one of callback's Refused
// constants, a fixed set).
func (m *Metrics) CallbackRefused(account, reason string) {
	if m == nil {
		return
	}
	m.refused.WithLabelValues(account, reason).Inc()
}

// DeclareCallbackRefusals makes the refusal counters of account's callback
// receiver exist at 0 for each of reasons, so that a dashboard or an alert
// sees the series (and its first increase) before the first refusal.
func (m *Metrics) DeclareCallbackRefusals(account string, reasons []string) {
	if m == nil {
		return
	}
	for _, r := range reasons {
		m.refused.WithLabelValues(account, r)
	}
}

// QueueCollector reports the size of asynq queues at each scrape, by
// queue and task state, read with an asynq Inspector.
type QueueCollector struct {
	ins    *asynq.Inspector
	queues []string
	size   *prometheus.Desc
}

// NewQueueCollector returns a collector of queues' sizes.
func NewQueueCollector(ins *asynq.Inspector, queues ...string) *QueueCollector {
	return &QueueCollector{ins: ins, queues: queues, size: prometheus.NewDesc(
		"wxmass_queue_tasks", "Tasks in an asynq queue, by queue and state (pending, active, scheduled, retry, archived).",
		[]string{"queue", "state"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *QueueCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.size }

// Collect implements prometheus.Collector. A queue that does not exist yet
// reports zeros.
func (c *QueueCollector) Collect(ch chan<- prometheus.Metric) {
	for _, q := range c.queues {
		var info asynq.QueueInfo
		if qi, err := c.ins.GetQueueInfo(q); err == nil {
			info = *qi
		}
		for state, n := range map[string]int{"pending": info.Pending, "active": info.Active, "scheduled": info.Scheduled,
			"retry": info.Retry, "archived": info.Archived} {
			ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(n), q, state)
		}
	}
}

// StateCollector reports how many campaigns are in each state at each
// scrape, from count (rdb.CountCampaignStates).
type StateCollector struct {
	count func(ctx context.Context) (map[string]int64, error)
	desc  *prometheus.Desc
}

// NewStateCollector returns a collector of campaigns by state.
func NewStateCollector(count func(ctx context.Context) (map[string]int64, error)) *StateCollector {
	return &StateCollector{count: count, desc: prometheus.NewDesc("wxmass_campaigns",
		"Campaigns by state (draft, scheduled, running, paused, stopping, completed, cancelled, failed).", []string{"state"}, nil)}
}

// Describe implements prometheus.Collector.
func (c *StateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector. A failed count reports nothing.
func (c *StateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := c.count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for _, st := range []string{"draft", "scheduled", "running", "paused", "stopping", "completed", "cancelled", "failed"} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n[st]), st)
	}
}

// Admitted records an expansion pass of an (account, API) bucket: n
// recipients admitted, pending admitted and not settled in the bucket
// before it.
func (m *Metrics) Admitted(account, api string, n, pending int64) {
	if m == nil {
		return
	}
	if n > 0 {
		m.admitted.WithLabelValues(account, api).Add(float64(n))
	}
	m.pending.WithLabelValues(account, api).Set(float64(pending + n))
}
