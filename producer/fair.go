package producer

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/ratelimit"
)

// Defaults of the fair-sharing fields of Config.
const (
	// HorizonDefault is Config.Horizon's default.
	HorizonDefault = time.Second
	// AdmitMinDefault is Config.AdmitMin's default.
	AdmitMinDefault = 10
	// rateCacheTTL is how long an expansion trusts a bucket's rate read
	// from Redis.
	rateCacheTTL = time.Second
)

// RateStater reads a rate bucket's shared state (ratelimit.Limiter does).
type RateStater interface {
	State(ctx context.Context, key string) (ratelimit.State, error)
}

// bucketRate is a bucket's effective rate as read at some time.
type bucketRate struct {
	rate float64
	at   time.Time
}

// rates caches the buckets' effective rates for rateCacheTTL, so that an
// expansion pass reads a bucket's state from Redis about once a second.
type rates struct {
	mu sync.Mutex
	m  map[string]bucketRate
}

// effectiveRate is the bucket's current rate after 45011 and outage
// slowdowns, as the shared limiter holds it, or the account's configured
// rate when the limiter has none (never used yet, or no RateStater).
func (p *Producer) effectiveRate(ctx context.Context, acct *account.Account, api string) float64 {
	key := acct.BucketKey(api)
	conf := acct.Limit(api).Rate
	if p.cfg.Rates == nil {
		return conf
	}
	now := time.Now()
	p.rates.mu.Lock()
	r, ok := p.rates.m[key]
	p.rates.mu.Unlock()
	if ok && now.Sub(r.at) < rateCacheTTL {
		return r.rate
	}
	rate := conf
	if st, err := p.cfg.Rates.State(ctx, key); err == nil && st.Limit.Rate > 0 {
		rate = st.Rate
		if st.Paused() {
			rate = 0
		}
	}
	p.rates.mu.Lock()
	if p.rates.m == nil {
		p.rates.m = make(map[string]bucketRate)
	}
	p.rates.m[key] = bucketRate{rate: rate, at: now}
	p.rates.mu.Unlock()
	return rate
}

// window is W of a bucket (or of a campaign with its own rate): the most
// sends it may have admitted and not settled, about Horizon's worth at
// rate, and never less than AdmitMin.
func (p *Producer) window(rate float64) int64 {
	w := int64(math.Ceil(rate * p.cfg.Horizon.Seconds()))
	return max(int64(p.cfg.AdmitMin), w)
}

// admitShare returns how many more recipients the run (id, run) may admit
// into the bulk queue now, given its bucket's window w and the bucket's
// live runs (self included). The room, w less what all runs have pending,
// is shared by weight among the runs that still have recipients to admit:
// a run may hold at most its weighted share of w pending. So a run started
// behind a large one gets its share as soon as the large one's sends free
// room, and a run that has admitted all its recipients leaves its share
// to the others.
func admitShare(w int64, runs []campaigns.BucketRun, id string, run int) int64 {
	var pending, weights, selfPending, selfWeight int64
	found := false
	for _, r := range runs {
		pending += r.Pending()
		self := r.ID == id && r.Run == run
		if self || (r.State == string(campaigns.StateRunning) && r.Expanded < r.Size) {
			weights += int64(max(1, r.Weight))
		}
		if self {
			found = true
			selfPending, selfWeight = r.Pending(), int64(max(1, r.Weight))
		}
	}
	room := w - pending
	if !found || room <= 0 {
		return 0
	}
	// Rounded up: a run's share is never zero, and the overshoot is less
	// than one send per run.
	share := (w*selfWeight+weights-1)/weights - selfPending
	return max(0, min(room, share))
}

// admissible returns how many recipients of the run may be admitted now
// (at most want), registering the run in its bucket if it is not yet.
func (p *Producer) admissible(ctx context.Context, c *campaigns.Campaign, runNo int, run campaigns.RunRecord, want int64) (int64, error) {
	acct, err := p.accounts.Get(c.Account)
	if err != nil {
		return 0, err
	}
	api := c.Kind.API()
	bucket := acct.BucketKey(api)
	runs, err := p.store.BucketRuns(ctx, bucket)
	if err != nil {
		return 0, err
	}
	if !hasRun(runs, c.ID, runNo) {
		if err := p.store.AddBucketRun(ctx, bucket, c.ID, runNo, c.Weight()); err != nil {
			return 0, err
		}
		runs = append(runs, campaigns.BucketRun{ID: c.ID, Run: runNo, Weight: c.Weight(), State: run.State,
			Size: run.Size, Expanded: run.Expanded, Settled: run.Settled()})
	}
	n := admitShare(p.window(p.effectiveRate(ctx, acct, api)), runs, c.ID, runNo)
	if c.Rate > 0 {
		// A campaign's own rate bounds its own window.
		n = min(n, p.window(c.Rate)-max(0, run.Expanded-run.Settled()))
	}
	// The run's Window stays an upper bound.
	n = min(n, int64(p.cfg.Window)-max(0, run.Expanded-run.Settled()), want)
	var pending int64
	for _, r := range runs {
		pending += r.Pending()
	}
	n = max(0, n)
	p.cfg.Metrics.Admitted(acct.ID, api, n, pending)
	return n, nil
}

func hasRun(runs []campaigns.BucketRun, id string, run int) bool {
	for _, r := range runs {
		if r.ID == id && r.Run == run {
			return true
		}
	}
	return false
}

// unregister takes a run that no longer sends out of its bucket's
// registry. A failure is only logged: the registry's readers drop runs
// that are not live.
func (p *Producer) unregister(ctx context.Context, c *campaigns.Campaign, run int) {
	acct, err := p.accounts.Get(c.Account)
	if err != nil {
		return
	}
	_ = p.store.RemoveBucketRun(ctx, acct.BucketKey(c.Kind.API()), c.ID, run)
}

// PruneBuckets reads the registry of every (account, API) bucket of the
// accounts known now, which drops the runs that finished or stopped
// without being taken out (their process crashed). The reconciler calls
// it; expansion passes do the same for their own bucket.
func (p *Producer) PruneBuckets(ctx context.Context) error {
	for _, a := range p.accounts.All() {
		for _, k := range []campaigns.Kind{campaigns.KindTemplate, campaigns.KindCustom, campaigns.KindSubscribe} {
			if _, err := p.store.BucketRuns(ctx, a.BucketKey(k.API())); err != nil {
				return err
			}
		}
	}
	return nil
}
