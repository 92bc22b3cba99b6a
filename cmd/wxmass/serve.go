package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v3"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/api/console"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/monitoring"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/worker"
)

// Flags of the HTTP API.
const (
	flagListen      = "listen"
	flagAPIKeysFile = "api-keys-file"
	flagMonWritable = "monitoring-writable"
	flagSessionTTL  = "session-ttl"
	envAPIKeys      = "WXMASS_API_KEYS"
)

func serveFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: flagListen, Value: ":8080", Usage: "address the HTTP API listens on", Sources: sources(flagListen)},
		&cli.BoolFlag{Name: flagMonWritable, Usage: "let /monitoring (asynqmon) delete, run and archive tasks; read-only by default", Sources: sources(flagMonWritable)},
		&cli.DurationFlag{Name: flagSessionTTL, Value: api.SessionTTLDefault, Usage: "how long a browser session (log in at /login) lasts, from 1m to 720h", Sources: sources(flagSessionTTL)},
		&cli.StringFlag{Name: flagAPIKeysFile, Usage: "file of API keys, one per line (a key, or sha256:<hex digest of a key>); each may follow a name and a space (alice KEY), which the audit trail shows; or set " + envAPIKeys + " to comma-separated keys in the same form", Sources: sources(flagAPIKeysFile)},
	}, httpFlags()...)
}

// loadAPIKeys reads the API keys from WXMASS_API_KEYS or --api-keys-file.
// Keys are secrets: never flags, never logged.
func loadAPIKeys(cmd *cli.Command) (*api.KeySet, error) {
	ks := &api.KeySet{}
	if env := os.Getenv(envAPIKeys); env != "" {
		for i, k := range strings.Split(env, ",") {
			if err := ks.ParseKey(k); err != nil {
				return nil, usagef("%s: key %d: %w", envAPIKeys, i+1, err)
			}
		}
	}
	if path := cmd.String(flagAPIKeysFile); path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usagef("--%s: %w", flagAPIKeysFile, err)
		}
		defer f.Close()
		if err := ks.ReadKeys(f); err != nil {
			return nil, usagef("--%s: %w", flagAPIKeysFile, err)
		}
	}
	if ks.Len() == 0 {
		return nil, usagef("no API key: set %s or --%s (every endpoint but /healthz and /readyz needs one)", envAPIKeys, flagAPIKeysFile)
	}
	return ks, nil
}

func (a *app) serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "run the HTTP API (campaigns, runs, transactional sends, health checks) and the campaign scheduler",
		Flags: slices.Concat(pipelineFlags(), accountsFlags(), serveFlags(), callbackFlags()),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			return a.runServe(ctx, cmd, false)
		},
	}
}

func (a *app) allCommand() *cli.Command {
	return &cli.Command{
		Name:  "all",
		Usage: "run serve and worker in one process (the single-machine default)",
		Flags: slices.Concat(pipelineFlags(), accountsFlags(), serveFlags(), callbackFlags()),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			return a.runServe(ctx, cmd, true)
		},
	}
}

// runServe runs the HTTP API, and the worker too when withWorker, until
// ctx ends; then it stops taking requests and tasks and waits for those in
// flight.
func (a *app) runServe(ctx context.Context, cmd *cli.Command, withWorker bool) error {
	keys, err := loadAPIKeys(cmd)
	if err != nil {
		return err
	}
	if ttl := cmd.Duration(flagSessionTTL); ttl < time.Minute || ttl > 720*time.Hour {
		return usagef("--%s: %s: want a duration from 1m to 720h", flagSessionTTL, ttl)
	}
	limits, err := apiLimits(cmd)
	if err != nil {
		return err
	}
	httpCfg, err := httpConfig(cmd, a.log.Named("http"))
	if err != nil {
		return err
	}
	rt, err := a.accountRuntime(ctx, cmd)
	if err != nil {
		return err
	}
	defer rt.close()
	ins := asynq.NewInspector(rt.asynqOpt)
	defer ins.Close()
	rt.registry.MustRegister(monitoring.NewQueueCollector(ins, task.QueueTransactional, task.QueueControl, task.QueueBulk),
		monitoring.NewStateCollector(rt.store.CountStates))
	mon, closeMon := monitoring.NewMonitor(rt.asynqOpt, cmd.Bool(flagMonWritable))
	defer func() { _ = closeMon() }()
	handler, err := api.New(api.Config{Store: rt.store, Producer: rt.producer, Keys: keys, Policy: rt.policy,
		Accounts: rt.accounts, WeChat: rt.wechat, Limiter: rt.limiter, Limits: limits, Breakers: rt.limiter.Breakers(),
		SessionTTL: cmd.Duration(flagSessionTTL),
		Media:      rt.media,
		MediaCache: rt.mediaCache,
		Metrics:    rt.metrics,
		Logger:     a.log.Named("api"),
		Mount: map[string]http.Handler{
			"GET /metrics":                  promhttp.HandlerFor(rt.registry, promhttp.HandlerOpts{}),
			monitoring.MonitorPath + "/":    mon,
			"GET " + monitoring.MonitorPath: http.RedirectHandler(monitoring.MonitorPath+"/", http.StatusMovedPermanently),
		},
	})
	if err != nil {
		return err
	}
	con, err := console.New(console.Config{API: handler, Store: rt.store, Accounts: rt.accounts,
		MonitorPath: monitoring.MonitorPath, Logger: a.log.Named("console")})
	if err != nil {
		return err
	}
	handler.MountPages(console.Prefix, con)
	handler.MountPages("GET /console", http.RedirectHandler(console.Prefix, http.StatusMovedPermanently))
	cb, err := a.newCallbackRouter(cmd.String(flagCallbackPath), rt.hub, rt.rdb, rt.metrics)
	if err != nil {
		return err
	}
	// After the callback router, which follows the accounts' reloads.
	stopWatch := a.watchAccounts(ctx, cmd, rt.hub)
	defer stopWatch()
	// WeChat signs its pushes; it has no API key.
	root := http.NewServeMux()
	root.Handle(cb.base, cb)
	root.Handle(cb.base+"/", cb)
	root.Handle("/", handler)
	hs, err := listenHTTP(httpCfg, root)
	if err != nil {
		return err
	}
	var srv *worker.Server
	if withWorker {
		srv = worker.NewServer(rt.asynqOpt, rt.worker, serverConfig(cmd))
		if err := srv.Start(ctx); err != nil {
			_ = hs.Shutdown(ctx)
			return err
		}
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve() }()
	a.log.Info("api listening", zap.String("addr", hs.Addr().String()), zap.Bool("tls", hs.TLS()), zap.Bool("worker", withWorker))

	// The scheduler fires campaign schedules; every serve process runs one
	// and each fire is claimed by exactly one of them (producer.Scheduler).
	// It starts after the API and stops first.
	schedCtx, stopSched := context.WithCancel(ctx)
	defer stopSched()
	scheduled := make(chan error, 1)
	sched := producer.NewScheduler(rt.producer, producer.SchedulerConfig{Logger: a.log.Named("scheduler")})
	go func() { scheduled <- sched.Run(schedCtx) }()
	stopScheduler := func() error {
		stopSched()
		if err := <-scheduled; err != nil {
			return fmt.Errorf("stop scheduler: %w", err)
		}
		return nil
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		return errors.Join(fmt.Errorf("http: %w", err), stopScheduler())
	}
	a.log.Info("stopping")
	sctx, cancel := context.WithTimeout(context.Background(), cmd.Duration(flagShutdownTimeout)+5*time.Second)
	defer cancel()
	var errs []error
	if err := stopScheduler(); err != nil {
		errs = append(errs, err)
	}
	if err := hs.Shutdown(sctx); err != nil {
		errs = append(errs, fmt.Errorf("stop http: %w", err))
	}
	if srv != nil {
		if err := srv.Stop(sctx); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("stop worker: %w", err))
		}
	}
	return errors.Join(errs...)
}
