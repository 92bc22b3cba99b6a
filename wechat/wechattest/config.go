package wechattest

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults and bounds of Config.
const (
	// AppIDDefault is the appid of the one account a Config without Accounts
	// has.
	AppIDDefault = "wx00000000000fake1"
	// SecretDefault is the appsecret of that default account.
	SecretDefault = "fakesecret-0123456789abcdef0123456"
	// TemplateIDDefault is the only template id template/send accepts when
	// Config.TemplateIDs is empty.
	TemplateIDDefault = "TPL_ORDER_SHIPPED"
	// SubscribeTemplateIDDefault is the only template id subscribe/bizsend
	// accepts when Config.SubscribeTemplateIDs is empty.
	SubscribeTemplateIDDefault = "SUB_ORDER_SHIPPED"
	// PageSizeDefault is the page size of user/get and user/tag/get when
	// Config.PageSize is 0. It is WeChat's.
	PageSizeDefault = 10000
	// PageSizeMax is the largest Config.PageSize.
	PageSizeMax = 10000
	// FollowersMax is the largest Config.Followers. Generated followers take
	// no memory, so the bound only keeps openids unique with certainty.
	FollowersMax = 1 << 40
	// PerSecondMax is the largest Limit.PerSecond; the limiter keeps one
	// timestamp per allowed call of the window.
	PerSecondMax = 1_000_000
	// MaxBodyBytes is the largest request body the fake reads; a larger body
	// answers 47001.
	MaxBodyBytes = 1 << 20
)

// WeChat's documented durations. The fake divides each by Config.TimeScale.
const (
	// TokenTTL is the lifetime of an access_token (expires_in 7200).
	TokenTTL = 7200 * time.Second
	// TokenOverlap is how long a replaced access_token stays valid, and how
	// early stable_token rolls a token over before it expires.
	TokenOverlap = 5 * time.Minute
	// DedupeWindow is how long template/send remembers a client_msg_id.
	DedupeWindow = 10 * time.Minute
	// ForceRefreshSpacing is the least time between two effective
	// stable_token calls with force_refresh=true.
	ForceRefreshSpacing = 30 * time.Second
	// ForceRefreshDailyMax is how many effective force_refresh calls an
	// account gets a day.
	ForceRefreshDailyMax = 20
)

// Config configures a Server. The zero Config is valid: one account
// (AppIDDefault, SecretDefault), one template (TemplateIDDefault), one
// subscribe template (SubscribeTemplateIDDefault), no followers, no limits
// and no faults, on the real clock.
type Config struct {
	// Accounts are the Official Accounts the fake knows. Each AppID is "wx"
	// and 16 letters or digits; each Secret is not empty. Default: one
	// account {AppIDDefault, SecretDefault}.
	Accounts []Account

	// TemplateIDs is the allow-list of template/send; other ids answer 40037
	// and an empty template_id 40036. Server.SetTemplateIDs replaces it at
	// run time. Default: TemplateIDDefault.
	TemplateIDs []string
	// SubscribeTemplateIDs is the allow-list of subscribe/bizsend; other or
	// empty ids answer 40037. Default: SubscribeTemplateIDDefault.
	SubscribeTemplateIDs []string
	// TemplateKeywords optionally gives the exact keyword set of a template
	// or subscribe template id. A send whose data misses one of them or has
	// another answers 47003 naming the key. Ids not listed accept any
	// well-formed keywords. Each id must be in TemplateIDs or
	// SubscribeTemplateIDs.
	TemplateKeywords map[string][]string

	// MediaIDs is the allow-list for media_id, thumb_media_id and article_id
	// of customer-service messages; others answer 40007. Empty accepts any
	// non-empty id.
	MediaIDs []string
	// KFAccounts is the allow-list for customservice.kf_account; others
	// answer 61452. Empty accepts any "name@domain".
	KFAccounts []string

	// Followers is the number of generated followers. Their openids are
	// derived from Seed, look like real ones (^o[A-Za-z0-9_-]{27}$) and take
	// no memory. 0 means none.
	Followers int
	// FollowerIDs are further followers, listed after the generated ones.
	FollowerIDs []string
	// Tags maps a tag id to its members' openids, for user/tag/get. Other tag
	// ids answer 45159.
	Tags map[int64][]string
	// RequireFollower makes sends to openids that are not followers of the
	// sending account fail: 43004 on template/send and subscribe/bizsend,
	// 45015 on custom/send (which reports unfollowed users that way). Each
	// account's followers start as Followers and FollowerIDs; follows and
	// unfollows (Server.Interact) change them.
	RequireFollower bool
	// Terminal maps an openid to the errcode every send API answers for it,
	// such as 43004, 43101, 40003, 43117, 45015, 45047 or 48002. It is
	// checked after the body is found valid. Server.SetTerminal changes it at
	// run time.
	Terminal map[string]int
	// CSWindow makes custom/send enforce WeChat's customer-service window
	// (wechat-api.md §3.1): a send to a user succeeds only within a window
	// opened by that user's interaction with the account (Server.Interact,
	// Server.PushInteraction), else 45015; once the window's messages are
	// used up, 45047. Default: off, so that custom/send accepts any
	// recipient (Terminal and RequireFollower still apply).
	CSWindow bool

	// Limits maps an API name (such as "message/template/send" or
	// "stable_token") to its limits, counted per (account, API). Calls over
	// Limit.PerSecond in any sliding second answer 45011; calls over
	// Limit.Daily answer 45009 until midnight in QuotaLocation or ResetQuotas.
	// Refused calls do not count.
	Limits map[string]Limit
	// PageSize is the page size of user/get and user/tag/get, 1 to
	// PageSizeMax. Default: PageSizeDefault.
	PageSize int

	// Faults are the fault rates the server starts with; SetFaults changes
	// them.
	Faults Faults
	// Seed seeds the fault draws and the generated followers' openids.
	Seed int64

	// TimeScale divides TokenTTL, TokenOverlap, DedupeWindow,
	// ForceRefreshSpacing, CSMessageWindow, CSEventWindow and
	// Callback.Delay, so that a demo sees tokens
	// rotate in minutes. It does not change the one-second window of
	// Limit.PerSecond, the daily reset, Faults.SlowDelay, Faults.Latency or
	// Callback.Timeout. Default: 1.
	TimeScale float64
	// NowFunc is the clock. Default: time.Now. Tests pass a ManualClock's
	// Now.
	NowFunc func() time.Time
	// QuotaLocation is where daily quotas reset at midnight. WeChat does not
	// document it; the default is UTC+8 (Asia/Shanghai, which has had no
	// daylight saving time since 1991).
	QuotaLocation *time.Location

	// Callback configures the TEMPLATESENDJOBFINISH receipts the fake
	// pushes to a callback URL, and the MASSSENDJOBFINISH events of mass
	// jobs. The zero Callback pushes none.
	Callback Callback

	// Mass configures the mass-send (群发) and media APIs. The zero
	// MassConfig makes every account a service account without mass-send
	// protection or review failures.
	Mass MassConfig
}

// Account is one Official Account of the fake.
type Account struct {
	// AppID is the account's appid: "wx" and 16 letters or digits.
	AppID string `yaml:"app_id"`
	// Secret is the account's appsecret.
	Secret string `yaml:"secret"`
	// TokenErrcode, when not 0, is what both token APIs answer for this
	// account after they recognise the appid, to simulate a configuration
	// failure: 40164 or 61004 (IP not whitelisted), 40243 (secret frozen),
	// 89503 (admin confirmation), and so on.
	TokenErrcode int `yaml:"token_errcode"`
}

// Limit is the call allowance of one API for each account. 0 means
// unlimited.
type Limit struct {
	// PerSecond is the most calls in any sliding one-second window.
	PerSecond int `yaml:"per_second"`
	// Daily is the most calls between two midnights of Config.QuotaLocation.
	Daily int `yaml:"daily"`
}

// settings is a validated Config with defaults applied.
type settings struct {
	accounts         []Account
	templateIDs      []string
	subTemplateIDs   []string
	templateKeywords map[string][]string
	mediaIDs         []string
	kfAccounts       []string
	followers        int
	followerIDs      []string
	tags             map[int64][]string
	requireFollower  bool
	terminal         map[string]int
	csWindow         bool
	csMessageTTL     time.Duration // CSMessageWindow, scaled
	csEventTTL       time.Duration // CSEventWindow, scaled
	limits           map[apiID]Limit
	pageSize         int
	faults           Faults
	seed             int64
	tokenTTL         time.Duration
	tokenOverlap     time.Duration
	dedupeWindow     time.Duration
	forceSpacing     time.Duration
	now              func() time.Time
	loc              *time.Location
	callback         *callbackSettings // nil: no receipts
	mass             massSettings
}

// quotaLocationDefault is UTC+8, named like the zone it stands for.
func quotaLocationDefault() *time.Location {
	return time.FixedZone("Asia/Shanghai", 8*60*60)
}

// pathElem is one step of the path to a Config field, spelled both as in Go
// (for New's errors) and as in YAML (for LoadConfig's).
type pathElem struct {
	goName, yamlName string // a struct field
	key              string // a map key, when isKey
	isKey            bool
	index            int // a slice index, when isIndex
	isIndex          bool
}

func fieldElem(goName, yamlName string) pathElem {
	return pathElem{goName: goName, yamlName: yamlName}
}
func keyElem(key string) pathElem { return pathElem{key: key, isKey: true} }
func indexElem(i int) pathElem    { return pathElem{index: i, isIndex: true} }

// ConfigError is a Config field with an invalid value.
type ConfigError struct {
	// Field is the Go path of the field, such as "Accounts[1].AppID".
	Field string
	// Key is the YAML path of the field, such as "accounts[1].app_id".
	Key string
	// Line is the line of the field in the YAML file LoadConfig read, or 0.
	Line int
	// Reason says what is wrong with the value.
	Reason string

	path []pathElem
}

// Error names the field (by its YAML key and line when it came from
// LoadConfig) and what is wrong with it.
func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("wechattest: config line %d: %s: %s", e.Line, e.Key, e.Reason)
	}
	return "wechattest: Config." + e.Field + ": " + e.Reason
}

func configErrorf(path []pathElem, format string, args ...any) *ConfigError {
	var goPath, yamlPath strings.Builder
	for i, el := range path {
		switch {
		case el.isKey:
			goPath.WriteString("[" + strconv.Quote(el.key) + "]")
			yamlPath.WriteString("[" + strconv.Quote(el.key) + "]")
		case el.isIndex:
			goPath.WriteString("[" + strconv.Itoa(el.index) + "]")
			yamlPath.WriteString("[" + strconv.Itoa(el.index) + "]")
		default:
			if i > 0 {
				goPath.WriteByte('.')
				yamlPath.WriteByte('.')
			}
			goPath.WriteString(el.goName)
			yamlPath.WriteString(el.yamlName)
		}
	}
	return &ConfigError{
		Field:  goPath.String(),
		Key:    yamlPath.String(),
		Reason: fmt.Sprintf(format, args...),
		path:   append([]pathElem(nil), path...),
	}
}

// fieldPath builds a path from its elements.
func fieldPath(elems ...pathElem) []pathElem { return elems }

// validate checks cfg and applies the defaults.
func (cfg Config) validate() (*settings, error) {
	st := &settings{
		requireFollower: cfg.RequireFollower,
		csWindow:        cfg.CSWindow,
		seed:            cfg.Seed,
		now:             cfg.NowFunc,
		loc:             cfg.QuotaLocation,
		// Copies, so that a caller changing its Config later cannot race
		// with the server.
		terminal:    maps.Clone(cfg.Terminal),
		tags:        cloneLists(cfg.Tags),
		followerIDs: slices.Clone(cfg.FollowerIDs),
	}
	if st.now == nil {
		st.now = time.Now
	}
	if st.loc == nil {
		st.loc = quotaLocationDefault()
	}

	accounts := fieldPath(fieldElem("Accounts", "accounts"))
	st.accounts = cfg.Accounts
	if len(st.accounts) == 0 {
		st.accounts = []Account{{AppID: AppIDDefault, Secret: SecretDefault}}
	}
	seenApp := make(map[string]bool, len(st.accounts))
	for i, a := range st.accounts {
		p := append(accounts, indexElem(i))
		if !validAppID(a.AppID) {
			return nil, configErrorf(append(p, fieldElem("AppID", "app_id")), "%q is not an appid (\"wx\" and 16 letters or digits)", a.AppID)
		}
		if seenApp[a.AppID] {
			return nil, configErrorf(append(p, fieldElem("AppID", "app_id")), "duplicate appid %q", a.AppID)
		}
		seenApp[a.AppID] = true
		if a.Secret == "" {
			return nil, configErrorf(append(p, fieldElem("Secret", "secret")), "empty")
		}
		if a.TokenErrcode < 0 {
			return nil, configErrorf(append(p, fieldElem("TokenErrcode", "token_errcode")), "%d is not a token API errcode", a.TokenErrcode)
		}
	}

	var err error
	if st.templateIDs, err = idList(cfg.TemplateIDs, TemplateIDDefault, fieldPath(fieldElem("TemplateIDs", "template_ids"))); err != nil {
		return nil, err
	}
	if st.subTemplateIDs, err = idList(cfg.SubscribeTemplateIDs, SubscribeTemplateIDDefault, fieldPath(fieldElem("SubscribeTemplateIDs", "subscribe_template_ids"))); err != nil {
		return nil, err
	}
	if st.templateKeywords, err = validateKeywords(cloneLists(cfg.TemplateKeywords), st.templateIDs, st.subTemplateIDs); err != nil {
		return nil, err
	}
	if st.mediaIDs, err = idList(cfg.MediaIDs, "", fieldPath(fieldElem("MediaIDs", "media_ids"))); err != nil {
		return nil, err
	}
	if st.kfAccounts, err = idList(cfg.KFAccounts, "", fieldPath(fieldElem("KFAccounts", "kf_accounts"))); err != nil {
		return nil, err
	}
	for i, kf := range st.kfAccounts {
		if !validKFAccount(kf) {
			return nil, configErrorf(fieldPath(fieldElem("KFAccounts", "kf_accounts"), indexElem(i)), "%q is not a kf_account (name@domain)", kf)
		}
	}

	if cfg.Followers < 0 || cfg.Followers > FollowersMax {
		return nil, configErrorf(fieldPath(fieldElem("Followers", "followers")), "%d is not in [0, %d]", cfg.Followers, FollowersMax)
	}
	st.followers = cfg.Followers
	for i, id := range st.followerIDs {
		if !validOpenID(id) {
			return nil, configErrorf(fieldPath(fieldElem("FollowerIDs", "follower_ids"), indexElem(i)), "%q is not an openid (o and 27 of [A-Za-z0-9_-])", id)
		}
	}
	for tag, members := range st.tags {
		p := fieldPath(fieldElem("Tags", "tags"), keyElem(strconv.FormatInt(tag, 10)))
		seen := make(map[string]bool, len(members))
		for i, id := range members {
			if !validOpenID(id) {
				return nil, configErrorf(append(p, indexElem(i)), "%q is not an openid", id)
			}
			if seen[id] {
				return nil, configErrorf(append(p, indexElem(i)), "duplicate openid %q", id)
			}
			seen[id] = true
		}
	}
	for id, code := range st.terminal {
		p := fieldPath(fieldElem("Terminal", "terminal"), keyElem(id))
		if !validOpenID(id) {
			return nil, configErrorf(p, "%q is not an openid", id)
		}
		if code == 0 {
			return nil, configErrorf(p, "errcode 0 is success, not a terminal error")
		}
	}

	st.limits = make(map[apiID]Limit, len(cfg.Limits))
	for name, l := range cfg.Limits {
		p := fieldPath(fieldElem("Limits", "limits"), keyElem(name))
		id, ok := apiByName(name)
		if !ok {
			return nil, configErrorf(p, "unknown API %q (one of %s)", name, strings.Join(apiNames(), ", "))
		}
		if l.PerSecond < 0 {
			return nil, configErrorf(append(p, fieldElem("PerSecond", "per_second")), "%d is negative", l.PerSecond)
		}
		if l.PerSecond > PerSecondMax {
			return nil, configErrorf(append(p, fieldElem("PerSecond", "per_second")), "%d is over %d", l.PerSecond, PerSecondMax)
		}
		if l.Daily < 0 {
			return nil, configErrorf(append(p, fieldElem("Daily", "daily")), "%d is negative", l.Daily)
		}
		st.limits[id] = l
	}

	st.pageSize = cfg.PageSize
	if st.pageSize == 0 {
		st.pageSize = PageSizeDefault
	}
	if st.pageSize < 1 || st.pageSize > PageSizeMax {
		return nil, configErrorf(fieldPath(fieldElem("PageSize", "page_size")), "%d is not in [1, %d]", cfg.PageSize, PageSizeMax)
	}

	faults, ferr := cfg.Faults.withDefaults()
	if ferr != nil {
		return nil, configErrorf(fieldPath(fieldElem("Faults", "faults"), fieldElem(ferr.field, ferr.key)), "%s", ferr.reason)
	}
	st.faults = faults

	scale := cfg.TimeScale
	if scale == 0 {
		scale = 1
	}
	if scale < 0 || math.IsNaN(scale) || math.IsInf(scale, 0) {
		return nil, configErrorf(fieldPath(fieldElem("TimeScale", "time_scale")), "%v is not a positive number", cfg.TimeScale)
	}
	scaled := func(d time.Duration) time.Duration {
		return max(time.Duration(float64(d)/scale), time.Millisecond)
	}
	st.tokenTTL = scaled(TokenTTL)
	st.tokenOverlap = scaled(TokenOverlap)
	st.dedupeWindow = scaled(DedupeWindow)
	st.forceSpacing = scaled(ForceRefreshSpacing)
	st.csMessageTTL = scaled(CSMessageWindow)
	st.csEventTTL = scaled(CSEventWindow)
	if st.callback, err = cfg.Callback.settings(st.accounts, scaled); err != nil {
		return nil, err
	}
	if st.mass, err = cfg.Mass.settings(seenApp, scaled); err != nil {
		return nil, err
	}
	return st, nil
}

// cloneLists copies a map of lists deeply.
func cloneLists[K comparable](m map[K][]string) map[K][]string {
	if m == nil {
		return nil
	}
	out := make(map[K][]string, len(m))
	for k, v := range m {
		out[k] = slices.Clone(v)
	}
	return out
}

// idList validates an allow-list: no empty or duplicate entries. An empty
// list becomes def, or stays empty when def is "".
func idList(ids []string, def string, p []pathElem) ([]string, error) {
	if len(ids) == 0 {
		if def == "" {
			return nil, nil
		}
		return []string{def}, nil
	}
	if i, reason := badID(ids); i >= 0 {
		return nil, configErrorf(append(p, indexElem(i)), "%s", reason)
	}
	return ids, nil
}

// badID returns the index of the first empty (or blank) or duplicate id of
// an allow-list and what is wrong with it, or -1.
func badID(ids []string) (int, string) {
	seen := make(map[string]bool, len(ids))
	for i, id := range ids {
		if strings.TrimSpace(id) == "" {
			return i, "empty id"
		}
		if seen[id] {
			return i, fmt.Sprintf("duplicate id %q", id)
		}
		seen[id] = true
	}
	return -1, ""
}

func validateKeywords(kw map[string][]string, tpl, sub []string) (map[string][]string, error) {
	known := make(map[string]bool, len(tpl)+len(sub))
	for _, id := range tpl {
		known[id] = true
	}
	for _, id := range sub {
		known[id] = true
	}
	for id, keys := range kw {
		p := fieldPath(fieldElem("TemplateKeywords", "template_keywords"), keyElem(id))
		if !known[id] {
			return nil, configErrorf(p, "template id %q is in neither TemplateIDs nor SubscribeTemplateIDs", id)
		}
		if len(keys) == 0 {
			return nil, configErrorf(p, "no keywords")
		}
		seen := make(map[string]bool, len(keys))
		for i, k := range keys {
			if !validKeywordKey(k) {
				return nil, configErrorf(append(p, indexElem(i)), "%q is not a template keyword such as thing1", k)
			}
			if seen[k] {
				return nil, configErrorf(append(p, indexElem(i)), "duplicate keyword %q", k)
			}
			seen[k] = true
		}
	}
	return kw, nil
}

// validAppID reports whether s is "wx" and 16 ASCII letters or digits.
func validAppID(s string) bool {
	if len(s) != 18 || !strings.HasPrefix(s, "wx") {
		return false
	}
	for _, r := range s[2:] {
		if !isASCIILetter(r) && !isASCIIDigit(r) {
			return false
		}
	}
	return true
}

// validKFAccount reports whether s looks like "name@domain".
func validKFAccount(s string) bool {
	name, domain, ok := strings.Cut(s, "@")
	return ok && name != "" && domain != "" && !strings.ContainsAny(s, " \t\r\n") && !strings.Contains(domain, "@")
}
