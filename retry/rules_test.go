package retry

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// docClasses is the class of every errcode in the classification table of
// wechat-api.md §8.2, written from the document row by row (not from
// defaultRules), so that a deleted or changed row fails a test. Where the
// document gives two classes the comment names the one chosen.
var docClasses = map[int]Class{
	-1:    ClassRetry,
	0:     ClassOK,
	40001: ClassRefreshToken,
	40002: ClassFatal,
	40003: ClassRecipient,
	40007: ClassMessage, // M/F
	40008: ClassMessage,
	40013: ClassFatal,
	40014: ClassRefreshToken,
	40032: ClassMessage,
	40130: ClassMessage,
	40033: ClassMessage,
	40036: ClassFatal, // M/F
	40037: ClassFatal,
	40059: ClassMessage,
	40125: ClassFatal,
	40164: ClassFatal,
	40200: ClassFatal,
	40243: ClassFatal,
	40249: ClassFatal, // M/F
	41001: ClassMessage,
	42001: ClassRefreshToken,
	43004: ClassRecipient,
	43019: ClassRecipient,
	43101: ClassRecipient,
	43116: ClassFatal,
	43117: ClassRest, // X/R: defer by hours
	44002: ClassMessage,
	45002: ClassMessage,
	45008: ClassMessage,
	45009: ClassQuota,
	45011: ClassRetry,
	45015: ClassRecipient,
	45019: ClassMessage,
	45028: ClassQuota,
	45047: ClassRecipient,
	45064: ClassMessage, // "—": menu API only
	45065: ClassOK,      // ✓
	45066: ClassRetry,
	45067: ClassMessage,
	45072: ClassMessage,
	45080: ClassRecipient, // X (ignore)
	45081: ClassRecipient, // X (ignore)
	45083: ClassMessage,
	45084: ClassMessage,
	45087: ClassFatal,
	45094: ClassFatal,
	46004: ClassRecipient,
	47001: ClassMessage,
	47002: ClassMessage,
	47003: ClassMessage,
	48001: ClassFatal,
	48002: ClassRecipient,
	48004: ClassFatal,
	48006: ClassQuota,
	48008: ClassFatal,
	48017: ClassRetry, // R/F
	50001: ClassFatal,
	50002: ClassFatal,
	50005: ClassRecipient,
	61004: ClassFatal,
	61007: ClassFatal,
	61024: ClassFatal,
	76021: ClassMessage,
	76022: ClassMessage,
	89501: ClassFatal, // F/Q
	89502: ClassFatal,
	89503: ClassFatal,
	89504: ClassFatal,
	89505: ClassFatal,
	89506: ClassFatal,
	89507: ClassFatal,
}

// otherDocClasses are the errcodes named outside §8.2 (§1.5 token config,
// §3.2/§3.4 customer service, §4.3 subscribe, §9.2 quota/get).
var otherDocClasses = map[int]Class{
	41002: ClassFatal,   // §1.5 appid missing
	41004: ClassFatal,   // §1.5 appsecret missing
	45098: ClassMessage, // §3.2 msgmenu size
	45099: ClassMessage, // §3.2 msgmenu size
	61452: ClassFatal,   // §3.4 invalid kf_account
	45168: ClassMessage, // §4.3 keyword in blacklist
	76003: ClassMessage, // §9.2 cgi_path without leading /
	// Media upload errcodes (issue 14; WeChat's global errcode page).
	40004: ClassMessage,
	40005: ClassMessage,
	40006: ClassMessage,
	40009: ClassMessage,
	40010: ClassMessage,
	40011: ClassMessage,
	40012: ClassMessage,
	41005: ClassMessage,
	45001: ClassMessage,
}

// TestMassAndMediaCodes: every errcode of the mass-send and media APIs
// (wechat-api.md §5, issue 14) has a row of the class a mass sender needs:
// 45065 is an idempotent success, 45066 a retry after a minute, the list
// and content errors terminal for the batch, 45028 a quota pause, and the
// admin-confirmation codes fatal.
func TestMassAndMediaCodes(t *testing.T) {
	t.Parallel()
	rules := make(map[int]Rule)
	for _, r := range DefaultRules() {
		rules[r.Code] = r
	}
	for code, class := range map[int]Class{
		45028: ClassQuota,
		45065: ClassOK,
		45066: ClassRetry,
		45067: ClassMessage,
		40130: ClassMessage,
		45019: ClassMessage,
		40032: ClassMessage,
		40059: ClassMessage,
		45083: ClassMessage,
		45084: ClassMessage,
		89504: ClassFatal,
		89505: ClassFatal,
		40007: ClassMessage,
		40004: ClassMessage,
		40005: ClassMessage,
		40006: ClassMessage,
		40009: ClassMessage,
		40010: ClassMessage,
		40011: ClassMessage,
		40012: ClassMessage,
		41005: ClassMessage,
		45001: ClassMessage,
	} {
		r, ok := rules[code]
		require.True(t, ok, "errcode %d has no row", code)
		require.Equal(t, class, r.Class, "errcode %d", code)
	}
	require.Equal(t, Fixed(time.Minute), rules[45066].Delay, "45066: wait a minute before the same clientmsgid again")
}

func TestDefaultRulesMatchDoc(t *testing.T) {
	t.Parallel()

	rules := make(map[int]Rule)
	for _, r := range DefaultRules() {
		_, dup := rules[r.Code]
		require.False(t, dup, "errcode %d has two rows", r.Code)
		rules[r.Code] = r
	}

	for _, want := range []map[int]Class{docClasses, otherDocClasses} {
		for code, class := range want {
			t.Run(fmt.Sprint(code), func(t *testing.T) {
				t.Parallel()
				r, ok := rules[code]
				require.True(t, ok, "errcode %d has no row", code)
				require.Equal(t, class, r.Class, "errcode %d", code)
			})
		}
	}

	// Every row is checked above: no row escapes the expected lists.
	for code := range rules {
		_, inDoc := docClasses[code]
		_, inOther := otherDocClasses[code]
		require.True(t, inDoc || inOther, "errcode %d has a row the test does not expect", code)
	}
}

func TestDefaultRulesAreValidAndComplete(t *testing.T) {
	t.Parallel()

	for _, r := range DefaultRules() {
		field, reason := r.check()
		require.Empty(t, reason, "errcode %d field %s", r.Code, field)
		require.NotEmpty(t, r.Meaning, "errcode %d", r.Code)
		// Rows are written out in full: filling defaults changes nothing.
		require.Equal(t, r, r.withDefaults(Rule{}, false), "errcode %d", r.Code)
	}
}

func TestDefaultRulesIsACopy(t *testing.T) {
	t.Parallel()

	a := DefaultRules()
	a[0].Class = ClassFatal
	a[0].Meaning = "changed"
	b := DefaultRules()
	require.NotEqual(t, a[0], b[0])
}

func TestTokenConfigCodesAreFatal(t *testing.T) {
	t.Parallel()

	// §1.5: the token API's configuration errcodes stop the campaign.
	for _, code := range []int{40002, 40013, 40125, 40164, 40243, 41002, 41004, 61004} {
		require.Equal(t, ClassFatal, otherOrDoc(t, code), "errcode %d", code)
	}
}

// otherOrDoc returns the class the default table gives code.
func otherOrDoc(t *testing.T, code int) Class {
	t.Helper()
	for _, r := range DefaultRules() {
		if r.Code == code {
			return r.Class
		}
	}
	t.Fatalf("errcode %d has no row", code)
	return ClassUnknown
}

func TestDesignSets(t *testing.T) {
	t.Parallel()

	// wechat-api.md §10.5 sets 3, 4 and 6 (5 is retry; 40001 is T).
	sets := []struct {
		class Class
		codes []int
	}{
		{ClassRecipient, []int{40003, 43004, 43019, 43101, 45015, 45047, 46004, 48002, 50005}},
		{ClassFatal, []int{40013, 40125, 40164, 61004, 40243, 40037, 43116, 48001, 48004, 48008, 50001, 50002, 40200, 45087, 45094, 89501, 89502, 89503, 89504, 89505, 89506, 89507}},
		{ClassRetry, []int{-1, 45066}},
		// 40036 is in the payload set of §10.5 but "fatal (payload bug)"
		// in §2.8; the table chose fatal.
		{ClassMessage, []int{40008, 40033, 41001, 44002, 45002, 45008, 45019, 40032, 40130, 45067, 47001, 47002, 47003}},
	}
	for _, set := range sets {
		for _, code := range set.codes {
			require.Equal(t, set.class, otherOrDoc(t, code), "errcode %d", code)
		}
	}
}

func TestRuleCheck(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		rule   Rule
		field  string
		reason string
	}{
		{"unknown class", Rule{Code: 1, Class: ClassUnknown}, "class", `class "unknown" cannot be given to a rule`},
		{"undefined class", Rule{Code: 1, Class: 42}, "class", "class 42 is not one of ok, refresh_token"},
		{"code 0 not ok", Rule{Code: 0, Class: ClassFatal}, "class", "errcode 0 is success"},
		{"delay on recipient", Rule{Code: 1, Class: ClassRecipient, Delay: Fixed(1)}, "delay", `delay "1ns" is not allowed for class "recipient"`},
		{"quota_reset on retry", Rule{Code: 1, Class: ClassRetry, Delay: UntilQuotaReset()}, "delay", `delay "quota_reset" is not allowed for class "retry"`},
		{"next_minute on token", Rule{Code: 1, Class: ClassRefreshToken, Delay: NextMinute(0)}, "delay", `class "refresh_token"`},
		{"exponential on quota", Rule{Code: 1, Class: ClassQuota, Delay: ExponentialDefault()}, "delay", `class "quota"`},
		{"bad base", Rule{Code: 1, Class: ClassRetry, Delay: Exponential(0, 2, 1)}, "delay", "exponential base 0s is not positive"},
		{"bad factor", Rule{Code: 1, Class: ClassRetry, Delay: Exponential(1, 0.5, 1)}, "delay", "factor 0.5"},
		{"max below base", Rule{Code: 1, Class: ClassRetry, Delay: Exponential(2, 2, 1)}, "delay", "max 1ns is less than base 2ns"},
		{"bad jitter", Rule{Code: 1, Class: ClassRetry, Delay: DelaySpec{Kind: DelayExponential, Base: 1, Factor: 2, Max: 1, Jitter: 1}}, "delay", "jitter 1 is not in [0, 1)"},
		{"negative spread", Rule{Code: 1, Class: ClassRetry, Delay: NextMinute(-1)}, "delay", "spread -1ns is negative"},
		{"zero fixed", Rule{Code: 1, Class: ClassRetry, Delay: Fixed(0)}, "delay", "fixed delay 0s is not positive"},
		{"undefined kind", Rule{Code: 1, Class: ClassRetry, Delay: DelaySpec{Kind: 9}}, "delay", "delay kind 9"},
		{"negative budget", Rule{Code: 1, Class: ClassRetry, MaxAttempts: -1}, "max_attempts", "max_attempts -1 is negative"},
		{"budget on fatal", Rule{Code: 1, Class: ClassFatal, MaxAttempts: 2}, "max_attempts", `not allowed for class "fatal"`},
		{"budget on quota", Rule{Code: 1, Class: ClassQuota, MaxAttempts: 2}, "max_attempts", `class "quota"`},
		{"long meaning", Rule{Code: 1, Class: ClassFatal, Meaning: string(make([]byte, 201))}, "meaning", "201 bytes"},
		{"control in meaning", Rule{Code: 1, Class: ClassFatal, Meaning: "a\nb"}, "meaning", "control character"},
		{"bad utf8 meaning", Rule{Code: 1, Class: ClassFatal, Meaning: "\xff"}, "meaning", "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			field, reason := tt.rule.check()
			require.Equal(t, tt.field, field)
			require.Contains(t, reason, tt.reason)
		})
	}
}
