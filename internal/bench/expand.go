package bench

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/worker"
)

// runExpand measures the expansion of an n-recipient audience into send
// tasks (the audience is appended to the campaign's list directly, and no
// worker takes the sends), twice: with a window large enough never to hold
// expansion back, for its speed and the memory of n queued sends; then with
// the default window, for the memory a run's queue is bounded by.
func (e *runner) runExpand(ctx context.Context, n int) error {
	type row struct {
		name   string
		n      int
		window int
		res    Result
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
func (e *runner) expandOnce(ctx context.Context, n, window int) (Result, time.Duration, error) {
	if err := e.deleteQueues(ctx); err != nil {
		return Result{}, 0, err
	}
	fake, err := startFake(ctx, 0)
	if err != nil {
		return Result{}, 0, err
	}
	defer fake.stop()
	wc := e.wechatClient(fake.url)
	defer wc.CloseIdleConnections()
	prefix := e.casePrefix()
	defer func() {
		if err := DeleteKeys(context.WithoutCancel(ctx), e.mon, prefix+":*"); err != nil {
			e.log.Warn("clean up keys", zap.Error(err))
		}
	}()
	counter := &Counter{}
	// Nothing is sent in this case, so nothing settles: the bucket's
	// admission window (rate times Horizon, see producer's Fair sharing)
	// must not bind, only Window.
	p, err := e.newProc(ctx, prefix, wc, counter, producer.Config{Window: window, Horizon: 24 * time.Hour}, worker.ServerConfig{})
	if err != nil {
		return Result{}, 0, err
	}
	defer p.close(ctx)
	up := time.Now()
	c, err := createCampaign(ctx, p, n, false)
	if err != nil {
		return Result{}, 0, err
	}
	upload := time.Since(up)
	mon := rdb.New(e.mon, prefix)
	want := int64(min(n, window))

	s, err := Begin(ctx, e.mon, counter)
	if err != nil {
		return Result{}, 0, err
	}
	run, err := p.producer.Start(ctx, c.ID)
	if err != nil {
		return Result{}, 0, err
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
		return Result{}, 0, err
	}
	res, err := s.End(ctx)
	if err != nil {
		return Result{}, 0, err
	}
	queued, err := e.mon.LLen(ctx, pending).Result()
	if err != nil {
		return Result{}, 0, err
	}
	if queued != want {
		return Result{}, 0, fmt.Errorf("%d sends queued, want %d", queued, want)
	}
	return res, upload, nil
}
