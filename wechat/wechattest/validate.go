package wechattest

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// openIDLen is the length of a WeChat openid: "o" and 27 URL-safe base64
// characters, such as "oia2TjuEGTNoeX76QEjQNrcURxG8".
const openIDLen = 28

// validOpenID reports whether s has the shape of a real openid,
// ^o[A-Za-z0-9_-]{27}$.
func validOpenID(s string) bool {
	if len(s) != openIDLen || s[0] != 'o' {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !isBase64URLByte(s[i]) {
			return false
		}
	}
	return true
}

func isBase64URLByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// checkCharset returns 40033 when body is not raw UTF-8 JSON: when it is not
// valid UTF-8 or holds any \u escape. WeChat refuses \uXXXX escapes ("invalid
// charset... if include \uxxxx will create fail"); whether that includes the
// \u003c-style escapes of Go's HTML escaping is unconfirmed, so the fake
// refuses every \u escape and clients must turn HTML escaping off. A \\u (an
// escaped backslash and a letter u) is not an escape and passes.
func checkCharset(body []byte) int {
	for i := 0; i < len(body); i++ {
		if body[i] == '\\' {
			if i+1 < len(body) && body[i+1] == 'u' {
				return 40033
			}
			i++ // Skip the escaped byte, which may itself be a backslash.
		}
	}
	if !utf8.Valid(body) {
		return 40033
	}
	return 0
}

// checkBody runs the checks every send API makes before parsing: an empty
// body is 44002, a body with \u escapes or bad UTF-8 is 40033.
func checkBody(body []byte) int {
	if len(body) == 0 {
		return 44002
	}
	return checkCharset(body)
}

// keywordType is the rule name of a template keyword: the key without its
// trailing digits, so "character_string12" has type "character_string".
func keywordType(key string) string {
	return strings.TrimRight(key, "0123456789")
}

// validKeywordKey reports whether key looks like a template placeholder:
// lower-case letters and underscores, then optional digits, at most 32 bytes.
func validKeywordKey(key string) bool {
	if key == "" || len(key) > 32 {
		return false
	}
	typ := keywordType(key)
	if typ == "" || typ[0] == '_' {
		return false
	}
	for i := 0; i < len(typ); i++ {
		if c := typ[i]; !(c >= 'a' && c <= 'z' || c == '_') {
			return false
		}
	}
	return true
}

// validKeywordValue checks value against WeChat's rule for the type of
// keyword key (wechat-api.md §2.4). No value may hold a newline or other
// control character, and only const values may be empty. The rules where
// WeChat's text leaves room are read strictly:
//
//   - thing: 1-20 characters of any kind.
//   - short_thing (undocumented): 1-5 characters of any kind.
//   - number: 1-32 ASCII digits with an optional decimal fraction, no sign.
//   - letter: 1-32 ASCII letters.
//   - symbol: 1-5 punctuation or symbol characters.
//   - character_string: 1-32 printable ASCII characters without spaces.
//   - time: a 24-hour time, optionally after a date; or a range "A~B".
//   - date: a date, optionally followed by a 24-hour time; or a range "A~B".
//     Dates are YYYY-M-D, YYYY/M/D or YYYY年M月D日; times are H:MM or H:MM:SS.
//   - amount: an optional currency symbol (¥ ￥ $ € £), 1-10 digits, an
//     optional fraction of 1-2 digits and an optional trailing 元.
//   - phone_number: 1-17 digits, spaces and + - ( ), with at least one digit.
//   - car_number: 2-8 characters, ASCII letters or digits, where only the
//     first and last may be Chinese.
//   - name: 1-10 Chinese characters (and ·), or 1-20 ASCII letters, spaces
//     and punctuation.
//   - phrase: 1-5 Chinese characters.
//   - const: 0-20 characters (WeChat also checks an enumeration the fake does
//     not know).
//   - first, remark: anything; WeChat strips them since 2023-05-04.
//   - any other keyword (historical templates, "keyword1"): 1-20 characters.
func validKeywordValue(key, value string) bool {
	typ := keywordType(key)
	if typ == "first" || typ == "remark" {
		return true
	}
	for _, r := range value {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	n := utf8.RuneCountInString(value)
	if n == 0 {
		return typ == "const"
	}
	switch typ {
	case "thing":
		return n <= 20
	case "short_thing":
		return n <= 5
	case "number":
		return n <= 32 && isDecimal(value, 0)
	case "letter":
		return n <= 32 && allRunes(value, isASCIILetter)
	case "symbol":
		return n <= 5 && allRunes(value, func(r rune) bool { return unicode.IsPunct(r) || unicode.IsSymbol(r) })
	case "character_string":
		return n <= 32 && allRunes(value, func(r rune) bool { return r > ' ' && r < 0x7f })
	case "time":
		return isTimeRange(value, true)
	case "date":
		return isTimeRange(value, false)
	case "amount":
		return isAmount(value)
	case "phone_number":
		return n <= 17 && strings.ContainsAny(value, "0123456789") &&
			allRunes(value, func(r rune) bool { return isASCIIDigit(r) || strings.ContainsRune(" +-()", r) })
	case "car_number":
		return isCarNumber(value)
	case "name":
		return isName(value)
	case "phrase":
		return n <= 5 && allRunes(value, isHan)
	case "const":
		return n <= 20
	}
	return n <= 20
}

func allRunes(s string, ok func(rune) bool) bool {
	for _, r := range s {
		if !ok(r) {
			return false
		}
	}
	return true
}

func isASCIIDigit(r rune) bool  { return r >= '0' && r <= '9' }
func isASCIILetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }
func isHan(r rune) bool         { return unicode.Is(unicode.Han, r) }

// isDecimal reports whether s is digits with an optional "." and fraction.
// maxInt and the fraction limit of 2 apply when maxInt > 0 (amounts).
func isDecimal(s string, maxInt int) bool {
	intPart, frac, hasFrac := strings.Cut(s, ".")
	if intPart == "" || !allRunes(intPart, isASCIIDigit) {
		return false
	}
	if maxInt > 0 && len(intPart) > maxInt {
		return false
	}
	if hasFrac {
		if frac == "" || !allRunes(frac, isASCIIDigit) {
			return false
		}
		if maxInt > 0 && len(frac) > 2 {
			return false
		}
	}
	return true
}

func isAmount(s string) bool {
	for _, sym := range []string{"¥", "￥", "$", "€", "£"} {
		if rest, ok := strings.CutPrefix(s, sym); ok {
			s = rest
			break
		}
	}
	s = strings.TrimSuffix(s, "元")
	return isDecimal(s, 10)
}

func isCarNumber(s string) bool {
	rs := []rune(s)
	if len(rs) < 2 || len(rs) > 8 {
		return false
	}
	for i, r := range rs {
		switch {
		case isASCIILetter(r) || isASCIIDigit(r):
		case isHan(r) && (i == 0 || i == len(rs)-1):
		default:
			return false
		}
	}
	return true
}

func isName(s string) bool {
	n := utf8.RuneCountInString(s)
	if strings.ContainsFunc(s, isHan) {
		return n <= 10 && allRunes(s, func(r rune) bool { return isHan(r) || r == '·' })
	}
	return n <= 20 && allRunes(s, func(r rune) bool {
		return isASCIILetter(r) || r == ' ' || r < 0x7f && unicode.IsPunct(r)
	})
}

// isTimeRange checks a time (needTime) or date value, which may be a range
// of two such values joined by "~".
func isTimeRange(s string, needTime bool) bool {
	a, b, isRange := strings.Cut(s, "~")
	if !isRange {
		return isDateTime(s, needTime)
	}
	return isDateTime(strings.TrimSpace(a), needTime) && isDateTime(strings.TrimSpace(b), needTime)
}

// isDateTime checks "[date ]time" when needTime, else "date[ time]".
func isDateTime(s string, needTime bool) bool {
	date, clock, hasBoth := strings.Cut(s, " ")
	if hasBoth {
		return isDate(date) && isClock(clock)
	}
	if needTime {
		return isClock(s)
	}
	return isDate(s)
}

// isDate accepts YYYY-M-D, YYYY/M/D and YYYY年M月D日 with a real month and day.
func isDate(s string) bool {
	var parts []string
	switch {
	case strings.Contains(s, "年"):
		rest, ok := strings.CutSuffix(s, "日")
		if !ok {
			return false
		}
		y, rest, ok1 := strings.Cut(rest, "年")
		m, d, ok2 := strings.Cut(rest, "月")
		if !ok1 || !ok2 {
			return false
		}
		parts = []string{y, m, d}
	case strings.Contains(s, "-"):
		parts = strings.Split(s, "-")
	default:
		parts = strings.Split(s, "/")
	}
	if len(parts) != 3 || len(parts[0]) != 4 {
		return false
	}
	y, ok1 := smallInt(parts[0], 4)
	m, ok2 := smallInt(parts[1], 2)
	d, ok3 := smallInt(parts[2], 2)
	if !ok1 || !ok2 || !ok3 || y < 1 || m < 1 || m > 12 || d < 1 {
		return false
	}
	days := [...]int{31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m-1]
	if m == 2 && !(y%4 == 0 && (y%100 != 0 || y%400 == 0)) {
		days = 28
	}
	return d <= days
}

// isClock accepts H:MM and H:MM:SS in 24-hour time.
func isClock(s string) bool {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return false
	}
	h, ok := smallInt(parts[0], 2)
	if !ok || h > 23 {
		return false
	}
	for _, p := range parts[1:] {
		v, ok := smallInt(p, 2)
		if !ok || len(p) != 2 || v > 59 {
			return false
		}
	}
	return true
}

// smallInt parses 1 to maxLen ASCII digits.
func smallInt(s string, maxLen int) (int, bool) {
	if s == "" || len(s) > maxLen {
		return 0, false
	}
	v := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		v = v*10 + int(s[i]-'0')
	}
	return v, true
}
