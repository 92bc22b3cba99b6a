package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/fairness"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
	"github.com/wxmass/wxmass/worker"
)

// The fairness case's figures: two accounts at fairRate per API, a big
// campaign of fairBig recipients sending alone for fairLead, then one of
// fairNext.
const (
	fairRate  = 300
	fairBig   = 6000
	fairNext  = 1500
	fairLead  = 3 * time.Second
	fairAppB  = "wx00000000000fake2"
	fairPrefA = "oFbig"
	fairPrefB = "oFnxt"
)

// runFairness runs the fairness case: for each of three pairs (a template
// campaign on account a, then one on account b; a template and a custom
// campaign of account a; two template campaigns of account a, one bucket),
// the big one starts, and the next one fairLead later; it prints the next
// one's time to its first send and both one's rates (and shares) while
// both sent, measured at the fake's record.
func (e *runner) runFairness(ctx context.Context) error {
	fmt.Fprintf(e.out, "\nfairness: two accounts at %d/s per API, concurrency %d; a campaign of %d alone for %s, then one of %d\n",
		fairRate, e.conc, fairBig, fairLead, fairNext)
	for _, sc := range []struct {
		name       string
		appID      string
		kind       campaigns.Kind
		sameBucket bool
	}{
		{"two accounts (template on a, then template on b)", fairAppB, campaigns.KindTemplate, false},
		{"one account, two APIs (template, then custom)", wechattest.AppIDDefault, campaigns.KindCustom, false},
		{"one bucket (template, then template)", wechattest.AppIDDefault, campaigns.KindTemplate, true},
	} {
		rep, err := e.fairPair(ctx, sc.appID, sc.kind, sc.sameBucket)
		if err != nil {
			return fmt.Errorf("%s: %w", sc.name, err)
		}
		big, next := rep.Groups[0], rep.Groups[1]
		fmt.Fprintf(e.out, "  %s: next's first send %s after its start; while both sent (%.0f s): big %.0f/s (%.0f%% of %s), next %.0f/s (%.0f%%)",
			sc.name, next.First.Round(time.Millisecond), rep.Seconds(), big.Rate, 100*big.OfRate, map[bool]string{true: "half the bucket", false: "its bucket"}[sc.sameBucket],
			next.Rate, 100*next.OfRate)
		if sc.sameBucket {
			fmt.Fprintf(e.out, "; shares of the bucket %.0f%% / %.0f%%", 100*big.Share, 100*next.Share)
		}
		fmt.Fprintln(e.out)
	}
	return nil
}

// fairPair runs one pair of the fairness case and measures it.
func (e *runner) fairPair(ctx context.Context, appID string, kind campaigns.Kind, sameBucket bool) (fairness.Report, error) {
	if err := e.deleteQueues(ctx); err != nil {
		return fairness.Report{}, err
	}
	fake, err := startFakeConfig(ctx, wechattest.Config{Accounts: []wechattest.Account{
		{AppID: wechattest.AppIDDefault, Secret: wechattest.SecretDefault}, {AppID: fairAppB, Secret: wechattest.SecretDefault}}})
	if err != nil {
		return fairness.Report{}, err
	}
	defer fake.stop()
	wc := e.wechatClient(fake.url)
	defer wc.CloseIdleConnections()
	r := *e
	r.rate, r.appIDs = fairRate, []string{wechattest.AppIDDefault, fairAppB}
	prefix := e.casePrefix()
	p, err := r.newProc(ctx, prefix, wc, &Counter{}, producer.Config{}, worker.ServerConfig{Concurrency: e.conc})
	if err != nil {
		return fairness.Report{}, err
	}
	defer p.close(ctx)
	big, err := createFairCampaign(ctx, p, wechattest.AppIDDefault, campaigns.KindTemplate, fairPrefA, fairBig)
	if err != nil {
		return fairness.Report{}, err
	}
	next, err := createFairCampaign(ctx, p, appID, kind, fairPrefB, fairNext)
	if err != nil {
		return fairness.Report{}, err
	}
	mon := rdb.New(e.mon, prefix)
	bigStart := time.Now()
	bigRun, err := p.producer.Start(ctx, big.ID)
	if err != nil {
		return fairness.Report{}, err
	}
	t := time.NewTimer(fairLead)
	select {
	case <-ctx.Done():
		t.Stop()
		return fairness.Report{}, ctx.Err()
	case <-t.C:
	}
	nextStart := time.Now()
	nextRun, err := p.producer.Start(ctx, next.ID)
	if err != nil {
		return fairness.Report{}, err
	}
	settled := func(r rdb.RunRecord) bool { return r.Size >= 0 && r.Settled() >= r.Size }
	for _, x := range []struct {
		id  string
		run int
	}{{next.ID, nextRun}, {big.ID, bigRun}} {
		if _, err := waitRun(ctx, mon, x.id, x.run, settled); err != nil {
			return fairness.Report{}, err
		}
	}
	rate := float64(fairRate)
	if sameBucket {
		rate /= 2
	}
	return fairness.Measure(fake.srv.Deliveries(),
		fairness.Group{Name: "big", AppID: wechattest.AppIDDefault, API: wechat.APITemplateSend, Has: fairness.Prefixed(fairPrefA), Start: bigStart, Rate: rate},
		fairness.Group{Name: "next", AppID: appID, API: kind.API(), Has: fairness.Prefixed(fairPrefB), Start: nextStart, Rate: rate},
	), nil
}

// createFairCampaign stores a campaign of kind on appID whose audience is
// n openids starting with prefix.
func createFairCampaign(ctx context.Context, p *proc, appID string, kind campaigns.Kind, prefix string, n int) (*campaigns.Campaign, error) {
	c := &campaigns.Campaign{Name: "bench fairness", Account: appID, Kind: kind, Audience: campaigns.AudienceSpec{Source: campaigns.SourceFile}}
	switch kind {
	case campaigns.KindCustom:
		c.Custom = &campaigns.CustomSpec{MsgType: wechat.MsgTypeText, Text: &wechat.Text{Content: "您好，订单已发货"}}
	default:
		c.Template = &campaigns.TemplateSpec{TemplateID: wechattest.TemplateIDDefault, Data: map[string]string{"thing1": "您的订单已发货"}}
	}
	if err := p.store.Create(ctx, c); err != nil {
		return nil, err
	}
	entries := make([]rdb.AudienceEntry, n)
	for i := range entries {
		entries[i] = rdb.AudienceEntry{OpenID: fmt.Sprintf("%s%0*d", prefix, 28-len(prefix), i)}
	}
	if _, _, err := p.rdb.AppendAudience(ctx, c.ID, entries, string(campaigns.StateDraft)); err != nil {
		return nil, err
	}
	return c, nil
}
