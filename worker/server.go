package worker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/internal/task"
)

// Defaults of ServerConfig.
const (
	ConcurrencyDefault     = 100
	ShutdownTimeoutDefault = 30 * time.Second
)

// ServerConfig configures the asynq servers that run a Worker.
type ServerConfig struct {
	// Concurrency is the number of bulk sends handled at once
	// (ConcurrencyDefault). With WeChat answering in latency L, one process
	// sends at most Concurrency/L per second.
	Concurrency int
	// Fetchers is the number of asynq servers that share Concurrency for
	// the bulk queue (default: one per 25 of Concurrency, at most 8). Each
	// asynq server fetches its tasks one at a time, one Redis round trip
	// each, so a single one caps a process's send rate when WeChat answers
	// fast; several fetch in parallel.
	Fetchers int
	// PriorityConcurrency is the number of transactional sends, launch and
	// expand tasks handled at once (default: a fifth of Concurrency, at
	// least 4). They have their own slots, so a bulk campaign that fills
	// every one of Concurrency's never makes them wait.
	PriorityConcurrency int
	// ShutdownTimeout is how long a shutdown waits for tasks in flight
	// (ShutdownTimeoutDefault); it must exceed a send's timeout.
	ShutdownTimeout time.Duration
	// DelayedTaskCheckInterval is how often throttled and paused tasks are
	// moved back to their queue (asynq's default of 5 s is too slow for
	// throttling).
	DelayedTaskCheckInterval time.Duration
	// PauseRecheck is Config.PauseRecheck, for the retry delay of paused
	// tasks.
	PauseRecheck time.Duration
	// RescueInterval is how often the server looks for send tasks whose
	// worker died, to queue their replacements (RescueIntervalDefault;
	// negative: never, and a dead worker's sends wait for asynq's
	// recoverer, about a minute).
	RescueInterval time.Duration
}

// How often an idle asynq server looks for new tasks (asynq sleeps from
// half to one and a half times this when it finds none). asynq's default,
// 1 s, would delay the start of every run, and every transactional send,
// by up to that. The priority server looks more often: transactional sends
// and the launch and expand tasks that start a run should not wait.
const (
	bulkTaskCheck     = 200 * time.Millisecond
	priorityTaskCheck = 50 * time.Millisecond
)

// priorityQueues are the queues of the priority server and their weights:
// transactional sends first, then launch and expand tasks.
func priorityQueues() map[string]int {
	return map[string]int{task.QueueTransactional: 2, task.QueueControl: 1}
}

// Server runs a Worker in asynq servers of its own, Fetchers of them for
// the bulk queue and one for the transactional and control queues, plus
// the worker's own background loop. Start it once; Stop is idempotent and
// safe if never started.
//
// Why not one server with weighted queues: asynq fetches tasks in one loop
// per server, one queue per script call, in weighted random order, so one
// server would try the (mostly empty) transactional and control queues
// before the bulk queue about 1.6 times per bulk send, and its single fetch
// loop would be the ceiling of the process's send rate (BENCHMARKS.md).
type Server struct {
	bulk     []*asynq.Server
	priority *asynq.Server
	w        *Worker
	rescue   *rescuer // nil: none
	cancel   context.CancelFunc
	done     chan error
	rescued  chan struct{}
	once     sync.Once
}

// NewServer returns a server of w on the Redis of opt.
func NewServer(opt asynq.RedisConnOpt, w *Worker, cfg ServerConfig) *Server {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = ConcurrencyDefault
	}
	if cfg.PriorityConcurrency <= 0 {
		cfg.PriorityConcurrency = max(4, cfg.Concurrency/5)
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = ShutdownTimeoutDefault
	}
	if cfg.DelayedTaskCheckInterval <= 0 {
		cfg.DelayedTaskCheckInterval = 500 * time.Millisecond
	}
	if cfg.PauseRecheck <= 0 {
		cfg.PauseRecheck = w.cfg.PauseRecheck
	}
	config := func(concurrency int, queues map[string]int, check time.Duration) asynq.Config {
		return asynq.Config{
			Concurrency:              concurrency,
			Queues:                   queues,
			RetryDelayFunc:           RetryDelay(cfg.PauseRecheck),
			IsFailure:                IsFailure,
			ErrorHandler:             asynq.ErrorHandlerFunc(w.HandleError),
			ShutdownTimeout:          cfg.ShutdownTimeout,
			DelayedTaskCheckInterval: cfg.DelayedTaskCheckInterval,
			TaskCheckInterval:        check,
			Logger:                   w.log.Named("asynq").Sugar(),
			LogLevel:                 asynq.WarnLevel,
			// Completed tasks are deleted at once: outcomes live in our
			// own keys, and the queue's memory stays bounded by the
			// window.
		}
	}
	if cfg.Fetchers <= 0 {
		cfg.Fetchers = min(8, (cfg.Concurrency+24)/25)
	}
	cfg.Fetchers = min(cfg.Fetchers, cfg.Concurrency)
	var bulk []*asynq.Server
	for i := range cfg.Fetchers {
		n := cfg.Concurrency / cfg.Fetchers
		if i < cfg.Concurrency%cfg.Fetchers {
			n++
		}
		bulk = append(bulk, asynq.NewServer(opt, config(n, map[string]int{task.QueueBulk: 1}, bulkTaskCheck)))
	}
	s := &Server{
		bulk:     bulk,
		priority: asynq.NewServer(opt, config(cfg.PriorityConcurrency, priorityQueues(), priorityTaskCheck)),
		w:        w,
	}
	if cfg.RescueInterval == 0 {
		cfg.RescueInterval = RescueIntervalDefault
	}
	if cfg.RescueInterval > 0 {
		s.rescue = &rescuer{ins: asynq.NewInspector(opt), w: w, every: cfg.RescueInterval,
			queues: []string{task.QueueBulk, task.QueueTransactional}}
	}
	return s
}

// Start starts handling tasks and the worker's background loop.
func (s *Server) Start(ctx context.Context) error {
	mux := s.w.Mux()
	if err := s.priority.Start(mux); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	for i, b := range s.bulk {
		if err := b.Start(mux); err != nil {
			for _, b := range s.bulk[:i] {
				b.Shutdown()
			}
			s.priority.Shutdown()
			return fmt.Errorf("start worker: %w", err)
		}
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.done = make(chan error, 1)
	go func() { s.done <- s.w.Run(rctx) }()
	s.rescued = make(chan struct{})
	go func() {
		defer close(s.rescued)
		if s.rescue != nil {
			s.rescue.run(rctx)
		}
	}()
	return nil
}

// Stop stops fetching tasks, waits up to ShutdownTimeout for those in
// flight, then stops the background loop.
func (s *Server) Stop(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		if s.rescue != nil {
			defer func() { _ = s.rescue.ins.Close() }()
		}
		if s.cancel == nil {
			return
		}
		var wg sync.WaitGroup
		for _, b := range s.bulk {
			wg.Go(b.Shutdown)
		}
		wg.Go(s.priority.Shutdown)
		wg.Wait()
		s.cancel()
		select {
		case err = <-s.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		select {
		case <-s.rescued:
		case <-ctx.Done():
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			s.w.log.Warn("worker loop", zap.Error(err))
		}
	})
	return err
}
