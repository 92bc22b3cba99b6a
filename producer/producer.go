// Package producer turns a campaign run into tasks: one launch task, then
// expand tasks over fixed-size chunks of the audience, then one send task per
// recipient, each with a deterministic id so that running the producer again
// after a crash never queues a recipient twice.
//
// Expansion keeps at most Window sends of a run queued and not yet settled:
// an expand task that finds the window full comes back a moment later, so a
// ten-million-recipient campaign never holds ten million tasks in Redis.
// Sends are enqueued in parallel; recipients that already have an outcome
// (a resumed or re-expanded chunk) are skipped.
//
// # Fair sharing
//
// All bulk sends share one FIFO asynq queue, and a send waits for its
// (account, API) rate token only briefly (worker.Config.BulkRateWait)
// before it goes back to the queue. So that one bucket's backlog never
// stands in front of another's, expansion is the dispatcher: it admits a
// run's recipients into the queue only while the run's bucket has fewer
// than W sends admitted and not settled over all its live runs, W being
// the bucket's effective rate times Config.Horizon (about a second of
// sends, at least Config.AdmitMin). A registry in Redis lists each
// bucket's live runs (rdb.BucketRuns); the room left in W is shared among
// the runs that still have recipients to admit by their campaigns'
// priorities (admitShare), and an expand task admits its chunk a slice at
// a time, coming back after WindowRecheck for the rest. A new run,
// however large the runs before it, is admitted at its first pass after
// some room frees, and sits behind at most about a second of sends.
//
// Why not one asynq queue per bucket: asynq's Config.Queues is fixed when
// a server starts, so accounts added at run time would need a restart;
// its Dequeue makes one Redis round trip per empty queue it tries, which
// grows with the number of buckets on every poll; and a FIFO per bucket
// would still put a small campaign behind a large one of the same bucket.
// Admission keeps one queue, costs a few round trips per expansion pass
// (not per send), and buckets exist as campaigns use them.
//
// A Scheduler starts the runs of scheduled campaigns at their fire times,
// each fire exactly once across any number of serve processes.
package producer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/monitoring"
	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat"
)

// Defaults of Config.
const (
	ChunkSizeDefault       = 1000
	WindowDefault          = 20000
	EnqueueParallelDefault = 32
	SendMaxRetryDefault    = 12
	SendTimeoutDefault     = 30 * time.Second
	WindowRecheckDefault   = 250 * time.Millisecond
)

// Config configures a Producer. Zero values take the defaults.
type Config struct {
	// ChunkSize is the number of recipients per expand task.
	ChunkSize int
	// Window is the most sends of one run queued and not yet settled.
	Window int
	// EnqueueParallel is the number of concurrent enqueues per expand task.
	EnqueueParallel int
	// SendMaxRetry is asynq's retry budget of a send task; throttling and
	// pauses do not use it up.
	SendMaxRetry int
	// SendTimeout bounds one send task (rate wait, token, HTTP call, record).
	SendTimeout time.Duration
	// WindowRecheck is how soon an expand task that found the window full
	// tries again.
	WindowRecheck time.Duration
	// Horizon sizes a bucket's admission window: an (account, API) bucket
	// has at most its effective rate times Horizon (HorizonDefault) of
	// bulk sends admitted and not settled, over all its live runs, and
	// never fewer than AdmitMin (AdmitMinDefault). See the package doc.
	Horizon  time.Duration
	AdmitMin int
	// Rates reads a bucket's effective rate (after 45011 and outage
	// slowdowns), cached for about a second; nil means the account's
	// configured rate.
	Rates  RateStater
	Logger *zap.Logger
	// Metrics counts the runs the producer sees finish (a stopped run
	// settled, an empty audience); nil means none.
	Metrics *monitoring.Metrics
}

func (c *Config) withDefaults() {
	if c.ChunkSize <= 0 {
		c.ChunkSize = ChunkSizeDefault
	}
	if c.Window <= 0 {
		c.Window = WindowDefault
	}
	if c.Window < c.ChunkSize {
		c.Window = c.ChunkSize
	}
	if c.EnqueueParallel <= 0 {
		c.EnqueueParallel = EnqueueParallelDefault
	}
	if c.SendMaxRetry <= 0 {
		c.SendMaxRetry = SendMaxRetryDefault
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = SendTimeoutDefault
	}
	if c.WindowRecheck <= 0 {
		c.WindowRecheck = WindowRecheckDefault
	}
	if c.Horizon <= 0 {
		c.Horizon = HorizonDefault
	}
	if c.AdmitMin <= 0 {
		c.AdmitMin = AdmitMinDefault
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Producer starts runs and handles launch and expand tasks. It is safe for
// concurrent use.
type Producer struct {
	cfg      Config
	client   *asynq.Client
	store    *campaigns.Store
	accounts *account.Registry
	wechat   *wechat.Client
	rates    rates
}

// New returns a Producer that enqueues with client and keeps runs in store.
func New(client *asynq.Client, store *campaigns.Store, accounts *account.Registry, wc *wechat.Client, cfg Config) *Producer {
	cfg.withDefaults()
	return &Producer{cfg: cfg, client: client, store: store, accounts: accounts, wechat: wc}
}

// Config returns the producer's configuration with defaults applied.
func (p *Producer) Config() Config { return p.cfg }

// Start begins a new run of the campaign and queues its launch task. It
// returns the run number.
func (p *Producer) Start(ctx context.Context, id string) (int, error) {
	run, _, err := p.start(ctx, id, false)
	return run, err
}

// StartWarned is Start that also says what the operator should know before
// the run sends (MassWarnings), as the API's start answers it.
func (p *Producer) StartWarned(ctx context.Context, id string) (int, []string, error) {
	return p.start(ctx, id, true)
}

func (p *Producer) start(ctx context.Context, id string, warn bool) (int, []string, error) {
	c, err := p.store.Get(ctx, id)
	if err != nil {
		return 0, nil, err
	}
	acct, err := p.accounts.Get(c.Account)
	if err != nil {
		return 0, nil, fmt.Errorf("start campaign %s: %w", id, err)
	}
	if c.Kind == campaigns.KindMass && acct.Mass.Subscription() &&
		(c.Audience.Source == campaigns.SourceInline || c.Audience.Source == campaigns.SourceFile) {
		return 0, nil, fmt.Errorf("start campaign %s: %w", id, ErrMassListOnSubscription)
	}
	var warnings []string
	if warn {
		// Counted before the run accepts any batch of its own.
		if warnings, err = p.MassWarnings(ctx, c); err != nil {
			p.cfg.Logger.Warn("mass warnings", zap.String("campaign_id", id), zap.Error(err))
		}
	}
	run, err := p.store.StartRun(ctx, c)
	if err != nil {
		return 0, nil, err
	}
	if err := p.enqueueLaunch(ctx, id, run); err != nil {
		return 0, nil, p.abandon(ctx, c, run, "could not queue the launch", err)
	}
	p.cfg.Logger.Info("run started", zap.String("campaign_id", id), zap.Int("run", run))
	return run, warnings, nil
}

// abandon stops a run that could not be set going because of err (its
// recipients are skipped), and returns err.
func (p *Producer) abandon(ctx context.Context, c *campaigns.Campaign, run int, what string, err error) error {
	ctx = context.WithoutCancel(ctx)
	if _, serr := p.Stop(ctx, c, run, campaigns.StateFailed, what+": "+err.Error()); serr != nil {
		return errors.Join(err, serr)
	}
	return err
}

// Stop stops a live run of c bound for final (failed or cancelled) with
// reason, and queues the settling of its recipients (HandleSettle): those
// certainly never sent are skipped (or cancelled), those whose attempt may
// have reached WeChat unknown, and those with a call in flight get its
// answer. If the settle task cannot be queued, Stop settles what it can
// itself; the reconciler queues it later. It reports whether
// this call stopped the run (false: it had stopped or finished already).
func (p *Producer) Stop(ctx context.Context, c *campaigns.Campaign, run int, final campaigns.State, reason string) (bool, error) {
	stopped, err := p.store.Stop(ctx, c.ID, run, final, reason)
	if err != nil || !stopped {
		return stopped, err
	}
	return true, p.settleStopped(ctx, c, run, final, reason)
}

// Cancel cancels campaign id: a live run stops and settles (see Stop).
func (p *Producer) Cancel(ctx context.Context, id string) error {
	stopped, run, err := p.store.Cancel(ctx, id)
	if err != nil || !stopped {
		return err
	}
	c, err := p.store.Get(ctx, id)
	if err != nil {
		return err
	}
	return p.settleStopped(ctx, c, run, campaigns.StateCancelled, "cancelled by an operator")
}

// settleStopped queues the settle task of a run just stopped, or, if it
// cannot be queued, settles what it can itself (the reconciler queues it
// later).
func (p *Producer) settleStopped(ctx context.Context, c *campaigns.Campaign, run int, final campaigns.State, reason string) error {
	p.cfg.Logger.Info("run stopping", zap.String("campaign_id", c.ID), zap.Int("run", run), zap.String("state", string(final)), zap.String("reason", reason))
	err := p.EnqueueSettle(ctx, c.ID, run, 0)
	if err == nil {
		return nil
	}
	p.cfg.Logger.Warn("queue the settling of a stopped run: settling here", zap.String("campaign_id", c.ID), zap.Int("run", run), zap.Error(err))
	res, serr := p.store.SettleStopped(ctx, c, run)
	if serr != nil {
		return errors.Join(err, serr)
	}
	p.settled(ctx, c, run, res)
	return nil
}

// EnqueueSettle queues the settle task of a stopped run, to run after
// delay. A settle task of the run already queued is enough.
func (p *Producer) EnqueueSettle(ctx context.Context, id string, run int, delay time.Duration) error {
	_, err := p.requeueSettle(ctx, id, run, delay)
	return err
}

func (p *Producer) requeueSettle(ctx context.Context, id string, run int, delay time.Duration) (bool, error) {
	t := asynq.NewTask(task.TypeSettle, task.Encode(task.Run{Campaign: id, Run: run}))
	return p.enqueued(ctx, "settle", t, task.SettleID(id, run), asynq.Queue(task.QueueControl),
		asynq.MaxRetry(25), asynq.Timeout(10*time.Minute), asynq.ProcessIn(delay))
}

// enqueue queues t under its deterministic id; a task of that id already
// queued (or running) is enough, and no error.
func (p *Producer) enqueue(ctx context.Context, what string, t *asynq.Task, id string, opts ...asynq.Option) error {
	_, err := p.enqueued(ctx, what, t, id, opts...)
	return err
}

// enqueued is enqueue that also reports whether it queued t (false: a task
// of that id was there already).
func (p *Producer) enqueued(ctx context.Context, what string, t *asynq.Task, id string, opts ...asynq.Option) (bool, error) {
	_, err := p.client.EnqueueContext(ctx, t, append(opts, asynq.TaskID(id))...)
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("enqueue %s: %w", what, err)
	}
	return true, nil
}

// HandleSettle is the asynq handler of settle tasks: it gives the
// recipients of a stopped run their outcomes (campaigns.Store.SettleStopped)
// and comes back while calls of the run may still be answered.
func (p *Producer) HandleSettle(ctx context.Context, t *asynq.Task) error {
	ref, err := task.DecodeRun(t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	c, err := p.store.Get(ctx, ref.Campaign)
	if errors.Is(err, campaigns.ErrNotFound) {
		return fmt.Errorf("settle: %w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	res, err := p.store.SettleStopped(ctx, c, ref.Run)
	if errors.Is(err, campaigns.ErrRunNotFound) {
		return fmt.Errorf("settle: %w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	p.settled(ctx, c, ref.Run, res)
	if res.Pending > 0 {
		// Calls begun less than the grace ago may still be answered; after
		// it, their recipients are unknown.
		wait := time.Until(res.Oldest.Add(p.store.LedgerConfig().StopGrace)) + 50*time.Millisecond
		return &retry.Wait{After: max(wait, 50*time.Millisecond), Reason: fmt.Sprintf("%d calls of the stopped run may still be answered", res.Pending)}
	}
	return nil
}

// settled counts what a settle did, and reports a run it finished.
func (p *Producer) settled(ctx context.Context, c *campaigns.Campaign, run int, res campaigns.SettleResult) {
	if res.Finished != "" {
		p.finished(ctx, c, run, res.Finished)
	}
}

// finished logs and counts a run that finished in state, and takes it out
// of its bucket's registry. (A run the worker finishes with its last
// outcome is dropped from the registry by the bucket's next reader: an
// expansion pass or the reconciler.)
func (p *Producer) finished(ctx context.Context, c *campaigns.Campaign, run int, state string) {
	p.unregister(ctx, c, run)
	p.cfg.Metrics.RunFinished(c.Account, state)
	p.cfg.Logger.Info("run finished", zap.String("campaign_id", c.ID), zap.Int("run", run), zap.String("state", state))
}

func (p *Producer) enqueueLaunch(ctx context.Context, id string, run int) error {
	_, err := p.requeueLaunch(ctx, id, run)
	return err
}

func (p *Producer) requeueLaunch(ctx context.Context, id string, run int) (bool, error) {
	t := asynq.NewTask(task.TypeLaunch, task.Encode(task.Run{Campaign: id, Run: run}))
	return p.enqueued(ctx, "launch", t, task.LaunchID(id, run), asynq.Queue(task.QueueControl),
		asynq.MaxRetry(25), asynq.Timeout(30*time.Minute))
}

func (p *Producer) enqueueExpand(ctx context.Context, id string, run, chunk int) error {
	_, err := p.requeueExpand(ctx, id, run, chunk)
	return err
}

func (p *Producer) requeueExpand(ctx context.Context, id string, run, chunk int) (bool, error) {
	t := asynq.NewTask(task.TypeExpand, task.Encode(task.Expand{Run: task.Run{Campaign: id, Run: run}, Chunk: chunk}))
	return p.enqueued(ctx, "expand "+strconv.Itoa(chunk), t, task.ExpandID(id, run, chunk), asynq.Queue(task.QueueControl),
		asynq.MaxRetry(25), asynq.Timeout(5*time.Minute))
}

// SendTaskType returns the task type of a campaign kind's sends.
func SendTaskType(k campaigns.Kind) string {
	switch k {
	case campaigns.KindCustom:
		return task.TypeSendCustom
	case campaigns.KindSubscribe:
		return task.TypeSendSubscribe
	case campaigns.KindMass:
		return task.TypeSendMass
	default:
		return task.TypeSendTemplate
	}
}

// EnqueueSend queues the send task of one recipient on queue.
func (p *Producer) EnqueueSend(ctx context.Context, typ, queue, id string, run int, openid string) error {
	_, err := p.requeueSend(ctx, typ, queue, id, run, openid)
	return err
}

func (p *Producer) requeueSend(ctx context.Context, typ, queue, id string, run int, openid string) (bool, error) {
	t := asynq.NewTask(typ, task.EncodeSend(task.Send{Run: task.Run{Campaign: id, Run: run}, OpenID: openid}))
	return p.enqueued(ctx, "send", t, task.SendID(id, run, openid), asynq.Queue(queue),
		asynq.MaxRetry(p.cfg.SendMaxRetry), asynq.Timeout(p.cfg.SendTimeout))
}

// Rescue queues a replacement of the send task id, of type typ on queue,
// whose worker died while it was active (its lease expired): the
// replacement runs at once, where asynq's recoverer would move the task
// back only a minute after the death. The replacement finds the attempt
// its predecessor left open (see worker.HandleSend); when asynq brings the
// original back, it finds the recipient settled. A replacement already
// queued is enough.
func (p *Producer) Rescue(ctx context.Context, typ, queue, id string, payload []byte) error {
	return p.enqueue(ctx, "rescue", asynq.NewTask(typ, payload), task.RescueID(id), asynq.Queue(queue),
		asynq.MaxRetry(p.cfg.SendMaxRetry), asynq.Timeout(p.cfg.SendTimeout))
}

// HandleLaunch is the asynq handler of launch tasks: it fetches the run's
// audience when it comes from WeChat (all followers, a tag), records its
// size and queues the first expand task.
func (p *Producer) HandleLaunch(ctx context.Context, t *asynq.Task) error {
	ref, err := task.DecodeRun(t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	log := p.cfg.Logger.With(zap.String("campaign_id", ref.Campaign), zap.Int("run", ref.Run))
	run, err := p.store.Run(ctx, ref.Campaign, ref.Run)
	if errors.Is(err, campaigns.ErrRunNotFound) {
		return fmt.Errorf("launch: %w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	if !live(run.State) {
		return nil // stopped before its launch: it settles without one
	}
	if run.Size < 0 {
		c, err := p.store.Get(ctx, ref.Campaign)
		if err != nil {
			return err
		}
		if c.Kind == campaigns.KindMass {
			return p.launchMass(ctx, c, ref.Run)
		}
		n, err := p.fetchAudience(ctx, c, ref.Run)
		if err != nil {
			return err
		}
		fin, err := p.store.SetRunSize(ctx, c, ref.Run, n)
		if err != nil {
			return err
		}
		log.Info("audience fetched", zap.Int64("recipients", n))
		if fin != "" {
			p.finished(ctx, c, ref.Run, fin)
		}
		run.Size = n
	}
	if run.Size == 0 {
		return nil
	}
	return p.enqueueExpand(ctx, ref.Campaign, ref.Run, 0)
}

// live reports whether a run in state may still send.
func live(state string) bool {
	return state == string(campaigns.StateRunning) || state == string(campaigns.StatePaused)
}

// fetchAudience pages through the followers or tag members of the
// campaign's account into the run's own audience list. A crash part way
// starts the fetch over.
func (p *Producer) fetchAudience(ctx context.Context, c *campaigns.Campaign, run int) (int64, error) {
	acct, err := p.accounts.Get(c.Account)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	if err := p.store.ResetRunAudience(ctx, c.ID, run); err != nil {
		return 0, err
	}
	var fetch wechat.PageFunc
	switch c.Audience.Source {
	case campaigns.SourceFollowers:
		fetch = func(ctx context.Context, next string) (wechat.FollowerPage, error) {
			return p.wechat.Followers(ctx, acct.Tokens, next)
		}
	case campaigns.SourceTag:
		fetch = func(ctx context.Context, next string) (wechat.FollowerPage, error) {
			return p.wechat.TagMembers(ctx, acct.Tokens, c.Audience.TagID, next)
		}
	case campaigns.SourceWindow:
		return p.windowAudience(ctx, c, acct, run)
	default:
		return 0, fmt.Errorf("launch: audience source %q is not fetched: %w", c.Audience.Source, asynq.SkipRetry)
	}
	var n int64
	err = wechat.EachPage(ctx, fetch, func(openids []string) error {
		n += int64(len(openids))
		return p.store.AppendRunAudience(ctx, c.ID, run, openids)
	})
	if err != nil {
		return 0, fmt.Errorf("fetch audience: %w", err)
	}
	return n, nil
}

// windowAudience lists the users of the campaign's account inside their
// customer-service window with a message left into the run's own audience
// list. Windows closed for a day are dropped from Redis on the way.
func (p *Producer) windowAudience(ctx context.Context, c *campaigns.Campaign, acct *account.Account, run int) (int64, error) {
	now := time.Now()
	var n int64
	batch := make([]string, 0, 1000)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		n += int64(len(batch))
		err := p.store.AppendRunAudience(ctx, c.ID, run, batch)
		batch = batch[:0]
		return err
	}
	err := p.store.ScanCSWindows(ctx, acct.AppID, now.Add(-24*time.Hour), func(w campaigns.CSWindowState) error {
		if !w.Open(now) {
			return nil
		}
		batch = append(batch, w.OpenID)
		if len(batch) == cap(batch) {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return 0, fmt.Errorf("window audience: %w", err)
	}
	return n, nil
}

// HandleExpand is the asynq handler of expand tasks: it admits one chunk
// of the run's audience into the bulk queue as send tasks, a slice at a
// time as its bucket has room (see the package doc), coming back after
// WindowRecheck for the rest; when the chunk's end is admitted it queues
// the next chunk. A run that stopped is not expanded further: its settle
// task gives the recipients their outcomes.
//
// Crash safety: a slice is reserved (MarkExpanded to its end) before its
// sends are queued, so the window holds. A try that fails after that
// counts against the task's retries, and a retried task (asynq's retry
// count above zero, a worker's death included) first queues again the
// recipients of the chunk reserved so far that still have no outcome
// (their task ids are fixed: those still queued are not doubled), then
// resumes from run.Expanded. The next chunk's task is queued once this
// chunk's end is reserved, before that slice's sends, so a worker can
// expand it meanwhile; a retry that finds the chunk reserved queues it
// again (an id already queued is enough) unless the next chunk has begun.
func (p *Producer) HandleExpand(ctx context.Context, t *asynq.Task) error {
	e, err := task.DecodeExpand(t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	id, runNo := e.Campaign, e.Run.Run
	run, err := p.store.Run(ctx, id, runNo)
	if errors.Is(err, campaigns.ErrRunNotFound) {
		return fmt.Errorf("expand: %w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	start := int64(e.Chunk) * int64(p.cfg.ChunkSize)
	if !live(run.State) || run.Size <= 0 || start >= run.Size {
		if !live(run.State) {
			if c, err := p.store.Get(ctx, id); err == nil {
				p.unregister(ctx, c, runNo)
			}
		}
		return nil
	}
	end := min(start+int64(p.cfg.ChunkSize), run.Size)
	if run.State == string(campaigns.StatePaused) {
		return &retry.Wait{After: time.Second, Reason: "run paused"}
	}
	c, err := p.store.Get(ctx, id)
	if err != nil {
		return err
	}
	from := min(max(start, run.Expanded), end)
	if retried, _ := asynq.GetRetryCount(ctx); retried > 0 && from > start {
		if err := p.queueRange(ctx, c, runNo, run.Audience, start, from); err != nil {
			return err
		}
	}
	if from == end {
		if run.Expanded == end {
			return p.nextChunk(ctx, id, runNo, e.Chunk, end, run.Size)
		}
		return nil
	}
	n, err := p.admissible(ctx, c, runNo, run, end-from)
	if err != nil {
		return err
	}
	if n <= 0 {
		return &retry.Wait{After: p.cfg.WindowRecheck, Reason: "bucket window full"}
	}
	to := from + n
	if err := p.store.MarkExpanded(ctx, id, runNo, to); err != nil {
		return err
	}
	if to == end {
		if err := p.nextChunk(ctx, id, runNo, e.Chunk, end, run.Size); err != nil {
			return err
		}
	}
	if err := p.queueRange(ctx, c, runNo, run.Audience, from, to); err != nil {
		return err
	}
	if to < end {
		return &retry.Wait{After: p.cfg.WindowRecheck, Reason: "rest of the chunk waits for room in the bucket"}
	}
	return nil
}

// nextChunk queues the expand task of the chunk after chunk, whose end is
// end, if the run has one.
func (p *Producer) nextChunk(ctx context.Context, id string, run, chunk int, end, size int64) error {
	if end >= size {
		return nil
	}
	return p.enqueueExpand(ctx, id, run, chunk+1)
}

// queueRange queues the sends of the run's recipients [from, to) that have
// no outcome yet.
func (p *Producer) queueRange(ctx context.Context, c *campaigns.Campaign, run int, audience string, from, to int64) error {
	openids, err := p.store.AudienceRange(ctx, audience, from, to-1)
	if err != nil {
		return err
	}
	has, err := p.store.HasOutcomes(ctx, c.ID, run, openids)
	if err != nil {
		return err
	}
	todo := openids[:0:0]
	for i, o := range openids {
		if !has[i] {
			todo = append(todo, o)
		}
	}
	if todo, err = p.suppress(ctx, c, run, todo); err != nil {
		return err
	}
	return p.enqueueSends(ctx, c, run, todo)
}

// suppress gives the recipients on the account's suppression list their
// outcome (skipped, class suppressed) instead of a send task, and returns
// the others. The send path checks the list again before each call, for
// users suppressed after this.
func (p *Producer) suppress(ctx context.Context, c *campaigns.Campaign, run int, openids []string) ([]string, error) {
	if c.Kind == campaigns.KindMass || len(openids) == 0 {
		return openids, nil
	}
	acct, err := p.accounts.Get(c.Account)
	if err != nil {
		return nil, err
	}
	entries, on, err := p.store.Suppressions(ctx, acct.AppID, openids)
	if err != nil {
		return nil, err
	}
	blocking := c.Blocking()
	keep := openids[:0:0]
	var settles []campaigns.Settle
	for i, o := range openids {
		if !on[i] || !slices.Contains(blocking, entries[i].Reason) {
			keep = append(keep, o)
			continue
		}
		settles = append(settles, campaigns.Settle{OpenID: o, Mode: campaigns.RecordUnanswered,
			Outcome: campaigns.SuppressedOutcome(entries[i])})
	}
	if len(settles) == 0 {
		return keep, nil
	}
	rec, err := p.store.RecordAll(ctx, c, run, settles...)
	if err != nil {
		return nil, err
	}
	for range rec.New {
		p.cfg.Metrics.Protected(acct.ID, monitoring.ProtectSuppressed)
	}
	p.cfg.Metrics.Outcomes(acct.ID, string(c.Kind), campaigns.OutcomeSkipped, campaigns.ClassSuppressed, rec.New)
	if rec.Finished != "" {
		p.finished(ctx, c, run, rec.Finished)
	}
	return keep, nil
}

func (p *Producer) enqueueSends(ctx context.Context, c *campaigns.Campaign, run int, openids []string) error {
	typ := SendTaskType(c.Kind)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.cfg.EnqueueParallel)
	for _, o := range openids {
		g.Go(func() error { return p.EnqueueSend(gctx, typ, task.QueueBulk, c.ID, run, o) })
	}
	return g.Wait()
}

// SendTransactional sends one message to one user (an order notice, say):
// c must have an inline audience of exactly one openid. It is stored as a
// campaign of its own, so it has the same outcome record and report, and
// its send goes straight to the transactional queue, ahead of bulk
// campaigns, under the same account rate limit. It returns the run.
func (p *Producer) SendTransactional(ctx context.Context, c *campaigns.Campaign) (int, error) {
	if c.Audience.Source != campaigns.SourceInline || len(c.Audience.OpenIDs) != 1 {
		return 0, errors.New("producer: a transactional send has an inline audience of exactly one openid")
	}
	if _, err := p.accounts.Get(c.Account); err != nil {
		return 0, err
	}
	if err := p.store.Create(ctx, c); err != nil {
		return 0, err
	}
	run, err := p.store.StartRun(ctx, c)
	if err != nil {
		return 0, err
	}
	if err := p.store.MarkTransactional(ctx, c.ID, run); err != nil {
		return 0, err
	}
	if err := p.EnqueueSend(ctx, SendTaskType(c.Kind), task.QueueTransactional, c.ID, run, c.Audience.OpenIDs[0]); err != nil {
		return 0, p.abandon(ctx, c, run, "could not queue the send", err)
	}
	return run, nil
}
