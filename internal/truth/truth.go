// Package truth checks what wxmass reports about each recipient against
// what the fake WeChat recorded: the test of DESIGN.md's first two
// invariants that counts nothing up, recipient by recipient.
//
// For every recipient of one campaign (across its runs, a retry run
// included):
//
//   - the fake delivered it at most once;
//   - reported sent or delivered (or failed by a receipt, which WeChat sends
//     only for a message it took) in at most one run, and then the fake
//     delivered it exactly once, with the msgid recorded for a template
//     send;
//   - delivered by the fake only if some run reports it sent, delivered,
//     failed by a receipt, or unknown: skipped, cancelled and failed with
//     an errcode mean never delivered;
//   - reported unknown only where the fake recorded a call to it whose
//     answer the client could not read (a dropped connection, an answer
//     after the client gave up, an HTTP 5xx, a call still in flight), or
//     whose last attempt a killed process began.
package truth

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// Record is the fake WeChat's own record: *wechattest.Server has it.
type Record interface {
	Deliveries() []wechattest.Delivery
	Calls() []wechattest.Call
}

// Run is what wxmass recorded of one run: every recipient's outcome, and
// the attempt records of those that still have one (all but the sent).
type Run struct {
	Campaign string
	Number   int
	Outcomes map[string]campaigns.Outcome
	Attempts map[string]campaigns.Attempt
}

// Load reads a run's outcomes and attempt records.
func Load(ctx context.Context, s *campaigns.Store, id string, run int) (Run, error) {
	r := Run{Campaign: id, Number: run, Outcomes: map[string]campaigns.Outcome{}, Attempts: map[string]campaigns.Attempt{}}
	err := s.ScanOutcomes(ctx, id, run, func(openid string, o campaigns.Outcome) error {
		r.Outcomes[openid] = o
		return nil
	})
	if err != nil {
		return Run{}, err
	}
	var unsent []string
	for openid, o := range r.Outcomes {
		if o.Status != campaigns.OutcomeSent && o.Status != campaigns.OutcomeDelivered {
			unsent = append(unsent, openid)
		}
	}
	for len(unsent) > 0 {
		batch := unsent[:min(1000, len(unsent))]
		unsent = unsent[len(batch):]
		atts, ok, err := s.Attempts(ctx, id, run, batch)
		if err != nil {
			return Run{}, err
		}
		for i, openid := range batch {
			if ok[i] {
				r.Attempts[openid] = atts[i]
			}
		}
	}
	return r, nil
}

// Options say which of the fake's records are the campaign's.
type Options struct {
	// API is the send API of the campaign's kind (campaigns.Kind.API).
	API string
	// AppID is the account's appid.
	AppID string
	// Killed reports whether the process named proc (the Proc of an
	// attempt record) was killed during the test; nil: none was.
	Killed func(proc string) bool
	// Keep, when set, picks the deliveries and calls of the campaign among
	// those of other campaigns sending to the same users through the same
	// API, by their client_msg_id (template sends): the others are left
	// out.
	Keep func(clientMsgID string) bool
}

// Report is what Check found.
type Report struct {
	// Recipients is the number of recipients the runs report on.
	Recipients int
	// Outcomes counts the final outcomes of the last run each recipient
	// appears in, by status.
	Outcomes map[string]int
	// Delivered is how many recipients the fake delivered to; Twice how
	// many it delivered to more than once.
	Delivered, Twice int
	// Unknown is how many recipients some run reports unknown, and
	// UnknownDelivered how many of them the fake did deliver to.
	Unknown, UnknownDelivered int
	// UnknownByKill is how many unknown recipients are explained by a
	// killed process, not by an unread answer.
	UnknownByKill int
	// Violations lists the first broken rules (one line each), and
	// ViolationCount counts them all.
	Violations     []string
	ViolationCount int
}

// maxViolations is how many violations a Report lists.
const maxViolations = 20

func (r *Report) violate(format string, args ...any) {
	r.ViolationCount++
	if len(r.Violations) < maxViolations {
		r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
	}
}

// String summarizes the report on one line.
func (r Report) String() string {
	keys := slices.Sorted(maps.Keys(r.Outcomes))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, r.Outcomes[k]))
	}
	return fmt.Sprintf("%d recipients (%s): delivered %d, twice %d, unknown %d (delivered %d, by a kill %d), violations %d",
		r.Recipients, strings.Join(parts, " "), r.Delivered, r.Twice, r.Unknown, r.UnknownDelivered, r.UnknownByKill, r.ViolationCount)
}

// Check checks the runs of one campaign against rec (see the package
// doc). Runs are given oldest first.
func Check(rec Record, opt Options, runs ...Run) Report {
	rep := Report{Outcomes: map[string]int{}}
	delivered := map[string][]wechattest.Delivery{}
	for _, d := range rec.Deliveries() {
		if d.API == opt.API && d.AppID == opt.AppID && (opt.Keep == nil || opt.Keep(d.ClientMsgID)) {
			delivered[d.OpenID] = append(delivered[d.OpenID], d)
		}
	}
	unread := map[string]bool{}
	for _, c := range rec.Calls() {
		// A call the fake refused before it knew the account (a 5xx, a
		// revoked token) has no AppID.
		if c.API != opt.API || (c.AppID != opt.AppID && c.AppID != "") || (opt.Keep != nil && !opt.Keep(c.ClientMsgID)) {
			continue
		}
		if c.Answer != wechattest.AnswerAnswered || c.Result == wechattest.ResultHTTP5xx {
			unread[c.OpenID] = true
		}
	}
	type seen struct {
		outcomes []campaigns.Outcome
		runs     []int
		attempts []campaigns.Attempt
		last     campaigns.Outcome
	}
	recipients := map[string]*seen{}
	for _, r := range runs {
		for openid, o := range r.Outcomes {
			s := recipients[openid]
			if s == nil {
				s = &seen{}
				recipients[openid] = s
			}
			s.outcomes = append(s.outcomes, o)
			s.runs = append(s.runs, r.Number)
			s.last = o
			if a, ok := r.Attempts[openid]; ok {
				s.attempts = append(s.attempts, a)
			}
		}
	}
	rep.Recipients = len(recipients)
	for _, openid := range slices.Sorted(maps.Keys(recipients)) {
		s := recipients[openid]
		rep.Outcomes[s.last.Status]++
		dels := delivered[openid]
		if len(dels) > 0 {
			rep.Delivered++
		}
		if len(dels) > 1 {
			rep.Twice++
			rep.violate("%s delivered %d times", openid, len(dels))
		}
		var took, unknown int
		var tookMsgID int64
		var statuses []string
		for i, o := range s.outcomes {
			st := fmt.Sprintf("run %d %s", s.runs[i], o.Status)
			if o.Status == campaigns.OutcomeUnknown {
				st += ": " + o.Detail
			}
			statuses = append(statuses, st)
			switch {
			case o.Status == campaigns.OutcomeSent || o.Status == campaigns.OutcomeDelivered ||
				(o.Status == campaigns.OutcomeFailed && o.Class == campaigns.ClassReceipt):
				took++
				tookMsgID = o.MsgID
			case o.Status == campaigns.OutcomeUnknown:
				unknown++
			}
		}
		switch {
		case took > 1:
			rep.violate("%s reported sent %d times (%s)", openid, took, strings.Join(statuses, ", "))
		case took == 1 && len(dels) == 0:
			rep.violate("%s reported sent but never delivered (%s)", openid, strings.Join(statuses, ", "))
		case took == 1 && tookMsgID != 0 && !slices.ContainsFunc(dels, func(d wechattest.Delivery) bool { return d.MsgID == tookMsgID }):
			rep.violate("%s reported sent with msgid %d, which the fake did not deliver", openid, tookMsgID)
		case took == 0 && unknown == 0 && len(dels) > 0:
			rep.violate("%s delivered but reported %s", openid, strings.Join(statuses, ", "))
		}
		if unknown == 0 {
			continue
		}
		rep.Unknown++
		if len(dels) > 0 {
			rep.UnknownDelivered++
		}
		if unread[openid] {
			continue
		}
		killed := false
		for _, a := range s.attempts {
			if opt.Killed != nil && opt.Killed(a.Proc) {
				killed = true
			}
		}
		if killed {
			rep.UnknownByKill++
			continue
		}
		var calls []string
		for _, c := range rec.Calls() {
			if c.OpenID == openid && c.API == opt.API && (opt.Keep == nil || opt.Keep(c.ClientMsgID)) {
				calls = append(calls, fmt.Sprintf("%s/%s/%d in %v", c.Result, c.Answer, c.Errcode, c.Ended.Sub(c.Arrived)))
			}
		}
		rep.violate("%s reported unknown (%s) but every call to it was answered: %v", openid, strings.Join(statuses, ", "), calls)
	}
	return rep
}

// Require fails t unless rep has no violation.
func Require(t testing.TB, rep Report) {
	t.Helper()
	if rep.ViolationCount == 0 {
		return
	}
	t.Fatalf("each recipient's truth against the fake's record: %d violations (%s):\n  %s", rep.ViolationCount, rep, strings.Join(rep.Violations, "\n  "))
}
