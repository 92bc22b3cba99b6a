package campaigns

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// KeywordError is a template or subscribe data value that breaks WeChat's
// rule for its keyword (wechat-api.md §2.4, §2.5). WeChat would answer such
// a send with 47003 "argument invalid! data.<key>.value invalid".
type KeywordError struct {
	// Key is the data keyword, such as "thing1".
	Key string
	// Rule is the rule applied: the keyword's prefix ("thing",
	// "character_string", ...) or "default" for keywords without a
	// documented rule.
	Rule string
	// Reason says what is wrong, naming the offending character or the
	// length. It does not repeat the value.
	Reason string
}

// Error returns "campaigns: data.<key>: <reason>".
func (e *KeywordError) Error() string {
	return "campaigns: data." + e.Key + ": " + e.Reason
}

// keywordRule is WeChat's rule for one keyword prefix.
type keywordRule struct {
	name string
	// max is the most characters (runes) a value may have; 0 means no limit.
	max int
	// empty allows the empty value. WeChat answers 47003 for empty values of
	// category keywords ("可能为空或者不满足规则").
	empty bool
	// char reports whether a character may appear at all; chars describes
	// the allowed set in an error message.
	char  func(r rune) bool
	chars Phrase
	// format checks the whole value once every character is allowed. It
	// returns "" or the reason the value is malformed. Nil means any
	// arrangement of allowed characters is fine.
	format func(s string) reason
}

// defaultRule applies to keywords with no documented rule: historical
// templates' keyword1..N and short_thing (UNCONFIRMED). Since 2023-05-04 every
// middle field is at most 20 characters without line breaks (§2.5), which is
// the safe choice.
var defaultRule = &keywordRule{name: "default", max: 20, char: isPrintable, chars: Phrase("printable characters")}

// keywordRules maps a keyword prefix (the key without its trailing digits) to
// its rule, from wechat-api.md §2.4.
var keywordRules = map[string]*keywordRule{
	// thing: ≤20 characters; Chinese, digits, letters, symbols.
	"thing": {name: "thing", max: 20, char: isPrintable, chars: Phrase("printable characters")},
	// number: ≤32 digits, decimals allowed. No sign, no grouping.
	"number": {name: "number", max: 32, char: isNumberChar, chars: Phrase("digits and one decimal point"), format: formatNumber},
	// letter: ≤32 letters only (ASCII letters).
	"letter": {name: "letter", max: 32, char: isASCIILetter, chars: Phrase("letters A-Z and a-z")},
	// symbol: ≤5 symbols only.
	"symbol": {name: "symbol", max: 5, char: isSymbol, chars: Phrase("symbols")},
	// character_string: ≤32 digits, letters and symbols; no Chinese. We allow
	// printable ASCII without space, the safe reading.
	"character_string": {name: "character_string", max: 32, char: isASCIIGraphic, chars: Phrase("ASCII letters, digits and symbols without spaces (no Chinese)")},
	// time: 24-hour time, optionally with a date; a range joins two with "~".
	"time": {name: "time", char: isDateTimeChar, chars: Phrase("digits and date/time separators"), format: formatTime},
	// date: a date, optionally with a 24-hour time; ranges with "~".
	"date": {name: "date", char: isDateTimeChar, chars: Phrase("digits and date/time separators"), format: formatDate},
	// amount: one currency symbol + ≤10 digits, decimals allowed, may end in 元.
	"amount": {name: "amount", char: isAmountChar, chars: Phrase("a currency symbol, digits, a decimal point and 元"), format: formatAmount},
	// phone_number: ≤17 characters, digits and symbols.
	"phone_number": {name: "phone_number", max: 17, char: isPhoneChar, chars: Phrase("digits and symbols such as + - ( )"), format: formatPhone},
	// car_number: ≤8 characters; the first and last may be Chinese, the rest
	// letters and digits.
	"car_number": {name: "car_number", max: 8, char: isCarChar, chars: Phrase("Chinese characters, letters and digits"), format: formatCar},
	// name: ≤10 Chinese characters, or ≤20 letters and symbols.
	"name": {name: "name", max: 20, char: isNameChar, chars: Phrase("Chinese characters, or letters, spaces and symbols"), format: formatName},
	// phrase: ≤5 Chinese characters only.
	"phrase": {name: "phrase", max: 5, char: isHan, chars: Phrase("Chinese characters")},
	// const: ≤20 characters; only pre-approved strings, or empty. The list
	// of approved strings is not available through the API.
	"const": {name: "const", max: 20, empty: true, char: isPrintable, chars: Phrase("printable characters")},
	// first and remark are accepted but WeChat strips them since
	// 2023-05-04 (§2.5); only line breaks and control characters are refused.
	"first":  {name: "first", empty: true, char: isPrintable, chars: Phrase("printable characters")},
	"remark": {name: "remark", empty: true, char: isPrintable, chars: Phrase("printable characters")},
}

// KeywordMaxBytes is the longest data keyword accepted, in bytes.
const KeywordMaxBytes = 64

// ValidKeyword reports whether key is a well-formed data keyword: an ASCII
// letter, then letters and underscores, then optional digits ("thing1",
// "character_string12", "first"), at most KeywordMaxBytes long.
func ValidKeyword(key string) bool {
	if key == "" || len(key) > KeywordMaxBytes || !isASCIILetter(rune(key[0])) {
		return false
	}
	i := 1
	for i < len(key) && (isASCIILetter(rune(key[i])) || key[i] == '_') {
		i++
	}
	for i < len(key) && key[i] >= '0' && key[i] <= '9' {
		i++
	}
	return i == len(key)
}

// ruleFor returns the rule for a keyword: the rule of its prefix (the key
// without trailing digits), or defaultRule.
func ruleFor(key string) *keywordRule {
	if r, ok := keywordRules[strings.TrimRight(key, "0123456789")]; ok {
		return r
	}
	return defaultRule
}

// CheckKeywordValue reports whether value is acceptable to WeChat as the
// value of the template or subscribe data keyword key, by the rule of the
// key's prefix (wechat-api.md §2.4): thing ≤20 characters, number ≤32 digits
// with an optional decimal part, letter ≤32 ASCII letters, symbol ≤5
// symbols, character_string ≤32 printable ASCII characters without spaces,
// time and date as 24-hour times and dates (a range joins two with "~"),
// amount as an optional currency symbol and ≤10 digits with an optional
// decimal part, the symbol or a final 元 being required, phone_number ≤17
// digits and symbols, car_number ≤8 letters and digits with Chinese allowed
// first and last, name ≤10 Chinese characters or ≤20 letters, spaces and
// symbols, phrase ≤5 Chinese characters, const ≤20 characters, and first and
// remark (which WeChat strips) anything on one line. Keywords with no
// documented rule (keyword1, short_thing, ...) get the 2023 rule for all
// middle fields: at most 20 characters.
//
// Lengths count characters (runes), not bytes. For every keyword the value
// must be valid UTF-8 and may hold no line break (\n, \r, U+2028, U+2029) or
// other control character (§2.5). Only const, first and remark may be empty.
//
// It returns nil or a *KeywordError. It is safe for concurrent use.
func CheckKeywordValue(key, value string) error {
	rule := ruleFor(key)
	if reason := rule.check(value, false); reason.bad() {
		return &KeywordError{Key: key, Rule: rule.name, Reason: reason.String()}
	}
	return nil
}

// checkKeywordLiteral checks the literal text of a data value that also
// holds variables: every literal character must be allowed and the literal
// text alone must fit the length limit. The whole value is checked per
// recipient, after rendering, by CheckKeywordValue.
func checkKeywordLiteral(key, literal string) error {
	rule := ruleFor(key)
	if reason := rule.check(literal, true); reason.bad() {
		return &KeywordError{Key: key, Rule: rule.name, Reason: reason.String()}
	}
	return nil
}

// check returns "" if s obeys the rule, or the reason. A partial s is the
// literal text around variables: it may be empty and skips the format check.
func (k *keywordRule) check(s string, partial bool) reason {
	if s == "" {
		if k.empty || partial {
			return reason{}
		}
		return reasonf("must not be empty")
	}
	n := 0
	for i, r := range s {
		n++
		switch {
		case r == utf8.RuneError && isInvalidAt(s, i):
			return reasonf("invalid UTF-8 at byte %d", i)
		case isLineBreak(r):
			return reasonf("line breaks are not allowed in template values (since 2023-05-04)")
		case unicode.IsControl(r):
			return reasonf("control character %s is not allowed", describeRune(r))
		case !k.char(r):
			return reasonf("character %s at position %d is not allowed: %s takes %s", describeRune(r), n, k.name, k.chars)
		}
	}
	if k.max > 0 && n > k.max {
		if partial {
			return reasonf("the text around the variables has %d characters, %s takes at most %d", n, k.name, k.max)
		}
		return reasonf("%d characters, %s takes at most %d", n, k.name, k.max)
	}
	if partial || k.format == nil {
		return reason{}
	}
	return k.format(s)
}

// isInvalidAt reports whether the RuneError decoded at s[i:] is an invalid
// byte rather than an encoded U+FFFD.
func isInvalidAt(s string, i int) bool {
	_, size := utf8.DecodeRuneInString(s[i:])
	return size == 1
}

// describeRune names a character for an error message: the character itself
// when printable, and always its code point.
func describeRune(r rune) string {
	if unicode.IsPrint(r) {
		return fmt.Sprintf("%q (%U)", r, r)
	}
	return fmt.Sprintf("%U", r)
}

func isLineBreak(r rune) bool {
	switch r {
	case '\n', '\r', '\v', '\f', 0x85, 0x2028, 0x2029:
		return true
	}
	return false
}

// isPrintable allows everything but control characters and line breaks,
// which check refuses before calling it.
func isPrintable(r rune) bool { return !unicode.IsControl(r) && !isLineBreak(r) }

func isDigit(r rune) bool       { return r >= '0' && r <= '9' }
func isASCIILetter(r rune) bool { return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' }
func isASCIIGraphic(r rune) bool {
	return r > ' ' && r < 0x7f
}
func isHan(r rune) bool         { return unicode.Is(unicode.Han, r) }
func isNumberChar(r rune) bool  { return isDigit(r) || r == '.' }
func isSymbol(r rune) bool      { return unicode.IsPunct(r) || unicode.IsSymbol(r) }
func isCarChar(r rune) bool     { return isHan(r) || isDigit(r) || isASCIILetter(r) }
func isCurrency(r rune) bool    { return unicode.Is(unicode.Sc, r) }
func isAmountChar(r rune) bool  { return isDigit(r) || r == '.' || r == '元' || isCurrency(r) }
func isASCIISymbol(r rune) bool { return r < 0x80 && isSymbol(r) }
func isPhoneChar(r rune) bool   { return isDigit(r) || isASCIISymbol(r) }

// isNameChar allows what either form of a name may hold: Chinese characters
// and the middle dot of transliterated names, or letters, spaces and
// symbols. Digits are not allowed in either.
func isNameChar(r rune) bool {
	return isHan(r) || r == ' ' || (unicode.IsLetter(r) || isSymbol(r)) && !unicode.IsDigit(r)
}

// isDateTimeChar allows the characters of the date and time forms accepted
// by parseDateTime.
func isDateTimeChar(r rune) bool {
	switch r {
	case ':', '-', '/', '.', ' ', '~', '年', '月', '日':
		return true
	}
	return isDigit(r)
}

// formatNumber accepts digits with an optional decimal part: "12", "3.50".
func formatNumber(s string) reason {
	if !isDecimal(s) {
		return reasonf("is not a number: digits with an optional decimal part, such as 12 or 3.50")
	}
	return reason{}
}

// isDecimal reports whether s is digits with an optional "." and digits.
func isDecimal(s string) bool {
	intPart, frac, hasDot := strings.Cut(s, ".")
	return allDigits(intPart) && (!hasDot || allDigits(frac))
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(rune(s[i])) {
			return false
		}
	}
	return true
}

func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if isDigit(rune(s[i])) {
			n++
		}
	}
	return n
}

// formatAmount accepts an optional leading currency symbol, then digits with
// an optional decimal part (at most 10 digits in all), then an optional
// "元"; the symbol or the 元 must be there: "¥39.80", "39.80元", "$5".
func formatAmount(s string) reason {
	body := s
	r, size := utf8.DecodeRuneInString(body)
	symbol := isCurrency(r)
	if symbol {
		body = body[size:]
	}
	yuan := strings.HasSuffix(body, "元")
	body = strings.TrimSuffix(body, "元")
	switch {
	case !symbol && !yuan:
		return reasonf("is not an amount: start with a currency symbol such as ¥ or end with 元, as in ¥39.80")
	case !isDecimal(body):
		return reasonf("is not an amount: a currency symbol, digits with an optional decimal part and an optional 元, as in ¥39.80")
	case countDigits(body) > 10:
		return reasonf("has %d digits, amount takes at most 10", countDigits(body))
	}
	return reason{}
}

// formatPhone requires at least one digit.
func formatPhone(s string) reason {
	if countDigits(s) == 0 {
		return reasonf("is not a phone number: it has no digits")
	}
	return reason{}
}

// formatCar allows Chinese characters only first and last.
func formatCar(s string) reason {
	n := utf8.RuneCountInString(s)
	i := 0
	for _, r := range s {
		i++
		if isHan(r) && i != 1 && i != n {
			return reasonf("is not a plate number: Chinese characters are allowed only first and last")
		}
	}
	return reason{}
}

// formatName accepts ≤10 Chinese characters (with "·"), or ≤20 letters,
// spaces and symbols with no Chinese.
func formatName(s string) reason {
	han, other := 0, 0
	for _, r := range s {
		switch {
		case isHan(r):
			han++
		case r == '·':
		default:
			other++
		}
	}
	switch {
	case han > 0 && other > 0:
		return reasonf("is not a name: use Chinese characters only, or letters and symbols only")
	case han > 10:
		return reasonf("%d Chinese characters, name takes at most 10", han)
	}
	return reason{}
}

// formatTime accepts a 24-hour time, optionally after a date, or a range of
// two joined by "~": "15:01", "2019-10-01 15:01:05", "2019年10月1日 15:01",
// "15:00~16:30".
func formatTime(s string) reason {
	return formatRange(s, true)
}

// formatDate accepts a date, optionally with a 24-hour time, or a range of
// two joined by "~": "2019-10-01", "2019/10/01", "2019.10.01",
// "2019年10月1日", "2019-10-01 15:01~2019-10-02 09:00".
func formatDate(s string) reason {
	return formatRange(s, false)
}

func formatRange(s string, isTime bool) reason {
	first, second, isRange := strings.Cut(s, "~")
	if !dateTimeOK(first, isTime) || isRange && !dateTimeOK(second, isTime) {
		if isTime {
			return reasonf("is not a time: a 24-hour time such as 15:01 or 2019-10-01 15:01, or two joined by ~")
		}
		return reasonf("is not a date: a date such as 2019-10-01 or 2019年10月1日, optionally with a 24-hour time, or two joined by ~")
	}
	return reason{}
}

// dateTimeOK reports whether s (surrounding spaces ignored) is a date, a
// time or a date and a time; a time is required if needTime, else a date.
func dateTimeOK(s string, needTime bool) bool {
	s = strings.TrimSpace(s)
	if s == "" {
		return false
	}
	datePart, timePart, both := strings.Cut(s, " ")
	if both {
		return isDate(datePart) && isClock(strings.TrimLeft(timePart, " "))
	}
	if needTime {
		return isClock(s)
	}
	return isDate(s)
}

// isClock accepts H:MM and H:MM:SS in 24-hour form.
func isClock(s string) bool {
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return false
	}
	return inRange(parts[0], 1, 2, 0, 23) && inRange(parts[1], 2, 2, 0, 59) && (len(parts) == 2 || inRange(parts[2], 2, 2, 0, 59))
}

// isDate accepts YYYY-M-D, YYYY/M/D, YYYY.M.D and YYYY年M月D日.
func isDate(s string) bool {
	var y, m, d string
	if rest, ok := strings.CutSuffix(s, "日"); ok {
		var ok1, ok2 bool
		y, rest, ok1 = strings.Cut(rest, "年")
		m, d, ok2 = strings.Cut(rest, "月")
		if !ok1 || !ok2 {
			return false
		}
	} else {
		var parts []string
		for _, sep := range []string{"-", "/", "."} {
			if parts = strings.Split(s, sep); len(parts) == 3 {
				break
			}
		}
		if len(parts) != 3 {
			return false
		}
		y, m, d = parts[0], parts[1], parts[2]
	}
	return inRange(y, 4, 4, 1, 9999) && inRange(m, 1, 2, 1, 12) && inRange(d, 1, 2, 1, 31)
}

// inRange reports whether s is minLen..maxLen digits with a value in lo..hi.
func inRange(s string, minLen, maxLen, lo, hi int) bool {
	if len(s) < minLen || len(s) > maxLen || !allDigits(s) {
		return false
	}
	v, err := strconv.Atoi(s)
	return err == nil && v >= lo && v <= hi
}
