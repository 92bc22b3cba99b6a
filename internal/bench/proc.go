package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
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

// proc is one wxmass worker process, wired as cmd/wxmass's newRuntime
// does, with every Redis client (ours and asynq's) counting its round
// trips.
type proc struct {
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

func (e *runner) newProc(ctx context.Context, prefix string, wc *wechat.Client, counter *Counter,
	pcfg producer.Config, scfg worker.ServerConfig) (*proc, error) {
	rc := redis.NewClient(e.redisOpt)
	rc.AddHook(counter)
	p := &proc{redis: rc, rdb: rdb.New(rc, prefix)}
	opt := CountingConnOpt{Opt: e.asynqOpt, Counter: counter}
	var err error
	if p.client, err = producer.NewClient(rc); err != nil {
		p.close(ctx)
		return nil, err
	}
	appIDs := e.appIDs
	if len(appIDs) == 0 {
		appIDs = []string{wechattest.AppIDDefault}
	}
	var accts []*account.Account
	for _, appID := range appIDs {
		tokens, err := wechat.NewTokenCache(p.rdb, wechat.TokenCacheConfig{
			AppID: appID,
			Fetch: func(ctx context.Context) (wechat.AccessToken, error) {
				return wc.StableToken(ctx, appID, secret.New(wechattest.SecretDefault), false)
			},
			Logger: e.log.Named("token"),
		})
		if err != nil {
			p.close(ctx)
			return nil, err
		}
		if p.tokens == nil {
			p.tokens = tokens
		}
		accts = append(accts, &account.Account{AppID: appID, Tokens: tokens,
			Default: ratelimit.Limit{Rate: e.rate, Burst: max(1, int(e.rate/10))}})
	}
	accounts, err := account.NewRegistry(accts...)
	if err != nil {
		p.close(ctx)
		return nil, err
	}
	p.limiter, err = ratelimit.New(p.rdb, ratelimit.Config{Logger: e.log.Named("ratelimit")})
	if err != nil {
		p.close(ctx)
		return nil, err
	}
	policy, err := retry.New(retry.Config{}) // quota resets in Asia/Shanghai, as cmd/wxmass's default
	if err != nil {
		p.close(ctx)
		return nil, err
	}
	p.store = campaigns.NewStore(p.rdb)
	pcfg.Logger = e.log.Named("producer")
	pcfg.Rates = p.limiter // as cmd/wxmass wires it
	p.producer = producer.New(p.client.Client, p.store, accounts, wc, pcfg)
	w := worker.New(p.store, accounts, wc, p.limiter, policy, p.producer, worker.Config{Logger: e.log.Named("worker")})
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

func (p *proc) close(ctx context.Context) {
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
func createCampaign(ctx context.Context, p *proc, n int, withVars bool) (*campaigns.Campaign, error) {
	c := &campaigns.Campaign{
		Name: "bench", Account: wechattest.AppIDDefault, Kind: campaigns.KindTemplate,
		Template: &campaigns.TemplateSpec{TemplateID: wechattest.TemplateIDDefault, URL: templateURL,
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
				en := rdb.AudienceEntry{OpenID: openID(i)}
				if withVars {
					en.Vars = `{"name":"` + recipientName(i) + `"}`
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
