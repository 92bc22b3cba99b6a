package worker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/task"
	"github.com/wxmass/wxmass/monitoring"
	"github.com/wxmass/wxmass/retry"
)

// The account's protection on the send path (see account.Protection):
//
//   - Quiet hours: a send that comes while the account's (or the
//     campaign's) quiet hours are on waits for their end before it takes a
//     rate token: no call, no retry used, no bookkeeping per recipient.
//   - Admission: in the same round trip as the attempt's begin, one script
//     on the account's keys checks the suppression list, WeChat's rests
//     (43117), the customer-service window and the frequency caps, and
//     reserves the send's place in the caps and the window. A send it does
//     not admit has its attempt taken back (no call was made) and is
//     skipped or deferred.
//   - After the answer: an errcode that says the user cannot or will not
//     receive (43004, 48002, 43101, 40003) suppresses the user for every
//     campaign of the account; a failure gives back the send's places;
//     43117 rests the user and defers the recipient.

// ProtectRecheckDefault is Config.ProtectRecheck's default.
const ProtectRecheckDefault = 15 * time.Minute

// transactional reports whether the task being handled is a transactional
// send (the transactional queue).
func transactional(ctx context.Context) bool {
	q, _ := asynq.GetQueueName(ctx)
	return q == task.QueueTransactional
}

// quietUntil reports whether the send must wait for quiet hours at now,
// and until when.
func (w *Worker) quietUntil(v *runView, acct *account.Account, tx bool, now time.Time) (time.Time, bool) {
	var until time.Time
	for _, q := range []*account.QuietHours{acct.Protection.Quiet, v.quiet} {
		if q == nil || (tx && !q.Transactional) {
			continue
		}
		if on, end := q.Active(now); on && end.After(until) {
			until = end
		}
	}
	return until, !until.IsZero()
}

// recheck is how long a send held back until until waits before it looks
// again: until then, at most Config.ProtectRecheck (so that a clock or a
// configuration that changes is seen).
func (w *Worker) recheck(until, now time.Time) time.Duration {
	return max(time.Second, min(until.Sub(now), w.cfg.ProtectRecheck))
}

// admission returns what the send must pass before its call (nil: nothing,
// for mass sends).
func (w *Worker) admission(v *runView, acct *account.Account, tx bool, now time.Time) *campaigns.Admission {
	if v.c.Kind == campaigns.KindMass {
		return nil
	}
	p := acct.Protection
	a := &campaigns.Admission{AppID: acct.AppID, Member: campaigns.AdmitMember(v.c.ID, v.run), Blocking: v.blocking,
		CSWindow: v.c.NeedsCSWindow(p.CSWindow.Enforce), Now: now}
	if !tx || p.CapTransactional {
		a.Rest = true
		for _, c := range p.Caps {
			a.Caps = append(a.Caps, campaigns.CapRule{Max: c.Max, Per: c.Per})
		}
	}
	return a
}

// reserves reports whether the campaign's sends take places that a
// failure must give back (caps or the customer-service window).
func (w *Worker) reserves(v *runView, acct *account.Account) bool {
	return v.c.Kind != campaigns.KindMass && (len(acct.Protection.Caps) > 0 || v.c.NeedsCSWindow(acct.Protection.CSWindow.Enforce))
}

// held handles a send whose attempt began but whose admission did not
// admit it: it is skipped or deferred, its attempt taken back. It reports
// whether the send may go on after all (a cap log repaired, see
// repairCapLog).
func (w *Worker) held(ctx context.Context, v *runView, acct *account.Account, run int, openid string, adm *campaigns.Admission, a campaigns.Admit, repaired bool) (bool, error) {
	now := adm.Now
	switch a.Verdict {
	case campaigns.AdmitSuppressed:
		// An earlier attempt whose answer was lost may have reached the
		// user before the user was suppressed: the rules make it unknown.
		o := campaigns.SuppressedOutcome(a.Suppression)
		return false, w.skip(ctx, v, acct, run, openid, o.Class, o.Detail, monitoring.ProtectSuppressed, campaigns.RecordUnanswered)
	case campaigns.AdmitNoWindow:
		var detail string
		switch a.Window {
		case "closed":
			detail = fmt.Sprintf("outside the customer-service window: last interaction %s ago", now.Sub(a.WindowStart).Round(time.Minute))
		case "used":
			detail = fmt.Sprintf("the customer-service window's %d messages are used", a.WindowAllowed)
		default:
			detail = "outside the customer-service window: no interaction recorded"
		}
		return false, w.skip(ctx, v, acct, run, openid, campaigns.ClassWindow, detail, monitoring.ProtectWindow, campaigns.RecordUnanswered)
	case campaigns.AdmitRest:
		return false, w.deferSend(ctx, v, acct, run, openid, false, campaigns.DeferRest, a.Until, now, monitoring.ProtectRest,
			"WeChat asked to leave the user alone (43117)")
	case campaigns.AdmitCapped:
		if !repaired && w.repairCapLog(ctx, acct, openid, a.Members, adm.Member) {
			again, err := w.store.Admit(ctx, adm, openid)
			if err == nil {
				if again.Admitted() {
					return true, nil
				}
				return w.held(ctx, v, acct, run, openid, adm, again, true)
			}
		}
		rule := capsString(acct.Protection.Caps)
		if v.c.OverCap(acct.Protection.OverCap) == account.OverCapSkip {
			// Capped, this run's send holds no place in the user's cap
			// log: no attempt of it was ever admitted, so none made a
			// call, even one whose worker died (its attempt record says
			// its answer was lost): it is skipped, certainly unsent. (A
			// place is given back only once the recipient has its
			// outcome, and outlives the dedupe window: CapPerMin.)
			return false, w.skip(ctx, v, acct, run, openid, campaigns.ClassCapped,
				"over the account's frequency cap ("+rule+") until "+a.Until.UTC().Format(time.RFC3339), monitoring.ProtectCappedSkip, campaigns.RecordPlain)
		}
		return false, w.deferSend(ctx, v, acct, run, openid, false, campaigns.DeferCap, a.Until, now, monitoring.ProtectCappedDefer,
			"frequency cap "+rule)
	}
	return false, fmt.Errorf("send: admission verdict %q", string(a.Verdict))
}

// capsString is "2/24h0m0s, 5/168h0m0s".
func capsString(caps []account.Cap) string {
	s := make([]string, len(caps))
	for i, c := range caps {
		s[i] = c.String()
	}
	return strings.Join(s, ", ")
}

// skip takes back the recipient's attempt and records it skipped with
// class and detail, in one round trip, by mode's rules.
func (w *Worker) skip(ctx context.Context, v *runView, acct *account.Account, run int, openid, class, detail, action string, mode campaigns.RecordMode) error {
	o := campaigns.Outcome{Status: campaigns.OutcomeSkipped, Class: class, Detail: detail}
	rec, err := w.store.Unbegin(ctx, v.c, run, openid, false, nil, &o, mode)
	if err != nil {
		return err
	}
	w.cfg.Metrics.Protected(acct.ID, action)
	w.recorded(v, run, o, rec)
	return nil
}

// deferSend closes the recipient's attempt (answered: WeChat answered its
// call; else taken back), notes it deferred for reason until until, and
// sends the task back to look again then (no retry used).
func (w *Worker) deferSend(ctx context.Context, v *runView, acct *account.Account, run int, openid string, answered bool,
	reason string, until, now time.Time, action, why string) error {
	if _, err := w.store.Unbegin(ctx, v.c, run, openid, answered, &campaigns.Deferral{Reason: reason, Until: until}, nil, campaigns.RecordPlain); err != nil {
		return err
	}
	w.cfg.Metrics.Protected(acct.ID, action)
	return &retry.Wait{After: w.recheck(until, now), Reason: why + ": deferred until " + until.UTC().Format(time.RFC3339)}
}

// repairCapLog gives back the places in openid's cap log of sends that
// ended without reaching the user (failed, skipped or cancelled): a
// worker that died between a send's admission and its outcome, or a
// failure whose release was lost, leaves such places. It reports whether
// it gave any back. Places of runs whose outcomes are no longer in Redis
// (archived) are kept.
func (w *Worker) repairCapLog(ctx context.Context, acct *account.Account, openid string, members []string, self string) bool {
	released := false
	for _, m := range members {
		if m == self {
			continue
		}
		id, runStr, ok := strings.Cut(m, ":")
		run, err := strconv.Atoi(runStr)
		if !ok || err != nil {
			continue
		}
		o, found, err := w.store.Outcome(ctx, id, run, openid)
		if err != nil || !found {
			continue
		}
		switch o.Status {
		case campaigns.OutcomeFailed, campaigns.OutcomeSkipped, campaigns.OutcomeCancelled:
			if err := w.store.ReleaseMember(ctx, acct.AppID, openid, m); err == nil {
				released = true
			}
		}
	}
	return released
}

// suppressFor puts a user WeChat says cannot or will not receive (o's
// errcode) on the account's suppression list. It runs before the outcome
// is recorded: once a run's last outcome is stored the run may complete and
// the next campaign start, and it must already find the user suppressed;
// a worker dying between the two leaves the user suppressed, which
// WeChat's answer made true, and the recipient's attempt open for its retry.
func (w *Worker) suppressFor(ctx context.Context, v *runView, run int, openid string, o campaigns.Outcome) {
	if v.c.Kind == campaigns.KindMass || o.Status != campaigns.OutcomeFailed {
		return
	}
	reason, ok := campaigns.SuppressReasonOf(o.Code)
	if !ok {
		return
	}
	acct, err := w.accounts.Get(v.c.Account)
	if err != nil {
		return
	}
	n, err := w.store.Suppress(ctx, acct.AppID, false, campaigns.Suppression{OpenID: openid, Reason: reason, Code: o.Code,
		At: w.cfg.NowFunc(), Source: campaigns.AdmitMember(v.c.ID, run)})
	if err != nil {
		w.sendLog(ctx, v.c.ID, run, openid).Warn("suppress", zap.Int("errcode", o.Code), zap.Error(err))
	}
	w.cfg.Metrics.SuppressionsAdded(acct.ID, reason, n)
}

// releaseAfter gives back the places in the caps and the window of a send
// whose failure rec stored.
func (w *Worker) releaseAfter(ctx context.Context, v *runView, run int, openid string, o campaigns.Outcome, rec campaigns.Recorded) {
	if v.c.Kind == campaigns.KindMass || o.Status != campaigns.OutcomeFailed || len(rec.Stored) == 0 || rec.Stored[0] != campaigns.StoredAsGiven {
		return
	}
	acct, err := w.accounts.Get(v.c.Account)
	if err != nil || !w.reserves(v, acct) {
		return
	}
	// A release lost here is repaired when the user next meets a cap.
	if err := w.store.Release(ctx, acct.AppID, openid, v.c, run); err != nil {
		w.sendLog(ctx, v.c.ID, run, openid).Warn("release cap place", zap.Error(err))
	}
}

// rest handles 43117: the user rests until d.Until for every send that
// counts toward the caps, this send's place is given back, and the
// recipient is deferred until then.
func (w *Worker) rest(ctx context.Context, v *runView, acct *account.Account, run int, openid string, d retry.Decision) error {
	if err := w.store.SetRest(ctx, acct.AppID, openid, d.Until); err != nil {
		return w.later(ctx, v, run, openid, false, err)
	}
	if w.reserves(v, acct) {
		if err := w.store.Release(ctx, acct.AppID, openid, v.c, run); err != nil {
			w.sendLog(ctx, v.c.ID, run, openid).Warn("release cap place", zap.Error(err))
		}
	}
	return w.deferSend(ctx, v, acct, run, openid, true, campaigns.DeferRest, d.Until, w.cfg.NowFunc(), monitoring.ProtectRest,
		fmt.Sprintf("errcode %d: %s", d.Code, d.Meaning))
}
