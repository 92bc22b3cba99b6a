package console

import "regexp"

// The API reports a refused line of a suppression import in English
// (api/suppress_import.go); lineErrors recognise its messages so that the
// console shows them translated, with their values. A message none
// recognises is shown as the API gave it.
var lineErrors = []struct {
	re  *regexp.Regexp
	key string
}{
	{regexp.MustCompile(`^openid: ("(?:[^"\\]|\\.)*") is not an openid: 20 to 64 letters, digits, '_' and '-'$`), "sup.line.openid"},
	{regexp.MustCompile(`^openid: duplicate of line ([0-9]+)$`), "sup.line.duplicate"},
	{regexp.MustCompile(`^openid: no openid$`), "sup.line.no_openid"},
	{regexp.MustCompile(`^([0-9]+) fields: want openid, or openid,note \(quote a note that has a comma\)$`), "sup.line.fields"},
	{regexp.MustCompile(`^note: ([0-9]+) characters, at most ([0-9]+)$`), "sup.line.note_long"},
	{regexp.MustCompile(`^note: a control character \((.*)\): a note is one line of text$`), "sup.line.note_control"},
	{regexp.MustCompile(`^invalid UTF-8: save the file as UTF-8$`), "sup.line.utf8"},
	{regexp.MustCompile(`^longer than ([0-9]+) bytes$`), "sup.line.too_long"},
	{regexp.MustCompile(`^not valid CSV: (.*)$`), "sup.line.csv"},
}

// lineError is the API's message about a refused line in v's language.
func lineError(v *view, msg string) string {
	for _, le := range lineErrors {
		m := le.re.FindStringSubmatch(msg)
		if m == nil {
			continue
		}
		args := make([]any, len(m)-1)
		for i, s := range m[1:] {
			args[i] = s
		}
		return v.T(le.key, args...)
	}
	return msg
}
