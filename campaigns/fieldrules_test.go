package campaigns

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestCheckKeywordValue(t *testing.T) {
	t.Parallel()

	han := func(n int) string { return strings.Repeat("中", n) }
	ascii := func(n int) string { return strings.Repeat("a", n) }
	digits := func(n int) string { return strings.Repeat("7", n) }

	// want is "" when the value is accepted, else a part of the reason.
	tests := []struct {
		key, value, want string
	}{
		// thing: ≤20 characters of anything printable; counted in runes.
		{"thing1", ascii(20), ""},
		{"thing1", ascii(21), "21 characters, thing takes at most 20"},
		{"thing2", han(20), ""}, // 60 bytes, 20 characters
		{"thing2", han(21), "21 characters"},
		{"thing3", "您的订单已发货, ok!", ""},
		{"thing3", "<b>&amp;</b>", ""},
		{"thing4", "", "must not be empty"},
		{"thing4", "line\nbreak", "line breaks are not allowed"},
		{"thing4", "line\r", "line breaks are not allowed"},
		{"thing4", "para\u2028sep", "line breaks are not allowed"},
		{"thing4", "tab\there", "control character U+0009"},
		{"thing4", "bad\xe9utf8", "invalid UTF-8 at byte 3"},
		{"thing4", "\uFFFD is real", ""},

		// number: digits with an optional decimal part, ≤32 characters.
		{"number1", "12", ""},
		{"number1", "3.50", ""},
		{"number1", digits(32), ""},
		{"number1", digits(33), "33 characters, number takes at most 32"},
		{"number1", "-1", `'-' (U+002D) at position 1 is not allowed`},
		{"number1", "1,000", "','"},
		{"number1", "1.", "is not a number"},
		{"number1", ".5", "is not a number"},
		{"number1", "1.2.3", "is not a number"},
		{"number1", "１２", "is not allowed"}, // full-width digits

		// letter: ASCII letters only, ≤32.
		{"letter1", "abcXYZ", ""},
		{"letter1", ascii(32), ""},
		{"letter1", ascii(33), "33 characters"},
		{"letter1", "ab1", `'1' (U+0031) at position 3`},
		{"letter1", "é", "is not allowed"},

		// symbol: ≤5 symbols.
		{"symbol1", "!@#$%", ""},
		{"symbol1", "，。", ""},
		{"symbol1", "!!!!!!", "6 characters, symbol takes at most 5"},
		{"symbol1", "a", "'a'"},

		// character_string: ≤32 printable ASCII without spaces; no Chinese.
		{"character_string1", "ORDER-2024_001#7", ""},
		{"character_string1", ascii(32), ""},
		{"character_string1", ascii(33), "33 characters, character_string takes at most 32"},
		{"character_string12", "订单1", "'订' (U+8BA2) at position 1 is not allowed: character_string takes ASCII letters, digits and symbols without spaces (no Chinese)"},
		{"character_string1", "a b", "' ' (U+0020)"},

		// time: 24-hour time, optionally after a date; ranges with ~.
		{"time1", "15:01", ""},
		{"time1", "9:05:59", ""},
		{"time1", "2019-10-01 15:01", ""},
		{"time1", "2019年10月1日 15:01", ""},
		{"time1", "15:00~16:30", ""},
		{"time1", "2019-10-01 15:00 ~ 2019-10-01 16:30", ""},
		{"time1", "24:00", "is not a time"},
		{"time1", "15:60", "is not a time"},
		{"time1", "2019-10-01", "is not a time"},
		{"time1", "15:00~16:00~17:00", "is not a time"},
		{"time1", "3pm", "is not allowed"},

		// date: a date, optionally with a time; ranges with ~.
		{"date1", "2019-10-01", ""},
		{"date1", "2019/10/1", ""},
		{"date1", "2019.10.01", ""},
		{"date1", "2019年10月1日", ""},
		{"date1", "2019-10-01 15:01", ""},
		{"date1", "2019-10-01~2019-10-07", ""},
		{"date1", "2019-13-01", "is not a date"},
		{"date1", "19-10-01", "is not a date"},
		{"date1", "10月1日", "is not a date"},
		{"date1", "15:01", "is not a date"},
		{"date1", "tomorrow", "is not allowed"},

		// amount: currency symbol and/or 元, ≤10 digits.
		{"amount1", "¥39.80", ""},
		{"amount1", "39.80元", ""},
		{"amount1", "¥39.80元", ""},
		{"amount1", "￥100", ""},
		{"amount1", "$5", ""},
		{"amount1", "¥" + digits(10), ""},
		{"amount1", "¥" + digits(8) + ".55", ""}, // 10 digits in all
		{"amount1", "¥" + digits(11), "has 11 digits, amount takes at most 10"},
		{"amount1", "¥" + digits(9) + ".55", "has 11 digits"},
		{"amount1", "39.80", "start with a currency symbol"},
		{"amount1", "¥-5", "'-'"},
		{"amount1", "¥1,000", "','"},
		{"amount1", "¥", "is not an amount"},

		// phone_number: ≤17 digits and symbols.
		{"phone_number1", "+86-10-12345678", ""},
		{"phone_number1", "(010)1234" + digits(8), ""},
		{"phone_number1", digits(17), ""},
		{"phone_number1", digits(18), "18 characters, phone_number takes at most 17"},
		{"phone_number1", "138 0013 8000", "' ' (U+0020)"},
		{"phone_number1", "---", "has no digits"},

		// car_number: ≤8; Chinese only first and last.
		{"car_number1", "粤A8Z888", ""},
		{"car_number1", "粤A8Z888挂", ""},
		{"car_number1", "粤A8Z8888挂", "9 characters, car_number takes at most 8"},
		{"car_number1", "A粤888", "Chinese characters are allowed only first and last"},
		{"car_number1", "粤A-123", "'-'"},

		// name: ≤10 Chinese characters, or ≤20 letters and symbols.
		{"name1", "张三", ""},
		{"name1", "阿沛·阿旺晋美", ""},
		{"name1", han(10), ""},
		{"name1", han(11), "11 Chinese characters, name takes at most 10"},
		{"name1", "John O'Brien-Smith", ""},
		{"name1", ascii(20), ""},
		{"name1", ascii(21), "21 characters, name takes at most 20"},
		{"name1", "张 Smith", "Chinese characters only, or letters and symbols only"},
		{"name1", "R2D2", "'2'"},

		// phrase: ≤5 Chinese characters only.
		{"phrase1", "已发货", ""},
		{"phrase1", han(5), ""},
		{"phrase1", han(6), "6 characters, phrase takes at most 5"},
		{"phrase1", "ok", "phrase takes Chinese characters"},
		{"phrase1", "已 发", "' '"},

		// const: ≤20, may be empty.
		{"const1", "", ""},
		{"const1", ascii(20), ""},
		{"const1", ascii(21), "21 characters, const takes at most 20"},

		// first and remark: stripped by WeChat; any length, one line.
		{"first", strings.Repeat("很长的开头", 40), ""},
		{"remark", "", ""},
		{"remark", "a\nb", "line breaks are not allowed"},

		// no documented rule: the 2023 limit of 20 characters.
		{"keyword1", ascii(20), ""},
		{"keyword1", ascii(21), "21 characters, default takes at most 20"},
		{"short_thing1", han(21), "default takes at most 20"},
		{"keyword2", "", "must not be empty"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"/"+tt.value, func(t *testing.T) {
			t.Parallel()
			err := CheckKeywordValue(tt.key, tt.value)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			var ke *KeywordError
			require.True(t, errors.As(err, &ke))
			require.Equal(t, tt.key, ke.Key)
			require.Contains(t, ke.Reason, tt.want)
			require.Contains(t, err.Error(), "data."+tt.key+": ")
		})
	}
}

func TestCheckKeywordValueRule(t *testing.T) {
	t.Parallel()

	tests := []struct{ key, rule string }{
		{"thing1", "thing"},
		{"thing12", "thing"},
		{"character_string2", "character_string"},
		{"phone_number3", "phone_number"},
		{"first", "first"},
		{"keyword1", "default"},
		{"Thing1", "default"}, // keys are case-sensitive
		{"short_thing1", "default"},
	}
	for _, tt := range tests {
		var ke *KeywordError
		require.True(t, errors.As(CheckKeywordValue(tt.key, "\n"), &ke), tt.key)
		require.Equal(t, tt.rule, ke.Rule, tt.key)
	}
}

func TestCheckKeywordLiteral(t *testing.T) {
	t.Parallel()

	tests := []struct {
		key, literal, want string
	}{
		{"thing1", "", ""},
		{"thing1", "，您的订单已发货", ""},
		{"thing1", strings.Repeat("a", 20), ""},
		{"thing1", strings.Repeat("a", 21), "the text around the variables has 21 characters, thing takes at most 20"},
		{"thing1", "a\nb", "line breaks"},
		{"character_string1", "订单", "is not allowed"},
		{"amount1", "¥", ""}, // no format check on partial text
		{"time1", " ~ ", ""},
		{"number1", "x", "is not allowed"},
	}
	for _, tt := range tests {
		err := checkKeywordLiteral(tt.key, tt.literal)
		if tt.want == "" {
			require.NoError(t, err, tt.key+" "+tt.literal)
			continue
		}
		require.ErrorContains(t, err, tt.want)
	}
}

func TestValidKeyword(t *testing.T) {
	t.Parallel()

	for _, k := range []string{"thing1", "character_string2", "first", "remark", "keyword12", "phone_number03", "a", "thing_1"} {
		require.True(t, ValidKeyword(k), k)
	}
	for _, k := range []string{"", "1thing", "_thing1", "thing1a", "thing-1", "thing 1", "数据1", "thing1.DATA", strings.Repeat("a", 65)} {
		require.False(t, ValidKeyword(k), k)
	}
}

// FuzzCheckKeywordValue checks that CheckKeywordValue never panics, is
// deterministic, and never accepts a value that breaks the rules common to
// all keywords: valid UTF-8, no line breaks or control characters, within
// the rule's length.
func FuzzCheckKeywordValue(f *testing.F) {
	seeds := []struct{ key, value string }{
		{"thing1", "您的订单已发货"}, {"number2", "3.50"}, {"amount3", "¥39.80元"}, {"time4", "2019-10-01 15:01~16:00"},
		{"date5", "2019年10月1日"}, {"car_number6", "粤A8Z888挂"}, {"name7", "阿沛·阿旺晋美"}, {"phrase8", "已发货"},
		{"character_string9", "A-1"}, {"phone_number10", "+86-10-1234"}, {"symbol11", "!!"}, {"letter12", "ab"},
		{"const13", ""}, {"first", "x\ny"}, {"keyword1", "\xff"}, {"remark", "\u2028"},
	}
	for _, s := range seeds {
		f.Add(s.key, s.value)
	}
	f.Fuzz(func(t *testing.T, key, value string) {
		err := CheckKeywordValue(key, value)
		if (err == nil) != (CheckKeywordValue(key, value) == nil) {
			t.Fatal("not deterministic")
		}
		if err != nil {
			var ke *KeywordError
			if !errors.As(err, &ke) || ke.Reason == "" {
				t.Fatalf("error %v is not a *KeywordError with a reason", err)
			}
			return
		}
		if !utf8.ValidString(value) {
			t.Fatalf("accepted invalid UTF-8 %q for %s", value, key)
		}
		if strings.ContainsAny(value, "\n\r\u2028\u2029\x00\t") {
			t.Fatalf("accepted a line break or control character in %q for %s", value, key)
		}
		if rule := ruleFor(key); rule.max > 0 && utf8.RuneCountInString(value) > rule.max {
			t.Fatalf("accepted %d characters for %s (max %d)", utf8.RuneCountInString(value), key, rule.max)
		}
		if value == "" && !ruleFor(key).empty {
			t.Fatalf("accepted an empty value for %s", key)
		}
	})
}
