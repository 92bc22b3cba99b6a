package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	goruntime "runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/internal/task"
)

const (
	// queueBare is the queue of case a's own tasks.
	queueBare    = "wxmass_bench"
	taskTypeBare = "bench:template:send"
	templateURL  = "https://example.com/orders?from=wxmass&campaign=bench"
	caseTimeout  = 10 * time.Minute
)

// queues are the asynq queues the bench uses and deletes.
var queues = []string{queueBare, task.QueueBulk, task.QueueControl, task.QueueTransactional}

// runner is what every case of one Run shares.
type runner struct {
	log      *zap.Logger
	out      io.Writer
	redisOpt *redis.Options
	asynqOpt asynq.RedisClientOpt
	mon      *redis.Client // not counted: INFO, progress polling, clean-up
	prefix   string
	n        int
	conc     int
	rate     float64
	seq      int
	peak     int // the most template sends the fake answered in one second, in the last case
	// appIDs are the accounts of the processes newProc builds (nil:
	// wechattest.AppIDDefault alone).
	appIDs []string
}

// Run measures wxmass end to end against bare asynq (case a) and a plain
// goroutine pool (case b), all sending to an in-process fake WeChat at each
// of cfg.Latencies, and the expansion of an audience into send tasks; it
// writes one table per kind of case to out. Everything runs in this
// process, on the Redis of cfg.RedisURL, whose asynq queues it deletes
// (before, between cases and at the end) along with its own keys.
//
// It returns a *ConfigError for a Config it cannot use, and returns when
// every case has run, a case fails, or ctx ends. It does not modify cfg.
func Run(ctx context.Context, cfg Config, out io.Writer) error {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return err
	}
	ropt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return &ConfigError{Field: "RedisURL", Err: redactURLError(err, cfg.RedisURL)}
	}
	aopt, err := asynq.ParseRedisURI(cfg.RedisURL)
	if err != nil {
		return &ConfigError{Field: "RedisURL", Err: redactURLError(err, cfg.RedisURL)}
	}
	copt, ok := aopt.(asynq.RedisClientOpt)
	if !ok {
		return configErrorf("RedisURL", "the bench needs a single Redis server")
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	e := &runner{
		log: cfg.Logger, out: out, redisOpt: ropt, asynqOpt: copt,
		mon: redis.NewClient(ropt), prefix: cfg.Prefix + ":" + hex.EncodeToString(rnd[:]), n: cfg.Recipients, conc: cfg.Concurrency, rate: cfg.Rate,
	}
	defer e.mon.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = e.mon.Ping(pctx).Err()
	cancel()
	if err != nil {
		return fmt.Errorf("redis at %s does not answer: %w", redactURL(cfg.RedisURL), err)
	}
	// The bench deletes the wxmass queues of its DB: never under a live
	// worker's feet.
	live, err := e.mon.ZCount(ctx, "asynq:servers", strconv.FormatInt(time.Now().Unix(), 10), "+inf").Result()
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if live > 0 {
		return configErrorf("RedisURL", "%d asynq servers are running on %s; the bench deletes the wxmass queues of its DB, "+
			"so give it a DB of its own", live, redactURL(cfg.RedisURL))
	}
	defer e.cleanUp()
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return &ConfigError{Field: "CPUProfile", Err: err}
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if err := e.deleteQueues(ctx); err != nil {
		return err
	}

	n, conc, rate := cfg.Recipients, cfg.Concurrency, cfg.Rate
	fmt.Fprintf(e.out, "wxmass bench: %d sends per case, %d rounds, concurrency %d, wxmass rate %.0f/s, Redis %s, %d CPUs, %s\n",
		n, cfg.Rounds, conc, rate, redactURL(cfg.RedisURL), goruntime.NumCPU(), goruntime.Version())
	fmt.Fprintln(e.out, "CPU/send is this process's CPU time (workers, producer, enqueuers and the in-process fake WeChat) per send;")
	fmt.Fprintln(e.out, "RTT/send counts the round trips of the Redis clients the bench built (asynq's included); Redis cmds/send")
	fmt.Fprintln(e.out, "counts every command the server ran (INFO commandstats, commands inside Lua scripts included).")
	fmt.Fprintln(e.out)

	tw := tabwriter.NewWriter(e.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	lats := cfg.Latencies
	if cfg.has(CaseAsynq) || cfg.has(CasePool) || cfg.has(CaseWxmass) {
		fmt.Fprintln(tw, "latency\tround\tcase\tsends\ttime\tsends/s\tpeak 1 s\tCPU/send\tRTT/send\tRedis cmds/send\tRedis CPU/send\tpeak Redis mem\t")
	} else {
		lats = nil
	}
	var ratios []string
	cases := []struct {
		key  Case
		name string
		run  func(context.Context, time.Duration) (Result, error)
	}{
		{CaseAsynq, "(a) bare asynq", e.runAsynq},
		{CasePool, "(b) goroutine pool", e.runPool},
		{CaseWxmass, "(c) wxmass", e.runWxmass},
	}
	for _, lat := range lats {
		var ca, rateA, rateC []float64
		bestPeakC := 0
		for round := 1; round <= cfg.Rounds; round++ {
			res := map[Case]Result{}
			for _, c := range cases {
				if !cfg.has(c.key) {
					continue
				}
				cctx, cancel := context.WithTimeout(ctx, caseTimeout)
				r, err := c.run(cctx, lat)
				cancel()
				if err != nil {
					_ = tw.Flush()
					return fmt.Errorf("bench %s at latency %s: %w", c.name, lat, err)
				}
				res[c.key] = r
				if c.key == CaseWxmass {
					bestPeakC = max(bestPeakC, e.peak)
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%.0f\t%d\t%s\t%.2f\t%.2f\t%s\t%s\t\n", lat, round, c.name, n, r.Elapsed.Round(time.Millisecond),
					float64(n)/r.Elapsed.Seconds(), e.peak, perSend(r.CPU, n), float64(r.RoundTrips)/float64(n), float64(r.Commands)/float64(n),
					perSend(r.RedisCPU, n), mib(r.PeakMemory))
			}
			if ra, rc := res[CaseAsynq], res[CaseWxmass]; ra.Elapsed > 0 && rc.Elapsed > 0 {
				ca = append(ca, ra.Elapsed.Seconds()/rc.Elapsed.Seconds())
				rateA = append(rateA, float64(n)/ra.Elapsed.Seconds())
				rateC = append(rateC, float64(n)/rc.Elapsed.Seconds())
			}
		}
		if len(ca) > 0 {
			line := fmt.Sprintf("latency %s: c/a = %.2f, the median of %s (wxmass %.0f sends/s, bare asynq %.0f sends/s: medians)", lat,
				median(ca), formatRatios(ca), median(rateC), median(rateA))
			if lat > 0 {
				want := min(float64(conc)/lat.Seconds(), rate)
				line += fmt.Sprintf("; expected min(concurrency/latency, rate) = %.0f/s: wxmass's median run averaged %.0f%% of it, %.0f%% in its best second",
					want, 100*median(rateC)/want, 100*float64(bestPeakC)/want)
			}
			ratios = append(ratios, line)
		}
	}
	_ = tw.Flush()
	if len(ratios) > 0 {
		fmt.Fprintln(e.out)
		for _, l := range ratios {
			fmt.Fprintln(e.out, l)
		}
	}
	if cfg.has(CaseFairness) {
		cctx, cancel := context.WithTimeout(ctx, caseTimeout)
		defer cancel()
		if err := e.runFairness(cctx); err != nil {
			return fmt.Errorf("bench fairness: %w", err)
		}
	}
	if cfg.has(CaseExpand) && cfg.Expand > 0 {
		cctx, cancel := context.WithTimeout(ctx, caseTimeout)
		defer cancel()
		if err := e.runExpand(cctx, cfg.Expand); err != nil {
			return fmt.Errorf("bench expand: %w", err)
		}
	}
	return nil
}

// median returns the median of xs (the mean of the middle two for an even
// count); xs is not modified.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func formatRatios(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, ", ")
}

func perSend(d time.Duration, n int) string {
	return (d / time.Duration(n)).Round(time.Microsecond).String()
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// redactURL drops the password from a URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// redactURLError replaces raw's password in err's message.
func redactURLError(err error, raw string) error {
	if u, perr := url.Parse(raw); perr == nil {
		if p, ok := u.User.Password(); ok && p != "" {
			return errors.New(strings.ReplaceAll(err.Error(), p, "xxxxx"))
		}
	}
	return err
}

// deleteQueues deletes the bench's asynq queues, key by key so that a
// queue of a million tasks never blocks the server.
func (e *runner) deleteQueues(ctx context.Context) error {
	for _, q := range queues {
		if err := DeleteKeys(ctx, e.mon, "asynq:{"+q+"}:*"); err != nil {
			return err
		}
		if err := e.mon.SRem(ctx, "asynq:queues", q).Err(); err != nil {
			return fmt.Errorf("delete queue %s: %w", q, err)
		}
	}
	return nil
}

func (e *runner) cleanUp() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := e.deleteQueues(ctx); err != nil {
		e.log.Warn("clean up queues", zap.Error(err))
	}
	if err := DeleteKeys(ctx, e.mon, e.prefix+":*"); err != nil {
		e.log.Warn("clean up keys", zap.Error(err))
	}
}

// casePrefix is a key prefix of its own for one case, so that no case sees
// another's token (each case has its own fake WeChat) or buckets.
func (e *runner) casePrefix() string {
	e.seq++
	return fmt.Sprintf("%s:%d", e.prefix, e.seq)
}
