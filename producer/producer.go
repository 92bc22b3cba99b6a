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
// A Scheduler starts the runs of scheduled campaigns at their fire times,
// each fire exactly once across any number of serve processes.
package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/monitoring"
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
	Logger        *zap.Logger
	// Metrics counts the outcomes the producer records itself (the
	// recipients of a cancelled or failed run); nil means none.
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
	rdb      *rdb.RDB
	accounts *account.Registry
	wechat   *wechat.Client
}

// New returns a Producer that enqueues with client.
func New(client *asynq.Client, store *campaigns.Store, r *rdb.RDB, accounts *account.Registry, wc *wechat.Client, cfg Config) *Producer {
	cfg.withDefaults()
	return &Producer{cfg: cfg, client: client, store: store, rdb: r, accounts: accounts, wechat: wc}
}

// Config returns the producer's configuration with defaults applied.
func (p *Producer) Config() Config { return p.cfg }

// Start begins a new run of the campaign and queues its launch task. It
// returns the run number.
func (p *Producer) Start(ctx context.Context, id string) (int, error) {
	c, err := p.store.Get(ctx, id)
	if err != nil {
		return 0, err
	}
	if _, err := p.accounts.Get(c.Account); err != nil {
		return 0, fmt.Errorf("start campaign %s: %w", id, err)
	}
	run, err := p.store.StartRun(ctx, c)
	if err != nil {
		return 0, err
	}
	if err := p.enqueueLaunch(ctx, id, run); err != nil {
		if ferr := p.store.Fail(ctx, id, run, "could not queue the launch: "+err.Error()); ferr != nil {
			return 0, errors.Join(err, ferr)
		}
		return 0, err
	}
	p.cfg.Logger.Info("run started", zap.String("campaign_id", id), zap.Int("run", run))
	return run, nil
}

func (p *Producer) enqueueLaunch(ctx context.Context, id string, run int) error {
	t := asynq.NewTask(task.TypeLaunch, task.Encode(task.Run{Campaign: id, Run: run}))
	_, err := p.client.EnqueueContext(ctx, t, asynq.TaskID(task.LaunchID(id, run)), asynq.Queue(task.QueueControl),
		asynq.MaxRetry(25), asynq.Timeout(30*time.Minute))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue launch: %w", err)
	}
	return nil
}

func (p *Producer) enqueueExpand(ctx context.Context, id string, run, chunk int) error {
	t := asynq.NewTask(task.TypeExpand, task.Encode(task.Expand{Run: task.Run{Campaign: id, Run: run}, Chunk: chunk}))
	_, err := p.client.EnqueueContext(ctx, t, asynq.TaskID(task.ExpandID(id, run, chunk)), asynq.Queue(task.QueueControl),
		asynq.MaxRetry(25), asynq.Timeout(5*time.Minute))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue expand %d: %w", chunk, err)
	}
	return nil
}

// ExpandAgain queues the expansion of a running run again, from its first
// chunk: each chunk's recipients without an outcome are queued for sending
// under their usual task ids, so a recipient whose send task is still
// queued, retried or in flight is not queued twice, and one whose task was
// lost (see worker.Config.StallTimeout) gets a new one; chunks not yet
// expanded are expanded as usual, within the window. The first expand
// task's id carries attempt, so that the same attempt from several
// processes is queued once.
func (p *Producer) ExpandAgain(ctx context.Context, id string, run int, attempt int64) error {
	t := asynq.NewTask(task.TypeExpand, task.Encode(task.Expand{Run: task.Run{Campaign: id, Run: run}, Chunk: 0}))
	_, err := p.client.EnqueueContext(ctx, t, asynq.TaskID(task.ExpandAgainID(id, run, attempt)),
		asynq.Queue(task.QueueControl), asynq.MaxRetry(25), asynq.Timeout(5*time.Minute))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue expand again: %w", err)
	}
	return nil
}

// SendTaskType returns the task type of a campaign kind's sends.
func SendTaskType(k campaigns.Kind) string {
	switch k {
	case campaigns.KindCustom:
		return task.TypeSendCustom
	case campaigns.KindSubscribe:
		return task.TypeSendSubscribe
	default:
		return task.TypeSendTemplate
	}
}

// EnqueueSend queues the send task of one recipient on queue.
func (p *Producer) EnqueueSend(ctx context.Context, typ, queue, id string, run int, openid string) error {
	t := asynq.NewTask(typ, task.EncodeSend(task.Send{Run: task.Run{Campaign: id, Run: run}, OpenID: openid}))
	_, err := p.client.EnqueueContext(ctx, t, asynq.TaskID(task.SendID(id, run, openid)), asynq.Queue(queue),
		asynq.MaxRetry(p.cfg.SendMaxRetry), asynq.Timeout(p.cfg.SendTimeout))
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		return fmt.Errorf("enqueue send: %w", err)
	}
	return nil
}

// ThrottleError asks asynq to run the task again after RetryAfter without
// counting a failure (the window is full, the run is paused).
type ThrottleError struct {
	RetryAfter time.Duration
	Reason     string
}

func (e *ThrottleError) Error() string {
	return "throttled for " + e.RetryAfter.String() + ": " + e.Reason
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
	run, err := p.rdb.GetRun(ctx, ref.Campaign, ref.Run)
	if errors.Is(err, rdb.ErrRunNotFound) {
		return fmt.Errorf("launch: %w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	if run.Size < 0 {
		c, err := p.store.Get(ctx, ref.Campaign)
		if err != nil {
			return err
		}
		n, err := p.fetchAudience(ctx, c, ref.Run)
		if err != nil {
			return err
		}
		if err := p.rdb.SetRunSize(ctx, ref.Campaign, ref.Run, n, p.rdb.Keys().RunAudience(ref.Campaign, ref.Run), campaigns.DoneState(c)); err != nil {
			return err
		}
		log.Info("audience fetched", zap.Int64("recipients", n))
		run.Size = n
	}
	if run.Size == 0 {
		return nil
	}
	return p.enqueueExpand(ctx, ref.Campaign, ref.Run, 0)
}

// fetchAudience pages through the followers or tag members of the
// campaign's account into the run's own audience list. A crash part way
// starts the fetch over.
func (p *Producer) fetchAudience(ctx context.Context, c *campaigns.Campaign, run int) (int64, error) {
	acct, err := p.accounts.Get(c.Account)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	if err := p.rdb.ResetRunAudience(ctx, c.ID, run); err != nil {
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
	default:
		return 0, fmt.Errorf("launch: audience source %q is not fetched: %w", c.Audience.Source, asynq.SkipRetry)
	}
	var n int64
	err = wechat.EachPage(ctx, fetch, func(openids []string) error {
		n += int64(len(openids))
		return p.rdb.AppendRunAudience(ctx, c.ID, run, openids)
	})
	if err != nil {
		return 0, fmt.Errorf("fetch audience: %w", err)
	}
	return n, nil
}

// HandleExpand is the asynq handler of expand tasks: it turns one chunk of
// the run's audience into send tasks (or, for a cancelled or failed run,
// into final outcomes directly), then queues the next chunk.
func (p *Producer) HandleExpand(ctx context.Context, t *asynq.Task) error {
	e, err := task.DecodeExpand(t.Payload())
	if err != nil {
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	id, runNo := e.Campaign, e.Run.Run
	run, err := p.rdb.GetRun(ctx, id, runNo)
	if errors.Is(err, rdb.ErrRunNotFound) {
		return fmt.Errorf("expand: %w: %w", err, asynq.SkipRetry)
	}
	if err != nil {
		return err
	}
	start := int64(e.Chunk) * int64(p.cfg.ChunkSize)
	if run.Size <= 0 || start >= run.Size {
		return nil
	}
	end := min(start+int64(p.cfg.ChunkSize), run.Size)
	switch run.State {
	case string(campaigns.StatePaused):
		return &ThrottleError{RetryAfter: time.Second, Reason: "run paused"}
	case string(campaigns.StateRunning):
		if pending := run.Expanded - run.Settled(); run.Expanded < end && pending+(end-start) > int64(p.cfg.Window) {
			return &ThrottleError{RetryAfter: p.cfg.WindowRecheck, Reason: "send window full"}
		}
	}
	openids, err := p.rdb.AudienceRange(ctx, run.Audience, start, end-1)
	if err != nil {
		return err
	}
	has, err := p.rdb.HasOutcomes(ctx, id, runNo, openids)
	if err != nil {
		return err
	}
	todo := openids[:0:0]
	for i, o := range openids {
		if !has[i] {
			todo = append(todo, o)
		}
	}
	c, err := p.store.Get(ctx, id)
	if err != nil {
		return err
	}
	// Reserve this chunk in the window, then queue the next chunk before
	// this one's sends: a worker can expand it meanwhile, rather than find
	// the queues empty and wait for its next poll. The next chunk sees this
	// one as expanded, so the window holds. If this task fails from here on,
	// its retry skips the window check (the chunk is already reserved) and
	// queues only the recipients still without an outcome.
	if err := p.rdb.MarkExpanded(ctx, id, runNo, end); err != nil {
		return err
	}
	if end < run.Size {
		if err := p.enqueueExpand(ctx, id, runNo, e.Chunk+1); err != nil {
			return err
		}
	}
	switch run.State {
	case string(campaigns.StateCancelled), string(campaigns.StateFailed):
		return p.settleAll(ctx, c, runNo, run, todo)
	default:
		return p.enqueueSends(ctx, c, runNo, todo)
	}
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

// settleAll gives every recipient of a cancelled or failed run's chunk its
// final outcome without sending.
func (p *Producer) settleAll(ctx context.Context, c *campaigns.Campaign, run int, rec rdb.RunRecord, openids []string) error {
	o := rdb.Outcome{Status: rdb.OutcomeCancelled, Detail: "campaign cancelled"}
	if rec.State == string(campaigns.StateFailed) {
		o = rdb.Outcome{Status: rdb.OutcomeSkipped, Detail: "campaign stopped: " + rec.Reason}
	}
	const batch = 500
	for len(openids) > 0 {
		n := min(batch, len(openids))
		settles := make([]rdb.Settle, n)
		for i, oid := range openids[:n] {
			settles[i] = rdb.Settle{OpenID: oid, Outcome: o}
		}
		recorded, completed, err := p.rdb.RecordOutcomes(ctx, c.ID, run, campaigns.DoneState(c), settles...)
		if err != nil {
			return err
		}
		p.cfg.Metrics.Outcomes(c.Account, string(c.Kind), o.Status, o.Class, recorded)
		if completed {
			p.cfg.Metrics.RunCompleted(c.Account)
		}
		openids = openids[n:]
	}
	return nil
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
	if err := p.rdb.MarkExpanded(ctx, c.ID, run, 1); err != nil {
		return 0, err
	}
	if err := p.EnqueueSend(ctx, SendTaskType(c.Kind), task.QueueTransactional, c.ID, run, c.Audience.OpenIDs[0]); err != nil {
		if ferr := p.store.Fail(ctx, c.ID, run, "could not queue the send: "+err.Error()); ferr != nil {
			return 0, errors.Join(err, ferr)
		}
		return 0, err
	}
	return run, nil
}
