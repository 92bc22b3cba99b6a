package bench

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Counter is a go-redis hook that counts round trips: one per command, one
// per pipeline or transaction whatever its length. It is safe for
// concurrent use.
type Counter struct {
	n atomic.Int64
}

// Load returns the round trips counted so far.
func (c *Counter) Load() int64 { return c.n.Load() }

// DialHook implements redis.Hook.
func (c *Counter) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (c *Counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}

// ProcessPipelineHook implements redis.Hook.
func (c *Counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

// CountingConnOpt is an asynq.RedisConnOpt whose clients count their round
// trips in Counter, so that asynq's own Redis traffic (enqueue, dequeue,
// done, heartbeats) is measured like ours.
type CountingConnOpt struct {
	Opt     asynq.RedisClientOpt
	Counter *Counter
}

// MakeRedisClient implements asynq.RedisConnOpt.
func (o CountingConnOpt) MakeRedisClient() any {
	c := o.Opt.MakeRedisClient().(*redis.Client)
	c.AddHook(o.Counter)
	return c
}

// CPUTime returns the user plus system CPU time this process has used.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ServerInfo is what the bench reads from the Redis server's INFO.
type ServerInfo struct {
	UsedMemory int64         // used_memory, bytes
	Commands   int64         // calls of every command but INFO, over all clients (commands run by scripts included)
	CPU        time.Duration // used_cpu_user + used_cpu_sys of the server
}

// ReadInfo reads INFO memory, commandstats and cpu.
func ReadInfo(ctx context.Context, c *redis.Client) (ServerInfo, error) {
	s, err := c.Info(ctx, "memory", "commandstats", "cpu").Result()
	if err != nil {
		return ServerInfo{}, fmt.Errorf("redis info: %w", err)
	}
	return parseInfo(s), nil
}

func parseInfo(s string) ServerInfo {
	var info ServerInfo
	var cpu float64
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		switch {
		case k == "used_memory":
			info.UsedMemory, _ = strconv.ParseInt(v, 10, 64)
		case k == "used_cpu_user" || k == "used_cpu_sys":
			f, _ := strconv.ParseFloat(v, 64)
			cpu += f
		case strings.HasPrefix(k, "cmdstat_") && k != "cmdstat_info":
			for _, f := range strings.Split(v, ",") {
				if n, ok := strings.CutPrefix(f, "calls="); ok {
					calls, _ := strconv.ParseInt(n, 10, 64)
					info.Commands += calls
				}
			}
		}
	}
	info.CPU = time.Duration(cpu * float64(time.Second))
	return info
}

// Sampler samples the server's used_memory every Interval until stopped,
// keeping the peak.
type Sampler struct {
	c        *redis.Client
	interval time.Duration
	peak     atomic.Int64
	stop     chan struct{}
	wg       sync.WaitGroup
}

// StartSampler starts sampling with c every interval.
func StartSampler(c *redis.Client, interval time.Duration) *Sampler {
	s := &Sampler{c: c, interval: interval, stop: make(chan struct{})}
	s.wg.Add(1)
	go s.run()
	return s
}

func (s *Sampler) run() {
	defer s.wg.Done()
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.sample()
		select {
		case <-s.stop:
			s.sample()
			return
		case <-t.C:
		}
	}
}

func (s *Sampler) sample() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	str, err := s.c.Info(ctx, "memory").Result()
	if err != nil {
		return
	}
	m := parseInfo(str).UsedMemory
	for {
		p := s.peak.Load()
		if m <= p || s.peak.CompareAndSwap(p, m) {
			return
		}
	}
}

// Stop stops sampling and returns the peak used_memory seen, in bytes.
func (s *Sampler) Stop() int64 {
	close(s.stop)
	s.wg.Wait()
	return s.peak.Load()
}

// Sample is the measure of one bench case.
type Sample struct {
	Start      time.Time
	cpu        time.Duration
	roundTrips int64
	info       ServerInfo
	sampler    *Sampler
	counter    *Counter
	mon        *redis.Client
}

// Begin starts measuring: CPU, the round trips of counter, and the server's
// command count, CPU and memory read with mon.
func Begin(ctx context.Context, mon *redis.Client, counter *Counter) (*Sample, error) {
	info, err := ReadInfo(ctx, mon)
	if err != nil {
		return nil, err
	}
	return &Sample{
		Start: time.Now(), cpu: CPUTime(), roundTrips: counter.Load(), info: info,
		sampler: StartSampler(mon, 50*time.Millisecond), counter: counter, mon: mon,
	}, nil
}

// Result is a finished measure.
type Result struct {
	Elapsed    time.Duration
	CPU        time.Duration // this process
	RoundTrips int64         // of the counted clients
	Commands   int64         // run by the server, all clients
	RedisCPU   time.Duration
	PeakMemory int64 // peak used_memory minus the value at Begin, bytes
}

// End stops measuring.
func (s *Sample) End(ctx context.Context) (Result, error) {
	elapsed := time.Since(s.Start)
	cpu := CPUTime() - s.cpu
	rt := s.counter.Load() - s.roundTrips
	peak := s.sampler.Stop()
	info, err := ReadInfo(ctx, s.mon)
	if err != nil {
		return Result{}, err
	}
	return Result{
		Elapsed: elapsed, CPU: cpu, RoundTrips: rt,
		Commands: info.Commands - s.info.Commands, RedisCPU: info.CPU - s.info.CPU,
		PeakMemory: max(0, peak-s.info.UsedMemory),
	}, nil
}

// DeleteKeys deletes every key matching pattern with SCAN and UNLINK in
// batches, so that even a queue of a million tasks never blocks the server.
func DeleteKeys(ctx context.Context, c *redis.Client, pattern string) error {
	iter := c.Scan(ctx, 0, pattern, 2000).Iterator()
	batch := make([]string, 0, 2000)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := c.Unlink(ctx, batch...).Err()
		batch = batch[:0]
		return err
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == cap(batch) {
			if err := flush(); err != nil {
				return fmt.Errorf("delete %s: %w", pattern, err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("scan %s: %w", pattern, err)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("delete %s: %w", pattern, err)
	}
	return nil
}
