package retry

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/require"
)

func TestLoadRules(t *testing.T) {
	t.Parallel()

	const file = `# operators' overrides
- code: 43117
  class: retry
  delay: 2h          # fixed
  max_attempts: 3
  meaning: per-user frequency limit
- code: -1
  class: retry
  delay: exponential
- code: 45011
  class: retry
  delay: next_minute
  max_attempts: 20
- {code: 45009, class: quota, delay: quota_reset}
- code: 45028
  class: quota
  delay: 30m
- code: 40001
  class: refresh_token
  delay: 500ms
  max_attempts: 3
- code: 0x1869F      # 99999 in hex is still an integer
  class: fatal
  meaning: "new code: stop"
- code: 48017
  class: message
`
	rules, err := LoadRules(strings.NewReader(file))
	require.NoError(t, err)
	require.Equal(t, []Rule{
		{Code: 43117, Class: ClassRetry, Delay: Fixed(2 * time.Hour), MaxAttempts: 3, Meaning: "per-user frequency limit"},
		{Code: -1, Class: ClassRetry, Delay: ExponentialDefault()},
		{Code: 45011, Class: ClassRetry, Delay: NextMinute(NextMinuteSpreadDefault), MaxAttempts: 20},
		{Code: 45009, Class: ClassQuota, Delay: UntilQuotaReset()},
		{Code: 45028, Class: ClassQuota, Delay: Fixed(30 * time.Minute)},
		{Code: 40001, Class: ClassRefreshToken, Delay: Fixed(500 * time.Millisecond), MaxAttempts: 3},
		{Code: 99999, Class: ClassFatal, Meaning: "new code: stop"},
		{Code: 48017, Class: ClassMessage},
	}, rules)

	// The rules feed New, and override the defaults.
	b := setup(t, Config{Rules: rules})
	d := b.policy.Decide(apiErr(43117), 0, b.now)
	require.Equal(t, ClassRetry, d.Class)
	require.Equal(t, ActionRetry, d.Action)
	require.Equal(t, 2*time.Hour, d.Delay)
	require.Equal(t, ActionFail, b.policy.Decide(apiErr(43117), 2, b.now).Action)
	require.Equal(t, ActionFail, b.policy.Decide(apiErr(48017), 0, b.now).Action)
	r, _ := b.policy.Rule(48017)
	require.Equal(t, "retired wechat ip: re-resolve dns", r.Meaning)
}

func TestLoadRulesEmpty(t *testing.T) {
	t.Parallel()

	for _, in := range []string{"", "\n\n", "# nothing here\n", "~\n", "null", "---\n", "[]"} {
		rules, err := LoadRules(strings.NewReader(in))
		require.NoError(t, err, "%q", in)
		require.Empty(t, rules, "%q", in)
	}
}

func TestLoadRulesAlias(t *testing.T) {
	t.Parallel()

	rules, err := LoadRules(strings.NewReader(`
- code: 1
  class: &c recipient
- code: 2
  class: *c
- &r {code: 3, class: fatal}
`))
	require.NoError(t, err)
	require.Equal(t, []Rule{{Code: 1, Class: ClassRecipient}, {Code: 2, Class: ClassRecipient}, {Code: 3, Class: ClassFatal}}, rules)
}

func TestLoadRulesInvalid(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		in    string
		line  int
		field string
		msg   string // the whole message, or a part of it when partial is set
		part  bool
	}{
		{
			name: "class typo",
			in:   "- code: 43117\n  class: retry\n- code: 1\n  class: retyr\n",
			line: 4, field: "class",
			msg: `retry: rules: line 4: class "retyr" is not one of ok, refresh_token, retry, recipient, message, fatal, quota, rest`,
		},
		{
			name: "unknown field",
			in:   "- code: 1\n  clas: fatal\n",
			line: 2, field: "clas",
			msg: `retry: rules: line 2: unknown field "clas" (want code, class, delay, max_attempts or meaning)`,
		},
		{
			name: "code not an integer",
			in:   "- code: abc\n  class: fatal\n",
			line: 1, field: "code",
			msg: `retry: rules: line 1: code "abc" is not an integer errcode`,
		},
		{name: "code float", in: "- code: 1.5\n  class: fatal\n", line: 1, field: "code", msg: `code "1.5" is not an integer`, part: true},
		{name: "code quoted", in: "- code: \"40001\"\n  class: fatal\n", line: 1, field: "code", msg: `code "40001" is not an integer`, part: true},
		{name: "code too large", in: "- code: 99999999999\n  class: fatal\n", line: 1, field: "code", msg: `code "99999999999" is not an integer errcode`, part: true},
		{name: "code empty", in: "- code:\n  class: fatal\n", line: 1, field: "code", msg: "line 1: code is empty", part: true},
		{name: "code missing", in: "- code: 1\n  class: fatal\n-\n  class: fatal\n", line: 4, field: "code", msg: "line 4: rule has no code", part: true},
		{name: "class missing", in: "- code: 1\n  meaning: x\n", line: 1, field: "class", msg: "line 1: rule has no class", part: true},
		{name: "class unknown", in: "- code: 1\n  class: unknown\n", line: 2, field: "class", msg: `line 2: class "unknown" cannot be given to a rule`, part: true},
		{name: "class list", in: "- code: 1\n  class: [fatal]\n", line: 2, field: "class", msg: "line 2: class must be a single value, not a list", part: true},
		{name: "code 0 fatal", in: "- code: 0\n  class: fatal\n", line: 2, field: "class", msg: `line 2: errcode 0 is success; class "fatal" is not allowed`, part: true},
		{
			name: "delay unparsable",
			in:   "- code: 1\n  class: retry\n  delay: 2x\n",
			line: 3, field: "delay",
			msg: `retry: rules: line 3: delay "2x" is not exponential, next_minute, quota_reset or a Go duration such as 2h`,
		},
		{name: "delay negative", in: "- code: 1\n  class: retry\n  delay: -5s\n", line: 3, field: "delay", msg: `delay "-5s" is not exponential`, part: true},
		{name: "delay zero", in: "- code: 1\n  class: retry\n  delay: 0s\n", line: 3, field: "delay", msg: `delay "0s"`, part: true},
		{name: "delay number", in: "- code: 1\n  class: retry\n  delay: 60\n", line: 3, field: "delay", msg: `delay "60"`, part: true},
		{
			name: "delay on recipient",
			in:   "- code: 1\n  class: recipient\n  delay: 1h\n",
			line: 3, field: "delay",
			msg: `retry: rules: line 3: delay "1h0m0s" is not allowed for class "recipient" (this class takes no delay)`,
		},
		{name: "quota_reset on retry", in: "- code: 1\n  class: retry\n  delay: quota_reset\n", line: 3, field: "delay", msg: `delay "quota_reset" is not allowed for class "retry" (use exponential, next_minute or a duration)`, part: true},
		{name: "next_minute on quota", in: "- code: 1\n  class: quota\n  delay: next_minute\n", line: 3, field: "delay", msg: `(use quota_reset or a duration)`, part: true},
		{name: "max_attempts negative", in: "- code: 1\n  class: retry\n  max_attempts: -1\n", line: 3, field: "max_attempts", msg: "line 3: max_attempts -1 is negative", part: true},
		{name: "max_attempts word", in: "- code: 1\n  class: retry\n  max_attempts: three\n", line: 3, field: "max_attempts", msg: `line 3: max_attempts "three" is not an integer`, part: true},
		{name: "max_attempts on fatal", in: "- code: 1\n  class: fatal\n  max_attempts: 2\n", line: 3, field: "max_attempts", msg: `max_attempts 2 is not allowed for class "fatal"`, part: true},
		{name: "meaning control", in: "- code: 1\n  class: fatal\n  meaning: \"a\\tb\"\n", line: 3, field: "meaning", msg: "control character", part: true},
		{name: "meaning mapping", in: "- code: 1\n  class: fatal\n  meaning: {a: b}\n", line: 3, field: "meaning", msg: "meaning must be a single value, not a mapping", part: true},
		{name: "duplicate field", in: "- code: 1\n  class: fatal\n  class: message\n", line: 3, field: "class", msg: `line 3: field "class" is given twice (first at line 2)`, part: true},
		{name: "duplicate code", in: "- code: 7\n  class: fatal\n- code: 8\n  class: fatal\n- code: 7\n  class: message\n", line: 5, field: "code", msg: "line 5: code 7 is already given at line 1", part: true},
		{name: "not a list", in: "code: 1\nclass: fatal\n", line: 1, msg: "line 1: the rules file must be a list of rules, not a mapping", part: true},
		{name: "scalar file", in: "hello\n", line: 1, msg: `not the value "hello"`, part: true},
		{name: "item not a mapping", in: "- code: 1\n  class: fatal\n- 45009\n", line: 3, msg: `line 3: a rule must be a mapping of code, class, delay, max_attempts and meaning, not the value "45009"`, part: true},
		{name: "item a list", in: "- [1, fatal]\n", line: 1, msg: "not a list", part: true},
		{name: "key a list", in: "- [a]: 1\n", line: 1, msg: "a field name must be a plain word", part: true},
		{name: "two documents", in: "- {code: 1, class: fatal}\n---\n- {code: 2, class: fatal}\n", line: 2, msg: "line 2: a second YAML document", part: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rules, err := LoadRules(strings.NewReader(tt.in))
			require.Nil(t, rules)
			var re *RuleError
			require.ErrorAs(t, err, &re)
			require.Equal(t, tt.line, re.Line, "line")
			require.Equal(t, tt.field, re.Field, "field")
			if tt.part {
				require.Contains(t, err.Error(), tt.msg)
				require.True(t, strings.HasPrefix(err.Error(), "retry: rules: line "), err.Error())
			} else {
				require.EqualError(t, err, tt.msg)
			}
		})
	}
}

func TestLoadRulesSyntaxError(t *testing.T) {
	t.Parallel()

	for _, in := range []string{
		"- code: 1\n  class: fatal\n - code: 2\n",
		"- code: [1\n",
		"- {code: 1, class: fatal\n",
		"- code: 1\n\t- code: 2\n",
	} {
		// yaml names the line of a syntax error, except on the first
		// line of the file.
		_, err := LoadRules(strings.NewReader(in))
		require.Error(t, err, "%q", in)
		require.Contains(t, err.Error(), "retry: rules: yaml: ", "%q", in)
		require.Contains(t, err.Error(), "line ", "%q", in)
	}
}

func TestLoadRulesTooLarge(t *testing.T) {
	t.Parallel()

	in := "# " + strings.Repeat("x", RulesMaxBytes) + "\n"
	_, err := LoadRules(strings.NewReader(in))
	require.ErrorIs(t, err, ErrRulesTooLarge)
}

func TestLoadRulesReadError(t *testing.T) {
	t.Parallel()

	boom := errors.New("boom")
	_, err := LoadRules(iotest.ErrReader(boom))
	require.ErrorIs(t, err, boom)
	require.ErrorContains(t, err, "retry: read rules: boom")
}

func TestLoadRulesDefaultsRoundTrip(t *testing.T) {
	t.Parallel()

	// Every default row can be written in the rules file syntax and read
	// back to the same rule, so the file format can express the whole
	// table. The one exception is the refresh delay's spread, which the
	// file has no spelling for: those rows leave the delay out and get it
	// back from the class's default.
	var b strings.Builder
	for _, r := range DefaultRules() {
		fmt.Fprintf(&b, "- code: %d\n  class: %s\n", r.Code, r.Class)
		if r.Delay.Kind != DelayNone && r.Class != ClassRefreshToken {
			fmt.Fprintf(&b, "  delay: %s\n", r.Delay)
		}
		if r.MaxAttempts != 0 {
			fmt.Fprintf(&b, "  max_attempts: %d\n", r.MaxAttempts)
		}
		fmt.Fprintf(&b, "  meaning: '%s'\n", strings.ReplaceAll(r.Meaning, "'", "''"))
	}
	rules, err := LoadRules(strings.NewReader(b.String()))
	require.NoError(t, err)
	want := DefaultRules()
	require.Len(t, rules, len(want))
	for i, r := range rules {
		require.Equal(t, want[i], r.withDefaults(Rule{}, false))
	}
}

func FuzzLoadRules(f *testing.F) {
	seeds := []string{
		"",
		"- code: 43117\n  class: retry\n  delay: 2h\n  max_attempts: 3\n  meaning: per-user frequency limit\n",
		"- {code: 45009, class: quota, delay: quota_reset}\n",
		"- code: 1\n  class: retyr\n",
		"- code: &a 1\n  class: *a\n",
		"- *x\n",
		"- code: 0\n  class: ok\n",
		"- code: -1\n  class: retry\n  delay: exponential\n  max_attempts: 0\n",
		"---\n- code: 1\n  class: fatal\n---\n",
		"- code: 1\n  class: fatal\n  class: fatal\n",
		"- [a]: 1\n",
		"- ? a\n  : b\n",
		"- code: 9223372036854775808\n  class: fatal\n",
		"- code: 1\n  class: refresh_token\n  delay: next_minute\n",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		rules, err := LoadRules(strings.NewReader(in))
		if err != nil {
			require.Nil(t, rules)
			require.NotEmpty(t, err.Error())
			var re *RuleError
			if errors.As(err, &re) {
				require.GreaterOrEqual(t, re.Line, 0)
				require.True(t, strings.HasPrefix(err.Error(), "retry: rules: line "), err.Error())
			}
			return
		}
		// Whatever LoadRules accepts, New accepts.
		p, err := New(Config{Rules: rules, Rand: func() float64 { return 0.5 }})
		require.NoError(t, err)
		now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
		for _, r := range rules {
			d := p.Decide(apiErr(r.Code), 0, now)
			require.NotZero(t, d.Action)
		}
	})
}
