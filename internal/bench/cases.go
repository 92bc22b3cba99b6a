package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"golang.org/x/sync/errgroup"

	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
	"github.com/wxmass/wxmass/worker"
)

// fakeWeChat is an in-process fake WeChat on a loopback port.
type fakeWeChat struct {
	srv  *wechattest.Server
	url  string
	stop func()
}

func startFake(ctx context.Context, lat time.Duration) (*fakeWeChat, error) {
	cfg := wechattest.Config{}
	if lat > 0 {
		cfg.Faults = wechattest.Faults{Slow: 1, SlowDelay: lat}
	}
	return startFakeConfig(ctx, cfg)
}

func startFakeConfig(ctx context.Context, cfg wechattest.Config) (*fakeWeChat, error) {
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
	return &fakeWeChat{srv: srv, url: "http://" + ln.Addr().String(), stop: func() { cancel(); <-done }}, nil
}

func (e *runner) wechatClient(url string) *wechat.Client {
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

func openID(i int) string        { return fmt.Sprintf("oWbench%021d", i) }
func recipientName(i int) string { return fmt.Sprintf("用户%d", i%100000) }

// templateMessage is the message every case sends to recipient i: what case
// (c)'s campaign renders.
func templateMessage(i int, clientMsgID string) *wechat.TemplateMessage {
	return &wechat.TemplateMessage{
		ToUser: openID(i), TemplateID: wechattest.TemplateIDDefault, URL: templateURL, ClientMsgID: clientMsgID,
		Data: map[string]wechat.TemplateValue{"thing1": {Value: recipientName(i) + "，您的订单已发货"}},
	}
}

// runAsynq is case (a): the same template send in a minimal asynq handler,
// enqueued by 32 goroutines (as the producer does), on the same Redis with
// the same concurrency.
func (e *runner) runAsynq(ctx context.Context, lat time.Duration) (Result, error) {
	if err := e.deleteQueues(ctx); err != nil {
		return Result{}, err
	}
	fake, err := startFake(ctx, lat)
	if err != nil {
		return Result{}, err
	}
	defer fake.stop()
	defer func() { e.peak = fake.srv.Stats().APIs[wechat.APITemplateSend].Peak1s }()
	wc := e.wechatClient(fake.url)
	defer wc.CloseIdleConnections()
	tok, err := fetchToken(ctx, wc)
	if err != nil {
		return Result{}, err
	}
	counter := &Counter{}
	opt := CountingConnOpt{Opt: e.asynqOpt, Counter: counter}
	var sent atomic.Int64
	finished := make(chan struct{})
	mux := asynq.NewServeMux()
	mux.HandleFunc(taskTypeBare, func(ctx context.Context, t *asynq.Task) error {
		var i int
		if _, err := fmt.Sscan(string(t.Payload()), &i); err != nil {
			return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
		}
		if _, err := wc.SendTemplate(ctx, tok, templateMessage(i, fmt.Sprintf("bench-a-%d", i))); err != nil {
			return err
		}
		if sent.Add(1) == int64(e.n) {
			close(finished)
		}
		return nil
	})
	srv := asynq.NewServer(opt, asynq.Config{
		Concurrency: e.conc, Queues: map[string]int{queueBare: 1},
		TaskCheckInterval: 200 * time.Millisecond, // as worker.NewServer
		Logger:            e.log.Named("asynq").Sugar(), LogLevel: asynq.WarnLevel,
	})
	if err := srv.Start(mux); err != nil {
		return Result{}, err
	}
	defer srv.Shutdown()
	client := asynq.NewClient(opt)
	defer client.Close()

	s, err := Begin(ctx, e.mon, counter)
	if err != nil {
		return Result{}, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(producer.EnqueueParallelDefault)
	for i := range e.n {
		g.Go(func() error {
			t := asynq.NewTask(taskTypeBare, fmt.Appendf(nil, "%d", i))
			_, err := client.EnqueueContext(gctx, t, asynq.TaskID(fmt.Sprintf("bench:%d", i)), asynq.Queue(queueBare),
				asynq.MaxRetry(producer.SendMaxRetryDefault), asynq.Timeout(producer.SendTimeoutDefault))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return Result{}, fmt.Errorf("enqueue: %w", err)
	}
	select {
	case <-finished:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("%d of %d sent: %w", sent.Load(), e.n, ctx.Err())
	}
	return s.End(ctx)
}

// runPool is case (b): concurrency goroutines posting the same requests.
func (e *runner) runPool(ctx context.Context, lat time.Duration) (Result, error) {
	fake, err := startFake(ctx, lat)
	if err != nil {
		return Result{}, err
	}
	defer fake.stop()
	defer func() { e.peak = fake.srv.Stats().APIs[wechat.APITemplateSend].Peak1s }()
	wc := e.wechatClient(fake.url)
	defer wc.CloseIdleConnections()
	tok, err := fetchToken(ctx, wc)
	if err != nil {
		return Result{}, err
	}
	s, err := Begin(ctx, e.mon, &Counter{})
	if err != nil {
		return Result{}, err
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
				if _, err := wc.SendTemplate(gctx, tok, templateMessage(i, fmt.Sprintf("bench-b-%d", i))); err != nil {
					return err
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		return Result{}, err
	}
	return s.End(ctx)
}

// runWxmass is case (c): a template campaign from start to the last
// outcome: launch, expand, HandleSend under the shared rate limit with the
// shared token cache, render, record.
func (e *runner) runWxmass(ctx context.Context, lat time.Duration) (Result, error) {
	if err := e.deleteQueues(ctx); err != nil {
		return Result{}, err
	}
	fake, err := startFake(ctx, lat)
	if err != nil {
		return Result{}, err
	}
	defer fake.stop()
	defer func() { e.peak = fake.srv.Stats().APIs[wechat.APITemplateSend].Peak1s }()
	wc := e.wechatClient(fake.url)
	defer wc.CloseIdleConnections()
	prefix := e.casePrefix()
	counter := &Counter{}
	p, err := e.newProc(ctx, prefix, wc, counter, producer.Config{}, worker.ServerConfig{Concurrency: e.conc})
	if err != nil {
		return Result{}, err
	}
	defer p.close(ctx)
	c, err := createCampaign(ctx, p, e.n, true)
	if err != nil {
		return Result{}, err
	}
	if _, err := p.tokens.Token(ctx); err != nil { // as case (a) holds its token before it starts
		return Result{}, err
	}
	mon := rdb.New(e.mon, prefix)

	s, err := Begin(ctx, e.mon, counter)
	if err != nil {
		return Result{}, err
	}
	run, err := p.producer.Start(ctx, c.ID)
	if err != nil {
		return Result{}, err
	}
	rec, err := waitRun(ctx, mon, c.ID, run, func(r rdb.RunRecord) bool { return r.Size >= 0 && r.Settled() >= r.Size })
	if err != nil {
		return Result{}, err
	}
	res, err := s.End(ctx)
	if err != nil {
		return Result{}, err
	}
	if rec.Counters[rdb.OutcomeSent] != int64(e.n) {
		return Result{}, fmt.Errorf("%d of %d sent: %v", rec.Counters[rdb.OutcomeSent], e.n, rec.Counters)
	}
	return res, nil
}
