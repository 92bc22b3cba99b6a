package monitoring

import "github.com/prometheus/client_golang/prometheus"

// What the account's protection did to a send
// (wxmass_protection_total's action).
const (
	// ProtectSuppressed: skipped, the user is on the suppression list.
	ProtectSuppressed = "suppressed"
	// ProtectCappedSkip: skipped, over a frequency cap.
	ProtectCappedSkip = "capped_skipped"
	// ProtectCappedDefer: deferred until a frequency cap allows.
	ProtectCappedDefer = "capped_deferred"
	// ProtectRest: deferred, WeChat asked to leave the user alone (43117).
	ProtectRest = "rest_deferred"
	// ProtectQuiet: a send came in the quiet hours and waits for their end.
	ProtectQuiet = "quiet_deferred"
	// ProtectWindow: skipped, outside the customer-service window.
	ProtectWindow = "window_skipped"
)

// protectActions lists every action, for DeclareProtection.
var protectActions = []string{ProtectSuppressed, ProtectCappedSkip, ProtectCappedDefer, ProtectRest, ProtectQuiet, ProtectWindow}

// protectMetrics are the metrics of the accounts' protection.
type protectMetrics struct {
	actions    *prometheus.CounterVec
	suppressed *prometheus.CounterVec
}

func newProtectMetrics(reg prometheus.Registerer) (*protectMetrics, error) {
	m := &protectMetrics{
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxmass_protection_total",
			Help: "Sends the account's protection held back before any call, by action: suppressed, capped_skipped, capped_deferred, rest_deferred (43117), quiet_deferred (each time a send meets the quiet hours), window_skipped.",
		}, []string{"account", "action"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wxmass_suppressions_added_total",
			Help: "Users added to the account's suppression list, by reason (unfollowed, blocked, refused, invalid, manual).",
		}, []string{"account", "reason"}),
	}
	for _, c := range []prometheus.Collector{m.actions, m.suppressed} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// DeclareProtection makes account's protection series exist at 0.
func (m *Metrics) DeclareProtection(account string) {
	if m == nil {
		return
	}
	for _, a := range protectActions {
		m.protect.actions.WithLabelValues(account, a)
	}
}

// Protected counts a send the account's protection held back.
func (m *Metrics) Protected(account, action string) {
	if m == nil {
		return
	}
	m.protect.actions.WithLabelValues(account, action).Inc()
}

// SuppressionsAdded counts n users added to account's suppression list
// for reason.
func (m *Metrics) SuppressionsAdded(account, reason string, n int) {
	if m == nil || n <= 0 {
		return
	}
	m.protect.suppressed.WithLabelValues(account, reason).Add(float64(n))
}
