package campaigns

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/wxmass/wxmass/internal/rdb"
)

// ProtectionSpec is a campaign's own choices about the account's
// protection (account.Protection): what to do over a frequency cap, quiet
// hours of its own on top of the account's, suppression reasons it may
// ignore, and whether it keeps to the customer-service window.
type ProtectionSpec struct {
	// OverCap is "defer" (wait until the cap allows) or "skip"; "" is the
	// account's choice.
	OverCap string `json:"over_cap,omitempty"`
	// QuietHours is a do-not-disturb window of the campaign's own: its
	// sends wait while either this or the account's is on.
	QuietHours *QuietHoursSpec `json:"quiet_hours,omitempty"`
	// IgnoreSuppression lists suppression reasons that do not stop this
	// campaign's sends. Only "refused", by a subscribe campaign: a user
	// who refused a subscribe notification may accept one again.
	IgnoreSuppression []string `json:"ignore_suppression,omitempty"`
	// CSWindow makes a custom campaign send only to users inside their
	// customer-service window with a message left, skipping the others
	// before any call. Nil: the account's cs_window.enforce (always on for
	// the audience source "window").
	CSWindow *bool `json:"cs_window,omitempty"`
}

// QuietHoursSpec is a daily window in a time zone, "HH:MM" to "HH:MM".
type QuietHoursSpec struct {
	From     string `json:"from"`
	To       string `json:"to"`
	TimeZone string `json:"time_zone,omitempty"`
}

// Classes of skipped outcomes the account's protection gives.
const (
	// ClassSuppressed: the recipient is on the account's suppression list.
	ClassSuppressed = "suppressed"
	// ClassCapped: over a frequency cap, and the campaign skips such
	// recipients.
	ClassCapped = "capped"
	// ClassWindow: outside the customer-service window, or its messages
	// used.
	ClassWindow = "window"
)

// Reasons a recipient is deferred (the run's "deferred:<reason>" counters).
const (
	DeferCap   = "cap"   // over a frequency cap
	DeferRest  = "rest"  // WeChat asked to leave the user alone (43117)
	DeferQuiet = "quiet" // quiet hours (counted in metrics only: the whole run waits)
)

// Suppression reasons (rdb.Suppress*).
const (
	SuppressUnfollowed = rdb.SuppressUnfollowed
	SuppressBlocked    = rdb.SuppressBlocked
	SuppressRefused    = rdb.SuppressRefused
	SuppressInvalid    = rdb.SuppressInvalid
	SuppressManual     = rdb.SuppressManual
)

// Suppression is one entry of an account's suppression list.
type Suppression = rdb.Suppression

// SuppressedOutcome is the outcome of a recipient on the suppression
// list: skipped, class suppressed, the entry's reason, errcode and time in
// the detail.
func SuppressedOutcome(s Suppression) Outcome {
	detail := "on the account's suppression list: " + s.Reason
	if s.Code != 0 {
		detail += " (errcode " + strconv.Itoa(s.Code) + ")"
	}
	detail += " since " + s.At.UTC().Format(time.RFC3339)
	return Outcome{Status: OutcomeSkipped, Class: ClassSuppressed, Detail: detail}
}

// SuppressReasonOf returns the suppression reason of an errcode that
// says the user cannot or will not receive the account's messages.
func SuppressReasonOf(code int) (string, bool) {
	switch code {
	case 43004:
		return SuppressUnfollowed, true
	case 48002:
		return SuppressBlocked, true
	case 43101:
		return SuppressRefused, true
	case 40003:
		return SuppressInvalid, true
	}
	return "", false
}

func (p *ProtectionSpec) validate(v *validator, kind Kind) {
	if p == nil {
		return
	}
	switch p.OverCap {
	case "", OverCapDefer, OverCapSkip:
	default:
		v.addf("protection.over_cap", "%s is not defer or skip", quoteValue(p.OverCap))
	}
	if q := p.QuietHours; q != nil {
		var qe *QuietHoursError
		if _, err := ParseQuietHours(q.From, q.To, q.TimeZone); errors.As(err, &qe) {
			v.addReason("protection.quiet_hours."+qe.Field, qe.reason)
		}
	}
	for i, r := range p.IgnoreSuppression {
		f := "protection.ignore_suppression[" + strconv.Itoa(i) + "]"
		switch {
		case r != SuppressRefused:
			v.addf(f, "%s cannot be ignored: only \"refused\", by a subscribe campaign", quoteValue(r))
		case kind != KindSubscribe:
			v.addf(f, "only a subscribe campaign may ignore \"refused\" (a user may accept a subscribe notification again)")
		}
	}
	if p.CSWindow != nil && *p.CSWindow && kind != KindCustom {
		v.addf("protection.cs_window", "only a custom campaign's messages are bound to the customer-service window")
	}
}

// Quiet returns the campaign's own quiet hours (nil: none, or invalid,
// which Validate refuses).
func (c *Campaign) Quiet() *QuietHours {
	if c.Protection == nil || c.Protection.QuietHours == nil {
		return nil
	}
	q := c.Protection.QuietHours
	qh, err := ParseQuietHours(q.From, q.To, q.TimeZone)
	if err != nil {
		return nil
	}
	return qh
}

// OverCap is what the campaign's sends over a cap do when its account's
// choice is def ("" is OverCapDefer).
func (c *Campaign) OverCap(def string) string {
	if c.Protection != nil && c.Protection.OverCap != "" {
		return c.Protection.OverCap
	}
	if def == "" {
		return OverCapDefer
	}
	return def
}

// NeedsCSWindow reports whether the campaign's sends need an open
// customer-service window, its account enforcing the window for every
// custom campaign or not.
func (c *Campaign) NeedsCSWindow(enforce bool) bool {
	if c.Kind != KindCustom {
		return false
	}
	if c.Audience.Source == SourceWindow {
		return true
	}
	if c.Protection != nil && c.Protection.CSWindow != nil {
		return *c.Protection.CSWindow
	}
	return enforce
}

// Blocking returns the suppression reasons that stop the campaign's
// sends.
func (c *Campaign) Blocking() []string {
	out := make([]string, 0, len(rdb.SuppressReasons))
	for _, r := range rdb.SuppressReasons {
		ignored := false
		if c.Protection != nil {
			for _, x := range c.Protection.IgnoreSuppression {
				ignored = ignored || x == r
			}
		}
		if !ignored {
			out = append(out, r)
		}
	}
	return out
}

// Suppress adds entries to the suppression list of the account appID
// (replace: an operator's entries replace existing ones; WeChat's keep the
// first reason). It returns how many users were new to the list.
func (s *Store) Suppress(ctx context.Context, appID string, replace bool, entries ...Suppression) (int, error) {
	return s.r.Suppress(ctx, appID, replace, entries...)
}

// Unsuppress removes users from appID's suppression list (keepManual:
// except those an operator added).
func (s *Store) Unsuppress(ctx context.Context, appID string, keepManual bool, openids ...string) (int, error) {
	return s.r.Unsuppress(ctx, appID, keepManual, openids...)
}

// Suppressions returns the entries of openids on appID's list.
func (s *Store) Suppressions(ctx context.Context, appID string, openids []string) ([]Suppression, []bool, error) {
	return s.r.GetSuppressions(ctx, appID, openids)
}

// ScanSuppressions returns a page of appID's suppression list; see
// rdb.ScanSuppressions.
func (s *Store) ScanSuppressions(ctx context.Context, appID string, cursor uint64, count int64) ([]Suppression, uint64, error) {
	return s.r.ScanSuppressions(ctx, appID, cursor, count)
}

// CountSuppressions returns the size of appID's suppression list.
func (s *Store) CountSuppressions(ctx context.Context, appID string) (int64, error) {
	return s.r.CountSuppressions(ctx, appID)
}

// Interact records a user's interaction with the account appID at at,
// which opens a customer-service window of window for allowed messages.
func (s *Store) Interact(ctx context.Context, appID, openid string, at time.Time, window time.Duration, allowed int) (bool, error) {
	return s.r.Interact(ctx, appID, openid, at, window, allowed)
}

// CSWindowState is a user's customer-service window.
type CSWindowState = rdb.CSWindowState

// ScanCSWindows calls fn with the customer-service window of every user of
// appID that interacted (windows closed before expired are dropped).
func (s *Store) ScanCSWindows(ctx context.Context, appID string, expired time.Time, fn func(CSWindowState) error) error {
	return s.r.ScanCSWindows(ctx, appID, expired, fn)
}

// CSWindow returns appID's user openid's customer-service window (ok
// false: none recorded).
func (s *Store) CSWindow(ctx context.Context, appID, openid string) (CSWindowState, bool, error) {
	return s.r.GetCSWindow(ctx, appID, openid)
}

// SetRest makes sends that count toward appID's caps leave openid alone
// until then (WeChat's 43117).
func (s *Store) SetRest(ctx context.Context, appID, openid string, until time.Time) error {
	return s.r.SetRest(ctx, appID, openid, until)
}

// Release gives back a send's place in openid's cap log and window.
func (s *Store) Release(ctx context.Context, appID, openid string, c *Campaign, run int) error {
	return s.r.Release(ctx, appID, openid, AdmitMember(c.ID, run))
}

// AdmitMember names a run's send in cap logs and windows.
func AdmitMember(id string, run int) string { return id + ":" + strconv.Itoa(run) }

// Admission is what a send must pass before its call (rdb.Admission).
type Admission = rdb.Admission

// Admit is an admission's verdict.
type Admit = rdb.Admit

// CapRule is one frequency cap of an Admission.
type CapRule = rdb.CapRule

// Admission verdicts.
const (
	AdmitNew        = rdb.AdmitNew
	AdmitHeld       = rdb.AdmitHeld
	AdmitSuppressed = rdb.AdmitSuppressed
	AdmitRest       = rdb.AdmitRest
	AdmitCapped     = rdb.AdmitCapped
	AdmitNoWindow   = rdb.AdmitNoWindow
)

// Admit runs admission a for one send to openid on its own.
func (s *Store) Admit(ctx context.Context, a *Admission, openid string) (Admit, error) {
	return s.r.Admit(ctx, a, openid)
}

// CapLogMembers returns the members ("campaign:run") of openid's cap log
// on appID.
func (s *Store) CapLogMembers(ctx context.Context, appID, openid string) ([]string, error) {
	zs, err := s.r.CapLog(ctx, appID, openid)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(zs))
	for i, z := range zs {
		out[i], _ = z.Member.(string)
	}
	return out, nil
}

// ReleaseMember gives back member's place in openid's cap log and window.
func (s *Store) ReleaseMember(ctx context.Context, appID, openid, member string) error {
	return s.r.Release(ctx, appID, openid, member)
}

// Deferral is a recipient deferred by the account's protection.
type Deferral = rdb.Deferral

// Unbegin closes the attempt just begun for openid when the send does not
// go on now (see rdb.Unbegin): answered says whether WeChat answered a
// call; d notes it deferred; o, if set, is its outcome, recorded by mode's
// rules (RecordUnanswered: unknown if an earlier attempt lost its answer).
func (s *Store) Unbegin(ctx context.Context, c *Campaign, run int, openid string, answered bool, d *Deferral, o *Outcome, mode RecordMode) (Recorded, error) {
	var st *Settle
	if o != nil {
		st = &Settle{OpenID: openid, Outcome: *o, Mode: mode}
	}
	rec, err := s.r.Unbegin(ctx, c.ID, run, openid, DoneState(c), answered, d, st)
	return rec, runErr(c.ID, run, err)
}

// DeferredNow returns how many of a run's recipients wait for the
// account's protection at now, and when the first is due.
func (s *Store) DeferredNow(ctx context.Context, id string, run int, now time.Time) (int64, time.Time, error) {
	return s.r.DeferredNow(ctx, id, run, now)
}
