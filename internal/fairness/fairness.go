// Package fairness measures, from a fake WeChat's record of deliveries,
// how campaigns sending at the same time shared WeChat: each campaign's
// time from its start to its first delivery, and what each sent over the
// time all of them were sending. The fairness tests (worker's, the
// reliability suite's) and `wxmass bench --bench-only fairness` use it.
package fairness

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wxmass/wxmass/wechat/wechattest"
)

// Group is one campaign's deliveries: those of AppID through API to the
// openids Has accepts.
type Group struct {
	Name  string
	AppID string
	API   string
	Has   func(openid string) bool
	// Start is when the campaign was started.
	Start time.Time
	// Rate is the rate it should achieve while all groups send (its
	// bucket's rate, or its share of it), for Result.OfRate.
	Rate float64
}

// Result is one group's figures.
type Result struct {
	Name string
	// First is from Start to the group's first delivery; -1 when none.
	First time.Duration
	// Sends is the group's deliveries in all.
	Sends int
	// During is its deliveries while every group was sending.
	During int
	// Rate is During per second of that time.
	Rate float64
	// OfRate is Rate over Group.Rate (0 when Group.Rate is 0).
	OfRate float64
	// Share is During over all groups' During.
	Share float64
}

// Report is the figures of all groups.
type Report struct {
	// From and To bound the time every group was sending: from the
	// latest first delivery to the earliest last delivery (the last 1 %
	// of a group's deliveries, stragglers, left out), cut to whole seconds
	// from From.
	From, To time.Time
	Groups   []Result
}

// Seconds is the length of the time every group was sending.
func (r Report) Seconds() float64 { return r.To.Sub(r.From).Seconds() }

// String is a table of the figures, one line per group.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "all sending for %.0f s", r.Seconds())
	for _, g := range r.Groups {
		fmt.Fprintf(&b, "; %s: first send %s after its start, %d sends, %.1f/s while all send (%.0f%% of its rate, %.0f%% of the sends)",
			g.Name, g.First.Round(time.Millisecond), g.Sends, g.Rate, 100*g.OfRate, 100*g.Share)
	}
	return b.String()
}

// Measure computes the report of groups over deliveries.
func Measure(deliveries []wechattest.Delivery, groups ...Group) Report {
	times := make([][]time.Time, len(groups))
	for _, d := range deliveries {
		for i, g := range groups {
			if d.AppID == g.AppID && d.API == g.API && g.Has(d.OpenID) {
				times[i] = append(times[i], d.Time)
				break
			}
		}
	}
	var rep Report
	for i, ts := range times {
		if len(ts) == 0 {
			continue
		}
		slices.SortFunc(ts, time.Time.Compare)
		// The last 1 % are stragglers (sends throttled or retried late),
		// not the group sending.
		first, last := ts[0], ts[len(ts)-1-len(ts)/100]
		if i == 0 || first.After(rep.From) {
			rep.From = first
		}
		if i == 0 || last.Before(rep.To) {
			rep.To = last
		}
	}
	// Whole seconds only: a partial last second would count a burst.
	if secs := rep.To.Sub(rep.From).Truncate(time.Second); secs > 0 {
		rep.To = rep.From.Add(secs)
	} else {
		rep.To = rep.From
	}
	total := 0
	for i, g := range groups {
		res := Result{Name: g.Name, First: -1, Sends: len(times[i])}
		for _, t := range times[i] {
			if d := t.Sub(g.Start); res.First < 0 || d < res.First {
				res.First = d
			}
			if !t.Before(rep.From) && t.Before(rep.To) {
				res.During++
			}
		}
		if s := rep.Seconds(); s > 0 {
			res.Rate = float64(res.During) / s
		}
		if g.Rate > 0 {
			res.OfRate = res.Rate / g.Rate
		}
		total += res.During
		rep.Groups = append(rep.Groups, res)
	}
	for i := range rep.Groups {
		if total > 0 {
			rep.Groups[i].Share = float64(rep.Groups[i].During) / float64(total)
		}
	}
	return rep
}

// Prefixed returns a Has that accepts the openids starting with prefix.
func Prefixed(prefix string) func(string) bool {
	return func(o string) bool { return strings.HasPrefix(o, prefix) }
}
