package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v3"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/media"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/monitoring"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/worker"
)

// Flags of the sending pipeline (worker, demo).
const (
	flagRate               = "rate"
	flagBurst              = "burst"
	flagConcurrency        = "concurrency"
	flagFetchers           = "fetchers"
	flagPriorityConc       = "priority-concurrency"
	flagChunkSize          = "chunk-size"
	flagWindow             = "window"
	flagFairHorizon        = "fair-horizon"
	flagBulkRateWait       = "bulk-rate-wait"
	flagMassPollAfter      = "mass-poll-after"
	flagMassPollInterval   = "mass-poll-interval"
	flagRunDeadline        = "run-deadline"
	flagQuotaProbeInterval = "quota-probe-interval"
	flagShutdownTimeout    = "shutdown-timeout"
	flagMetricsListen      = "metrics-listen"
	flagDedupeWindow       = "dedupe-window"
	flagStopGrace          = "stop-grace"
	flagRescueInterval     = "rescue-interval"
	flagReconcileInterval  = "reconcile-interval"
	flagStallTimeout       = "stall-timeout"
	flagBreakerThreshold   = "breaker-threshold"
	flagBreakerProbe       = "breaker-probe-interval"
	flagBreakerProbeMax    = "breaker-probe-max"
	flagMediaMargin        = "media-margin"
)

// procName names this process in the attempt records it writes: host and
// pid, so that an operator can tell which worker made a call.
func procName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "?"
	}
	return host + ":" + strconv.Itoa(os.Getpid())
}

func pipelineFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.FloatFlag{Name: flagRate, Value: 100, Usage: "the account's send rate per API in messages per second, shared by every worker (read the real one with quota/get rate_limit)", Sources: sources(flagRate)},
		&cli.IntFlag{Name: flagBurst, Value: 0, Usage: "how many sends above the rate one second may hold (0: a tenth of the rate, at least 1)", Sources: sources(flagBurst)},
		&cli.IntFlag{Name: flagConcurrency, Value: worker.ConcurrencyDefault, Usage: "bulk sends one worker process handles at once (at WeChat latency L, at most concurrency/L sends per second)", Sources: sources(flagConcurrency)},
		&cli.IntFlag{Name: flagFetchers, Value: 0, Usage: "asynq servers sharing --concurrency, each fetching tasks in its own loop (0: one per 25 of concurrency, at most 8)", Sources: sources(flagFetchers)},
		&cli.IntFlag{Name: flagPriorityConc, Value: 0, Usage: "transactional sends and launch/expand tasks handled at once, in slots of their own (0: a fifth of --concurrency, at least 4)", Sources: sources(flagPriorityConc)},
		&cli.IntFlag{Name: flagChunkSize, Value: producer.ChunkSizeDefault, Usage: "recipients per expand task", Sources: sources(flagChunkSize)},
		&cli.IntFlag{Name: flagWindow, Value: producer.WindowDefault, Usage: "most sends of one run queued and not yet settled, which bounds Redis memory per campaign", Sources: sources(flagWindow)},
		&cli.DurationFlag{Name: flagFairHorizon, Value: producer.HorizonDefault, Usage: "an (account, API) bucket has at most its rate times this of bulk sends queued and not settled, over all its campaigns, shared by their priorities (at least 10)", Sources: sources(flagFairHorizon)},
		&cli.DurationFlag{Name: flagMassPollAfter, Value: worker.MassPollAfterDefault, Usage: "how long after its submission a mass job whose MASSSENDJOBFINISH push has not come is asked about with mass/get", Sources: sources(flagMassPollAfter)},
		&cli.DurationFlag{Name: flagMassPollInterval, Value: worker.MassPollIntervalDefault, Usage: "how often mass/get is asked again while a mass job without a push is still sending", Sources: sources(flagMassPollInterval)},
		&cli.DurationFlag{Name: flagBulkRateWait, Value: worker.BulkRateWaitDefault, Usage: "longest a bulk send holds its slot waiting for its rate token before it goes back to the queue until the limiter expects one (transactional sends wait longer)", Sources: sources(flagBulkRateWait)},
		&cli.DurationFlag{Name: flagRunDeadline, Value: worker.RunDeadlineDefault, Usage: "how long after a run starts its sends may still be made; then the run stops, and the recipients not sent yet are skipped", Sources: sources(flagRunDeadline)},
		&cli.DurationFlag{Name: flagDedupeWindow, Value: campaigns.DedupeWindowDefault, Usage: "how long after a recipient's first attempt a template send is still deduplicated by WeChat's client_msg_id (WeChat: 10 minutes): a lost answer is resolved by sending again inside it, and is recorded unknown after it", Sources: sources(flagDedupeWindow)},
		&cli.DurationFlag{Name: flagStopGrace, Value: campaigns.StopGraceDefault, Usage: "how long a stopped run waits for the answers of calls in flight before their recipients are recorded unknown (a later answer still replaces unknown)", Sources: sources(flagStopGrace)},
		&cli.DurationFlag{Name: flagQuotaProbeInterval, Value: worker.QuotaProbeIntervalDefault, Usage: "how often an API paused by 45009 is probed with quota/get to resume early", Sources: sources(flagQuotaProbeInterval)},
		&cli.IntFlag{Name: flagBreakerThreshold, Value: worker.BreakerThresholdDefault, Usage: "outage-like failures in a row (HTTP 5xx, connection refused, dropped or timed out, errcode -1) one worker sees for an account before it opens the account's circuit breaker: its sends then wait, using no retries, until WeChat answers a probe", Sources: sources(flagBreakerThreshold)},
		&cli.DurationFlag{Name: flagBreakerProbe, Value: worker.BreakerProbeIntervalDefault, Usage: "how often one worker of the fleet probes WeChat (getcallbackip) for an account whose circuit breaker is open", Sources: sources(flagBreakerProbe)},
		&cli.DurationFlag{Name: flagBreakerProbeMax, Value: worker.BreakerProbeMaxDefault, Usage: "the longest interval between probes of an open circuit breaker: each failed probe doubles the interval up to it", Sources: sources(flagBreakerProbeMax)},
		&cli.DurationFlag{Name: flagReconcileInterval, Value: worker.ReconcileIntervalDefault, Usage: "how often the reconciler (one worker of the fleet, by a lease in Redis) looks at every live run: one without progress for --" + flagStallTimeout + " gets its lost tasks queued again, one whose recipients all have outcomes is finished", Sources: sources(flagReconcileInterval)},
		&cli.DurationFlag{Name: flagStallTimeout, Value: worker.StallTimeoutDefault, Usage: "how long a live run may go without a recipient getting an outcome before the reconciler queues its lost tasks again (at least 1s)", Sources: sources(flagStallTimeout)},
		&cli.DurationFlag{Name: flagRescueInterval, Value: worker.RescueIntervalDefault, Usage: "how often a worker looks for sends whose worker died (their asynq lease expired, 30 s after the death) to queue them again at once, rather than a minute later when asynq's recoverer would; negative: never", Sources: sources(flagRescueInterval)},
		&cli.DurationFlag{Name: flagMediaMargin, Value: media.MarginDefault, Usage: "how long before WeChat drops a temporary media file (3 days after its upload) wxmass uploads it again rather than send its media_id", Sources: sources(flagMediaMargin)},
		&cli.DurationFlag{Name: flagShutdownTimeout, Value: worker.ShutdownTimeoutDefault, Usage: "how long a worker waits for sends in flight when stopping", Sources: sources(flagShutdownTimeout)},
	}, archiveFlags()...)
}

// runtime is everything a sending process builds once.
type runtime struct {
	redis    redis.UniversalClient
	rdb      *rdb.RDB
	asynqOpt asynq.RedisConnOpt
	client   *producer.Client
	wechat   *wechat.Client
	limiter  *ratelimit.Limiter
	policy   *retry.Policy
	store    *campaigns.Store
	accounts *account.Registry
	hub      *account.Hub
	producer *producer.Producer
	worker   *worker.Worker
	archive  *campaigns.Archive
	// media holds the files campaigns refer to; mediaCache their
	// media_ids per account.
	media      *media.Store
	mediaCache *media.Cache
	// registry holds the process's metrics (metrics records into it).
	registry *prometheus.Registry
	metrics  *monitoring.Metrics
}

// newRuntime wires the pipeline from the flags, for the accounts specs
// configure, calling WeChat through wc.
func (a *app) newRuntime(ctx context.Context, cmd *cli.Command, specs []account.Spec, wc *wechat.Client) (*runtime, error) {
	if d := cmd.Duration(flagReconcileInterval); d < 100*time.Millisecond {
		return nil, usagef("--%s: %s: want at least 100ms", flagReconcileInterval, d)
	}
	if d := cmd.Duration(flagStallTimeout); d < time.Second {
		return nil, usagef("--%s: %s: want at least 1s", flagStallTimeout, d)
	}
	policy, err := newRetryPolicy(cmd)
	if err != nil {
		return nil, err
	}
	archive, err := openArchive(cmd)
	if err != nil {
		return nil, err
	}
	rc, r, ropts, err := openRedis(ctx, cmd)
	if err != nil {
		return nil, err
	}
	rt := &runtime{redis: rc, rdb: r, wechat: wc, policy: policy, archive: archive, registry: prometheus.NewRegistry()}
	rt.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if rt.metrics, err = monitoring.NewMetrics(rt.registry); err != nil {
		rt.close()
		return nil, err
	}
	rt.asynqOpt = ropts.AsynqOpt()
	if rt.client, err = producer.NewClient(rc); err != nil {
		rt.close()
		return nil, err
	}
	hubCfg := a.hubConfig(cmd, wc, r)
	hubCfg.Metrics = rt.metrics
	if rt.hub, err = account.NewHub(hubCfg, specs); err != nil {
		rt.close()
		return nil, err
	}
	rt.accounts = rt.hub.Registry()
	rt.limiter, err = ratelimit.New(r, ratelimit.Config{DayEnd: policy.NextQuotaReset, Logger: a.log.Named("ratelimit")})
	if err != nil {
		rt.close()
		return nil, err
	}
	rt.store = campaigns.NewStore(r).WithLedger(campaigns.LedgerConfig{
		DedupeWindow: cmd.Duration(flagDedupeWindow),
		StopGrace:    cmd.Duration(flagStopGrace),
		Proc:         procName(),
	}).WithArchive(archive)
	rt.producer = producer.New(rt.client.Client, rt.store, rt.accounts, wc, producer.Config{
		ChunkSize: int(cmd.Int(flagChunkSize)),
		Window:    int(cmd.Int(flagWindow)),
		Rates:     rt.limiter,
		Horizon:   cmd.Duration(flagFairHorizon),
		Logger:    a.log.Named("producer"),
		Metrics:   rt.metrics,
	})
	rt.media = media.NewStore(r)
	rt.mediaCache = media.NewCache(rt.media, wc, media.CacheConfig{Margin: cmd.Duration(flagMediaMargin), Logger: a.log})
	rt.worker = worker.New(rt.store, rt.accounts, wc, rt.limiter, policy, rt.producer, worker.Config{
		RunDeadline:          cmd.Duration(flagRunDeadline),
		BulkRateWait:         cmd.Duration(flagBulkRateWait),
		MassPollAfter:        cmd.Duration(flagMassPollAfter),
		MassPollInterval:     cmd.Duration(flagMassPollInterval),
		QuotaProbeInterval:   cmd.Duration(flagQuotaProbeInterval),
		ReconcileInterval:    cmd.Duration(flagReconcileInterval),
		StallTimeout:         cmd.Duration(flagStallTimeout),
		BreakerThreshold:     int(cmd.Int(flagBreakerThreshold)),
		BreakerProbeInterval: cmd.Duration(flagBreakerProbe),
		BreakerProbeMax:      cmd.Duration(flagBreakerProbeMax),
		ArchiveStore:         rt.store,
		ArchiveAfter:         cmd.Duration(flagArchiveAfter),
		ReceiptWindow:        cmd.Duration(flagReceiptWindow),
		Retention:            cmd.Duration(flagRetention),
		Logger:               a.log.Named("worker"),
		Metrics:              rt.metrics,
		Media:                rt.mediaCache,
	})
	return rt, nil
}

func (rt *runtime) close() {
	if rt.archive != nil {
		_ = rt.archive.Close()
	}
	if rt.limiter != nil {
		_ = rt.limiter.Close()
	}
	if rt.client != nil {
		_ = rt.client.Close()
	}
	if rt.redis != nil {
		_ = rt.redis.Close()
	}
	if rt.wechat != nil {
		rt.wechat.CloseIdleConnections()
	}
}

// accountRuntime builds the runtime of the accounts the flags configure
// (the accounts file, or --appid), with the WeChat client of the flags.
// rt.close releases everything.
func (a *app) accountRuntime(ctx context.Context, cmd *cli.Command) (*runtime, error) {
	specs, err := loadSpecs(cmd)
	if err != nil {
		return nil, err
	}
	wc, err := newWechatClient(cmd)
	if err != nil {
		return nil, err
	}
	rt, err := a.newRuntime(ctx, cmd, specs, wc)
	if err != nil {
		wc.CloseIdleConnections()
		return nil, err
	}
	return rt, nil
}

func (a *app) workerCommand() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "send: run the asynq worker that expands campaign runs and sends to each recipient",
		Flags: append(append(pipelineFlags(), accountsFlags()...), &cli.StringFlag{Name: flagMetricsListen,
			Usage: "address to serve this worker's Prometheus metrics (/metrics) and health checks (/healthz, /readyz) on, without auth: bind it to an internal address (empty: none)", Sources: sources(flagMetricsListen)}),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			rt, err := a.accountRuntime(ctx, cmd)
			if err != nil {
				return err
			}
			defer rt.close()
			stopWatch := a.watchAccounts(ctx, cmd, rt.hub)
			defer stopWatch()
			srv := worker.NewServer(rt.asynqOpt, rt.worker, serverConfig(cmd))
			if err := srv.Start(ctx); err != nil {
				return err
			}
			if addr := cmd.String(flagMetricsListen); addr != "" {
				stop, err := serveMetrics(addr, rt)
				if err != nil {
					_ = srv.Stop(ctx)
					return err
				}
				defer stop()
			}
			a.log.Info("worker started", zap.Strings("accounts", accountIDs(rt.accounts)), zap.Int("concurrency", cmd.Int(flagConcurrency)))
			<-ctx.Done()
			a.log.Info("worker stopping")
			sctx, cancel := context.WithTimeout(context.Background(), cmd.Duration(flagShutdownTimeout)+5*time.Second)
			defer cancel()
			if err := srv.Stop(sctx); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("stop worker: %w", err)
			}
			return nil
		},
	}
}

// serverConfig is the worker server's configuration from the flags.
func serverConfig(cmd *cli.Command) worker.ServerConfig {
	return worker.ServerConfig{
		Concurrency:         int(cmd.Int(flagConcurrency)),
		Fetchers:            int(cmd.Int(flagFetchers)),
		PriorityConcurrency: int(cmd.Int(flagPriorityConc)),
		ShutdownTimeout:     cmd.Duration(flagShutdownTimeout),
		RescueInterval:      cmd.Duration(flagRescueInterval),
	}
}

// accountIDs lists the IDs of the accounts in force, for logs.
func accountIDs(r *account.Registry) []string {
	var ids []string
	for _, a := range r.All() {
		ids = append(ids, a.ID)
	}
	return ids
}

// serveMetrics serves the runtime's metrics at addr/metrics, and health
// checks at /healthz (the process answers) and /readyz (and so does
// Redis), until stop.
func serveMetrics(addr string, rt *runtime) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, usagef("--%s: %w", flagMetricsListen, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(rt.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if err := rt.redis.Ping(ctx).Err(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"redis does not answer"}`))
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}, nil
}
