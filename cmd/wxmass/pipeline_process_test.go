package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/internal/truth"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// fleet is a set of `wxmass worker` OS processes on one Redis DB and key
// prefix, sending to a fake WeChat, and the producer side in the test.
type fleet struct {
	env   []string
	rdb   *rdb.RDB
	store *campaigns.Store
	prod  *producer.Producer
	fake  *wechattest.Server

	mu     sync.Mutex
	procs  []*exec.Cmd
	logs   []*bytes.Buffer
	killed map[int]bool // pids
}

func newFleet(t *testing.T, db int, fake *wechattest.Server, env ...string) *fleet {
	t.Helper()
	c := redistest.Client(t, db)
	ro := redistest.Options(t, db)
	opt := asynq.RedisClientOpt{Addr: ro.Addr, Username: ro.Username, Password: ro.Password, DB: db}
	clear := func() {
		ins := asynq.NewInspector(opt)
		defer ins.Close()
		for _, q := range []string{task.QueueBulk, task.QueueControl, task.QueueTransactional} {
			_ = ins.DeleteQueue(q, true)
		}
	}
	clear()
	t.Cleanup(clear)
	prefix := redistest.Prefix(t, c)
	r := rdb.New(c, prefix)
	client := asynq.NewClient(opt)
	t.Cleanup(func() { _ = client.Close() })
	// The producer side only starts runs of file audiences: it never needs
	// a token.
	reg, err := account.NewRegistry(&account.Account{AppID: wechattest.AppIDDefault, Default: ratelimit.Limit{Rate: 1, Burst: 1}})
	require.NoError(t, err)
	store := campaigns.NewStore(r)
	f := &fleet{
		env: append([]string{
			fmt.Sprintf("WXMASS_REDIS_URL=redis://%s/%d", ro.Addr, db),
			"WXMASS_REDIS_PREFIX=" + prefix,
			"WXMASS_WECHAT_BASE_URL=" + fake.URL(),
			"WXMASS_APPID=" + wechattest.AppIDDefault,
			"WXMASS_APPSECRET=" + wechattest.SecretDefault,
			"WXMASS_LOG_LEVEL=warn",
		}, env...),
		rdb: r, store: store, fake: fake,
		prod: producer.New(client, store, reg, nil, producer.Config{}),
	}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, p := range f.procs {
			if p.ProcessState == nil {
				_ = p.Process.Signal(syscall.SIGTERM)
				_ = p.Wait()
			}
			if t.Failed() {
				t.Logf("worker %d log:\n%s", i, f.logs[i])
			}
		}
	})
	return f
}

// start starts worker i (again, if it was killed).
func (f *fleet) start(t *testing.T, i int) {
	t.Helper()
	cmd := exec.Command(binary, "worker")
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, f.env...)
	var log bytes.Buffer
	cmd.Stderr = &log
	require.NoError(t, cmd.Start())
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(f.procs) <= i {
		f.procs = append(f.procs, nil)
		f.logs = append(f.logs, nil)
	}
	f.procs[i], f.logs[i] = cmd, &log
}

// kill kills worker i with SIGKILL: no shutdown, tasks in flight abandoned.
func (f *fleet) kill(t *testing.T, i int) {
	t.Helper()
	f.mu.Lock()
	p := f.procs[i]
	f.mu.Unlock()
	require.NoError(t, p.Process.Kill())
	_ = p.Wait()
	f.mu.Lock()
	if f.killed == nil {
		f.killed = map[int]bool{}
	}
	f.killed[p.Process.Pid] = true
	f.mu.Unlock()
}

// truth checks each recipient of run of campaign id against the fake's
// record (internal/truth), an attempt of a killed worker excusing an
// unknown outcome, and fails the test on any violation.
func (f *fleet) truth(t *testing.T, kind campaigns.Kind, id string, run int) truth.Report {
	t.Helper()
	r, err := truth.Load(t.Context(), f.store, id, run)
	require.NoError(t, err)
	rep := truth.Check(f.fake, truth.Options{API: kind.API(), AppID: wechattest.AppIDDefault, Killed: func(proc string) bool {
		pid, err := strconv.Atoi(proc[strings.LastIndexByte(proc, ':')+1:])
		f.mu.Lock()
		defer f.mu.Unlock()
		return err == nil && f.killed[pid]
	}}, r)
	t.Log(rep)
	truth.Require(t, rep)
	return rep
}

func (f *fleet) campaign(t *testing.T, kind campaigns.Kind, openids []string) string {
	t.Helper()
	c := &campaigns.Campaign{
		Name: t.Name(), Account: wechattest.AppIDDefault, Kind: kind,
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceFile},
	}
	if kind == campaigns.KindTemplate {
		c.Template = &campaigns.TemplateSpec{TemplateID: wechattest.TemplateIDDefault, Data: map[string]string{"thing1": "您的订单已发货"}}
	} else {
		c.Custom = &campaigns.CustomSpec{MsgType: wechat.MsgTypeText, Text: &wechat.Text{Content: "您好"}}
	}
	require.NoError(t, f.store.Create(t.Context(), c))
	for i := 0; i < len(openids); i += 2000 {
		var entries []rdb.AudienceEntry
		for _, o := range openids[i:min(i+2000, len(openids))] {
			entries = append(entries, rdb.AudienceEntry{OpenID: o})
		}
		_, _, err := f.rdb.AppendAudience(t.Context(), c.ID, entries, string(campaigns.StateDraft))
		require.NoError(t, err)
	}
	return c.ID
}

func (f *fleet) settled(t *testing.T, id string, run int) rdb.RunRecord {
	t.Helper()
	rec, err := f.rdb.GetRun(t.Context(), id, run)
	require.NoError(t, err)
	return rec
}

func (f *fleet) waitSettled(t *testing.T, id string, run int, timeout time.Duration) rdb.RunRecord {
	t.Helper()
	var rec rdb.RunRecord
	require.Eventually(t, func() bool {
		rec = f.settled(t, id, run)
		return rec.Size > 0 && rec.Settled() >= rec.Size
	}, timeout, 100*time.Millisecond, "run did not settle: %+v", &rec)
	return rec
}

func testOpenIDs(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("o%s%0*d", prefix, 27-len(prefix), i)
	}
	return out
}

// TestRateAcrossWorkerProcesses: three worker processes share one
// account's limit of 500 sends a second with a burst of 50.
//
// It does not run in parallel with the other tests of this package: it
// measures the rate achieved, which needs the machine's CPU.
func TestRateAcrossWorkerProcesses(t *testing.T) {
	const rate, burst, n = 500, 50, 7500
	fake := wechattest.Start(t, wechattest.Config{})
	f := newFleet(t, redistest.DBCmdRate, fake, fmt.Sprintf("WXMASS_RATE=%d", rate), fmt.Sprintf("WXMASS_BURST=%d", burst), "WXMASS_CONCURRENCY=60")
	for i := range 3 {
		f.start(t, i)
	}
	id := f.campaign(t, campaigns.KindTemplate, testOpenIDs("RATE", n))
	run, err := f.prod.Start(t.Context(), id)
	require.NoError(t, err)
	rec := f.waitSettled(t, id, run, 2*time.Minute)
	f.truth(t, campaigns.KindTemplate, id, run)
	require.EqualValues(t, n, rec.Counters["sent"])

	st := fake.Stats()
	api := st.APIs[wechat.APITemplateSend]
	require.LessOrEqual(t, api.Peak1s, rate+burst, "the fleet never exceeds the limit plus the burst in any second")
	require.EqualValues(t, 0, st.DuplicatesDelivered)

	// The achieved rate, away from the ramp-up and the tail.
	ds := fake.Deliveries()
	times := make([]time.Time, len(ds))
	for i, d := range ds {
		times[i] = d.Time
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	from, to := times[0].Add(time.Second), times[len(times)-1].Add(-time.Second)
	in := 0
	for _, tm := range times {
		if !tm.Before(from) && tm.Before(to) {
			in++
		}
	}
	achieved := float64(in) / to.Sub(from).Seconds()
	t.Logf("peak 1 s: %d (limit %d + burst %d); achieved %.1f/s (%.1f%% of the limit)", api.Peak1s, rate, burst, achieved, 100*achieved/rate)
	// How close to the limit the fleet sends is a speed figure, measured
	// by `wxmass bench` (BENCHMARKS.md), not asserted here: on a loaded
	// machine the processes fall short of it. This floor only catches a
	// limiter that holds the fleet far below its share.
	require.GreaterOrEqual(t, achieved, 0.5*rate, "the workers together send at no less than half the limit")
}

// TestWorkersKilledMidRun kills worker processes with SIGKILL during a
// 20,000-recipient campaign and restarts them: the run completes, every
// recipient has exactly one outcome, and no template recipient got the
// message twice.
func TestWorkersKilledMidRun(t *testing.T) {
	t.Parallel()
	fake := wechattest.Start(t, wechattest.Config{})
	f := newFleet(t, redistest.DBCmdCrash, fake, "WXMASS_RATE=3000", "WXMASS_CONCURRENCY=50")
	f.start(t, 0)
	f.start(t, 1)

	killLoop := func(id string, run int, kills int, every int64) {
		for k := 1; k <= kills; k++ {
			require.Eventually(t, func() bool { return f.settled(t, id, run).Settled() >= int64(k)*every },
				2*time.Minute, 20*time.Millisecond)
			f.kill(t, k%2)
			f.start(t, k%2)
		}
	}

	const n = 20000
	id := f.campaign(t, campaigns.KindTemplate, testOpenIDs("KILL", n))
	run, err := f.prod.Start(t.Context(), id)
	require.NoError(t, err)
	killLoop(id, run, 4, 3500)
	rec := f.waitSettled(t, id, run, 4*time.Minute)
	f.truth(t, campaigns.KindTemplate, id, run)
	require.Equal(t, string(campaigns.StateCompleted), rec.State)
	require.EqualValues(t, n, rec.Settled())
	require.EqualValues(t, n, rec.Counters["sent"])
	outcomes := 0
	require.NoError(t, f.rdb.ScanOutcomes(t.Context(), id, run, func(string, rdb.Outcome) error { outcomes++; return nil }))
	require.Equal(t, n, outcomes, "exactly one outcome per recipient")
	st := fake.Stats()
	require.EqualValues(t, 0, st.DuplicatesDelivered, "client_msg_id kept every template recipient to one message")
	require.EqualValues(t, n, st.APIs[wechat.APITemplateSend].Accepted)

	// Customer-service sends have no dedupe key: a send in flight at a
	// kill comes back, finds its attempt open and is recorded unknown;
	// nobody gets the message twice.
	const m = 5000
	cid := f.campaign(t, campaigns.KindCustom, testOpenIDs("KILC", m))
	crun, err := f.prod.Start(t.Context(), cid)
	require.NoError(t, err)
	killLoop(cid, crun, 2, 1500)
	crec := f.waitSettled(t, cid, crun, 4*time.Minute)
	require.EqualValues(t, m, crec.Settled())
	rep := f.truth(t, campaigns.KindCustom, cid, crun)
	require.Zero(t, rep.Twice)
	require.EqualValues(t, st.DuplicatesDelivered, fake.Stats().DuplicatesDelivered, "no custom recipient got the message twice")
	t.Logf("custom sends: %d recipients, 2 kills: %v", m, crec.Counters)
}
