package worker_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/media"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/internal/truth"
	"github.com/wxmass/wxmass/monitoring"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
	"github.com/wxmass/wxmass/worker"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// go-redis pools opened by asynq's inspector close asynchronously.
		goleak.IgnoreTopFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).reaper"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

// The tests of this package share asynq's queues in redistest.DBWorker, so
// they do not run in parallel: one test's server would take another's tasks.

type bundle struct {
	fake   *wechattest.Server
	prefix string
	redis  *redis.Client
	opt    asynq.RedisClientOpt
	rdb    *rdb.RDB
	store  *campaigns.Store
	// calls counts the processes' HTTP requests to WeChat by path, as the
	// clients make them (refused connections included).
	calls *pathCounter
}

func setup(t *testing.T, cfg wechattest.Config) *bundle {
	t.Helper()
	c := redistest.Client(t, redistest.DBWorker)
	ro := redistest.Options(t, redistest.DBWorker)
	opt := asynq.RedisClientOpt{Addr: ro.Addr, Username: ro.Username, Password: ro.Password, DB: ro.DB}
	clearQueues(t, opt)
	t.Cleanup(func() { clearQueues(t, opt) })
	prefix := redistest.Prefix(t, c)
	r := rdb.New(c, prefix)
	return &bundle{fake: wechattest.Start(t, cfg), prefix: prefix, redis: c, opt: opt, rdb: r, store: campaigns.NewStore(r), calls: &pathCounter{}}
}

func clearQueues(t *testing.T, opt asynq.RedisClientOpt) {
	t.Helper()
	ins := asynq.NewInspector(opt)
	defer ins.Close()
	for _, q := range []string{task.QueueBulk, task.QueueControl, task.QueueTransactional} {
		_ = ins.DeleteQueue(q, true)
	}
}

// procConfig tunes one worker process of a test.
type procConfig struct {
	rate        float64
	burst       int
	concurrency int
	window      int
	chunk       int
	probe       time.Duration
	stall       time.Duration
	rules       []retry.Rule // added to the test policy
	// dedupeWindow, stopGrace and name configure the process's ledger
	// (campaigns.LedgerConfig; zero: the defaults, "").
	dedupeWindow time.Duration
	stopGrace    time.Duration
	name         string
	// callTimeout bounds a WeChat call (5 s when zero).
	callTimeout time.Duration
	// rescue is the server's RescueInterval (zero: the default).
	rescue time.Duration
	// reconcile is the worker's ReconcileInterval (zero: the default).
	reconcile time.Duration
	// metrics receives the process's metrics (nil: none).
	metrics *monitoring.Metrics
	// archive, when set, makes the process archive finished runs there,
	// with the worker's archive settings in archiveCfg (its ArchiveStore
	// is set here) and the clock now (nil: time.Now) for the worker and
	// its store.
	archive    *campaigns.Archive
	archiveCfg worker.Config
	now        func() time.Time
	// breakerThreshold and breakerProbe are the worker's BreakerThreshold
	// and BreakerProbeInterval (and BreakerProbeMax: no backoff); zero:
	// the defaults.
	breakerThreshold int
	breakerProbe     time.Duration
	// appIDs are the process's accounts, each at rate and burst, all with
	// wechattest.SecretDefault (none: wechattest.AppIDDefault alone).
	appIDs []string
	// massPoll is the worker's MassPollAfter and MassPollInterval (zero:
	// the defaults); massProtection turns API mass-send protection on
	// for the accounts.
	massPoll       time.Duration
	massProtection bool
	// protection is every account's protection (caps, quiet hours, the
	// customer-service window), and protectRecheck the worker's
	// ProtectRecheck (zero: the defaults).
	protection     account.Protection
	protectRecheck time.Duration
}

// proc is one worker process: its own Redis connections, WeChat client,
// token cache, limiter and asynq server, as a separate OS process has.
type proc struct {
	srv      *worker.Server
	producer *producer.Producer
	limiter  *ratelimit.Limiter
	client   *asynq.Client
	accounts *account.Registry
}

func (b *bundle) process(t *testing.T, pc procConfig) *proc {
	t.Helper()
	if pc.rate == 0 {
		pc.rate = 5000
	}
	if pc.burst == 0 {
		pc.burst = max(1, int(pc.rate/10))
	}
	rc := redistest.Client(t, redistest.DBWorker)
	r := rdb.New(rc, b.prefix)
	if pc.callTimeout == 0 {
		pc.callTimeout = 5 * time.Second
	}
	wc := wechat.New(wechat.WithBaseURLs(b.fake.URL()), wechat.WithHTTPClient(&http.Client{Transport: b.calls.wrap(wechat.NewTransport(256))}), wechat.WithTimeout(pc.callTimeout))
	t.Cleanup(wc.CloseIdleConnections)
	if len(pc.appIDs) == 0 {
		pc.appIDs = []string{wechattest.AppIDDefault}
	}
	var accts []*account.Account
	for _, appID := range pc.appIDs {
		tokens, err := wechat.NewTokenCache(r, wechat.TokenCacheConfig{
			AppID: appID,
			Fetch: func(ctx context.Context) (wechat.AccessToken, error) {
				return wc.StableToken(ctx, appID, secret.New(wechattest.SecretDefault), false)
			},
		})
		require.NoError(t, err)
		accts = append(accts, &account.Account{AppID: appID, Tokens: tokens, Default: ratelimit.Limit{Rate: pc.rate, Burst: pc.burst},
			Mass: account.MassSpec{Type: account.TypeService, Protection: pc.massProtection}, Protection: pc.protection.WithDefaults()})
	}
	accounts, err := account.NewRegistry(accts...)
	require.NoError(t, err)
	limiter, err := ratelimit.New(r, ratelimit.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = limiter.Close() })
	policy, err := retry.New(retry.Config{
		Rules:          append([]retry.Rule{{Code: -1, Class: retry.ClassRetry, Delay: retry.Exponential(100*time.Millisecond, 2, time.Second), MaxAttempts: 8}}, pc.rules...),
		NotSentDelay:   retry.Fixed(100 * time.Millisecond),
		TransportDelay: retry.Exponential(100*time.Millisecond, 2, time.Second),
	})
	require.NoError(t, err)
	client, err := producer.NewClient(rc)
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	log := zap.NewNop()
	store := campaigns.NewStore(r).WithLedger(campaigns.LedgerConfig{DedupeWindow: pc.dedupeWindow, StopGrace: pc.stopGrace, Proc: pc.name})
	prod := producer.New(client.Client, store, accounts, wc, producer.Config{Window: pc.window, ChunkSize: pc.chunk, Logger: log, Metrics: pc.metrics, Rates: limiter})
	wcfg := worker.Config{
		QuotaProbeInterval: pc.probe, StallTimeout: pc.stall, ReconcileInterval: pc.reconcile, Logger: log,
		PauseRecheck: 500 * time.Millisecond, Metrics: pc.metrics, NowFunc: pc.now,
		BreakerThreshold: pc.breakerThreshold, BreakerProbeInterval: pc.breakerProbe, BreakerProbeMax: pc.breakerProbe,
		MassPollAfter: pc.massPoll, MassPollInterval: pc.massPoll, ProtectRecheck: pc.protectRecheck,
		Media: media.NewCache(media.NewStore(r), wc, media.CacheConfig{Logger: log}),
	}
	if pc.archive != nil {
		as := store.WithArchive(pc.archive)
		if pc.now != nil {
			as = as.WithClock(pc.now)
		}
		wcfg.ArchiveStore = as
		wcfg.ArchiveAfter, wcfg.ReceiptWindow, wcfg.Retention = pc.archiveCfg.ArchiveAfter, pc.archiveCfg.ReceiptWindow, pc.archiveCfg.Retention
		wcfg.ArchiveInterval, wcfg.ArchiveBatch = pc.archiveCfg.ArchiveInterval, pc.archiveCfg.ArchiveBatch
	}
	w := worker.New(store, accounts, wc, limiter, policy, prod, wcfg)
	srv := worker.NewServer(b.opt, w, worker.ServerConfig{Concurrency: pc.concurrency, ShutdownTimeout: 10 * time.Second, RescueInterval: pc.rescue})
	require.NoError(t, srv.Start(t.Context()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		require.NoError(t, srv.Stop(ctx))
	})
	return &proc{srv: srv, producer: prod, limiter: limiter, client: client.Client, accounts: accounts}
}

// openIDs returns n distinct valid openids.
func openIDs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("oW%026d", i)
	}
	return out
}

// fileCampaign stores a template campaign whose audience is openids (as an
// uploaded file would be).
func (b *bundle) fileCampaign(t *testing.T, kind campaigns.Kind, templateID string, openids []string, opts ...func(*campaigns.Campaign)) *campaigns.Campaign {
	t.Helper()
	c := &campaigns.Campaign{
		Name:     t.Name(),
		Account:  wechattest.AppIDDefault,
		Kind:     kind,
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceFile},
	}
	switch kind {
	case campaigns.KindTemplate:
		c.Template = &campaigns.TemplateSpec{TemplateID: templateID, Data: map[string]string{"thing1": "您的订单已发货"}}
	case campaigns.KindCustom:
		c.Custom = &campaigns.CustomSpec{MsgType: wechat.MsgTypeText, Text: &wechat.Text{Content: "您好，订单已发货"}}
	}
	for _, o := range opts {
		o(c)
	}
	require.NoError(t, b.store.Create(t.Context(), c))
	const batch = 2000
	for i := 0; i < len(openids); i += batch {
		entries := make([]rdb.AudienceEntry, 0, batch)
		for _, o := range openids[i:min(i+batch, len(openids))] {
			entries = append(entries, rdb.AudienceEntry{OpenID: o})
		}
		_, _, err := b.rdb.AppendAudience(t.Context(), c.ID, entries, string(campaigns.StateDraft))
		require.NoError(t, err)
	}
	return c
}

// waitSettled polls the run until every recipient has an outcome.
func (b *bundle) waitSettled(t *testing.T, id string, run int, timeout time.Duration) rdb.RunRecord {
	t.Helper()
	var rec rdb.RunRecord
	require.Eventually(t, func() bool {
		var err error
		rec, err = b.rdb.GetRun(t.Context(), id, run)
		require.NoError(t, err)
		return rec.Size >= 0 && rec.Settled() >= rec.Size
	}, timeout, 50*time.Millisecond, "run %s/%d did not settle: %+v", id, run, &rec)
	return rec
}

// truth checks each recipient of the runs of c against the fake's record
// (internal/truth) and fails the test on any violation; killed names the
// processes killed during the test.
func (b *bundle) truth(t *testing.T, c *campaigns.Campaign, killed func(string) bool, runs ...int) truth.Report {
	t.Helper()
	var rs []truth.Run
	for _, run := range runs {
		r, err := truth.Load(t.Context(), b.store, c.ID, run)
		require.NoError(t, err)
		rs = append(rs, r)
	}
	opt := truth.Options{API: c.Kind.API(), AppID: wechattest.AppIDDefault, Killed: killed}
	if c.Kind == campaigns.KindTemplate {
		// Other campaigns of the test may send to the same users: keep
		// this one's calls, by their client_msg_id.
		ours := map[string]bool{}
		for _, r := range rs {
			for openid := range r.Outcomes {
				for _, run := range runs {
					ours[worker.ClientMsgID(c.ID, run, openid)] = true
				}
			}
		}
		opt.Keep = func(id string) bool { return ours[id] }
	}
	rep := truth.Check(b.fake, opt, rs...)
	t.Log(rep)
	truth.Require(t, rep)
	return rep
}

// outcomes reads every outcome of a run.
func (b *bundle) outcomes(t *testing.T, id string, run int) map[string]rdb.Outcome {
	t.Helper()
	out := map[string]rdb.Outcome{}
	require.NoError(t, b.rdb.ScanOutcomes(t.Context(), id, run, func(openid string, o rdb.Outcome) error {
		out[openid] = o
		return nil
	}))
	return out
}
