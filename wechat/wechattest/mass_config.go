package wechattest

import (
	"maps"
	"time"
)

// Account types of MassConfig.AccountTypes (wechat-api.md §5.4, §10.2).
const (
	// AccountService is a service account (服务号): each user gets at most
	// MassMonthlyPerUser mass messages per calendar month.
	AccountService = "service"
	// AccountSubscription is a subscription account (订阅号): at most
	// MassDailyPerUserSubscription mass message a day.
	AccountSubscription = "subscription"
)

// Fixed facts and defaults of the mass-send fake (wechat-api.md §5).
const (
	// MassPerMinuteDefault is MassConfig.PerMinute when 0: "Mass APIs are
	// limited to 60 requests/minute" (§5.4).
	MassPerMinuteDefault = 60
	// MassMonthlyPerUser is how many mass messages a user of a service
	// account receives per calendar month (§5.4); further ones filter him.
	MassMonthlyPerUser = 4
	// MassDailyPerUserSubscription is how many mass messages a user of a
	// subscription account receives per day (§5.4 says "once per day" per
	// account; the fake counts it per openid so that batches of one send
	// pass and a second send the same day is filtered).
	MassDailyPerUserSubscription = 1
	// MassDedupeWindow is how long a clientmsgid is remembered (§5.3).
	MassDedupeWindow = 24 * time.Hour
	// MassRetryGap is how soon a clientmsgid may not come again after it
	// was answered 45066 or after its job failed (§5.3 "请间隔1分钟重试").
	MassRetryGap = time.Minute
	// MassConfirmTimeout is how long a send to all waits for the admin's
	// confirmation before it fails (§5.4: "unconfirmed within 30 minutes").
	MassConfirmTimeout = 30 * time.Minute
	// MassSendingDefault is MassConfig.Sending when 0: how long a job stays
	// SENDING before it finishes.
	MassSendingDefault = time.Minute
	// MediaExpiry is the life of temporary media (media/upload): 3 days.
	MediaExpiry = 72 * time.Hour
	// PreviewByNameDaily is how many previews by WeChat ID an account may
	// make a day (§5.2, SDK doc).
	PreviewByNameDaily = 100
)

// MassConfig configures the mass-send and media APIs of the fake.
type MassConfig struct {
	// AccountTypes maps an appid to AccountService (the default for an
	// appid not listed) or AccountSubscription.
	AccountTypes map[string]string `yaml:"account_types"`
	// Protected lists the appids with API mass-send protection (API群发保护)
	// on: a sendall to all waits until ConfirmMass confirms or rejects it
	// and fails after MassConfirmTimeout (time-scaled).
	Protected []string `yaml:"protected"`
	// ReviewFailures maps a marker string to a review errcode (such as
	// 20001): a job whose text content, or whose draft's title or content,
	// holds the marker finishes "err(NNNNN)" and delivers nothing.
	ReviewFailures map[string]int `yaml:"review_failures"`
	// PerMinute is the most calls per account to the mass APIs together in
	// any sliding minute; more answer 45011. Default MassPerMinuteDefault.
	PerMinute int `yaml:"per_minute"`
	// Sending is how long a job stays SENDING (time-scaled). Default
	// MassSendingDefault.
	Sending time.Duration `yaml:"sending"`
	// Latency delays the answer of mass/send and mass/sendall after the
	// job is recorded (not time-scaled), so that a client's crash can land
	// between WeChat's acceptance and the client reading the answer.
	Latency time.Duration `yaml:"latency"`
}

// massSettings is a validated MassConfig.
type massSettings struct {
	types          map[string]string
	protected      map[string]bool
	review         map[string]int
	perMinute      int
	sending        time.Duration
	latency        time.Duration
	confirmTimeout time.Duration
	dedupeWindow   time.Duration
	retryGap       time.Duration
	mediaExpiry    time.Duration
}

func (c MassConfig) settings(apps map[string]bool, scaled func(time.Duration) time.Duration) (massSettings, error) {
	p := fieldPath(fieldElem("Mass", "mass"))
	st := massSettings{
		types:          maps.Clone(c.AccountTypes),
		protected:      make(map[string]bool, len(c.Protected)),
		review:         maps.Clone(c.ReviewFailures),
		perMinute:      c.PerMinute,
		sending:        c.Sending,
		latency:        c.Latency,
		confirmTimeout: scaled(MassConfirmTimeout),
		dedupeWindow:   scaled(MassDedupeWindow),
		retryGap:       scaled(MassRetryGap),
		mediaExpiry:    scaled(MediaExpiry),
	}
	for app, typ := range c.AccountTypes {
		if !apps[app] {
			return massSettings{}, configErrorf(append(p, fieldElem("AccountTypes", "account_types"), keyElem(app)), "unknown appid %q", app)
		}
		if typ != AccountService && typ != AccountSubscription {
			return massSettings{}, configErrorf(append(p, fieldElem("AccountTypes", "account_types"), keyElem(app)), "%q is not %q or %q", typ, AccountService, AccountSubscription)
		}
	}
	for i, app := range c.Protected {
		if !apps[app] {
			return massSettings{}, configErrorf(append(p, fieldElem("Protected", "protected"), indexElem(i)), "unknown appid %q", app)
		}
		st.protected[app] = true
	}
	for marker, code := range c.ReviewFailures {
		if marker == "" || code <= 0 {
			return massSettings{}, configErrorf(append(p, fieldElem("ReviewFailures", "review_failures"), keyElem(marker)), "needs a non-empty marker and a positive errcode, got %d", code)
		}
	}
	if st.perMinute < 0 {
		return massSettings{}, configErrorf(append(p, fieldElem("PerMinute", "per_minute")), "%d is negative", st.perMinute)
	}
	if st.perMinute == 0 {
		st.perMinute = MassPerMinuteDefault
	}
	if st.sending < 0 {
		return massSettings{}, configErrorf(append(p, fieldElem("Sending", "sending")), "%s is negative", st.sending)
	}
	if st.sending == 0 {
		st.sending = MassSendingDefault
	}
	if st.latency < 0 {
		return massSettings{}, configErrorf(append(p, fieldElem("Latency", "latency")), "%s is negative", st.latency)
	}
	st.sending = scaled(st.sending)
	return st, nil
}
