package check

import (
	"context"
	"errors"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/monitoring"
)

// series is a name PromQL can select, with the labels it carries.
type series struct {
	metric string // the metric family
	labels map[string]bool
}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"job", "instance"}

var (
	catalogueOnce sync.Once
	catalogue     map[string]series
)

// wxmassSeries returns every series name a wxmass process exposes, built
// from the real monitoring package the way cmd/wxmass registers it (Go and
// process collectors, monitoring.NewMetrics, the queue and campaign-state
// collectors of serve), plus Prometheus's own up. Histograms give
// name_bucket (with le), name_sum and name_count.
func wxmassSeries(t *testing.T) map[string]series {
	t.Helper()
	catalogueOnce.Do(func() {
		rs := startRedis(t, t.TempDir(), 0)
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		m, err := monitoring.NewMetrics(reg)
		require.NoError(t, err)
		ins := asynq.NewInspector(asynq.RedisClientOpt{Addr: rs.addr})
		defer ins.Close()
		reg.MustRegister(monitoring.NewQueueCollector(ins, task.QueueTransactional, task.QueueControl, task.QueueBulk),
			monitoring.NewStateCollector(func(context.Context) (map[string]int64, error) { return map[string]int64{}, nil }))
		// Vectors show a series only once used: use each.
		m.Outcome("demo", "template", "sent", "ok")
		m.SendDuration("demo", "template", 50*time.Millisecond)
		m.RateWait("demo", "message/template/send", time.Millisecond)
		m.TokenRefresh("demo", nil)
		m.TokenRefresh("demo", errors.New("x"))
		m.RunFinished("demo", "completed")
		m.Resolved("demo", "template", "sent")
		m.CallbackRefused("demo", "replay")
		m.DeclareCircuit("demo")
		m.DeclareProtection("demo")
		m.SuppressionsAdded("demo", "manual", 1)
		mfs, err := reg.Gather()
		require.NoError(t, err)
		catalogue = seriesOf(mfs)
		catalogue["up"] = series{metric: "up", labels: map[string]bool{}}
		for _, s := range catalogue {
			for _, l := range targetLabels {
				s.labels[l] = true
			}
		}
	})
	require.NotEmpty(t, catalogue)
	return catalogue
}

// seriesOf lists the series names of gathered metric families.
func seriesOf(mfs []*dto.MetricFamily) map[string]series {
	out := map[string]series{}
	for _, mf := range mfs {
		ls := map[string]bool{}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				ls[l.GetName()] = true
			}
		}
		name := mf.GetName()
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			bucket := maps.Clone(ls)
			bucket["le"] = true
			out[name+"_bucket"] = series{metric: name, labels: bucket}
			out[name+"_sum"] = series{metric: name, labels: maps.Clone(ls)}
			out[name+"_count"] = series{metric: name, labels: maps.Clone(ls)}
		case dto.MetricType_SUMMARY:
			q := maps.Clone(ls)
			q["quantile"] = true
			out[name] = series{metric: name, labels: q}
			out[name+"_sum"] = series{metric: name, labels: maps.Clone(ls)}
			out[name+"_count"] = series{metric: name, labels: maps.Clone(ls)}
		default:
			out[name] = series{metric: name, labels: ls}
		}
	}
	return out
}

var (
	grafanaDurationRE = regexp.MustCompile(`\$(__rate_interval|__interval|__range)\b|\$\{(__rate_interval|__interval|__range)\}`)
	grafanaVarRE      = regexp.MustCompile(`\$\{[A-Za-z0-9_]+(?::[a-z]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*`)
)

// promqlOf replaces Grafana's variables in a query so that PromQL can
// parse it: interval variables by a duration, others by a plain value.
func promqlOf(expr string) string {
	return grafanaVarRE.ReplaceAllString(grafanaDurationRE.ReplaceAllString(expr, "5m"), "x")
}

// checkPromQL parses expr with Prometheus's PromQL parser and checks that
// every metric it selects is one wxmass exposes (or up), and that every
// label it matches on, groups by or joins on is one those metrics carry.
// It returns the series names used.
func checkPromQL(t *testing.T, where, expr string, known map[string]series) []string {
	t.Helper()
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q: %v", where, expr, err)
		return nil
	}
	var names []string
	available := map[string]bool{}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == "__name__" {
				name = m.Value
			}
		}
		s, ok := known[name]
		if !ok {
			t.Errorf("%s: %q selects %s, which wxmass does not expose (known: %s)", where, expr, name, strings.Join(wxmassNames(known), " "))
			return nil
		}
		names = append(names, name)
		for _, m := range vs.LabelMatchers {
			if m.Name != "__name__" && !s.labels[m.Name] {
				t.Errorf("%s: %q matches label %s, which %s does not have (%s)", where, expr, m.Name, name, strings.Join(sortedKeys(s.labels), " "))
			}
		}
		maps.Copy(available, s.labels)
		return nil
	})
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		var used []string
		switch n := n.(type) {
		case *parser.AggregateExpr:
			used = n.Grouping
		case *parser.BinaryExpr:
			if n.VectorMatching != nil {
				used = append(n.VectorMatching.MatchingLabels, n.VectorMatching.Include...)
			}
		}
		for _, l := range used {
			if !available[l] {
				t.Errorf("%s: %q uses label %s, which none of its metrics has", where, expr, l)
			}
		}
		return nil
	})
	return names
}

// resultLabels are the labels of the series a query returns, as far as
// its outermost aggregation, histogram_quantile or binary operation tells;
// else the labels of every metric it selects.
func resultLabels(expr string, known map[string]series) map[string]bool {
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		return nil
	}
	var of func(parser.Expr) map[string]bool
	of = func(e parser.Expr) map[string]bool {
		switch e := e.(type) {
		case *parser.ParenExpr:
			return of(e.Expr)
		case *parser.AggregateExpr:
			if !e.Without && e.Op != parser.TOPK && e.Op != parser.BOTTOMK {
				out := map[string]bool{}
				for _, l := range e.Grouping {
					out[l] = true
				}
				return out
			}
		case *parser.Call:
			if e.Func.Name == "histogram_quantile" {
				out := of(e.Args[1])
				delete(out, "le")
				return out
			}
		case *parser.BinaryExpr:
			if e.LHS.Type() == parser.ValueTypeVector {
				return of(e.LHS)
			}
			return of(e.RHS)
		}
		var names []string
		parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				names = append(names, vs.Name)
			}
			return nil
		})
		return labelsOf(known, names)
	}
	return of(e)
}

// checkLegend checks that a legend's {{label}} names exist.
func checkLegend(t *testing.T, where, legend string, labels map[string]bool) {
	t.Helper()
	for _, m := range regexp.MustCompile(`\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}`).FindAllStringSubmatch(legend, -1) {
		if !labels[m[1]] {
			t.Errorf("%s: legend %q names label %s, which the query's result does not have", where, legend, m[1])
		}
	}
}

// wxmassNames are the wxmass_ series names, for messages.
func wxmassNames(known map[string]series) []string {
	var out []string
	for n := range known {
		if strings.HasPrefix(n, "wxmass_") {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// labelsOf is the union of the labels of the named series.
func labelsOf(known map[string]series, names []string) map[string]bool {
	out := map[string]bool{}
	for _, n := range names {
		maps.Copy(out, known[n].labels)
	}
	return out
}

// TestMetricsCatalogue checks that the metrics README.md documents, with
// their labels, are among those wxmass's monitoring package registers (the
// catalogue the dashboard and alert checks compare against).
func TestMetricsCatalogue(t *testing.T) {
	t.Parallel()
	known := wxmassSeries(t)
	// The metrics README.md documents, with their labels.
	for name, want := range map[string][]string{
		"wxmass_sends_total":                  {"account", "kind", "outcome", "class"},
		"wxmass_send_duration_seconds_bucket": {"account", "kind", "le"},
		"wxmass_rate_wait_seconds_bucket":     {"account", "api", "le"},
		"wxmass_token_refreshes_total":        {"account", "result"},
		"wxmass_runs_finished_total":          {"account", "state"},
		"wxmass_unknown_resolved_total":       {"account", "kind", "outcome"},
		"wxmass_reconciler_actions_total":     {"action"},
		"wxmass_queue_tasks":                  {"queue", "state"},
		"wxmass_campaigns":                    {"state"},
		"wxmass_wechat_circuit_open":          {"account"},
		"wxmass_wechat_circuit_opened_total":  {"account"},
		"wxmass_wechat_probes_total":          {"account", "result"},
		"go_goroutines":                       {},
		"process_resident_memory_bytes":       {},
	} {
		s, ok := known[name]
		require.Truef(t, ok, "wxmass exposes no %s", name)
		for _, l := range want {
			require.Truef(t, s.labels[l], "%s has no label %s", name, l)
		}
	}
}
