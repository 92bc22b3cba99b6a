package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	goruntime "runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v3"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/bench"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
	"github.com/wxmass/wxmass/worker"
)

const (
	flagBenchRecipients  = "bench-recipients"
	flagBenchConcurrency = "bench-concurrency"
	flagBenchRounds      = "bench-rounds"
	flagBenchLatency     = "bench-latency"
	flagBenchRate        = "bench-rate"
	flagBenchExpand      = "bench-expand"
	flagBenchOnly        = "bench-only"
	flagBenchCPUProfile  = "bench-cpuprofile"

	// benchRedisURLDefault is the bench's Redis when --redis-url is not
	// given: DB 9, whose asynq queues the bench deletes.
	benchRedisURLDefault = "redis://127.0.0.1:6379/9"
	benchPrefixDefault   = "wxmassbench"
	benchQueue           = "wxmass_bench"
	benchTaskType        = "bench:template:send"
	benchURL             = "https://example.com/orders?from=wxmass&campaign=bench"
	benchCaseTimeout     = 10 * time.Minute
)

// benchQueues are the asynq queues the bench uses and deletes.
var benchQueues = []string{benchQueue, task.QueueBulk, task.QueueControl, task.QueueTransactional}

func (a *app) benchCommand() *cli.Command {
	return &cli.Command{
		Name: "bench",
		Usage: "measure wxmass against bare asynq and a goroutine pool, all sending to an in-process fake WeChat, " +
			"and the expansion of a large audience into send tasks",
		Description: "Runs everything in this process on one Redis (--redis-url, DB 9 by default; the bench deletes " +
			"the asynq queues of that DB and its own keys). See BENCHMARKS.md.",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: flagBenchRecipients, Value: 20000, Usage: "sends per case and latency", Sources: sources(flagBenchRecipients)},
			&cli.IntFlag{Name: flagBenchConcurrency, Value: 100, Usage: "tasks (or goroutines) in flight in every case", Sources: sources(flagBenchConcurrency)},
			&cli.IntFlag{Name: flagBenchRounds, Value: 3, Usage: "rounds of cases a, b and c at each latency, run in turn; c/a is the median of the rounds' ratios", Sources: sources(flagBenchRounds)},
			&cli.StringFlag{Name: flagBenchLatency, Value: "0,100ms", Usage: "comma-separated answer latencies of the fake WeChat", Sources: sources(flagBenchLatency)},
			&cli.FloatFlag{Name: flagBenchRate, Value: 100000, Usage: "wxmass's rate limit in case (c), sends per second", Sources: sources(flagBenchRate)},
			&cli.IntFlag{Name: flagBenchExpand, Value: 1000000, Usage: "recipients of the expansion bench (0 skips it)", Sources: sources(flagBenchExpand)},
			&cli.StringFlag{Name: flagBenchOnly, Value: "a,b,c,expand", Usage: "comma-separated cases to run: a (bare asynq), b (goroutine pool), c (wxmass), expand", Sources: sources(flagBenchOnly)},
			&cli.StringFlag{Name: flagBenchCPUProfile, Usage: "write a CPU profile of the whole bench to this file (go tool pprof)", TakesFile: true, Sources: sources(flagBenchCPUProfile)},
		},
		Action: a.runBench,
	}
}

// benchEnv is what every case of one bench run shares.
type benchEnv struct {
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
}

func (a *app) runBench(ctx context.Context, cmd *cli.Command) error {
	n := int(cmd.Int(flagBenchRecipients))
	conc := int(cmd.Int(flagBenchConcurrency))
	rate := cmd.Float(flagBenchRate)
	expandN := int(cmd.Int(flagBenchExpand))
	rounds := int(cmd.Int(flagBenchRounds))
	switch {
	case rounds <= 0:
		return usagef("--%s must be positive", flagBenchRounds)
	case n <= 0:
		return usagef("--%s must be positive", flagBenchRecipients)
	case conc <= 0:
		return usagef("--%s must be positive", flagBenchConcurrency)
	case rate <= 0:
		return usagef("--%s must be positive", flagBenchRate)
	case expandN < 0:
		return usagef("--%s must not be negative", flagBenchExpand)
	}
	lats, err := parseLatencies(cmd.String(flagBenchLatency))
	if err != nil {
		return err
	}
	only, err := parseOnly(cmd.String(flagBenchOnly))
	if err != nil {
		return err
	}

	rawURL := benchRedisURLDefault
	if cmd.IsSet(flagRedisURL) {
		rawURL = cmd.String(flagRedisURL)
	}
	ropt, err := redis.ParseURL(rawURL)
	if err != nil {
		return usagef("--%s: %w", flagRedisURL, redactURLError(err, rawURL))
	}
	aopt, err := asynq.ParseRedisURI(rawURL)
	if err != nil {
		return usagef("--%s: %w", flagRedisURL, redactURLError(err, rawURL))
	}
	copt, ok := aopt.(asynq.RedisClientOpt)
	if !ok {
		return usagef("--%s: the bench needs a single Redis server", flagRedisURL)
	}
	base := benchPrefixDefault
	if cmd.IsSet(flagRedisPrefix) {
		base = cmd.String(flagRedisPrefix)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	e := &benchEnv{
		log: a.log.Named("bench"), out: cmd.Root().Writer, redisOpt: ropt, asynqOpt: copt,
		mon: redis.NewClient(ropt), prefix: base + ":" + hex.EncodeToString(rnd[:]), n: n, conc: conc, rate: rate,
	}
	defer e.mon.Close()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = e.mon.Ping(pctx).Err()
	cancel()
	if err != nil {
		return fmt.Errorf("redis at %s does not answer: %w", redactURL(rawURL), err)
	}
	// The bench deletes the wxmass queues of its DB: never under a live
	// worker's feet.
	live, err := e.mon.ZCount(ctx, "asynq:servers", strconv.FormatInt(time.Now().Unix(), 10), "+inf").Result()
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	if live > 0 {
		return usagef("--%s: %d asynq servers are running on %s; the bench deletes the wxmass queues of its DB, "+
			"so give it a DB of its own", flagRedisURL, live, redactURL(rawURL))
	}
	defer e.cleanUp()
	if path := cmd.String(flagBenchCPUProfile); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return usagef("--%s: %w", flagBenchCPUProfile, err)
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

	fmt.Fprintf(e.out, "wxmass bench: %d sends per case, %d rounds, concurrency %d, wxmass rate %.0f/s, Redis %s, %d CPUs, %s\n",
		n, rounds, conc, rate, redactURL(rawURL), goruntime.NumCPU(), goruntime.Version())
	fmt.Fprintln(e.out, "CPU/send is this process's CPU time (workers, producer, enqueuers and the in-process fake WeChat) per send;")
	fmt.Fprintln(e.out, "RTT/send counts the round trips of the Redis clients the bench built (asynq's included); Redis cmds/send")
	fmt.Fprintln(e.out, "counts every command the server ran (INFO commandstats, commands inside Lua scripts included).")
	fmt.Fprintln(e.out)

	tw := tabwriter.NewWriter(e.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	if only["a"] || only["b"] || only["c"] {
		fmt.Fprintln(tw, "latency\tround\tcase\tsends\ttime\tsends/s\tpeak 1 s\tCPU/send\tRTT/send\tRedis cmds/send\tRedis CPU/send\tpeak Redis mem\t")
	} else {
		lats = nil
	}
	var ratios []string
	cases := []struct {
		key, name string
		run       func(context.Context, time.Duration) (bench.Result, error)
	}{
		{"a", "(a) bare asynq", e.runAsynq},
		{"b", "(b) goroutine pool", e.runPool},
		{"c", "(c) wxmass", e.runWxmass},
	}
	for _, lat := range lats {
		var ca, rateA, rateC []float64
		bestPeakC := 0
		for round := 1; round <= rounds; round++ {
			res := map[string]bench.Result{}
			for _, c := range cases {
				if !only[c.key] {
					continue
				}
				cctx, cancel := context.WithTimeout(ctx, benchCaseTimeout)
				r, err := c.run(cctx, lat)
				cancel()
				if err != nil {
					_ = tw.Flush()
					return fmt.Errorf("bench %s at latency %s: %w", c.name, lat, err)
				}
				res[c.key] = r
				if c.key == "c" {
					bestPeakC = max(bestPeakC, e.peak)
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%.0f\t%d\t%s\t%.2f\t%.2f\t%s\t%s\t\n", lat, round, c.name, n, r.Elapsed.Round(time.Millisecond),
					float64(n)/r.Elapsed.Seconds(), e.peak, perSend(r.CPU, n), float64(r.RoundTrips)/float64(n), float64(r.Commands)/float64(n),
					perSend(r.RedisCPU, n), mib(r.PeakMemory))
			}
			if ra, rc := res["a"], res["c"]; ra.Elapsed > 0 && rc.Elapsed > 0 {
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
	if only["expand"] && expandN > 0 {
		cctx, cancel := context.WithTimeout(ctx, benchCaseTimeout)
		defer cancel()
		if err := e.runExpand(cctx, expandN); err != nil {
			return fmt.Errorf("bench expand: %w", err)
		}
	}
	return nil
}

func parseLatencies(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if f == "0" {
			out = append(out, 0)
			continue
		}
		d, err := time.ParseDuration(f)
		if err != nil || d < 0 {
			return nil, usagef("--%s: %q is not a duration such as 0 or 100ms", flagBenchLatency, f)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, usagef("--%s: no latency", flagBenchLatency)
	}
	return out, nil
}

func parseOnly(s string) (map[string]bool, error) {
	out := map[string]bool{}
	for _, f := range strings.Split(s, ",") {
		switch f = strings.TrimSpace(f); f {
		case "a", "b", "c", "expand":
			out[f] = true
		case "":
		default:
			return nil, usagef("--%s: %q is not a, b, c or expand", flagBenchOnly, f)
		}
	}
	if len(out) == 0 {
		return nil, usagef("--%s: no case", flagBenchOnly)
	}
	return out, nil
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

// deleteQueues deletes the bench's asynq queues, key by key so that a
// queue of a million tasks never blocks the server.
func (e *benchEnv) deleteQueues(ctx context.Context) error {
	for _, q := range benchQueues {
		if err := bench.DeleteKeys(ctx, e.mon, "asynq:{"+q+"}:*"); err != nil {
			return err
		}
		if err := e.mon.SRem(ctx, "asynq:queues", q).Err(); err != nil {
			return fmt.Errorf("delete queue %s: %w", q, err)
		}
	}
	return nil
}

func (e *benchEnv) cleanUp() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := e.deleteQueues(ctx); err != nil {
		e.log.Warn("clean up queues", zap.Error(err))
	}
	if err := bench.DeleteKeys(ctx, e.mon, e.prefix+":*"); err != nil {
		e.log.Warn("clean up keys", zap.Error(err))
	}
}

// casePrefix is a key prefix of its own for one case, so that no case sees
// another's token (each case has its own fake WeChat) or buckets.
func (e *benchEnv) casePrefix() string {
	e.seq++
	return fmt.Sprintf("%s:%d", e.prefix, e.seq)
}

// benchFake is an in-process fake WeChat on a loopback port.
type benchFake struct {
	srv  *wechattest.Server
	url  string
	stop func()
}

func startFake(ctx context.Context, lat time.Duration) (*benchFake, error) {
	cfg := wechattest.Config{}
	if lat > 0 {
		cfg.Faults = wechattest.Faults{Slow: 1, SlowDelay: lat}
	}
	srv, err := wechattest.New(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- srv.Run(fctx, ln) }()
	return &benchFake{srv: srv, url: "http://" + ln.Addr().String(), stop: func() { cancel(); <-done }}, nil
}

func (e *benchEnv) wechatClient(url string) *wechat.Client {
	return wechat.New(wechat.WithBaseURLs(url),
		wechat.WithHTTPClient(&http.Client{Transport: wechat.NewTransport(max(wechat.MaxConnsPerHostDefault, 2*e.conc))}),
		wechat.WithTimeout(wechat.TimeoutDefault))
}

// staticToken is a TokenSource with one token fetched up front: the bare
// cases have no shared token cache.
type staticToken string

func (t staticToken) Token(context.Context) (string, error)    { return string(t), nil }
func (t staticToken) Invalidate(context.Context, string) error { return nil }

func fetchToken(ctx context.Context, wc *wechat.Client) (staticToken, error) {
	tok, err := wc.StableToken(ctx, wechattest.AppIDDefault, secret.New(wechattest.SecretDefault), false)
	if err != nil {
		return "", err
	}
	return staticToken(tok.Token), nil
}

func benchOpenID(i int) string { return fmt.Sprintf("oWbench%021d", i) }
func benchName(i int) string   { return fmt.Sprintf("用户%d", i%100000) }

// benchMessage is the message every case sends to recipient i: what case
// (c)'s campaign renders.
func benchMessage(i int, clientMsgID string) *wechat.TemplateMessage {
	return &wechat.TemplateMessage{
		ToUser: benchOpenID(i), TemplateID: wechattest.TemplateIDDefault, URL: benchURL, ClientMsgID: clientMsgID,
		Data: map[string]wechat.TemplateValue{"thing1": {Value: benchName(i) + "，您的订单已发货"}},
	}
}

// runAsynq is case (a): the same template send in a minimal asynq handler,
// enqueued by 32 goroutines (as the producer does), on the same Redis with
// the same concurrency.
func (e *benchEnv) runAsynq(ctx context.Context, lat time.Duration) (bench.Result, error) {
	if err := e.deleteQueues(ctx); err != nil {
		return bench.Result{}, err
	}
	fake, err := startFake(ctx, lat)
	if err != nil {
		return bench.Result{}, err
	}
	defer fake.stop()
	defer func() { e.peak = fake.srv.Stats().APIs[wechat.APITemplateSend].Peak1s }()
	wc := e.wechatClient(fake.url)
	defer wc.CloseIdleConnections()
	tok, err := fetchToken(ctx, wc)
	if err != nil {
		return bench.Result{}, err
	}
	counter := &bench.Counter{}
	opt := bench.CountingConnOpt{Opt: e.asynqOpt, Counter: counter}
	var sent atomic.Int64
	finished := make(chan struct{})
	mux := asynq.NewServeMux()
	mux.HandleFunc(benchTaskType, func(ctx context.Context, t *asynq.Task) error {
		var i int
		if _, err := fmt.Sscan(string(t.Payload()), &i); err != nil {
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		if _, err := wc.SendTemplate(ctx, tok, benchMessage(i, fmt.Sprintf("bench-a-%d", i))); err != nil {
			return err
		}
		if sent.Add(1) == int64(e.n) {
			close(finished)
		}
		return nil
	})
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency: e.conc, Queues: map[string]int{benchQueue: 1},
		TaskCheckInterval: 200 * time.Millisecond, // as worker.NewServer
		Logger:            e.log.Named("asynq").Sugar(), LogLevel: asynq.WarnLevel,
	})
	if err := srv.Start(mux); err != nil {
		return bench.Result{}, err
	}
	defer srv.Shutdown()
	client := asynq.NewClient(opt)
	defer client.Close()

	s, err := bench.Begin(ctx, e.mon, counter)
	if err != nil {
		return bench.Result{}, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(producer.EnqueueParallelDefault)
	for i := range e.n {
		g.Go(func() error {
			t := asynq.NewTask(benchTaskType, fmt.Appendf(nil, "%d", i))
			_, err := client.EnqueueContext(gctx, t, asynq.TaskID(fmt.Sprintf("bench:%d", i)), asynq.Queue(benchQueue),
				asynq.MaxRetry(producer.SendMaxRetryDefault), asynq.Timeout(producer.SendTimeoutDefault))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return bench.Result{}, fmt.Errorf("enqueue: %w", err)
	}
	select {
	case <-finished:
	case <-ctx.Done():
		return bench.Result{}, fmt.Errorf("%d of %d sent: %w", sent.Load(), e.n, ctx.Err())
	}
	return s.End(ctx)
}

// runPool is case (b): concurrency goroutines posting the same requests.
func (e *benchEnv) runPool(ctx context.Context, lat time.Duration) (bench.Result, error) {
	fake, err := startFake(ctx, lat)
	if err != nil {
		return bench.Result{}, err
	}
	defer fake.stop()
	defer func() { e.peak = fake.srv.Stats().APIs[wechat.APITemplateSend].Peak1s }()
	wc := e.wechatClient(fake.url)
	defer wc.CloseIdleConnections()
	tok, err := fetchToken(ctx, wc)
	if err != nil {
		return bench.Result{}, err
	}
	s, err := bench.Begin(ctx, e.mon, &bench.Counter{})
	if err != nil {
		return bench.Result{}, err
	}
	var next atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	for range e.conc {
		g.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= e.n {
					return nil
				}
				if _, err := wc.SendTemplate(gctx, tok, benchMessage(i, fmt.Sprintf("bench-b-%d", i))); err != nil {
					return err
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return bench.Result{}, err
	}
	return s.End(ctx)
}

// benchProc is one wxmass worker process, wired as newRuntime does, with
// every Redis client (ours and asynq's) counting its round trips.
type benchProc struct {
	redis    *redis.Client
	rdb      *rdb.RDB
	client   *producer.Client
	tokens   *wechat.TokenCache
	limiter  *ratelimit.Limiter
	store    *campaigns.Store
	producer *producer.Producer
	srv      *worker.Server
	expander *asynq.Server
}

func (e *benchEnv) newProc(ctx context.Context, prefix string, wc *wechat.Client, counter *bench.Counter,
	pcfg producer.Config, scfg worker.ServerConfig) (*benchProc, error) {
	rc := redis.NewClient(e.redisOpt)
	rc.AddHook(counter)
	p := &benchProc{redis: rc, rdb: rdb.New(rc, prefix)}
	opt := bench.CountingConnOpt{Opt: e.asynqOpt, Counter: counter}
	var err error
	if p.client, err = producer.NewClient(rc); err != nil {
		p.close(ctx)
		return nil, err
	}
	p.tokens, err = wechat.NewTokenCache(p.rdb, wechat.TokenCacheConfig{
		AppID: wechattest.AppIDDefault,
		Fetch: func(ctx context.Context) (wechat.AccessToken, error) {
			return wc.StableToken(ctx, wechattest.AppIDDefault, secret.New(wechattest.SecretDefault), false)
		},
		Logger: e.log.Named("token"),
	})
	if err != nil {
		p.close(ctx)
		return nil, err
	}
	accounts, err := account.NewRegistry(&account.Account{
		AppID: wechattest.AppIDDefault, Tokens: p.tokens,
		Default: ratelimit.Limit{Rate: e.rate, Burst: max(1, int(e.rate/10))},
	})
	if err != nil {
		p.close(ctx)
		return nil, err
	}
	p.limiter, err = ratelimit.New(p.rdb, ratelimit.Config{Logger: e.log.Named("ratelimit")})
	if err != nil {
		p.close(ctx)
		return nil, err
	}
	policy, err := retry.New(retry.Config{QuotaLocation: shanghai()})
	if err != nil {
		p.close(ctx)
		return nil, err
	}
	p.store = campaigns.NewStore(p.rdb)
	pcfg.Logger = e.log.Named("producer")
	p.producer = producer.New(p.client.Client, p.store, p.rdb, accounts, wc, pcfg)
	w := worker.New(p.rdb, p.store, accounts, wc, p.limiter, policy, p.producer, worker.Config{Logger: e.log.Named("worker")})
	if scfg.Concurrency > 0 {
		p.srv = worker.NewServer(opt, w, scfg)
		if err := p.srv.Start(ctx); err != nil {
			p.close(ctx)
			return nil, err
		}
		return p, nil
	}
	// The expansion bench: only launch and expand tasks, with an idle poll
	// short enough not to be what is measured (worker.NewServer polls an
	// empty queue every 100 to 300 ms; see runExpand).
	p.expander = asynq.NewServer(opt, asynq.Config{
		Concurrency: 4, Queues: map[string]int{task.QueueControl: 1},
		TaskCheckInterval: 10 * time.Millisecond, DelayedTaskCheckInterval: 50 * time.Millisecond,
		RetryDelayFunc: worker.RetryDelay(time.Second), IsFailure: worker.IsFailure,
		Logger: e.log.Named("asynq").Sugar(), LogLevel: asynq.WarnLevel,
	})
	if err := p.expander.Start(w.Mux()); err != nil {
		p.close(ctx)
		return nil, err
	}
	return p, nil
}

func (p *benchProc) close(ctx context.Context) {
	if p.srv != nil {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 40*time.Second)
		_ = p.srv.Stop(sctx)
		cancel()
	}
	if p.expander != nil {
		p.expander.Shutdown()
	}
	if p.limiter != nil {
		_ = p.limiter.Close()
	}
	if p.client != nil {
		_ = p.client.Close()
	}
	_ = p.redis.Close()
}

// createCampaign stores a template campaign whose audience, n recipients
// with a name variable when withVars, is appended to its list directly.
func createCampaign(ctx context.Context, p *benchProc, n int, withVars bool) (*campaigns.Campaign, error) {
	c := &campaigns.Campaign{
		Name: "bench", Account: wechattest.AppIDDefault, Kind: campaigns.KindTemplate,
		Template: &campaigns.TemplateSpec{TemplateID: wechattest.TemplateIDDefault, URL: benchURL,
			Data: map[string]string{"thing1": "您的订单已发货"}},
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceFile},
	}
	if withVars {
		c.Template.Data["thing1"] = "{{.name}}，您的订单已发货"
		c.Audience.Variables = []string{"name"}
	}
	if err := p.store.Create(ctx, c); err != nil {
		return nil, err
	}
	const batch = 5000
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for from := 0; from < n; from += batch {
		g.Go(func() error {
			entries := make([]rdb.AudienceEntry, 0, batch)
			for i := from; i < min(from+batch, n); i++ {
				en := rdb.AudienceEntry{OpenID: benchOpenID(i)}
				if withVars {
					en.Vars = `{"name":"` + benchName(i) + `"}`
				}
				entries = append(entries, en)
			}
			_, _, err := p.rdb.AppendAudience(gctx, c.ID, entries, string(campaigns.StateDraft))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, fmt.Errorf("upload audience: %w", err)
	}
	return c, nil
}

// runWxmass is case (c): a template campaign from start to the last
// outcome: launch, expand, HandleSend under the shared rate limit with the
// shared token cache, render, record.
func (e *benchEnv) runWxmass(ctx context.Context, lat time.Duration) (bench.Result, error) {
	if err := e.deleteQueues(ctx); err != nil {
		return bench.Result{}, err
	}
	fake, err := startFake(ctx, lat)
	if err != nil {
		return bench.Result{}, err
	}
	defer fake.stop()
	defer func() { e.peak = fake.srv.Stats().APIs[wechat.APITemplateSend].Peak1s }()
	wc := e.wechatClient(fake.url)
	defer wc.CloseIdleConnections()
	prefix := e.casePrefix()
	counter := &bench.Counter{}
	p, err := e.newProc(ctx, prefix, wc, counter, producer.Config{}, worker.ServerConfig{Concurrency: e.conc})
	if err != nil {
		return bench.Result{}, err
	}
	defer p.close(ctx)
	c, err := createCampaign(ctx, p, e.n, true)
	if err != nil {
		return bench.Result{}, err
	}
	if _, err := p.tokens.Token(ctx); err != nil { // as case (a) holds its token before it starts
		return bench.Result{}, err
	}
	mon := rdb.New(e.mon, prefix)

	s, err := bench.Begin(ctx, e.mon, counter)
	if err != nil {
		return bench.Result{}, err
	}
	run, err := p.producer.Start(ctx, c.ID)
	if err != nil {
		return bench.Result{}, err
	}
	rec, err := waitRun(ctx, mon, c.ID, run, func(r rdb.RunRecord) bool { return r.Size >= 0 && r.Settled() >= r.Size })
	if err != nil {
		return bench.Result{}, err
	}
	res, err := s.End(ctx)
	if err != nil {
		return bench.Result{}, err
	}
	if rec.Counters[rdb.OutcomeSent] != int64(e.n) {
		return bench.Result{}, fmt.Errorf("%d of %d sent: %v", rec.Counters[rdb.OutcomeSent], e.n, rec.Counters)
	}
	return res, nil
}

// waitRun polls the run until done says so.
func waitRun(ctx context.Context, r *rdb.RDB, id string, run int, done func(rdb.RunRecord) bool) (rdb.RunRecord, error) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		rec, err := r.GetRun(ctx, id, run)
		if err != nil {
			return rec, err
		}
		if done(rec) {
			return rec, nil
		}
		select {
		case <-ctx.Done():
			return rec, fmt.Errorf("run at %d/%d expanded, %d settled: %w", rec.Expanded, rec.Size, rec.Settled(), ctx.Err())
		case <-t.C:
		}
	}
}

// runExpand measures the expansion of an n-recipient audience into send
// tasks (the audience is appended to the campaign's list directly, and no
// worker takes the sends), twice: with a window large enough never to hold
// expansion back, for its speed and the memory of n queued sends; then with
// the default window, for the memory a run's queue is bounded by.
func (e *benchEnv) runExpand(ctx context.Context, n int) error {
	type row struct {
		name   string
		n      int
		window int
		res    bench.Result
		upload time.Duration
	}
	rows := []row{
		{name: "expand, window >= audience", n: n, window: max(n, producer.WindowDefault)},
		{name: fmt.Sprintf("expand, window %d (fill)", producer.WindowDefault), n: n, window: producer.WindowDefault},
	}
	for i := range rows {
		r := &rows[i]
		res, upload, err := e.expandOnce(ctx, r.n, r.window)
		if err != nil {
			return err
		}
		r.res, r.upload = res, upload
	}
	fmt.Fprintln(e.out)
	tw := tabwriter.NewWriter(e.out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\tqueued\ttime\trecipients/s\tCPU/recipient\tRTT/recipient\tRedis cmds/recipient\tRedis CPU/recipient\tpeak queue mem\tper queued send\t")
	for _, r := range rows {
		q := min(r.n, r.window)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.0f\t%s\t%.2f\t%.2f\t%s\t%s\t%d B\t\n", r.name, q, r.res.Elapsed.Round(time.Millisecond),
			float64(q)/r.res.Elapsed.Seconds(), perSend(r.res.CPU, q), float64(r.res.RoundTrips)/float64(q), float64(r.res.Commands)/float64(q),
			perSend(r.res.RedisCPU, q), mib(r.res.PeakMemory), r.res.PeakMemory/int64(q))
	}
	_ = tw.Flush()
	fmt.Fprintf(e.out, "(audience of %d recipients uploaded with AppendAudience in %s before each run; its memory is not counted)\n",
		n, rows[0].upload.Round(time.Millisecond))
	return nil
}

// expandOnce creates a campaign of n recipients, starts it and waits until
// min(n, window) recipients are expanded into queued sends.
func (e *benchEnv) expandOnce(ctx context.Context, n, window int) (bench.Result, time.Duration, error) {
	if err := e.deleteQueues(ctx); err != nil {
		return bench.Result{}, 0, err
	}
	fake, err := startFake(ctx, 0)
	if err != nil {
		return bench.Result{}, 0, err
	}
	defer fake.stop()
	wc := e.wechatClient(fake.url)
	defer wc.CloseIdleConnections()
	prefix := e.casePrefix()
	defer func() {
		if err := bench.DeleteKeys(context.WithoutCancel(ctx), e.mon, prefix+":*"); err != nil {
			e.log.Warn("clean up keys", zap.Error(err))
		}
	}()
	counter := &bench.Counter{}
	p, err := e.newProc(ctx, prefix, wc, counter, producer.Config{Window: window}, worker.ServerConfig{})
	if err != nil {
		return bench.Result{}, 0, err
	}
	defer p.close(ctx)
	up := time.Now()
	c, err := createCampaign(ctx, p, n, false)
	if err != nil {
		return bench.Result{}, 0, err
	}
	upload := time.Since(up)
	mon := rdb.New(e.mon, prefix)
	want := int64(min(n, window))

	s, err := bench.Begin(ctx, e.mon, counter)
	if err != nil {
		return bench.Result{}, 0, err
	}
	run, err := p.producer.Start(ctx, c.ID)
	if err != nil {
		return bench.Result{}, 0, err
	}
	// A chunk is marked expanded before its sends are queued (the next
	// chunk is queued first), so the queue itself says when all are in.
	pending := "asynq:{" + task.QueueBulk + "}:pending"
	done := func(r rdb.RunRecord) bool {
		if r.Size <= 0 || r.Expanded < want {
			return false
		}
		n, err := e.mon.LLen(ctx, pending).Result()
		return err == nil && n >= want
	}
	if _, err := waitRun(ctx, mon, c.ID, run, done); err != nil {
		return bench.Result{}, 0, err
	}
	res, err := s.End(ctx)
	if err != nil {
		return bench.Result{}, 0, err
	}
	queued, err := e.mon.LLen(ctx, pending).Result()
	if err != nil {
		return bench.Result{}, 0, err
	}
	if queued != want {
		return bench.Result{}, 0, fmt.Errorf("%d sends queued, want %d", queued, want)
	}
	return res, upload, nil
}
