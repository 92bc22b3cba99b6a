package api

import (
	"context"
	"fmt"
	"time"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
)

// What a run's status, its report and the accounts list say of the
// accounts' audience protection (account.Protection, campaigns'
// protection): how many recipients it skipped or deferred, whether the
// run waits for quiet hours, and what each account's rules are.

// runProtectionView is the protection object of a run's status and report:
// the recipients the account's protection held back. It is absent when
// every count is zero.
type runProtectionView struct {
	// Suppressed, Capped and OutsideWindow are the recipients skipped for
	// the suppression list, a frequency cap (a campaign that skips over a
	// cap) and the customer-service window: the run's counters
	// class:suppressed, class:capped and class:window.
	Suppressed    int64 `json:"suppressed"`
	Capped        int64 `json:"capped"`
	OutsideWindow int64 `json:"outside_window"`
	// Deferred counts the recipients deferred at least once, by reason.
	Deferred deferredView `json:"deferred"`
	// DeferredNow is how many recipients of a live run wait for a cap or
	// a rest now, and NextDue when the first of them is due (absent when
	// none waits).
	DeferredNow int64      `json:"deferred_now"`
	NextDue     *time.Time `json:"next_due,omitempty"`
}

// deferredView counts the recipients deferred at least once: over a
// frequency cap (counter deferred:cap) and resting after WeChat's 43117
// (deferred:rest).
type deferredView struct {
	Cap  int64 `json:"cap"`
	Rest int64 `json:"rest"`
}

// runProtection returns the protection object of run rec of c, or nil when
// the protection held back no recipient. The recipients deferred now are
// read only while the run has not finished.
func (s *Server) runProtection(ctx context.Context, c *campaigns.Campaign, run int, rec campaigns.RunRecord) (*runProtectionView, error) {
	v := &runProtectionView{
		Suppressed:    rec.Counters["class:"+campaigns.ClassSuppressed],
		Capped:        rec.Counters["class:"+campaigns.ClassCapped],
		OutsideWindow: rec.Counters["class:"+campaigns.ClassWindow],
		Deferred: deferredView{
			Cap:  rec.Counters["deferred:"+campaigns.DeferCap],
			Rest: rec.Counters["deferred:"+campaigns.DeferRest],
		},
	}
	if rec.Finished.IsZero() {
		n, next, err := s.cfg.Store.DeferredNow(ctx, c.ID, run, s.cfg.Now())
		if err != nil {
			return nil, err
		}
		v.DeferredNow = n
		if n > 0 && !next.IsZero() {
			next = next.UTC()
			v.NextDue = &next
		}
	}
	if *v == (runProtectionView{}) {
		return nil, nil
	}
	return v, nil
}

// quietWait returns when the quiet hours that hold run rec of c began and
// when they end, if they hold it at now: the account's and the campaign's
// own (either holds the run's sends; windows that follow one another are
// one wait). A transactional send waits only for quiet hours that apply to
// transactional sends; a mass run never waits (WeChat spreads its
// sending). ok is false when the run does not wait for quiet hours.
func quietWait(acct *account.Account, c *campaigns.Campaign, rec campaigns.RunRecord, now time.Time) (since, until time.Time, ok bool) {
	if campaigns.State(rec.State) != campaigns.StateRunning || c.Kind == campaigns.KindMass {
		return time.Time{}, time.Time{}, false
	}
	var windows []*account.QuietHours
	for _, q := range []*account.QuietHours{acct.Protection.Quiet, c.Quiet()} {
		if q != nil && (!rec.Transactional || q.Transactional) {
			windows = append(windows, q)
		}
	}
	at := now
	// Each pass moves past the end of the windows on at; a few passes
	// cover windows that overlap or follow one another.
	for range 4 {
		moved := false
		for _, q := range windows {
			on, end := q.Active(at)
			if !on {
				continue
			}
			if since.IsZero() || quietStart(q, end).Before(since) {
				since = quietStart(q, end)
			}
			if end.After(at) {
				at, moved = end, true
			}
		}
		if !moved {
			break
		}
	}
	if !at.After(now) {
		return time.Time{}, time.Time{}, false
	}
	return since, at, true
}

// quietStart is when the window of q that ends at end began.
func quietStart(q *account.QuietHours, end time.Time) time.Time {
	mins := q.To - q.From
	if mins <= 0 {
		mins += 24 * 60
	}
	return end.Add(-time.Duration(mins) * time.Minute)
}

// accountProtectionView is an account's protection as GET /v1/accounts
// shows it.
type accountProtectionView struct {
	// Caps are the frequency caps (none: no cap), Per as a Go duration.
	Caps []capView `json:"caps"`
	// OverCap is what a send over a cap does unless its campaign says:
	// defer or skip.
	OverCap string `json:"over_cap"`
	// CapTransactional: transactional sends count toward the caps too.
	CapTransactional bool `json:"cap_transactional"`
	// QuietHours are the account's quiet hours; absent when it has none.
	QuietHours *quietHoursView `json:"quiet_hours,omitempty"`
	// CSWindow is the customer-service window's rule.
	CSWindow csWindowView `json:"cs_window"`
	// Suppressed is the size of the account's suppression list.
	Suppressed int64 `json:"suppressed"`
}

type capView struct {
	Max int    `json:"max"`
	Per string `json:"per"`
}

type quietHoursView struct {
	From          string `json:"from"`
	To            string `json:"to"`
	TimeZone      string `json:"time_zone"`
	Transactional bool   `json:"transactional"`
}

type csWindowView struct {
	Hours    int  `json:"hours"`
	Messages int  `json:"messages"`
	Enforce  bool `json:"enforce"`
}

// accountProtection returns a's protection, with its defaults, and the
// size of its suppression list.
func (s *Server) accountProtection(ctx context.Context, a *account.Account) (accountProtectionView, error) {
	p := a.Protection.WithDefaults()
	v := accountProtectionView{Caps: make([]capView, 0, len(p.Caps)), OverCap: p.OverCap, CapTransactional: p.CapTransactional,
		CSWindow: csWindowView{Hours: p.CSWindow.Hours, Messages: p.CSWindow.Messages, Enforce: p.CSWindow.Enforce}}
	for _, c := range p.Caps {
		v.Caps = append(v.Caps, capView{Max: c.Max, Per: c.Per.String()})
	}
	if q := p.Quiet; q != nil {
		v.QuietHours = &quietHoursView{From: clock(q.From), To: clock(q.To), TimeZone: q.Location.String(), Transactional: q.Transactional}
	}
	n, err := s.cfg.Store.CountSuppressions(ctx, a.AppID)
	if err != nil {
		return v, err
	}
	v.Suppressed = n
	return v, nil
}

// clock is minutes after midnight as "HH:MM".
func clock(mins int) string { return fmt.Sprintf("%02d:%02d", mins/60, mins%60) }
