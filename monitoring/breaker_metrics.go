package monitoring

import "github.com/prometheus/client_golang/prometheus"

// The results of a circuit breaker's probe (wxmass_wechat_probes_total).
const (
	// ProbeAnswered is a probe WeChat answered (any errcode): the breaker
	// closes.
	ProbeAnswered = "answered"
	// ProbeFailed is a probe that got no answer (a transport failure, HTTP
	// 5xx): the breaker stays open.
	ProbeFailed = "failed"
	// ProbeError is a probe that could not be made (Redis, the token
	// cache); it says nothing about WeChat.
	ProbeError = "error"
)

// breakerMetrics are the metrics of the accounts' circuit breakers.
type breakerMetrics struct {
	open   *prometheus.GaugeVec
	opened *prometheus.CounterVec
	probes *prometheus.CounterVec
}

func newBreakerMetrics(reg prometheus.Registerer) (*breakerMetrics, error) {
	m := &breakerMetrics{
		open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "wxmass_wechat_circuit_open",
			Help: "1 while the account's circuit breaker is open (WeChat unreachable for it: its sends wait, parked), else 0, as this process last read it from Redis.",
		}, []string{"account"}),
		opened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxmass_wechat_circuit_opened_total",
			Help: "Times this process opened an account's circuit breaker (consecutive outage-like failures of its WeChat calls).",
		}, []string{"account"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxmass_wechat_probes_total",
			Help: "Probes of WeChat (getcallbackip) this process made for an account whose circuit breaker is open, by result (answered, failed, error).",
		}, []string{"account", "result"}),
	}
	for _, c := range []prometheus.Collector{m.open, m.opened, m.probes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// DeclareCircuit makes account's breaker series exist (open at 0, the
// counters at 0), so that dashboards and alerts see them before the first
// outage.
func (m *Metrics) DeclareCircuit(account string) {
	if m == nil {
		return
	}
	m.breaker.open.WithLabelValues(account)
	m.breaker.opened.WithLabelValues(account)
	for _, r := range []string{ProbeAnswered, ProbeFailed, ProbeError} {
		m.breaker.probes.WithLabelValues(account, r)
	}
}

// CircuitOpen sets whether account's breaker is open.
func (m *Metrics) CircuitOpen(account string, open bool) {
	if m == nil {
		return
	}
	v := 0.0
	if open {
		v = 1
	}
	m.breaker.open.WithLabelValues(account).Set(v)
}

// CircuitOpened counts a breaker this process opened.
func (m *Metrics) CircuitOpened(account string) {
	if m == nil {
		return
	}
	m.breaker.opened.WithLabelValues(account).Inc()
}

// Probe counts a probe of account's open breaker by result (ProbeAnswered,
// ProbeFailed, ProbeError).
func (m *Metrics) Probe(account, result string) {
	if m == nil {
		return
	}
	m.breaker.probes.WithLabelValues(account, result).Inc()
}
