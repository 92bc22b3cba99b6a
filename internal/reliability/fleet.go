package reliability

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/account"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// FleetConfig configures a Fleet.
type FleetConfig struct {
	// RedisURL is the workers' --redis-url.
	RedisURL string
	// NewClient returns the test's own client of that Redis (for the
	// campaign, the producer and the checks). Default: a client of
	// RedisURL. A Sentinel or Cluster scenario passes its own.
	NewClient func(tb testing.TB) redis.UniversalClient
	// Prefix is the workers' --redis-prefix. Default: "wxmass".
	Prefix string
	// Fake is the WeChat the workers call.
	Fake *Fake
	// AppID and Secret are the account's. Default: the fake's default
	// account.
	AppID, Secret string
	// Workers is how many `wxmass worker` processes StartFleet starts.
	Workers int
	// Rate and Burst are the account's limit (--rate, --burst); Limit is
	// their sum, the most the fake may see in any one second.
	Rate, Burst int
	// Concurrency is each worker's --concurrency. Default: 50.
	Concurrency int
	// Env are further WXMASS_* variables of every worker, such as
	// "WXMASS_WINDOW=2000".
	Env []string
}

// Fleet is a set of `wxmass worker` OS processes of one account on one
// Redis, sending to a fake WeChat, with the campaign and producer side in
// the test. Workers can be killed with SIGKILL and started again; a worker
// that exits by itself fails the scenario (see Run.Wait).
type Fleet struct {
	cfg    FleetConfig
	env    []string
	rc     redis.UniversalClient
	rdb    *rdb.RDB
	store  *campaigns.Store
	prod   *producer.Producer
	logDir string

	exits    chan string // a line per worker that exited without being killed
	stopping atomic.Bool

	mu     sync.Mutex
	procs  []*proc
	starts int
	kills  int
}

// proc is one run of a worker process.
type proc struct {
	i      int
	cmd    *exec.Cmd
	log    string // its log file
	done   chan struct{}
	killed atomic.Bool
}

// StartFleet starts cfg.Workers worker processes; they are stopped (SIGTERM,
// then SIGKILL) when the test ends. Their logs are in LogDir.
func StartFleet(t *testing.T, cfg FleetConfig) *Fleet {
	t.Helper()
	if cfg.Prefix == "" {
		cfg.Prefix = rdb.PrefixDefault
	}
	if cfg.AppID == "" {
		cfg.AppID, cfg.Secret = wechattest.AppIDDefault, wechattest.SecretDefault
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 50
	}
	if cfg.NewClient == nil {
		cfg.NewClient = func(tb testing.TB) redis.UniversalClient {
			opt, err := redis.ParseURL(cfg.RedisURL)
			require.NoError(tb, err)
			return redis.NewClient(opt)
		}
	}
	require.Positive(t, cfg.Rate, "FleetConfig.Rate")
	require.Positive(t, cfg.Burst, "FleetConfig.Burst")
	rc := cfg.NewClient(t)
	t.Cleanup(func() { _ = rc.Close() })
	r := rdb.New(rc, cfg.Prefix)
	pc, err := producer.NewClient(rc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	// The test's producer only starts runs of file audiences (the workers
	// launch and expand them): it never needs a token or the limit.
	reg, err := account.NewRegistry(&account.Account{AppID: cfg.AppID, Default: ratelimit.Limit{Rate: float64(cfg.Rate), Burst: cfg.Burst}})
	require.NoError(t, err)
	store := campaigns.NewStore(r)
	logDir := filepath.Join(filepath.Dir(ReportPath()), "reliability", safeName.ReplaceAllString(t.Name(), "_"))
	require.NoError(t, os.RemoveAll(logDir))
	require.NoError(t, os.MkdirAll(logDir, 0o755))
	f := &Fleet{
		cfg: cfg,
		env: append([]string{
			"PATH=" + os.Getenv("PATH"),
			"HOME=" + os.Getenv("HOME"),
			"WXMASS_REDIS_URL=" + cfg.RedisURL,
			"WXMASS_REDIS_PREFIX=" + cfg.Prefix,
			"WXMASS_WECHAT_BASE_URL=" + cfg.Fake.URL(),
			"WXMASS_APPID=" + cfg.AppID,
			"WXMASS_APPSECRET=" + cfg.Secret,
			"WXMASS_RATE=" + strconv.Itoa(cfg.Rate),
			"WXMASS_BURST=" + strconv.Itoa(cfg.Burst),
			"WXMASS_CONCURRENCY=" + strconv.Itoa(cfg.Concurrency),
			"WXMASS_SHUTDOWN_TIMEOUT=5s",
			"WXMASS_LOG_LEVEL=warn",
			"WXMASS_LOG_FORMAT=json",
		}, cfg.Env...),
		rc: rc, rdb: r, store: store,
		prod:   producer.New(pc.Client, store, r, reg, nil, producer.Config{}),
		logDir: logDir,
		exits:  make(chan string, 64),
	}
	t.Cleanup(f.stop)
	for i := range cfg.Workers {
		f.Start(t, i)
	}
	return f
}

var safeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// Config returns the fleet's configuration, defaults applied.
func (f *Fleet) Config() FleetConfig { return f.cfg }

// RDB is the test's access to the fleet's Redis keys.
func (f *Fleet) RDB() *rdb.RDB { return f.rdb }

// Limit is the most sends the account may make in one second: rate plus
// burst.
func (f *Fleet) Limit() int { return f.cfg.Rate + f.cfg.Burst }

// LogDir is where the workers' logs are (worker-N.log, every start of
// worker N appended), under the report's directory.
func (f *Fleet) LogDir() string { return f.logDir }

// Counts returns how many worker processes were started and killed.
func (f *Fleet) Counts() (starts, kills int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.starts, f.kills
}

// Start starts worker i, or starts it again after Kill. Starting a worker
// that runs fails the test.
func (f *Fleet) Start(t testing.TB, i int) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.procs) <= i {
		f.procs = append(f.procs, nil)
	}
	if p := f.procs[i]; p != nil && !p.exited() {
		t.Fatalf("worker %d is running", i)
	}
	path := filepath.Join(f.logDir, fmt.Sprintf("worker-%d.log", i))
	lf, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer lf.Close() // the child has its own descriptor
	fmt.Fprintf(lf, "=== start %d of worker %d at %s\n", f.starts+1, i, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(binary, "worker")
	cmd.Env = f.env
	cmd.Stdout, cmd.Stderr = lf, lf
	require.NoError(t, cmd.Start())
	p := &proc{i: i, cmd: cmd, log: path, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		if !p.killed.Load() && !f.stopping.Load() {
			f.exits <- fmt.Sprintf("worker %d (pid %d) exited by itself: %v\n--- tail of %s ---\n%s",
				i, cmd.Process.Pid, err, path, tail(path, 30))
		}
		close(p.done)
	}()
	f.procs[i] = p
	f.starts++
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill kills worker i with SIGKILL (no shutdown: its tasks in flight are
// abandoned, as when a machine dies) and waits until it is gone.
func (f *Fleet) Kill(t testing.TB, i int) {
	t.Helper()
	f.mu.Lock()
	p := f.procs[i]
	f.kills++
	f.mu.Unlock()
	p.killed.Store(true)
	if err := p.cmd.Process.Kill(); err != nil && !p.exited() {
		t.Fatalf("kill worker %d: %v", i, err)
	}
	<-p.done
}

// Exits delivers a description of each worker that exited without being
// killed. Run.Wait fails the test on the first.
func (f *Fleet) Exits() <-chan string { return f.exits }

// stop ends every worker: SIGTERM, then SIGKILL after 20 s.
func (f *Fleet) stop() {
	f.stopping.Store(true)
	f.mu.Lock()
	procs := append([]*proc(nil), f.procs...)
	f.mu.Unlock()
	for _, p := range procs {
		if p != nil && !p.exited() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for _, p := range procs {
		if p == nil {
			continue
		}
		select {
		case <-p.done:
		case <-deadline.C:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
}

// tail returns the last lines of a file.
func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	b = bytes.TrimRight(b, "\n")
	for i, n := len(b)-1, 0; i >= 0; i-- {
		if b[i] == '\n' {
			if n++; n == lines {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}

// copyTail writes the last lines of every worker's log to w.
func (f *Fleet) copyTail(w io.Writer, lines int) {
	f.mu.Lock()
	n := len(f.procs)
	f.mu.Unlock()
	for i := range n {
		path := filepath.Join(f.logDir, fmt.Sprintf("worker-%d.log", i))
		fmt.Fprintf(w, "--- tail of %s ---\n%s\n", path, tail(path, lines))
	}
}
