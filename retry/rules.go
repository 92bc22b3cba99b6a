package retry

import (
	"cmp"
	"fmt"
	"slices"
	"time"
	"unicode"
	"unicode/utf8"
)

// Defaults of the retry budgets. A budget of n allows n tries in all: the
// first try and n-1 retries.
const (
	// MaxAttemptsDefault is the budget of a retry rule whose MaxAttempts is
	// zero (wechat-api.md §8.2: "up to ~5 tries").
	MaxAttemptsDefault = 5
	// RefreshMaxAttemptsDefault is the budget of a refresh_token rule whose
	// MaxAttempts is zero. Each try already includes the client's own
	// compare-and-refresh and one immediate retry.
	RefreshMaxAttemptsDefault = 3
	// RefreshDelayDefault is the wait before a refresh_token retry, to
	// which up to RefreshSpreadDefault is added.
	RefreshDelayDefault = time.Second
	// RefreshSpreadDefault is the random spread added to
	// RefreshDelayDefault.
	RefreshSpreadDefault = time.Second
	// RestDefault is how long a ClassRest rule (43117) leaves a user
	// alone when it sets no delay, and how long a "failed:freq limit"
	// receipt does.
	RestDefault = 4 * time.Hour
	// MeaningMaxLen is the longest Meaning a rule may have, in bytes.
	MeaningMaxLen = 200
)

// Rule is one row of the classification table: how the policy treats an
// errcode.
type Rule struct {
	// Code is the WeChat errcode.
	Code int
	// Class is the errcode's class. ClassUnknown is not allowed in a rule.
	Class Class
	// Meaning is a short English meaning such as "user unfollowed". It ends
	// up in reports and logs, so it must never hold secrets. Empty in an
	// override means the default row's meaning.
	Meaning string
	// Delay is the wait before a retry (ClassRetry, ClassRefreshToken) or
	// the length of a pause (ClassQuota: DelayQuotaReset or DelayFixed).
	// Other classes must leave it DelayNone. DelayNone in a retrying or
	// pausing class means the class's default: ExponentialDefault for
	// retry, RefreshDelayDefault for refresh_token, the quota reset for
	// quota.
	Delay DelaySpec
	// MaxAttempts is the number of tries, first try included, after which
	// a retry rule fails the recipient and a refresh_token rule stops the
	// campaign. Zero means MaxAttemptsDefault or RefreshMaxAttemptsDefault;
	// other classes must leave it zero. It must not be negative.
	MaxAttempts int
}

// defaultRules is the built-in classification table (wechat-api.md §8.2,
// with the codes of §1.5, §2.8, §3.4, §4.3, §9.2 and §10.5). Where the
// document gives two classes, the comment says which one was chosen and why.
var defaultRules = []Rule{
	// Success.
	{Code: 0, Class: ClassOK, Meaning: "ok"},
	{Code: 45065, Class: ClassOK, Meaning: "clientmsgid exists: the mass job was already submitted (idempotent success)"},

	// Retry (R).
	{Code: -1, Class: ClassRetry, Meaning: "system busy", Delay: ExponentialDefault(), MaxAttempts: MaxAttemptsDefault},
	// 45011 is the per-minute quota: wait for the next minute. Its budget is
	// larger than the default because throttling is not the recipient's
	// fault and the rate limiter slows down meanwhile.
	{Code: 45011, Class: ClassRetry, Meaning: "per-minute api quota reached", Delay: NextMinute(NextMinuteSpreadDefault), MaxAttempts: 10},
	{Code: 45066, Class: ClassRetry, Meaning: "same clientmsgid retried too fast", Delay: Fixed(time.Minute), MaxAttempts: MaxAttemptsDefault},
	// 48017 R/F: retry. The call reached a retired WeChat IP; a new
	// connection re-resolves DNS and reaches a live one. Retries run out
	// into a failure, never into a loop.
	{Code: 48017, Class: ClassRetry, Meaning: "retired wechat ip: re-resolve dns", Delay: ExponentialDefault(), MaxAttempts: MaxAttemptsDefault},

	// Refresh the token (T). Repeated failure after refresh is fatal.
	{Code: 40001, Class: ClassRefreshToken, Meaning: "access_token invalid or not latest", Delay: refreshDelay(), MaxAttempts: RefreshMaxAttemptsDefault},
	{Code: 40014, Class: ClassRefreshToken, Meaning: "invalid access_token", Delay: refreshDelay(), MaxAttempts: RefreshMaxAttemptsDefault},
	{Code: 42001, Class: ClassRefreshToken, Meaning: "access_token expired", Delay: refreshDelay(), MaxAttempts: RefreshMaxAttemptsDefault},

	// Terminal for the recipient (X).
	{Code: 40003, Class: ClassRecipient, Meaning: "invalid openid (not following, or not this account's user)"},
	{Code: 43004, Class: ClassRecipient, Meaning: "user unfollowed"},
	{Code: 43019, Class: ClassRecipient, Meaning: "user is in the account's blacklist"},
	{Code: 43101, Class: ClassRecipient, Meaning: "user refused the message or has no subscription"},
	// 43117 X/R: defer the recipient by hours, not fail it: the per-user
	// frequency threshold is undocumented, and the user can take
	// messages again later. The rest also holds the user's other sends
	// that count toward the account's caps.
	{Code: 43117, Class: ClassRest, Meaning: "messages to this user too frequent", Delay: Fixed(RestDefault)},
	{Code: 45015, Class: ClassRecipient, Meaning: "customer-service window closed or user unfollowed"},
	{Code: 45047, Class: ClassRecipient, Meaning: "customer-service message count for this window used up"},
	// 45080/45081 "X (ignore)": typing is best effort; nothing to retry.
	{Code: 45080, Class: ClassRecipient, Meaning: "typing needs a user interaction in the last 30 s"},
	{Code: 45081, Class: ClassRecipient, Meaning: "user is already in typing state"},
	{Code: 46004, Class: ClassRecipient, Meaning: "user does not exist"},
	{Code: 48002, Class: ClassRecipient, Meaning: "user blocked messages from the account"},
	{Code: 50005, Class: ClassRecipient, Meaning: "user does not follow the account"},

	// Terminal for the message or payload (M).
	// 40007 M/F: message. Media shared by a whole campaign is checked when
	// the campaign is validated; a media_id that fails here is treated as
	// this message's problem.
	{Code: 40007, Class: ClassMessage, Meaning: "invalid media_id"},
	{Code: 40008, Class: ClassMessage, Meaning: "invalid message type"},
	// Media upload refusals (media/upload, material/add_material,
	// media/uploadimg; WeChat's global errcode page): the file is wrong,
	// so a retry of the same upload cannot succeed.
	{Code: 40004, Class: ClassMessage, Meaning: "invalid media type"},
	{Code: 40005, Class: ClassMessage, Meaning: "invalid file type"},
	{Code: 40006, Class: ClassMessage, Meaning: "invalid file size"},
	{Code: 40009, Class: ClassMessage, Meaning: "invalid image size"},
	{Code: 40010, Class: ClassMessage, Meaning: "invalid voice size"},
	{Code: 40011, Class: ClassMessage, Meaning: "invalid video size"},
	{Code: 40012, Class: ClassMessage, Meaning: "invalid thumb size"},
	{Code: 41005, Class: ClassMessage, Meaning: "media data missing"},
	{Code: 45001, Class: ClassMessage, Meaning: "media size out of limit"},
	{Code: 40032, Class: ClassMessage, Meaning: "invalid openid list size"},
	{Code: 40033, Class: ClassMessage, Meaning: "invalid characters: \\uxxxx escapes are not allowed"},
	{Code: 40059, Class: ClassMessage, Meaning: "invalid msg id"},
	{Code: 40130, Class: ClassMessage, Meaning: "openid list needs at least two openids"},
	{Code: 41001, Class: ClassMessage, Meaning: "access_token missing"},
	{Code: 44002, Class: ClassMessage, Meaning: "empty post data"},
	{Code: 45002, Class: ClassMessage, Meaning: "content size out of limit"},
	{Code: 45008, Class: ClassMessage, Meaning: "too many articles (customer-service news allows one)"},
	{Code: 45019, Class: ClassMessage, Meaning: "too many openids (at most 10,000)"},
	// 45064 "—": a menu API error, not a sending one; if it ever comes back
	// the request itself is wrong, so it is terminal for that message.
	{Code: 45064, Class: ClassMessage, Meaning: "menu has an unlinked mini program (menu api only)"},
	{Code: 45067, Class: ClassMessage, Meaning: "clientmsgid too long (at most 64 bytes)"},
	{Code: 45072, Class: ClassMessage, Meaning: "invalid typing command"},
	{Code: 45083, Class: ClassMessage, Meaning: "mass speed out of range"},
	{Code: 45084, Class: ClassMessage, Meaning: "no mass speed set"},
	{Code: 45098, Class: ClassMessage, Meaning: "msgmenu size out of limit"},
	{Code: 45099, Class: ClassMessage, Meaning: "msgmenu size out of limit"},
	{Code: 45168, Class: ClassMessage, Meaning: "content has a blacklisted keyword"},
	{Code: 47001, Class: ClassMessage, Meaning: "data format error (bad json)"},
	{Code: 47002, Class: ClassMessage, Meaning: "data format error: \\u escapes are not allowed"},
	{Code: 47003, Class: ClassMessage, Meaning: "template data argument invalid"},
	{Code: 76003, Class: ClassMessage, Meaning: "cgi_path must start with /"},
	{Code: 76021, Class: ClassMessage, Meaning: "cgi_path not found"},
	{Code: 76022, Class: ClassMessage, Meaning: "cgi_path not allowed for this token"},

	// Fatal for the campaign or account (F).
	{Code: 40002, Class: ClassFatal, Meaning: "invalid grant_type"},
	{Code: 40013, Class: ClassFatal, Meaning: "invalid appid"},
	// 40036 M/F: fatal. The template_id is the same for every send of a
	// campaign (usually a wrong JSON key), so failing each recipient in
	// turn would only burn the whole audience.
	{Code: 40036, Class: ClassFatal, Meaning: "invalid template_id size"},
	{Code: 40037, Class: ClassFatal, Meaning: "invalid template_id"},
	{Code: 40125, Class: ClassFatal, Meaning: "invalid appsecret"},
	{Code: 40164, Class: ClassFatal, Meaning: "caller ip not in the api ip whitelist"},
	{Code: 40200, Class: ClassFatal, Meaning: "api not available to this account type"},
	{Code: 40243, Class: ClassFatal, Meaning: "appsecret frozen"},
	// 40249 M/F: fatal. WeChat blocked the content; sending it to more
	// users risks sanctions on the account, so a human must look first.
	{Code: 40249, Class: ClassFatal, Meaning: "template message blocked for illegal content"},
	{Code: 41002, Class: ClassFatal, Meaning: "appid missing"},
	{Code: 41004, Class: ClassFatal, Meaning: "appsecret missing"},
	{Code: 43116, Class: ClassFatal, Meaning: "template banned"},
	{Code: 45087, Class: ClassFatal, Meaning: "customer-service messages from this account are blocked"},
	{Code: 45094, Class: ClassFatal, Meaning: "custom messages forbidden for this account (punishment)"},
	{Code: 48001, Class: ClassFatal, Meaning: "api unauthorized"},
	{Code: 48004, Class: ClassFatal, Meaning: "api banned for irregularities"},
	{Code: 48008, Class: ClassFatal, Meaning: "no permission for this message type"},
	{Code: 50001, Class: ClassFatal, Meaning: "api not authorized (or not authorized by the user)"},
	{Code: 50002, Class: ClassFatal, Meaning: "account restricted"},
	{Code: 61004, Class: ClassFatal, Meaning: "caller ip not in the api ip whitelist"},
	{Code: 61007, Class: ClassFatal, Meaning: "api not authorized to the third-party platform"},
	{Code: 61024, Class: ClassFatal, Meaning: "third-party account must get its token from api_component_token"},
	{Code: 61452, Class: ClassFatal, Meaning: "invalid kf_account"},
	// 89501–89507 F/Q: fatal. The account admin must confirm the caller's
	// IP (or has refused it); waiting out a quota reset would not help and
	// a human must act.
	{Code: 89501, Class: ClassFatal, Meaning: "admin confirmation of the caller ip pending"},
	{Code: 89502, Class: ClassFatal, Meaning: "waiting for admin confirmation of the caller ip"},
	{Code: 89503, Class: ClassFatal, Meaning: "this call needs admin confirmation of the caller ip"},
	{Code: 89504, Class: ClassFatal, Meaning: "waiting for admin confirmation"},
	{Code: 89505, Class: ClassFatal, Meaning: "waiting for admin confirmation"},
	{Code: 89506, Class: ClassFatal, Meaning: "admin refused the caller ip (blocked for 24 hours)"},
	{Code: 89507, Class: ClassFatal, Meaning: "admin refused the caller ip (blocked for 1 hour)"},

	// Quota (Q): pause the account's use of the API until the reset.
	{Code: 45009, Class: ClassQuota, Meaning: "daily api quota reached", Delay: UntilQuotaReset()},
	{Code: 45028, Class: ClassQuota, Meaning: "no mass-send quota left", Delay: UntilQuotaReset()},
	// 48006 is the monthly clear_quota limit: clearing cannot bring the
	// quota back, so the pause lasts until the daily reset.
	{Code: 48006, Class: ClassQuota, Meaning: "quota clear limit reached", Delay: UntilQuotaReset()},
}

// refreshDelay is the default wait before a refresh_token retry.
func refreshDelay() DelaySpec {
	return DelaySpec{Kind: DelayFixed, Base: RefreshDelayDefault, Spread: RefreshSpreadDefault}
}

// DefaultRules returns a copy of the built-in classification table, one
// rule per errcode, sorted by code. Every rule has its delay and budget
// filled in.
func DefaultRules() []Rule {
	rules := slices.Clone(defaultRules)
	slices.SortFunc(rules, func(a, b Rule) int { return cmp.Compare(a.Code, b.Code) })
	return rules
}

// check validates r on its own. On failure it returns the field at fault
// ("code", "class", "delay", "max_attempts" or "meaning") and a reason that
// names the value.
func (r Rule) check() (field, reason string) {
	if !r.Class.valid() || r.Class == ClassUnknown {
		if r.Class == ClassUnknown {
			return "class", fmt.Sprintf("class %q cannot be given to a rule; use one of %s", r.Class, ruleClassList())
		}
		return "class", fmt.Sprintf("class %d is not one of %s", int(r.Class), ruleClassList())
	}
	if r.Code == 0 && r.Class != ClassOK {
		return "class", fmt.Sprintf("errcode 0 is success; class %q is not allowed", r.Class)
	}
	if reason := r.Delay.validate(); reason != "" {
		return "delay", reason
	}
	if !delayAllowed(r.Class, r.Delay.Kind) {
		return "delay", fmt.Sprintf("delay %q is not allowed for class %q (%s)", r.Delay, r.Class, allowedDelays(r.Class))
	}
	if r.MaxAttempts < 0 {
		return "max_attempts", fmt.Sprintf("max_attempts %d is negative", r.MaxAttempts)
	}
	if r.MaxAttempts > 0 && r.Class != ClassRetry && r.Class != ClassRefreshToken {
		return "max_attempts", fmt.Sprintf("max_attempts %d is not allowed for class %q (only retry and refresh_token retry)", r.MaxAttempts, r.Class)
	}
	if reason := checkMeaning(r.Meaning); reason != "" {
		return "meaning", reason
	}
	return "", ""
}

// delayAllowed reports whether a rule of class c may use delay kind k.
func delayAllowed(c Class, k DelayKind) bool {
	if k == DelayNone {
		return true
	}
	switch c {
	case ClassRetry:
		return k == DelayExponential || k == DelayNextMinute || k == DelayFixed
	case ClassRefreshToken:
		return k == DelayExponential || k == DelayFixed
	case ClassQuota:
		return k == DelayQuotaReset || k == DelayFixed
	case ClassRest:
		return k == DelayFixed
	}
	return false
}

// allowedDelays describes the delays class c accepts, for error messages.
func allowedDelays(c Class) string {
	switch c {
	case ClassRetry:
		return "use exponential, next_minute or a duration"
	case ClassRefreshToken:
		return "use exponential or a duration"
	case ClassQuota:
		return "use quota_reset or a duration"
	case ClassRest:
		return "use a duration"
	}
	return "this class takes no delay"
}

// checkMeaning returns why m cannot be a rule's meaning, or "".
func checkMeaning(m string) string {
	switch {
	case len(m) > MeaningMaxLen:
		return fmt.Sprintf("meaning is %d bytes long; at most %d are allowed", len(m), MeaningMaxLen)
	case !utf8.ValidString(m):
		return "meaning is not valid UTF-8"
	}
	for _, r := range m {
		if unicode.IsControl(r) {
			return fmt.Sprintf("meaning %q has a control character", m)
		}
	}
	return ""
}

// withDefaults returns r with the class's default delay and budget filled
// in where r leaves them zero, and with def's meaning (or a generic one)
// when r has none.
func (r Rule) withDefaults(def Rule, hasDef bool) Rule {
	switch r.Class {
	case ClassRetry:
		if r.Delay.Kind == DelayNone {
			r.Delay = ExponentialDefault()
		}
		if r.MaxAttempts == 0 {
			r.MaxAttempts = MaxAttemptsDefault
		}
	case ClassRefreshToken:
		if r.Delay.Kind == DelayNone {
			r.Delay = refreshDelay()
		}
		if r.MaxAttempts == 0 {
			r.MaxAttempts = RefreshMaxAttemptsDefault
		}
	case ClassQuota:
		if r.Delay.Kind == DelayNone {
			r.Delay = UntilQuotaReset()
		}
	case ClassRest:
		if r.Delay.Kind == DelayNone {
			r.Delay = Fixed(RestDefault)
		}
	}
	if r.Meaning == "" {
		if hasDef && def.Meaning != "" {
			r.Meaning = def.Meaning
		} else {
			r.Meaning = fmt.Sprintf("errcode %d", r.Code)
		}
	}
	return r
}
