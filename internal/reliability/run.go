package reliability

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// Run is one campaign run of a scenario.
type Run struct {
	Fleet    *Fleet
	Account  RunAccount
	Campaign string
	Number   int
	Kind     campaigns.Kind
	OpenIDs  []string
	// Started is when Launch started the run; Finished when Wait saw it
	// settle.
	Started, Finished time.Time
	// PollErrors counts the reads of the run's progress that failed (while
	// Redis was down, say).
	PollErrors int
	// Want is the state Check expects the run to end in; "" means
	// completed.
	Want string
}

// Retry starts a retry run over the recipients of r whose outcomes are
// among statuses (campaigns.RetryFilter), as `wxmass campaign retry-failed
// --statuses` does, and returns it with what it risks.
func (r *Run) Retry(t testing.TB, statuses ...string) (*Run, campaigns.RetryResult) {
	t.Helper()
	res, err := r.Fleet.prod.RetryFailed(context.Background(), r.Campaign, r.Number, campaigns.RetryFilter{Statuses: statuses})
	require.NoError(t, err)
	return &Run{Fleet: r.Fleet, Account: r.Account, Campaign: r.Campaign, Number: res.Run, Kind: r.Kind, Started: time.Now()}, res
}

// OpenIDs returns n distinct well-formed openids whose middle part is tag.
func OpenIDs(tag string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("o%s%0*d", tag, 27-len(tag), i)
	}
	return out
}

// RunAccount is the account a run sends for, as Check needs it.
type RunAccount struct {
	// ID is the campaign's account: an account id of the workers' accounts
	// file, or an appid. Default: AppID.
	ID string
	// AppID is the account's appid at the fake.
	AppID string
	// Limit is the most calls of the run's API the fake may see for the
	// account in any one second: its rate plus burst.
	Limit int
}

// Launch creates a campaign of kind for openids (a file audience) for the
// fleet's default account and starts its run; the fleet's workers launch,
// expand and send it.
func (f *Fleet) Launch(t testing.TB, kind campaigns.Kind, openids []string) *Run {
	t.Helper()
	return f.LaunchFor(t, f.Account(t, ""), kind, openids)
}

// LaunchFor is Launch for another account of the workers: one of
// FleetConfig.Accounts, as f.Account returns it.
func (f *Fleet) LaunchFor(t testing.TB, acct RunAccount, kind campaigns.Kind, openids []string) *Run {
	t.Helper()
	if acct.ID == "" {
		acct.ID = acct.AppID
	}
	c := &campaigns.Campaign{
		Name: t.Name(), Account: acct.ID, Kind: kind,
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceFile},
	}
	switch kind {
	case campaigns.KindTemplate:
		c.Template = &campaigns.TemplateSpec{TemplateID: wechattest.TemplateIDDefault, Data: map[string]string{"thing1": "您的订单已发货"}}
	case campaigns.KindCustom:
		c.Custom = &campaigns.CustomSpec{MsgType: wechat.MsgTypeText, Text: &wechat.Text{Content: "您好"}}
	case campaigns.KindSubscribe:
		c.Subscribe = &campaigns.SubscribeSpec{TemplateID: wechattest.SubscribeTemplateIDDefault, Data: map[string]string{"thing1": "您的订单已发货"}}
	case campaigns.KindMass:
		c.Mass = &campaigns.MassSpec{MsgType: wechat.MassTypeText, Text: &wechat.Text{Content: "本月精选"}}
	default:
		t.Fatalf("Launch: kind %q is not supported by the harness", kind)
	}
	ctx := context.Background()
	require.NoError(t, f.store.Create(ctx, c))
	for i := 0; i < len(openids); i += 2000 {
		var entries []rdb.AudienceEntry
		for _, o := range openids[i:min(i+2000, len(openids))] {
			entries = append(entries, rdb.AudienceEntry{OpenID: o})
		}
		_, _, err := f.rdb.AppendAudience(ctx, c.ID, entries, string(campaigns.StateDraft))
		require.NoError(t, err)
	}
	started := time.Now()
	n, err := f.prod.Start(ctx, c.ID)
	require.NoError(t, err)
	return &Run{Fleet: f, Account: acct, Campaign: c.ID, Number: n, Kind: kind, OpenIDs: openids, Started: started}
}

// Record reads the run and its counters.
func (r *Run) Record(ctx context.Context) (rdb.RunRecord, error) {
	return r.Fleet.rdb.GetRun(ctx, r.Campaign, r.Number)
}

// Hook is an action of the test while Wait waits: every Every (if set), or
// else once, when the run has settled at least the fraction At of its
// recipients. Do runs on the test's goroutine with the latest record read
// (the zero record if none could be read yet), so it may use require and
// take its time (Wait's own deadline keeps running).
type Hook struct {
	Every time.Duration
	At    float64
	Do    func(rec rdb.RunRecord)
}

// Wait polls the run every 100 ms until every recipient has a final
// outcome, running hooks meanwhile, and returns the last record. It fails
// the test after timeout, or at once when a worker exits by itself. Reads
// that fail (Redis restarting) are counted and retried.
func (r *Run) Wait(t *testing.T, timeout time.Duration, hooks ...Hook) rdb.RunRecord {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	progress := time.NewTicker(10 * time.Second)
	defer progress.Stop()

	type periodic struct {
		tick *time.Ticker
		do   func(rdb.RunRecord)
	}
	var every []periodic
	var once []*Hook
	for i := range hooks {
		if hooks[i].Every > 0 {
			tk := time.NewTicker(hooks[i].Every)
			defer tk.Stop()
			every = append(every, periodic{tk, hooks[i].Do})
		} else {
			once = append(once, &hooks[i])
		}
	}
	// The periodic hooks' tickers are looked at on each poll tick (a select
	// cannot list a variable number of channels), so a hook runs at most
	// 100 ms after its time.
	var rec rdb.RunRecord
	var lastErr error
	for {
		select {
		case <-deadline.C:
			var b strings.Builder
			r.Fleet.copyTail(&b, 20)
			t.Fatalf("run %s/%d not settled after %s: %d/%d settled, state %q, counters %v (last read error: %v)\n%s",
				r.Campaign, r.Number, timeout, rec.Settled(), rec.Size, rec.State, rec.Counters, lastErr, b.String())
		case msg := <-r.Fleet.Exits():
			t.Fatalf("during run %s/%d at %d/%d settled: %s", r.Campaign, r.Number, rec.Settled(), rec.Size, msg)
		case <-progress.C:
			starts, kills := r.Fleet.Counts()
			t.Logf("%s: %d/%d settled, state %q, %v; %d worker starts, %d kills, %d failed reads",
				time.Since(r.Started).Round(time.Second), rec.Settled(), rec.Size, rec.State, rec.Counters, starts, kills, r.PollErrors)
		case <-poll.C:
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			got, err := r.Record(ctx)
			cancel()
			if err != nil {
				r.PollErrors++
				lastErr = err
			} else {
				rec = got
			}
			if rec.Size > 0 && rec.Settled() >= rec.Size {
				r.Finished = time.Now()
				return rec
			}
			for _, p := range every {
				select {
				case <-p.tick.C:
					p.do(rec)
				default:
				}
			}
			for _, h := range once {
				if h.Do != nil && rec.Size > 0 && float64(rec.Settled()) >= h.At*float64(rec.Size) {
					do := h.Do
					h.Do = nil
					do(rec)
				}
			}
		}
	}
}

// pollUntil calls cond every interval until it holds, and fails the test
// after timeout.
func pollUntil(tb testing.TB, timeout, every time.Duration, cond func() bool, format string, args ...any) {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			tb.Fatalf("timed out after %s: %s", timeout, fmt.Sprintf(format, args...))
		case <-tick.C:
		}
	}
}
