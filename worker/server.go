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

// ServerConfig configures the asynq server that runs a Worker.
type ServerConfig struct {
	// Concurrency is the number of tasks handled at once (ConcurrencyDefault).
	// With WeChat answering in latency L, one process sends at most
	// Concurrency/L per second.
	Concurrency int
	// ShutdownTimeout is how long a shutdown waits for tasks in flight
	// (ShutdownTimeoutDefault); it must exceed a send's timeout.
	ShutdownTimeout time.Duration
	// Queues are the queue weights; the default gives transactional sends
	// the most weight, then launch and expand tasks, then bulk sends.
	Queues map[string]int
	// DelayedTaskCheckInterval is how often throttled and paused tasks are
	// moved back to their queue (asynq's default of 5 s is too slow for
	// throttling).
	DelayedTaskCheckInterval time.Duration
	// PauseRecheck is Config.PauseRecheck, for the retry delay of paused
	// tasks.
	PauseRecheck time.Duration
}

// QueuesDefault are the default queue weights.
func QueuesDefault() map[string]int {
	return map[string]int{task.QueueTransactional: 6, task.QueueControl: 3, task.QueueBulk: 1}
}

// Server runs a Worker in an asynq server, plus the worker's own background
// loop. Start it once; Stop is idempotent and safe if never started.
type Server struct {
	srv    *asynq.Server
	w      *Worker
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// NewServer returns a server of w on the Redis of opt.
func NewServer(opt asynq.RedisConnOpt, w *Worker, cfg ServerConfig) *Server {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = ConcurrencyDefault
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = ShutdownTimeoutDefault
	}
	if cfg.Queues == nil {
		cfg.Queues = QueuesDefault()
	}
	if cfg.DelayedTaskCheckInterval <= 0 {
		cfg.DelayedTaskCheckInterval = 500 * time.Millisecond
	}
	if cfg.PauseRecheck <= 0 {
		cfg.PauseRecheck = w.cfg.PauseRecheck
	}
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   cfg.Queues,
		RetryDelayFunc:           RetryDelay(cfg.PauseRecheck),
		IsFailure:                IsFailure,
		ErrorHandler:             asynq.ErrorHandlerFunc(w.HandleError),
		ShutdownTimeout:          cfg.ShutdownTimeout,
		DelayedTaskCheckInterval: cfg.DelayedTaskCheckInterval,
		// An idle worker looks for new tasks this often (asynq's default,
		// 1 s, delays the start of every run by up to that).
		TaskCheckInterval: 200 * time.Millisecond,
		Logger:            w.log.Named("asynq").Sugar(),
		LogLevel:          asynq.WarnLevel,
		// Completed tasks are deleted at once: outcomes live in our own
		// keys, and the queue's memory stays bounded by the window.
	})
	return &Server{srv: srv, w: w}
}

// Start starts handling tasks and the worker's background loop.
func (s *Server) Start(ctx context.Context) error {
	if err := s.srv.Start(s.w.Mux()); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.done = make(chan error, 1)
	go func() { s.done <- s.w.Run(rctx) }()
	return nil
}

// Stop stops fetching tasks, waits up to ShutdownTimeout for those in
// flight, then stops the background loop.
func (s *Server) Stop(ctx context.Context) error {
	var err error
	s.once.Do(func() {
		if s.cancel == nil {
			return
		}
		s.srv.Shutdown()
		s.cancel()
		select {
		case err = <-s.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			s.w.log.Warn("worker loop", zap.Error(err))
		}
	})
	return err
}
