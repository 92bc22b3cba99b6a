package check

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// process is a wxmass process of the stack test.
type process struct {
	name   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    bytes.Buffer
	exited chan struct{}
	err    error // Wait's, once exited is closed
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// startProcess runs bin with args and exactly env (nothing of the test's
// own environment: the compose service's variables are all it gets).
func startProcess(t *testing.T, name, bin string, args []string, env map[string]string) *process {
	t.Helper()
	p := &process{name: name, exited: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p, p
	require.NoError(t, p.cmd.Start())
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("output of %s (%s):\n%s", name, strings.Join(args, " "), tail(p.output(), 40))
		}
	})
	return p
}

func tail(s string, lines int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-lines):], "\n")
}

// get fetches url with an optional bearer key.
func get(t *testing.T, u, key string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

// waitUntil polls cond every 50 ms until it holds, or fails after d; it
// fails at once if a process exits.
func waitUntil(t *testing.T, d time.Duration, what string, procs []*process, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		for _, p := range procs {
			select {
			case <-p.exited:
				t.Fatalf("waiting for %s: %s exited (%v):\n%s", what, p.name, p.err, tail(p.output(), 40))
			default:
			}
		}
		require.Truef(t, time.Now().Before(deadline), "waiting for %s: not after %s", what, d)
		<-tick.C
	}
}

// TestComposeStackAsProcesses runs docker-compose.yml's wxmass services
// (fakewechat, serve and every worker replica) as local processes of the
// binary deploy/Dockerfile builds, on a redis-server running
// deploy/redis.conf: each gets exactly its compose environment and
// command, with only what Docker would provide translated (service names
// to 127.0.0.1 ports, container paths to the files compose mounts there).
// Then: the health checks Kubernetes probes and Prometheus's scrapes
// answer as the manifests expect; a campaign sent through the API
// completes with every recipient settled, the fake's delivery receipts
// reach serve's callback (the accounts file's token and AES key); the
// metrics the dashboard and the alerts use are all exposed; and every
// process stops on SIGTERM, cleanly, well within its grace period.
func TestComposeStackAsProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs wxmass processes and Redis")
	}
	t.Parallel()
	bin := dockerBuiltBinary(t)
	p := loadCompose(t)
	fake, serve, worker := wxmassService(t, p, "fakewechat"), wxmassService(t, p, "serve"), wxmassService(t, p, "worker")
	rs := startRedis(t, t.TempDir(), 0)

	fakeAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	serveAddr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	// Docker's DNS: service:port inside the compose network.
	hosts := strings.NewReplacer(
		"redis:6379", rs.addr,
		"fakewechat:"+portOf(t, flagValue(t, "fakewechat", fake.args, fake.env, "fake-listen")), fakeAddr,
		"serve:"+portOf(t, flagValue(t, "serve", serve.args, serve.env, "listen")), serveAddr,
	)
	// wxEnv is a service's environment with addresses and mounted files
	// translated.
	wxEnv := func(s wxService) map[string]string {
		env := map[string]string{}
		for k, v := range s.env {
			env[k] = hosts.Replace(v)
		}
		if f, ok := env["WXMASS_ACCOUNTS_FILE"]; ok {
			env["WXMASS_ACCOUNTS_FILE"] = s.translateFile(t, f)
		}
		if f, ok := env["WXMASS_API_KEYS_FILE"]; ok {
			env["WXMASS_API_KEYS_FILE"] = s.hostPath(t, f)
		}
		return env
	}
	// withArg returns args with --name's value replaced.
	withArg := func(args []string, name, value string) []string {
		out := append([]string(nil), args...)
		for i, a := range out {
			if a == "--"+name && i+1 < len(out) {
				out[i+1] = value
				return out
			}
		}
		t.Fatalf("no --%s in %q", name, args)
		return nil
	}

	fakeConfig := fake.translateFile(t, flagValue(t, "fakewechat", fake.args, fake.env, "fake-config"), "serve:"+portOf(t, flagValue(t, "serve", serve.args, serve.env, "listen")), serveAddr)
	fakeArgs := withArg(withArg(fake.args, "fake-listen", fakeAddr), "fake-config", fakeConfig)
	var procs []*process
	procs = append(procs, startProcess(t, "fakewechat", bin, append([]string{fake.sub}, fakeArgs...), wxEnv(fake)))

	serveEnv := wxEnv(serve)
	serveEnv["WXMASS_LISTEN"] = serveAddr
	procs = append(procs, startProcess(t, "serve", bin, append([]string{serve.sub}, serve.args...), serveEnv))
	var workerAddrs []string
	for i := range *worker.svc.Deploy.Replicas {
		addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
		workerAddrs = append(workerAddrs, addr)
		procs = append(procs, startProcess(t, fmt.Sprintf("worker-%d", i+1), bin,
			append([]string{worker.sub}, withArg(worker.args, "metrics-listen", addr)...), wxEnv(worker)))
	}

	// Readiness, as the Kubernetes probes ask for it.
	for _, addr := range append([]string{serveAddr}, workerAddrs...) {
		waitUntil(t, 30*time.Second, addr+"/readyz", procs, func() bool {
			resp, err := http.Get("http://" + addr + "/readyz")
			if err != nil {
				return false // not listening yet
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		})
		code, _ := get(t, "http://"+addr+"/healthz", "")
		require.Equal(t, http.StatusOK, code, "%s/healthz", addr)
	}

	// Prometheus's view: serve's /metrics wants its key, workers' none.
	promKey := ""
	for _, v := range p.Services["prometheus"].Volumes {
		if strings.HasSuffix(v.Target, "wxmass-api-key") {
			promKey = strings.TrimSpace(string(readFile(t, v.Source)))
		}
	}
	require.NotEmpty(t, promKey)
	code, _ := get(t, "http://"+serveAddr+"/metrics", "")
	require.Equal(t, http.StatusUnauthorized, code, "serve /metrics without a key")
	apiKey := firstPlainKey(t, serve.hostPath(t, serve.env["WXMASS_API_KEYS_FILE"]))
	code, _ = get(t, "http://"+serveAddr+"/monitoring/", apiKey)
	require.Equal(t, http.StatusOK, code, "asynqmon with the trial's API key")

	// A campaign through the API, as deploy/README.md shows.
	specs := readFile(t, serve.hostPath(t, serve.env["WXMASS_ACCOUNTS_FILE"]))
	accountID := firstAccountID(t, specs)
	var openids []string
	for i := 1; i <= 60; i++ {
		openids = append(openids, fmt.Sprintf("oDEMO%023d", i))
	}
	body, err := json.Marshal(map[string]any{
		"name": "deploy check", "account": accountID, "kind": "template",
		"template": map[string]any{"template_id": "TPL_ORDER_SHIPPED", "url": "https://example.com/orders",
			"data": map[string]string{"thing1": "您的订单已发货", "character_string2": "SO0100001", "time3": "2026-01-01 10:00"}},
		"audience": map[string]any{"source": "inline", "openids": openids},
	})
	require.NoError(t, err)
	var created struct {
		ID string `json:"id"`
	}
	post(t, "http://"+serveAddr+"/v1/campaigns", apiKey, body, http.StatusCreated, &created)
	post(t, "http://"+serveAddr+"/v1/campaigns/"+created.ID+"/start", apiKey, nil, http.StatusAccepted, nil)
	var run struct {
		State    string           `json:"state"`
		Size     int64            `json:"size"`
		Settled  int64            `json:"settled"`
		Counters map[string]int64 `json:"counters"`
	}
	runURL := "http://" + serveAddr + "/v1/campaigns/" + created.ID + "/runs/1"
	waitUntil(t, 90*time.Second, "the campaign's run to complete", procs, func() bool {
		code, b := get(t, runURL, apiKey)
		require.Equal(t, http.StatusOK, code, b)
		require.NoError(t, json.Unmarshal([]byte(b), &run))
		require.NotContains(t, []string{"failed", "cancelled"}, run.State, b)
		return run.State == "completed"
	})
	require.EqualValues(t, len(openids), run.Size)
	require.Equal(t, run.Size, run.Settled)
	// Receipts: the fake pushes TEMPLATESENDJOBFINISH to serve's callback
	// of the account, signed and encrypted with the secret files'
	// values; serve moves outcomes from sent to delivered.
	waitUntil(t, 60*time.Second, "delivery receipts", procs, func() bool {
		_, b := get(t, runURL, apiKey)
		require.NoError(t, json.Unmarshal([]byte(b), &run))
		return run.Counters["delivered"] > 0
	})

	var stats struct {
		Deliveries          int64 `json:"deliveries"`
		DuplicatesDelivered int64 `json:"duplicates_delivered"`
	}
	code, b := get(t, "http://"+fakeAddr+"/fake/stats", "")
	require.Equal(t, http.StatusOK, code)
	require.NoError(t, json.Unmarshal([]byte(b), &stats))
	require.Zero(t, stats.DuplicatesDelivered, "no recipient got the message twice")
	require.Positive(t, stats.Deliveries)
	t.Logf("run: %d recipients, counters %v; the fake delivered %d", run.Size, run.Counters, stats.Deliveries)

	// The metrics the dashboard and the alerts use, as the processes
	// expose them now.
	exposed := map[string]series{}
	scrape := func(u, key string) {
		code, b := get(t, u, key)
		require.Equal(t, http.StatusOK, code, u)
		parser := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := parser.TextToMetricFamilies(strings.NewReader(b))
		require.NoError(t, err, u)
		var list []*dto.MetricFamily
		for _, mf := range mfs {
			list = append(list, mf)
		}
		for name, s := range seriesOf(list) {
			exposed[name] = s
		}
	}
	scrape("http://"+serveAddr+"/metrics", promKey)
	for _, addr := range workerAddrs {
		scrape("http://"+addr+"/metrics", "")
	}
	for name := range usedSeries(t) {
		if name == "up" {
			continue
		}
		_, ok := exposed[name]
		require.Truef(t, ok, "%s is used by the dashboard or the alerts but not exposed by serve or the workers after a campaign", name)
	}

	// SIGTERM, as docker stop and Kubernetes send: every process exits 0,
	// within --shutdown-timeout + 5s (the grace periods are longer).
	grace := shutdownGrace(t, worker.sub, worker.args, worker.env)
	for _, pr := range procs {
		require.NoError(t, pr.cmd.Process.Signal(syscall.SIGTERM))
	}
	for _, pr := range procs {
		select {
		case <-pr.exited:
			require.NoErrorf(t, pr.err, "%s after SIGTERM:\n%s", pr.name, tail(pr.output(), 20))
		case <-time.After(grace):
			t.Fatalf("%s did not stop within %s of SIGTERM", pr.name, grace)
		}
	}
}

// post sends a JSON request and decodes the answer.
func post(t *testing.T, u, key string, body []byte, want int, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equalf(t, want, resp.StatusCode, "POST %s: %s", u, b)
	if out != nil {
		require.NoError(t, json.Unmarshal(b, out))
	}
}

// firstPlainKey is the first key of an API keys file that is not a digest.
func firstPlainKey(t *testing.T, path string) string {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, path)))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "sha256:") {
			return l
		}
	}
	t.Fatalf("%s: no plain key", path)
	return ""
}

func firstAccountID(t *testing.T, accountsYAML []byte) string {
	t.Helper()
	var doc struct {
		Accounts []struct {
			ID string `json:"id"`
		} `json:"accounts"`
	}
	require.NoError(t, yaml.Unmarshal(accountsYAML, &doc))
	require.NotEmpty(t, doc.Accounts)
	return doc.Accounts[0].ID
}

// usedSeries are the series names the dashboard and the alerting rules
// select.
func usedSeries(t *testing.T) map[string]bool {
	t.Helper()
	known := wxmassSeries(t)
	out := map[string]bool{}
	var d dashboard
	require.NoError(t, json.Unmarshal(readFile(t, deployPath("grafana", "wxmass.json")), &d))
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			for _, n := range checkPromQL(t, "dashboard", promqlOf(tg.Expr), known) {
				out[n] = true
			}
		}
	}
	groups, errs := rulefmt.ParseFile(deployPath("prometheus-rules.yml"), false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	require.Empty(t, errs)
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			for _, n := range checkPromQL(t, "rule "+r.Alert, r.Expr, known) {
				out[n] = true
			}
		}
	}
	return out
}
