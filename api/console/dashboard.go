package console

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/campaigns"
)

// The dashboard stays fast however many campaigns there are: it reads the
// accounts (GET /v1/accounts), each one's quota once (GET .../quota, which
// asks WeChat: a few at a time, each within quotaTimeout), the live runs
// registered in the accounts' rate buckets (the producer's fair-share
// registry, one read per bucket), the newest dashRecent campaigns (one
// page of GET /v1/campaigns) and the status of at most dashLiveMax live and
// dashFailuresMax finished runs. It never lists all campaigns.
const (
	// dashAccountsMax bounds the accounts whose quota and live runs are
	// read; the accounts page lists them all.
	dashAccountsMax = 50
	// dashRecent is how many of the newest campaigns are read.
	dashRecent = 50
	// dashLiveMax bounds the live runs shown.
	dashLiveMax = 20
	// dashFailuresMax bounds the finished runs read for recent failures.
	dashFailuresMax = 10
	// dashCodesMax bounds the errcodes shown per run.
	dashCodesMax = 5
	// quotaTimeout bounds one account's quota read.
	quotaTimeout = 5 * time.Second
	// quotaParallel is how many quota reads run at once.
	quotaParallel = 4
	// liveEvery is how often the dashboard's live runs refresh.
	liveEvery = "every 5s"
)

// dashAccount is an account's row on the dashboard.
type dashAccount struct {
	accountRow
	Rates []apiRate
	// Quota is today's quota per API, from WeChat; QuotaUnavailable is
	// set when it could not be read (no WeChat client, WeChat refused or
	// did not answer) or was not read (past dashAccountsMax).
	Quota            []apiQuota
	QuotaUnavailable bool
	Pauses           []pauseRow
	// CircuitSince is when the breaker opened, in the account's zone.
	CircuitSince string
}

type apiRate struct {
	Key   string
	Rate  float64
	Burst int
}

type apiQuota struct {
	Key                 string
	Limit, Used, Remain int64
}

type pauseRow struct {
	Key, API, Reason, Until string
}

// liveRun is a live run on the dashboard.
type liveRun struct {
	ID, Name, Account, State string
	Run                      int
	Size, Settled            int64
	Started                  string
	// Rate is the sends (outcomes) per second over the last interval
	// between two views, or since the start; ETA the time left at that
	// rate and Done when it ends ("" when it cannot be told).
	Rate      float64
	ETA, Done string
	Waiting   string
	startedAt time.Time
}

// failureRow is a run with failed recipients.
type failureRow struct {
	ID, Name, Account string
	Run               int
	Failed            int64
	Codes             []codeCount
}

type codeCount struct {
	Code string
	N    int64
}

// dashData is the dashboard.
type dashData struct {
	Accounts []dashAccount
	// More is how many accounts past dashAccountsMax have no quota read.
	More     int
	Live     liveData
	Failures []failureRow
}

// liveData is the live runs' section, which refreshes itself.
type liveData struct {
	Runs []liveRun
	// Every is the section's refresh (an htmx trigger).
	Every string
}

// dashboard shows the accounts (rates, quota, pauses, circuit breaker),
// the live runs with their progress, rate and ETA, and recent failures.
func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, v *view) error {
	accts, err := c.listAccounts(r)
	if err != nil {
		return err
	}
	d := dashData{Accounts: make([]dashAccount, len(accts))}
	for i, a := range accts {
		d.Accounts[i] = c.dashAccount(v, a)
	}
	c.readQuotas(r, d.Accounts)
	d.More = max(0, len(accts)-dashAccountsMax)
	recent, err := c.recentCampaigns(r)
	if err != nil {
		return err
	}
	live, statuses := c.liveRuns(r, v, recent)
	d.Live = liveData{Runs: live, Every: liveEvery}
	d.Failures = c.recentFailures(r, live, recent, statuses)
	v.Nav, v.Title = "dashboard", v.T("nav.dashboard")
	return v.Render("dashboard", d)
}

// dashLive is the live runs' section alone, for its refresh.
func (c *Console) dashLive(w http.ResponseWriter, r *http.Request) {
	v := c.newView(r)
	recent, err := c.recentCampaigns(r)
	if err != nil {
		http.Error(w, v.T("error.internal"), http.StatusBadGateway)
		return
	}
	live, _ := c.liveRuns(r, v, recent)
	var b bytes.Buffer
	if err := c.pages.partial(&b, "dash_live", map[string]any{"V": v, "L": liveData{Runs: live, Every: liveEvery}}); err != nil {
		c.log.Error("console: render live runs", zap.Error(err))
		http.Error(w, v.T("error.internal"), http.StatusInternalServerError)
		return
	}
	writeHTML(w, v, http.StatusOK, b.Bytes())
}

// dashAccount is a's row, without its quota.
func (c *Console) dashAccount(v *view, a accountRow) dashAccount {
	d := dashAccount{accountRow: a}
	for _, api := range sendAPIs {
		if l, ok := a.Limits[api.API]; ok {
			d.Rates = append(d.Rates, apiRate{Key: api.Key, Rate: l.Rate, Burst: l.Burst})
		}
	}
	for _, p := range a.Paused {
		d.Pauses = append(d.Pauses, pauseRow{Key: apiKey(p.API), API: p.API, Reason: p.Reason, Until: v.TimeIn(a.ID, p.Until)})
	}
	if a.Circuit != nil && a.Circuit.Since != nil {
		d.CircuitSince = v.TimeIn(a.ID, *a.Circuit.Since)
	}
	return d
}

// readQuotas reads the quota of each of the first dashAccountsMax
// accounts, once, a few at a time; an account whose quota cannot be read
// is marked unavailable, and the page goes on.
func (c *Console) readQuotas(r *http.Request, accts []dashAccount) {
	sem := make(chan struct{}, quotaParallel)
	var wg sync.WaitGroup
	for i := range accts {
		a := &accts[i]
		if i >= dashAccountsMax {
			a.QuotaUnavailable = true
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithTimeout(r.Context(), quotaTimeout)
			defer cancel()
			var q struct {
				APIs map[string]struct {
					Quota struct {
						DailyLimit int64 `json:"daily_limit"`
						Used       int64 `json:"used"`
						Remain     int64 `json:"remain"`
					} `json:"quota"`
				} `json:"apis"`
			}
			if err := c.get(r.WithContext(ctx), "/v1/accounts/"+url.PathEscape(a.ID)+"/quota", nil, &q); err != nil {
				c.log.Debug("console: quota", zap.String("account", a.ID), zap.Error(err))
				a.QuotaUnavailable = true
				return
			}
			for _, api := range sendAPIs {
				if got, ok := q.APIs[api.API]; ok {
					a.Quota = append(a.Quota, apiQuota{Key: api.Key, Limit: got.Quota.DailyLimit, Used: got.Quota.Used, Remain: got.Quota.Remain})
				}
			}
		}()
	}
	wg.Wait()
}

// recentCampaigns is the newest dashRecent campaigns: one page of the
// list.
func (c *Console) recentCampaigns(r *http.Request) ([]campaignRow, error) {
	var page struct {
		Campaigns []campaignRow `json:"campaigns"`
	}
	if err := c.get(r, "/v1/campaigns", url.Values{"limit": {strconv.Itoa(dashRecent)}}, &page); err != nil {
		return nil, err
	}
	return page.Campaigns, nil
}

// isLive reports whether a campaign in state s has a live run.
func isLive(s campaigns.State) bool {
	return s == campaigns.StateRunning || s == campaigns.StatePaused || s == campaigns.StateStopping
}

// liveRuns returns at most dashLiveMax live runs, newest first: those
// registered in the accounts' rate buckets (a run is registered once it
// sends) and the live ones among the recent campaigns (a run that has not
// sent yet, or is stopping). It returns their statuses too, by campaign
// id.
func (c *Console) liveRuns(r *http.Request, v *view, recent []campaignRow) ([]liveRun, map[string]*runStatus) {
	type ref struct {
		id   string
		run  int
		name string
	}
	var refs []ref
	seen := map[string]bool{}
	add := func(id string, run int, name string) {
		if !seen[id] && len(refs) < dashLiveMax {
			seen[id] = true
			refs = append(refs, ref{id, run, name})
		}
	}
	for _, cr := range recent {
		if isLive(cr.State) && cr.LatestRun > 0 {
			add(cr.ID, cr.LatestRun, cr.Name)
		}
	}
	if c.cfg.Accounts != nil {
		for i, a := range c.cfg.Accounts.All() {
			if i >= dashAccountsMax {
				break
			}
			for _, api := range sendAPIs {
				runs, err := c.cfg.Store.BucketRuns(r.Context(), a.BucketKey(api.API))
				if err != nil {
					c.log.Debug("console: bucket runs", zap.String("account", a.ID), zap.Error(err))
					continue
				}
				for _, br := range runs {
					add(br.ID, br.Run, "")
				}
			}
		}
	}
	statuses := map[string]*runStatus{}
	now := c.cfg.Now()
	var out []liveRun
	for _, f := range refs {
		name := f.name
		if name == "" {
			var cr campaignRow
			if err := c.get(r, "/v1/campaigns/"+url.PathEscape(f.id), nil, &cr); err != nil {
				continue
			}
			if cr.LatestRun != f.run {
				continue // a newer run: the registry's entry is stale
			}
			name = cr.Name
		}
		var rs runStatus
		if err := c.get(r, "/v1/campaigns/"+url.PathEscape(f.id)+"/runs/"+strconv.Itoa(f.run), nil, &rs); err != nil {
			c.log.Debug("console: live run", zap.String("campaign_id", f.id), zap.Error(err))
			continue
		}
		if rs.Finished != nil {
			continue
		}
		statuses[f.id] = &rs
		lr := liveRun{ID: f.id, Name: name, Account: rs.Account, State: rs.State, Run: rs.Run, Size: rs.Size, Settled: rs.Settled,
			Started: v.TimeIn(rs.Account, rs.Started), startedAt: rs.Started}
		lr.Rate = c.live.rate(f.id+"|"+strconv.Itoa(f.run), rs.Settled, rs.Started, now)
		if left := rs.Size - rs.Settled; rs.State == string(campaigns.StateRunning) && lr.Rate > 0 && left > 0 {
			eta := time.Duration(float64(left) / lr.Rate * float64(time.Second)).Round(time.Second)
			lr.ETA, lr.Done = clockDuration(eta), v.TimeIn(rs.Account, now.Add(eta))
		}
		if rs.Waiting != nil {
			lr.Waiting = v.T("waiting."+rs.Waiting.Reason, v.TimeIn(rs.Account, rs.Waiting.Since))
		}
		out = append(out, lr)
	}
	slices.SortStableFunc(out, func(a, b liveRun) int { return b.startedAt.Compare(a.startedAt) })
	return out, statuses
}

// clockDuration shows d as h:mm:ss.
func clockDuration(d time.Duration) string {
	s := int64(d / time.Second)
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}

// recentFailures are the failed recipients of the live runs and of the
// latest runs of the newest finished campaigns (at most dashFailuresMax
// more reads), by errcode.
func (c *Console) recentFailures(r *http.Request, live []liveRun, recent []campaignRow, statuses map[string]*runStatus) []failureRow {
	var out []failureRow
	for _, lr := range live {
		if f, ok := failures(lr.ID, lr.Name, lr.Account, statuses[lr.ID]); ok {
			out = append(out, f)
		}
	}
	read := 0
	for _, cr := range recent {
		if _, shown := statuses[cr.ID]; shown || cr.LatestRun == 0 || isLive(cr.State) || read >= dashFailuresMax {
			continue
		}
		read++
		var rs runStatus
		if err := c.get(r, "/v1/campaigns/"+url.PathEscape(cr.ID)+"/runs/"+strconv.Itoa(cr.LatestRun), nil, &rs); err != nil {
			continue
		}
		if f, ok := failures(cr.ID, cr.Name, cr.Account, &rs); ok {
			out = append(out, f)
		}
	}
	return out
}

// failures is the failure row of a run, if it has failed recipients.
func failures(id, name, account string, rs *runStatus) (failureRow, bool) {
	if rs == nil || rs.Counters["failed"] == 0 {
		return failureRow{}, false
	}
	f := failureRow{ID: id, Name: name, Account: account, Run: rs.Run, Failed: rs.Counters["failed"]}
	for k, n := range rs.Counters {
		if code, ok := strings.CutPrefix(k, "code:"); ok && n > 0 && code != "0" {
			f.Codes = append(f.Codes, codeCount{Code: code, N: n})
		}
	}
	slices.SortFunc(f.Codes, func(a, b codeCount) int {
		if a.N != b.N {
			return cmp.Compare(b.N, a.N)
		}
		return strings.Compare(a.Code, b.Code)
	})
	f.Codes = f.Codes[:min(len(f.Codes), dashCodesMax)]
	return f, true
}

// rateSampler remembers each live run's settled count at its last view,
// so that the next view's rate is over the interval between the two.
// It is safe for concurrent use.
type rateSampler struct {
	mu   sync.Mutex
	last map[string]sample
}

type sample struct {
	settled int64
	at      time.Time
}

// Bounds of rateSampler.
const (
	// sampleMin is the shortest interval a rate is measured over: views
	// closer together keep the older sample.
	sampleMin = time.Second
	// sampleMax is the longest: an older sample is forgotten, and the
	// rate is the run's average since its start.
	sampleMax = 10 * time.Minute
	// samplesMax bounds the runs remembered.
	samplesMax = 1000
)

func newRateSampler() *rateSampler { return &rateSampler{last: map[string]sample{}} }

// rate returns run key's sends per second: over the interval since its
// last sample when there is one between sampleMin and sampleMax old, else
// since started.
func (s *rateSampler) rate(key string, settled int64, started, now time.Time) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, ok := s.last[key]
	dt := now.Sub(prev.at)
	if ok && dt >= sampleMin && dt <= sampleMax && settled >= prev.settled {
		s.last[key] = sample{settled, now}
		return float64(settled-prev.settled) / dt.Seconds()
	}
	if !ok || dt > sampleMax || settled < prev.settled {
		if len(s.last) >= samplesMax {
			for k, v := range s.last {
				if now.Sub(v.at) > sampleMax {
					delete(s.last, k)
				}
			}
			if len(s.last) >= samplesMax {
				clear(s.last)
			}
		}
		s.last[key] = sample{settled, now}
	}
	if since := now.Sub(started); !started.IsZero() && since > 0 {
		return float64(settled) / since.Seconds()
	}
	return 0
}
