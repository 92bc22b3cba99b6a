package check

import (
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery"
	"github.com/prometheus/prometheus/discovery/dns"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/modfile"
)

// loadPrometheus loads deploy/prometheus.yml with Prometheus's own loader
// (strict: unknown fields, bad durations, bad relabelling and unknown
// service discovery are errors).
func loadPrometheus(t *testing.T) *config.Config {
	t.Helper()
	cfg, err := config.LoadFile(deployPath("prometheus.yml"), false, slog.New(slog.DiscardHandler))
	require.NoError(t, err, "prometheus.yml")
	return cfg
}

// promTarget is one service and port a scrape job reaches.
type promTarget struct{ host, port string }

func scrapeTargets(t *testing.T, sc *config.ScrapeConfig) []promTarget {
	t.Helper()
	var out []promTarget
	for _, sd := range sc.ServiceDiscoveryConfigs {
		switch sd := sd.(type) {
		case *dns.SDConfig:
			require.Equalf(t, "A", sd.Type, "job %s: dns_sd type", sc.JobName)
			for _, n := range sd.Names {
				out = append(out, promTarget{n, strconv.Itoa(sd.Port)})
			}
		case discovery.StaticConfig:
			for _, g := range sd {
				for _, ls := range g.Targets {
					h, p, err := net.SplitHostPort(string(ls[model.AddressLabel]))
					require.NoError(t, err)
					out = append(out, promTarget{h, p})
				}
			}
		default:
			t.Errorf("job %s: service discovery %T is not checked", sc.JobName, sd)
		}
	}
	return out
}

// TestPrometheus checks deploy/prometheus.yml against docker-compose.yml:
// a job for serve (with the API key from a file Prometheus mounts, which
// serve's keys accept) and one for the workers, each reaching the compose
// service on the port that service's wxmass listens on; the rule files are
// mounted where rule_files looks; and the image is the Prometheus release
// whose loader checked the file.
func TestPrometheus(t *testing.T) {
	t.Parallel()
	cfg := loadPrometheus(t)
	p := loadCompose(t)
	prom, ok := p.Services["prometheus"]
	require.True(t, ok)
	binds := map[string]string{}
	for _, v := range prom.Volumes {
		if v.Type == types.VolumeTypeBind {
			binds[v.Target] = v.Source
		}
	}
	var configMounted bool
	for _, arg := range prom.Command {
		if v, ok := strings.CutPrefix(arg, "--config.file="); ok {
			require.Equal(t, deployPath("prometheus.yml"), binds[v], "the config file Prometheus reads is prometheus.yml")
			configMounted = true
		}
	}
	require.True(t, configMounted, "prometheus --config.file")

	// The image is the release of the loader used here (v3.N.P is module
	// v0.3NN.P).
	m := regexp.MustCompile(`^prom/prometheus:v3\.(\d+)\.(\d+)$`).FindStringSubmatch(prom.Image)
	require.NotNilf(t, m, "prometheus image %s: pin a v3 release", prom.Image)
	minor, _ := strconv.Atoi(m[1])
	mf, err := modfile.Parse("go.mod", readFile(t, "go.mod"), nil)
	require.NoError(t, err)
	var libVersion string
	for _, r := range mf.Require {
		if r.Mod.Path == "github.com/prometheus/prometheus" {
			libVersion = r.Mod.Version
		}
	}
	require.Equalf(t, "v0.3"+pad2(minor)+"."+m[2], libVersion, "prometheus image %s vs the config loader of github.com/prometheus/prometheus %s", prom.Image, libVersion)

	jobs := map[string]*config.ScrapeConfig{}
	var scs []*config.ScrapeConfig
	scs, err = cfg.GetScrapeConfigs()
	require.NoError(t, err)
	for _, sc := range scs {
		jobs[sc.JobName] = sc
	}
	serve, worker := wxmassService(t, p, "serve"), wxmassService(t, p, "worker")
	for job, want := range map[string]struct {
		svc  wxService
		addr string
	}{
		"wxmass-serve":  {serve, flagValue(t, "serve", serve.args, serve.env, "listen")},
		"wxmass-worker": {worker, flagValue(t, "worker", worker.args, worker.env, "metrics-listen")},
	} {
		sc, ok := jobs[job]
		require.Truef(t, ok, "scrape job %s", job)
		require.Equal(t, "/metrics", sc.MetricsPath, "job %s", job)
		require.Equal(t, []promTarget{{want.svc.name, portOf(t, want.addr)}}, scrapeTargets(t, sc), "job %s targets", job)
	}
	for _, sc := range scs {
		for _, tg := range scrapeTargets(t, sc) {
			if tg.host != "localhost" {
				require.Containsf(t, p.Services, tg.host, "job %s scrapes %s, not a compose service", sc.JobName, tg.host)
			}
		}
	}

	// serve's /metrics wants an API key: a bearer token from a file that
	// Prometheus mounts and serve's keys file accepts; workers need none.
	auth := jobs["wxmass-serve"].HTTPClientConfig.Authorization
	require.NotNil(t, auth, "job wxmass-serve: authorization")
	require.Equal(t, "Bearer", auth.Type)
	require.NotEmpty(t, auth.CredentialsFile, "the key comes from a file, not the config")
	keyHost, ok := binds[auth.CredentialsFile]
	require.Truef(t, ok, "credentials_file %s is not mounted into the prometheus service", auth.CredentialsFile)
	key := strings.TrimSpace(string(readFile(t, keyHost)))
	keys := readKeys(t, serve.hostPath(t, serve.env["WXMASS_API_KEYS_FILE"]))
	require.True(t, keys.Valid(key), "serve's API keys accept Prometheus's key (%s)", keyHost)
	require.Nil(t, jobs["wxmass-worker"].HTTPClientConfig.Authorization, "worker /metrics has no auth")

	// rule_files find the mounted rules.
	var rulesMounted int
	for target, source := range binds {
		for _, pattern := range cfg.RuleFiles {
			if ok, _ := filepath.Match(pattern, target); ok {
				_, errs := rulefmt.ParseFile(source, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
				require.Empty(t, errs, "rules %s", source)
				rulesMounted++
			}
		}
	}
	require.Equal(t, 1, rulesMounted, "prometheus-rules.yml is mounted where rule_files looks")
}

func pad2(n int) string {
	s := strconv.Itoa(n)
	if len(s) < 2 {
		s = "0" + s
	}
	return s
}

// TestPrometheusRules checks deploy/prometheus-rules.yml with Prometheus's
// rule loader, and that every metric and label its expressions use is one
// wxmass exposes and every job it names is a job of prometheus.yml.
func TestPrometheusRules(t *testing.T) {
	t.Parallel()
	groups, errs := rulefmt.ParseFile(deployPath("prometheus-rules.yml"), false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	require.Empty(t, errs)
	known := wxmassSeries(t)
	jobs := map[string]bool{}
	for _, sc := range loadPrometheus(t).ScrapeConfigs {
		jobs[sc.JobName] = true
	}
	var n int
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			n++
			require.NotEmpty(t, r.Alert, "alerting rules only")
			checkPromQL(t, "rule "+r.Alert, r.Expr, known)
			for _, m := range regexp.MustCompile(`job=~?"([^"]+)"`).FindAllStringSubmatch(r.Expr, -1) {
				require.Truef(t, jobs[m[1]], "rule %s: job %q is not a job of prometheus.yml", r.Alert, m[1])
			}
			require.NotEmpty(t, r.Annotations["summary"], "rule %s: summary", r.Alert)
		}
	}
	require.NotZero(t, n)
}
