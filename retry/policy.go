package retry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxmass/wxmass/wechat"
)

// Defaults of Config.
const (
	// QuotaLocationDefault names the zone of the daily quota reset. The
	// reset time is UNCONFIRMED (wechat-api.md §9.4); the community assumes
	// 00:00 Beijing time.
	QuotaLocationDefault = "Asia/Shanghai"
	// UnknownMaxAttemptsDefault is the budget of an unknown errcode or an
	// unclassified error.
	UnknownMaxAttemptsDefault = 3
	// TransportMaxAttemptsDefault is the budget of transport failures
	// (wechat.TransportError, context errors).
	TransportMaxAttemptsDefault = 8
	// NotSentBaseDefault is the first delay after a transport failure that
	// certainly did not reach WeChat (Sent=false): short, because nothing
	// was processed and the client fails over to another host.
	NotSentBaseDefault = 200 * time.Millisecond
	// NotSentMaxDefault caps the delays after Sent=false failures.
	NotSentMaxDefault = 10 * time.Second
	// TransportBaseDefault is the first delay after an ambiguous transport
	// failure (Sent=true: timeout, dropped connection, HTTP 5xx or 429,
	// non-JSON body).
	TransportBaseDefault = time.Second
	// TransportMaxDefault caps the delays after ambiguous transport
	// failures.
	TransportMaxDefault = time.Minute
)

// Config configures a Policy. The zero Config is valid: it uses the default
// table and the defaults named on each field.
type Config struct {
	// Rules override rows of the default table with the same Code (the
	// whole row is replaced; an empty Meaning keeps the default's) and add
	// rows for new codes. Each code may appear once. LoadRules reads them
	// from YAML.
	Rules []Rule
	// QuotaLocation is the zone of the daily quota reset. Nil means
	// QuotaLocationDefault (Asia/Shanghai, UTC+8 without DST); if the
	// system has no zone database, a fixed UTC+8 zone is used, which is the
	// same thing.
	QuotaLocation *time.Location
	// QuotaResetHour is the hour, 0 to 23, at which daily quotas reset in
	// QuotaLocation. Zero means midnight.
	QuotaResetHour int
	// UnknownMaxAttempts is the budget (first try included) of an errcode
	// without a rule and of an error the policy cannot place. Zero means
	// UnknownMaxAttemptsDefault; it must not be negative.
	UnknownMaxAttempts int
	// UnknownDelay is the backoff for those. The zero DelaySpec means
	// ExponentialDefault; otherwise it must be exponential or fixed.
	UnknownDelay DelaySpec
	// TransportMaxAttempts is the budget (first try included) of transport
	// failures. Zero means TransportMaxAttemptsDefault; it must not be
	// negative.
	TransportMaxAttempts int
	// NotSentDelay is the backoff after a transport failure with
	// Sent=false. The zero DelaySpec means exponential from
	// NotSentBaseDefault, factor 2, capped at NotSentMaxDefault, with
	// JitterDefault; otherwise it must be exponential or fixed.
	NotSentDelay DelaySpec
	// TransportDelay is the backoff after an ambiguous transport failure
	// and after a context error. The zero DelaySpec means exponential from
	// TransportBaseDefault, factor 2, capped at TransportMaxDefault, with
	// JitterDefault; otherwise it must be exponential or fixed.
	TransportDelay DelaySpec
	// Rand is the jitter source; it returns a number in [0, 1) and must be
	// safe for concurrent use when Decide is. Nil means math/rand/v2's
	// Float64.
	Rand func() float64
}

// WithDefaults returns c with every zero field that has a default set to
// it. It does not validate c; New does.
func (c Config) WithDefaults() Config {
	if c.QuotaLocation == nil {
		loc, err := time.LoadLocation(QuotaLocationDefault)
		if err != nil {
			// No zone database on this host: Shanghai has kept UTC+8
			// without DST since 1991, so a fixed zone is exact.
			loc = time.FixedZone("CST", 8*60*60)
		}
		c.QuotaLocation = loc
	}
	if c.UnknownMaxAttempts == 0 {
		c.UnknownMaxAttempts = UnknownMaxAttemptsDefault
	}
	if c.UnknownDelay.Kind == DelayNone {
		c.UnknownDelay = ExponentialDefault()
	}
	if c.TransportMaxAttempts == 0 {
		c.TransportMaxAttempts = TransportMaxAttemptsDefault
	}
	if c.NotSentDelay.Kind == DelayNone {
		c.NotSentDelay = Exponential(NotSentBaseDefault, 2, NotSentMaxDefault)
	}
	if c.TransportDelay.Kind == DelayNone {
		c.TransportDelay = Exponential(TransportBaseDefault, 2, TransportMaxDefault)
	}
	if c.Rand == nil {
		c.Rand = rand.Float64
	}
	return c
}

// Policy classifies outcomes of WeChat calls and decides what to do next.
// It is immutable after New and safe for concurrent use when Config.Rand
// is.
type Policy struct {
	rules          map[int]Rule
	loc            *time.Location
	resetHour      int
	unknownMax     int
	unknownDelay   DelaySpec
	transportMax   int
	notSentDelay   DelaySpec
	transportDelay DelaySpec
	rnd            func() float64

	unknown sync.Map // errcode -> *atomic.Int64: how often each unknown errcode was decided
}

// New returns a Policy with the default table overridden by cfg.Rules. It
// returns a *RuleError naming the errcode for an invalid rule, and an error
// for an invalid Config field.
func New(cfg Config) (*Policy, error) {
	cfg = cfg.WithDefaults()
	if cfg.QuotaResetHour < 0 || cfg.QuotaResetHour > 23 {
		return nil, fmt.Errorf("retry: quota reset hour %d is not in 0..23", cfg.QuotaResetHour)
	}
	if cfg.UnknownMaxAttempts < 0 {
		return nil, fmt.Errorf("retry: unknown max attempts %d is negative", cfg.UnknownMaxAttempts)
	}
	if cfg.TransportMaxAttempts < 0 {
		return nil, fmt.Errorf("retry: transport max attempts %d is negative", cfg.TransportMaxAttempts)
	}
	for _, d := range []struct {
		name string
		spec DelaySpec
	}{
		{"unknown delay", cfg.UnknownDelay},
		{"not-sent delay", cfg.NotSentDelay},
		{"transport delay", cfg.TransportDelay},
	} {
		if reason := d.spec.validate(); reason != "" {
			return nil, fmt.Errorf("retry: %s: %s", d.name, reason)
		}
		if d.spec.Kind != DelayExponential && d.spec.Kind != DelayFixed {
			return nil, fmt.Errorf("retry: %s %q is not exponential or a fixed duration", d.name, d.spec)
		}
	}

	rules := make(map[int]Rule, len(defaultRules)+len(cfg.Rules))
	for _, r := range defaultRules {
		rules[r.Code] = r
	}
	seen := make(map[int]bool, len(cfg.Rules))
	for _, r := range cfg.Rules {
		if seen[r.Code] {
			return nil, &RuleError{Code: r.Code, Field: "code", Reason: "errcode given more than once"}
		}
		seen[r.Code] = true
		if field, reason := r.check(); reason != "" {
			return nil, &RuleError{Code: r.Code, Field: field, Reason: reason}
		}
		def, ok := rules[r.Code]
		rules[r.Code] = r.withDefaults(def, ok)
	}

	return &Policy{
		rules:          rules,
		loc:            cfg.QuotaLocation,
		resetHour:      cfg.QuotaResetHour,
		unknownMax:     cfg.UnknownMaxAttempts,
		unknownDelay:   cfg.UnknownDelay,
		transportMax:   cfg.TransportMaxAttempts,
		notSentDelay:   cfg.NotSentDelay,
		transportDelay: cfg.TransportDelay,
		rnd:            cfg.Rand,
	}, nil
}

// Rule returns the rule the policy applies to code, with its defaults
// filled in, and whether there is one.
func (p *Policy) Rule(code int) (Rule, bool) {
	r, ok := p.rules[code]
	return r, ok
}

// Rules returns every rule the policy applies, sorted by code.
func (p *Policy) Rules() []Rule {
	rules := slices.Collect(maps.Values(p.rules))
	slices.SortFunc(rules, func(a, b Rule) int { return cmp.Compare(a.Code, b.Code) })
	return rules
}

// Decision is what to do after one call: the outcome's class and the action
// to take now.
type Decision struct {
	// Class is the class of the outcome.
	Class Class
	// Action is what to do now.
	Action Action
	// Code is the errcode; 0 for success, transport failures and other
	// errors.
	Code int
	// Delay is the wait before the retry for ActionRetry, and the time
	// until Until for ActionPause. It is zero for other actions.
	Delay time.Duration
	// Until is when an ActionPause ends (the next quota reset, in the
	// quota zone). It is zero for other actions.
	Until time.Time
	// Meaning is a short English meaning such as "user unfollowed". It
	// holds no secrets (never WeChat's errmsg, which may carry an IP, nor
	// the error text) and is safe for reports.
	Meaning string
	// Unknown is set when the errcode has no rule: operators must see
	// these counted, and add a rule.
	Unknown bool
	// Ambiguous is set when the call may have reached WeChat although no
	// answer came back (a transport failure after the request was sent, a
	// context error, an unclassified error). Only sends with a dedupe key
	// (template client_msg_id) may retry it blindly.
	Ambiguous bool
	// Exhausted is set when a retrying class ran out of attempts: Action
	// is then ActionFail (or ActionStopCampaign for refresh_token) and
	// Class keeps the class that was retried.
	Exhausted bool
}

// Meanings that Decide gives outcomes without a rule of their own.
const (
	meaningTokenStillInvalid = "access_token keeps failing after refresh: another system may be refreshing it, or the appsecret changed"
	meaningTokenAPISecret    = "appsecret wrong: the token api answered 40001"
	meaningNotSent           = "transport failure before the request was sent"
	meaningAmbiguous         = "transport failure after the request was sent: timeout, dropped connection or bad body"
	meaningContext           = "call cancelled or timed out; it may have reached wechat"
	meaningUnclassified      = "unclassified error"
)

// Decide classifies err, the outcome of the call made on try number
// attempt (0 for the first try, 1 after one retry, ...), and says what to
// do now. now is the current time; Decide never reads the clock.
//
// The attempt counts every earlier try of the send, whatever its outcome,
// and is compared with the budget of the current outcome: with a budget of
// n, tries 0 to n-2 are retried and try n-1 is the last.
//
//   - nil: ok, ActionSucceed.
//   - *wechat.APIError: the rule of its Code. ok → ActionSucceed; retry →
//     ActionRetry after the rule's delay, ActionFail when the budget is
//     spent; refresh_token → ActionRetry after a short delay, then
//     ActionStopCampaign; recipient and message → ActionFail; fatal →
//     ActionStopCampaign; quota → ActionPause until the next reset (or for
//     the rule's fixed duration). 40001 from a token API means a wrong
//     appsecret and is fatal whatever the rules say. A code without a rule
//     is class unknown with Unknown set: retried with Config.UnknownDelay,
//     then failed.
//   - *wechat.TransportError: class retry, Code 0, retried with
//     Config.NotSentDelay when Sent is false and with Config.TransportDelay
//     (Ambiguous set) when Sent is true, then failed.
//   - context.Canceled or context.DeadlineExceeded: like an ambiguous
//     transport failure.
//   - any other error: class unknown (Unknown not set, as there is no
//     errcode), Ambiguous set because the policy cannot tell whether the
//     call reached WeChat, retried like an unknown errcode, then failed.
func (p *Policy) Decide(err error, attempt int, now time.Time) Decision {
	if attempt < 0 {
		attempt = 0
	}
	if err == nil {
		return Decision{Class: ClassOK, Action: ActionSucceed, Meaning: "ok"}
	}

	var apiErr *wechat.APIError
	if errors.As(err, &apiErr) {
		return p.decideCode(apiErr, attempt, now)
	}

	var te *wechat.TransportError
	if errors.As(err, &te) {
		if !te.Sent {
			d := Decision{Class: ClassRetry, Meaning: meaningNotSent}
			return p.retryOrFail(d, p.notSentDelay, p.transportMax, attempt, now)
		}
		d := Decision{Class: ClassRetry, Ambiguous: true, Meaning: meaningAmbiguous}
		if te.StatusCode != 0 {
			d.Meaning = "http status " + strconv.Itoa(te.StatusCode)
		}
		return p.retryOrFail(d, p.transportDelay, p.transportMax, attempt, now)
	}

	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		d := Decision{Class: ClassRetry, Ambiguous: true, Meaning: meaningContext}
		return p.retryOrFail(d, p.transportDelay, p.transportMax, attempt, now)
	}

	d := Decision{Class: ClassUnknown, Ambiguous: true, Meaning: meaningUnclassified}
	return p.retryOrFail(d, p.unknownDelay, p.unknownMax, attempt, now)
}

// decideCode decides for an answer with a non-zero errcode.
func (p *Policy) decideCode(e *wechat.APIError, attempt int, now time.Time) Decision {
	if e.Code == 40001 && errors.Is(e, wechat.ErrTokenConfig) {
		// On the token APIs 40001 is a wrong appsecret, not a stale token:
		// refreshing cannot help.
		return Decision{Class: ClassFatal, Action: ActionStopCampaign, Code: e.Code, Meaning: meaningTokenAPISecret}
	}
	r, ok := p.rules[e.Code]
	if !ok {
		p.countUnknown(e.Code)
		d := Decision{Class: ClassUnknown, Code: e.Code, Unknown: true, Meaning: "unknown errcode " + strconv.Itoa(e.Code)}
		return p.retryOrFail(d, p.unknownDelay, p.unknownMax, attempt, now)
	}

	d := Decision{Class: r.Class, Code: e.Code, Meaning: r.Meaning}
	switch r.Class {
	case ClassOK:
		d.Action = ActionSucceed
	case ClassRetry:
		return p.retryOrFail(d, r.Delay, r.MaxAttempts, attempt, now)
	case ClassRefreshToken:
		d = p.retryOrFail(d, r.Delay, r.MaxAttempts, attempt, now)
		if d.Exhausted {
			d.Action = ActionStopCampaign
			d.Meaning = meaningTokenStillInvalid
		}
	case ClassRecipient, ClassMessage:
		d.Action = ActionFail
	case ClassFatal:
		d.Action = ActionStopCampaign
	case ClassQuota:
		d.Action = ActionPause
		if r.Delay.Kind == DelayFixed {
			d.Until = now.Add(r.Delay.wait(attempt, now, p.rnd)).In(p.loc)
		} else {
			d.Until = p.NextQuotaReset(now)
		}
		d.Delay = d.Until.Sub(now)
	case ClassRest:
		d.Action = ActionDefer
		d.Delay = r.Delay.wait(attempt, now, p.rnd)
		d.Until = now.Add(d.Delay)
	default:
		// New admits no other class; fail safe rather than retry forever.
		d.Action = ActionFail
	}
	return d
}

// retryOrFail completes d as ActionRetry after spec's delay while attempt
// is within budget, and as an exhausted ActionFail after that.
func (p *Policy) retryOrFail(d Decision, spec DelaySpec, budget, attempt int, now time.Time) Decision {
	if attempt+1 >= budget {
		d.Action = ActionFail
		d.Exhausted = true
		return d
	}
	d.Action = ActionRetry
	d.Delay = spec.wait(attempt, now, p.rnd)
	return d
}

// NextQuotaReset returns the first Config.QuotaResetHour:00 in
// Config.QuotaLocation strictly after now, in that location. In a zone with
// daylight saving time, a reset hour that a clock change skips on some day
// resets at the instant of the change (when the clock jumps past it), and a
// reset hour that happens twice resets at its first occurrence.
func (p *Policy) NextQuotaReset(now time.Time) time.Time {
	y, m, d := now.In(p.loc).Date()
	r := p.resetOn(y, m, d)
	// A zone may skip a whole day (Samoa, 2011-12-30); a few days always
	// suffice.
	for i := 1; !r.After(now) && i <= 3; i++ {
		r = p.resetOn(y, m, d+i)
	}
	return r
}

// resetOn returns the instant of the quota reset on the given day (time.Date
// normalizes an out-of-range day).
func (p *Policy) resetOn(y int, m time.Month, d int) time.Time {
	r := time.Date(y, m, d, p.resetHour, 0, 0, 0, p.loc)
	// time.Date resolves a wall time that a clock change skips to some
	// instant one offset away, either before or after the change. The
	// reset happens when the clock passes the hour, which is the change
	// itself: the end of r's zone period when r is on the early side, its
	// start when r is on the late side.
	want := time.Date(y, m, d, p.resetHour, 0, 0, 0, time.UTC)
	got := time.Date(r.Year(), r.Month(), r.Day(), r.Hour(), r.Minute(), r.Second(), r.Nanosecond(), time.UTC)
	if got.Equal(want) {
		return r
	}
	start, end := r.ZoneBounds()
	if got.Before(want) {
		if !end.IsZero() {
			return end
		}
		return r
	}
	if !start.IsZero() {
		return start
	}
	return r
}

func (p *Policy) countUnknown(code int) {
	n, ok := p.unknown.Load(code)
	if !ok {
		n, _ = p.unknown.LoadOrStore(code, new(atomic.Int64))
	}
	n.(*atomic.Int64).Add(1)
}

// UnknownCodes returns how many times each errcode without a rule has been
// decided since the Policy was made, so that operators see codes WeChat
// added after this release (and can give them a rule). It is safe for
// concurrent use.
func (p *Policy) UnknownCodes() map[int]int64 {
	out := map[int]int64{}
	p.unknown.Range(func(k, v any) bool {
		out[k.(int)] = v.(*atomic.Int64).Load()
		return true
	})
	return out
}
