package reliability

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redisconn"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// FleetConfig configures a Fleet.
type FleetConfig struct {
	// RedisURL is the workers' --redis-url: redis://, redis-sentinel:// or
	// redis-cluster:// (see internal/redisconn).
	RedisURL string
	// NewClient returns the test's own client of that Redis (for the
	// campaign, the producer and the checks). Default: the client
	// redisconn builds from RedisURL, of whichever topology it names.
	NewClient func(tb testing.TB) redis.UniversalClient
	// Prefix is the workers' --redis-prefix. Default: "wxmass".
	Prefix string
	// Fake is the WeChat the workers call.
	Fake *Fake
	// AppID and Secret are the account's (WXMASS_APPID and
	// WXMASS_APPSECRET). Default: the fake's default account. Not with
	// Accounts.
	AppID, Secret string
	// Accounts, when set, configure the workers with an accounts file
	// (WXMASS_ACCOUNTS_FILE) of these accounts instead of AppID and
	// Secret, each with its own limit; the first is the default account
	// (Launch's). Start each run with LaunchFor(t, f.Account(id), ...).
	Accounts []FleetAccount
	// Workers is how many `wxmass worker` processes StartFleet starts.
	Workers int
	// Rate and Burst are the account's limit (--rate, --burst); Limit is
	// their sum, the most the fake may see in any one second. With
	// Accounts they are optional: when set, they are the limit of the APIs
	// an account does not list (the file lists template/send).
	Rate, Burst int
	// Concurrency is each worker's --concurrency. Default: 50.
	Concurrency int
	// Env are further WXMASS_* variables of every worker, such as
	// "WXMASS_WINDOW=2000".
	Env []string
}

// FleetAccount is one account of a fleet's accounts file.
type FleetAccount struct {
	// ID names the account in the file and in campaigns.
	ID string
	// AppID and Secret are the account's at the fake (one of
	// wechattest.Config.Accounts). The workers read the secret from an
	// environment variable the file names (appsecret_env).
	AppID, Secret string
	// Rate and Burst are the account's template/send limit (rate:
	// {template: Rate}, burst: {template: Burst}); Limit is their sum.
	Rate, Burst int
	// DailyQuota is wxmass's own cap of the account's template sends per
	// quota day (daily_quota: {template: DailyQuota}); 0 means none.
	DailyQuota int64
	// SecretFile makes the file name the secret in a file of its own
	// (appsecret_file), which Fleet.SetSecret rewrites, rather than in an
	// environment variable.
	SecretFile bool
}

// Limit is the most template sends the account may make in one second:
// rate plus burst.
func (a FleetAccount) Limit() int { return a.Rate + a.Burst }

// Fleet is a set of `wxmass worker` OS processes of one account (or of the
// accounts of an accounts file) on one Redis, sending to a fake WeChat, with the campaign and producer side in
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
	killed map[int]bool // pids of the workers killed

	secretFiles map[string]string // account id -> its appsecret_file
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
	if len(cfg.Accounts) > 0 {
		require.Empty(t, cfg.AppID+cfg.Secret, "FleetConfig: AppID and Secret or Accounts, not both")
		for _, a := range cfg.Accounts {
			require.Positive(t, a.Rate, "FleetConfig.Accounts[%s].Rate", a.ID)
			require.Positive(t, a.Burst, "FleetConfig.Accounts[%s].Burst", a.ID)
		}
	} else {
		if cfg.AppID == "" {
			cfg.AppID, cfg.Secret = wechattest.AppIDDefault, wechattest.SecretDefault
		}
		require.Positive(t, cfg.Rate, "FleetConfig.Rate")
		require.Positive(t, cfg.Burst, "FleetConfig.Burst")
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = 50
	}
	if cfg.NewClient == nil {
		cfg.NewClient = func(tb testing.TB) redis.UniversalClient {
			opt, err := redisconn.Parse(cfg.RedisURL)
			require.NoError(tb, err)
			return opt.NewClient()
		}
	}
	rc := cfg.NewClient(t)
	t.Cleanup(func() { _ = rc.Close() })
	r := rdb.New(rc, cfg.Prefix)
	pc, err := producer.NewClient(rc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = pc.Close() })
	// The test's producer only starts runs of file audiences (the workers
	// launch and expand them): it never needs a token or the limit, only
	// the accounts' names.
	var accts []*account.Account
	if len(cfg.Accounts) == 0 {
		accts = append(accts, &account.Account{AppID: cfg.AppID, Default: ratelimit.Limit{Rate: float64(cfg.Rate), Burst: cfg.Burst}})
	}
	for _, a := range cfg.Accounts {
		accts = append(accts, &account.Account{ID: a.ID, AppID: a.AppID, Default: ratelimit.Limit{Rate: float64(a.Rate), Burst: a.Burst}})
	}
	reg, err := account.NewRegistry(accts...)
	require.NoError(t, err)
	store := campaigns.NewStore(r)
	logDir := filepath.Join(filepath.Dir(ReportPath()), "reliability", safeName.ReplaceAllString(t.Name(), "_"))
	require.NoError(t, os.RemoveAll(logDir))
	require.NoError(t, os.MkdirAll(logDir, 0o755))
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"WXMASS_REDIS_URL=" + cfg.RedisURL,
		"WXMASS_REDIS_PREFIX=" + cfg.Prefix,
		"WXMASS_WECHAT_BASE_URL=" + cfg.Fake.URL(),
		"WXMASS_CONCURRENCY=" + strconv.Itoa(cfg.Concurrency),
		"WXMASS_SHUTDOWN_TIMEOUT=5s",
		"WXMASS_LOG_LEVEL=warn",
		"WXMASS_LOG_FORMAT=json",
	}
	if cfg.Rate > 0 {
		env = append(env, "WXMASS_RATE="+strconv.Itoa(cfg.Rate), "WXMASS_BURST="+strconv.Itoa(cfg.Burst))
	}
	var secretFiles map[string]string
	if len(cfg.Accounts) > 0 {
		var path string
		var secrets []string
		path, secrets, secretFiles = writeAccountsFile(t, t.TempDir(), cfg.Accounts)
		env = append(append(env, "WXMASS_ACCOUNTS_FILE="+path), secrets...)
	} else {
		env = append(env, "WXMASS_APPID="+cfg.AppID, "WXMASS_APPSECRET="+cfg.Secret)
	}
	f := &Fleet{
		cfg: cfg,
		env: append(env, cfg.Env...),
		rc:  rc, rdb: r, store: store,
		prod:   producer.New(pc.Client, store, reg, nil, producer.Config{}),
		logDir: logDir,
		exits:  make(chan string, 64),
		killed: map[int]bool{},

		secretFiles: secretFiles,
	}
	t.Cleanup(f.stop)
	for i := range cfg.Workers {
		f.Start(t, i)
	}
	return f
}

var safeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// writeAccountsFile writes the accounts file of accts into dir and returns
// its path and the environment variables (NAME=secret) its appsecret_env
// entries name.
func writeAccountsFile(tb testing.TB, dir string, accts []FleetAccount) (path string, env []string, secretFiles map[string]string) {
	tb.Helper()
	var b strings.Builder
	secretFiles = map[string]string{}
	b.WriteString("accounts:\n")
	for i, a := range accts {
		fmt.Fprintf(&b, "  - id: %s\n    appid: %s\n", a.ID, a.AppID)
		if a.SecretFile {
			file := filepath.Join(dir, "secret-"+a.ID)
			require.NoError(tb, os.WriteFile(file, []byte(a.Secret+"\n"), 0o600))
			secretFiles[a.ID] = file
			fmt.Fprintf(&b, "    appsecret_file: %s\n", file)
		} else {
			name := fmt.Sprintf("WXMASS_RELIABILITY_SECRET_%d", i)
			env = append(env, name+"="+a.Secret)
			fmt.Fprintf(&b, "    appsecret_env: %s\n", name)
		}
		fmt.Fprintf(&b, "    rate: {template: %d}\n    burst: {template: %d}\n", a.Rate, a.Burst)
		if a.DailyQuota > 0 {
			fmt.Fprintf(&b, "    daily_quota: {template: %d}\n", a.DailyQuota)
		}
	}
	path = filepath.Join(dir, "accounts.yaml")
	require.NoError(tb, os.WriteFile(path, []byte(b.String()), 0o600))
	return path, env, secretFiles
}

// SetSecret rewrites the appsecret_file of account id (one of
// FleetConfig.Accounts with SecretFile), as an operator rotating it does:
// the workers read it again within their --accounts-reload-interval.
func (f *Fleet) SetSecret(tb testing.TB, id, secret string) {
	tb.Helper()
	file, ok := f.secretFiles[id]
	require.True(tb, ok, "account %s has no secret file", id)
	tmp := file + ".new"
	require.NoError(tb, os.WriteFile(tmp, []byte(secret+"\n"), 0o600))
	require.NoError(tb, os.Rename(tmp, file))
}

// Killed reports whether proc, the name a worker gives itself in the
// attempt records it writes ("host:pid"), is a worker this fleet killed.
func (f *Fleet) Killed(proc string) bool {
	i := strings.LastIndexByte(proc, ':')
	pid, err := strconv.Atoi(proc[i+1:])
	if err != nil {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.killed[pid]
}

// Config returns the fleet's configuration, defaults applied.
func (f *Fleet) Config() FleetConfig { return f.cfg }

// RDB is the test's access to the fleet's Redis keys.
func (f *Fleet) RDB() *rdb.RDB { return f.rdb }

// Limit is the most sends the default account (Launch's) may make in one
// second: rate plus burst.
func (f *Fleet) Limit() int {
	a, _ := f.account("")
	return a.Limit
}

// Account returns the fleet's account id as LaunchFor and Check need it:
// id is an ID (or appid) of FleetConfig.Accounts, or FleetConfig.AppID, or
// "" for the default account (Launch's: AppID, or the first of Accounts).
// An id the fleet does not have fails the test.
func (f *Fleet) Account(tb testing.TB, id string) RunAccount {
	tb.Helper()
	a, ok := f.account(id)
	if !ok {
		tb.Fatalf("the fleet has no account %q", id)
	}
	return a
}

func (f *Fleet) account(id string) (RunAccount, bool) {
	if len(f.cfg.Accounts) == 0 {
		if id == "" || id == f.cfg.AppID {
			return RunAccount{ID: f.cfg.AppID, AppID: f.cfg.AppID, Limit: f.cfg.Rate + f.cfg.Burst}, true
		}
		return RunAccount{}, false
	}
	for _, a := range f.cfg.Accounts {
		if id == "" || id == a.ID || id == a.AppID {
			return RunAccount{ID: a.ID, AppID: a.AppID, Limit: a.Limit()}, true
		}
	}
	return RunAccount{}, false
}

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
	f.killed[p.cmd.Process.Pid] = true
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

// CountLog returns how many lines of the workers' logs (every start of
// every worker) contain s.
func (f *Fleet) CountLog(s string) int {
	f.mu.Lock()
	n := len(f.procs)
	f.mu.Unlock()
	count := 0
	for i := range n {
		b, err := os.ReadFile(filepath.Join(f.logDir, fmt.Sprintf("worker-%d.log", i)))
		if err != nil {
			continue
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if bytes.Contains(line, []byte(s)) {
				count++
			}
		}
	}
	return count
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

// Pid returns the process id of worker i.
func (f *Fleet) Pid(i int) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.procs[i].cmd.Process.Pid
}

// openAttempts returns the recipients of r whose attempt is open and was
// begun by the worker of process id pid.
func (f *Fleet) openAttempts(tb testing.TB, r *Run, pid int) []string {
	tb.Helper()
	var out []string
	suffix := ":" + strconv.Itoa(pid)
	for i := 0; i < len(r.OpenIDs); i += 1000 {
		batch := r.OpenIDs[i:min(i+1000, len(r.OpenIDs))]
		atts, ok, err := f.store.Attempts(context.Background(), r.Campaign, r.Number, batch)
		require.NoError(tb, err)
		for j, a := range atts {
			if ok[j] && a.Open && strings.HasSuffix(a.Proc, suffix) {
				out = append(out, batch[j])
			}
		}
	}
	return out
}
