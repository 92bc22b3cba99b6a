package check

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// dashboard is the part of Grafana's dashboard JSON model the checks read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID        string      `json:"refId"`
		Expr         string      `json:"expr"`
		LegendFormat string      `json:"legendFormat"`
		Datasource   *datasource `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// TestGrafanaDashboard checks deploy/grafana/wxmass.json: valid JSON of a
// current schema; panels with unique ids that do not overlap on the grid;
// every query on the templated Prometheus datasource, parsed by
// Prometheus's PromQL parser, selecting only metrics and labels wxmass
// exposes (from its monitoring package), with legends naming labels the
// result has; the metrics the dashboard is for all shown; the latency panel
// with p50, p95 and p99; and the job variables' defaults jobs of
// prometheus.yml. The provisioning files point at the dashboard and the
// compose Prometheus.
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	raw := readFile(t, deployPath("grafana", "wxmass.json"))
	var d dashboard
	require.NoError(t, json.Unmarshal(raw, &d), "wxmass.json")
	require.NotEmpty(t, d.UID)
	require.NotEmpty(t, d.Title)
	require.GreaterOrEqual(t, d.SchemaVersion, 36)
	require.LessOrEqual(t, d.SchemaVersion, 41)

	// The datasource is a template variable, so that the file works both
	// provisioned and imported.
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	require.Equal(t, "datasource", vars["datasource"], "a datasource variable named datasource")
	ds := datasource{Type: "prometheus", UID: "${datasource}"}

	known := wxmassSeries(t)
	jobs := map[string]bool{}
	for _, sc := range loadPrometheus(t).ScrapeConfigs {
		jobs[sc.JobName] = true
	}
	for _, v := range d.Templating.List {
		switch v.Type {
		case "query":
			require.Equal(t, &ds, v.Datasource, "variable %s datasource", v.Name)
			m := regexp.MustCompile(`^label_values\((\w+),\s*(\w+)\)$`).FindStringSubmatch(v.Definition)
			require.NotNilf(t, m, "variable %s: %q", v.Name, v.Definition)
			s, ok := known[m[1]]
			require.Truef(t, ok, "variable %s: metric %s", v.Name, m[1])
			require.Truef(t, s.labels[m[2]], "variable %s: %s has no label %s", v.Name, m[1], m[2])
		case "textbox":
			var def string
			require.NoError(t, json.Unmarshal(v.Query, &def))
			require.Truef(t, jobs[def], "variable %s: default %q is not a job of prometheus.yml", v.Name, def)
		}
	}

	ids := map[int]bool{}
	used := map[string]bool{}
	type cell struct{ x, y int }
	grid := map[cell]string{}
	var quantiles []string
	for _, p := range allPanels(d.Panels) {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		require.Falsef(t, ids[p.ID], "%s: duplicate id", where)
		ids[p.ID] = true
		require.Truef(t, p.GridPos.W > 0 && p.GridPos.H > 0 && p.GridPos.X+p.GridPos.W <= 24, "%s: gridPos %+v", where, p.GridPos)
		for x := p.GridPos.X; x < p.GridPos.X+p.GridPos.W; x++ {
			for y := p.GridPos.Y; y < p.GridPos.Y+p.GridPos.H; y++ {
				other, taken := grid[cell{x, y}]
				require.Falsef(t, taken, "%s overlaps %s", where, other)
				grid[cell{x, y}] = where
			}
		}
		if p.Type == "row" {
			continue
		}
		require.Equal(t, &ds, p.Datasource, "%s datasource", where)
		require.NotEmpty(t, p.Targets, "%s: no query", where)
		for _, tg := range p.Targets {
			require.Equal(t, &ds, tg.Datasource, "%s target %s datasource", where, tg.RefID)
			expr := promqlOf(tg.Expr)
			names := checkPromQL(t, where, expr, known)
			for _, n := range names {
				used[n] = true
			}
			checkLegend(t, where, tg.LegendFormat, resultLabels(expr, known))
			for _, m := range regexp.MustCompile(`job=~?"([^"$]+)"`).FindAllStringSubmatch(tg.Expr, -1) {
				require.Truef(t, jobs[m[1]], "%s: job %q is not a job of prometheus.yml", where, m[1])
			}
			if q := regexp.MustCompile(`histogram_quantile\(([0-9.]+),\s*sum by \(le\) \(rate\(wxmass_send_duration_seconds_bucket`).FindStringSubmatch(tg.Expr); q != nil {
				quantiles = append(quantiles, q[1])
			}
		}
	}
	for _, want := range []string{"wxmass_sends_total", "wxmass_send_duration_seconds_bucket", "wxmass_rate_wait_seconds_bucket",
		"wxmass_token_refreshes_total", "wxmass_queue_tasks", "wxmass_campaigns", "wxmass_runs_finished_total"} {
		require.Truef(t, used[want], "no panel shows %s", want)
	}
	slices.Sort(quantiles)
	require.Equal(t, []string{"0.5", "0.95", "0.99"}, quantiles, "send latency quantiles")

	// Provisioning (docker-compose.yml): the datasource is the compose
	// Prometheus, and the dashboards provider reads the directory the
	// dashboard is mounted in.
	var dsProv struct {
		APIVersion  int `json:"apiVersion"`
		Datasources []struct {
			Name      string `json:"name"`
			UID       string `json:"uid"`
			Type      string `json:"type"`
			Access    string `json:"access"`
			URL       string `json:"url"`
			IsDefault bool   `json:"isDefault"`
			Editable  bool   `json:"editable"`
		} `json:"datasources"`
	}
	require.NoError(t, yaml.UnmarshalStrict(readFile(t, deployPath("grafana", "provisioning", "datasources", "prometheus.yml")), &dsProv))
	require.Len(t, dsProv.Datasources, 1)
	require.Equal(t, "prometheus", dsProv.Datasources[0].Type)
	p := loadCompose(t)
	require.Contains(t, p.Services, "prometheus")
	require.Equal(t, "http://prometheus:9090", dsProv.Datasources[0].URL)

	var dashProv struct {
		APIVersion int `json:"apiVersion"`
		Providers  []struct {
			Name            string `json:"name"`
			Folder          string `json:"folder"`
			Type            string `json:"type"`
			DisableDeletion bool   `json:"disableDeletion"`
			AllowUIUpdates  bool   `json:"allowUiUpdates"`
			Options         struct {
				Path                      string `json:"path"`
				FoldersFromFilesStructure bool   `json:"foldersFromFilesStructure"`
			} `json:"options"`
		} `json:"providers"`
	}
	require.NoError(t, yaml.UnmarshalStrict(readFile(t, deployPath("grafana", "provisioning", "dashboards", "wxmass.yml")), &dashProv))
	require.Len(t, dashProv.Providers, 1)
	var mounted bool
	for _, v := range p.Services["grafana"].Volumes {
		if v.Source == deployPath("grafana", "wxmass.json") {
			mounted = strings.HasPrefix(v.Target, dashProv.Providers[0].Options.Path+"/")
		}
	}
	require.True(t, mounted, "the dashboard is mounted under the provider's path %s", dashProv.Providers[0].Options.Path)
}
