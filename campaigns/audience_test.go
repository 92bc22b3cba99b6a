package campaigns

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

const audienceDir = "../testdata/audience"

// readResult is everything an AudienceReader gave.
type readResult struct {
	recipients []Recipient
	report     Report
	err        error // the error that ended reading, nil for io.EOF
}

// readAll reads r to the end or to a fatal error.
func readAll(t testing.TB, r io.Reader, f Format, opts AudienceOptions) readResult {
	t.Helper()
	ar := NewAudienceReader(r, f, opts)
	var res readResult
	for {
		rcp, err := ar.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			res.err = err
			_, again := ar.Next()
			require.Equal(t, err, again, "a fatal error is sticky")
			break
		}
		res.recipients = append(res.recipients, rcp)
	}
	res.report = ar.Report()
	if res.err == nil {
		_, err := ar.Next()
		require.ErrorIs(t, err, io.EOF, "EOF is sticky")
	}
	rp := res.report
	require.Equal(t, rp.Lines, rp.Accepted+rp.Blank+rp.Duplicates+rp.InvalidOpenIDs+rp.Invalid, "counts add up: %+v", rp)
	require.Equal(t, rp.Accepted, len(res.recipients))
	return res
}

func readString(t testing.TB, s string, f Format, opts AudienceOptions) readResult {
	t.Helper()
	return readAll(t, strings.NewReader(s), f, opts)
}

func readFile(t testing.TB, name string, opts AudienceOptions) readResult {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(audienceDir, name))
	require.NoError(t, err)
	return readAll(t, bytes.NewReader(b), DetectFormat(name, b), opts)
}

func openids(rs []Recipient) []string {
	var ids []string
	for _, r := range rs {
		ids = append(ids, r.OpenID)
	}
	return ids
}

// lineErr is the part of a LineError a test checks: Message is a substring.
type lineErr struct {
	line  int
	field string
	msg   string
}

func requireLineErrors(t *testing.T, got []LineError, want []lineErr) {
	t.Helper()
	require.Len(t, got, len(want), "%v", got)
	for i, w := range want {
		require.Equal(t, w.line, got[i].Line, "error %d: %v", i, got[i])
		require.Equal(t, w.field, got[i].Field, "error %d: %v", i, got[i])
		require.Contains(t, got[i].Message, w.msg, "error %d", i)
		require.True(t, utf8.ValidString(got[i].Value), "value %q is safe", got[i].Value)
		require.Contains(t, got[i].Error(), fmt.Sprintf("line %d: ", w.line))
	}
}

func TestAudienceFiles(t *testing.T) {
	t.Parallel()

	tests := []struct {
		file     string
		opts     AudienceOptions
		accepted []Recipient
		report   Report // counts and Variables; Errors are checked by errors
		errors   []lineErr
	}{
		{
			file: "bom.csv",
			accepted: []Recipient{
				{Line: 2, OpenID: testOpenID(1), Vars: map[string]string{"name": "张三"}},
				{Line: 3, OpenID: testOpenID(2), Vars: map[string]string{"name": "Alice"}},
			},
			report: Report{Lines: 2, Accepted: 2, Variables: []string{"name"}},
		},
		{
			file: "crlf.csv",
			opts: AudienceOptions{RequiredVars: []string{"name"}},
			accepted: []Recipient{
				{Line: 2, OpenID: testOpenID(1), Vars: map[string]string{"name": "张三", "note": "a"}},
				{Line: 4, OpenID: testOpenID(2), Vars: map[string]string{"name": "two\nlines", "note": "b"}},
				{Line: 6, OpenID: testOpenID(3), Vars: map[string]string{"name": "Bob", "note": "c"}},
			},
			report: Report{Lines: 4, Accepted: 3, Blank: 1, Variables: []string{"name", "note"}},
		},
		{
			file: "nasty.csv",
			opts: AudienceOptions{RequiredVars: []string{"name"}},
			accepted: []Recipient{
				{Line: 2, OpenID: testOpenID(1), Vars: map[string]string{"name": "张三", "note": "ok"}},
				{Line: 4, OpenID: testOpenID(2), Vars: map[string]string{"name": "Smith, John", "note": `He said "hi"`}},
				{Line: 10, OpenID: testOpenID(5), Vars: map[string]string{"name": "multi\nline", "note": "note"}},
				{Line: 14, OpenID: testOpenID(7), Vars: map[string]string{"name": "<b>&amp;</b>", "note": "html"}},
				{Line: 15, OpenID: testOpenID(8), Vars: map[string]string{"name": "trimmed", "note": "x"}},
				{Line: 18, OpenID: testOpenID(11), Vars: map[string]string{"name": "recovered", "note": "x"}},
			},
			report: Report{Lines: 16, Accepted: 6, Blank: 2, Duplicates: 1, InvalidOpenIDs: 2, Invalid: 5, Variables: []string{"name", "note"}},
			errors: []lineErr{
				{5, "openid", "duplicate of line 2"},
				{6, "openid", "invalid openid"},
				{7, "openid", "no openid"},
				{8, "name", `variable "name" is empty`},
				{9, "", "2 fields, the header has 3"},
				{12, "", "a quote in an unquoted field"},
				{16, "", "text after the closing quote"},
				{17, "", "quoted field starting on this line is never closed"},
			},
		},
		{
			file: "latin1.csv",
			accepted: []Recipient{
				{Line: 2, OpenID: testOpenID(1), Vars: map[string]string{"name": "Alice"}},
				{Line: 4, OpenID: testOpenID(3), Vars: map[string]string{"name": "Bob"}},
			},
			report: Report{Lines: 3, Accepted: 2, Invalid: 1, Variables: []string{"name"}},
			errors: []lineErr{{3, "name", "invalid UTF-8: byte 0xE9 at byte 33 of the line; save the file as UTF-8"}},
		},
		{
			file: "nasty.jsonl",
			opts: AudienceOptions{RequiredVars: []string{"name"}},
			accepted: []Recipient{
				{Line: 1, OpenID: testOpenID(1), Vars: map[string]string{"name": "张三", "amount": "39.80"}},
				{Line: 14, OpenID: testOpenID(10), Vars: map[string]string{"name": `<a href="x">&</a>`, "n": "1000"}},
				{Line: 15, OpenID: testOpenID(11), Vars: map[string]string{"name": "Case"}},
			},
			report: Report{Lines: 16, Accepted: 3, Blank: 1, Duplicates: 1, InvalidOpenIDs: 2, Invalid: 9, Variables: []string{"amount", "n", "name"}},
			errors: []lineErr{
				{3, "name", "nested objects and arrays are not allowed"},
				{4, "name", "nested objects and arrays are not allowed"},
				{5, "name", "true is not allowed"},
				{6, "name", "null is not allowed"},
				{7, "", "invalid JSON"},
				{8, "", "not a JSON object"},
				{9, "openid", "duplicate of line 1"},
				{10, "openid", "invalid openid"},
				{11, "openid", "no openid"},
				{12, "name", "key appears twice"},
				{13, "", "more than one JSON value on the line"},
				{16, "name", `variable "name" is empty`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			res := readFile(t, tt.file, tt.opts)
			require.NoError(t, res.err)
			require.Equal(t, tt.accepted, res.recipients)
			errs := res.report.Errors
			res.report.Errors = nil
			require.Equal(t, tt.report, res.report)
			requireLineErrors(t, errs, tt.errors)
		})
	}
}

func TestAudienceCSV(t *testing.T) {
	t.Parallel()

	o1, o2, o3, o4 := testOpenID(1), testOpenID(2), testOpenID(3), testOpenID(4)
	tests := []struct {
		name     string
		in       string
		opts     AudienceOptions
		accepted []string
		errors   []lineErr
	}{
		{"header only", "openid\n", AudienceOptions{}, nil, nil},
		{"no final newline", "openid\n" + o1, AudienceOptions{}, []string{o1}, nil},
		{"header case and spaces", " OpenID ,name\n" + o1 + ",x\n", AudienceOptions{}, []string{o1}, nil},
		{"blank lines before the header", "\n  \nopenid\n" + o1 + "\n", AudienceOptions{}, []string{o1}, nil},
		{"quoted openid", "openid\n\"" + o1 + "\"\n", AudienceOptions{}, []string{o1}, nil},
		{"spaces around the openid", "openid,x\n  " + o1 + "\t,1\n", AudienceOptions{}, []string{o1}, nil},
		{"CR alone is data", "openid,x\n" + o1 + ",a\rb\n", AudienceOptions{}, []string{o1}, nil},
		{"short openid", "openid\nabc\n", AudienceOptions{}, nil, []lineErr{{2, "openid", "invalid openid"}}},
		{"openid with a space inside", "openid\noAAAAAAAAAA AAAAAAAAAAAAAAA\n", AudienceOptions{}, nil, []lineErr{{2, "openid", "invalid openid"}}},
		{"too many fields", "openid,name\n" + o1 + ",a,b\n", AudienceOptions{}, nil, []lineErr{{2, "", "3 fields, the header has 2"}}},
		{"too few fields", "openid,name\n" + o1 + "\n", AudienceOptions{}, nil, []lineErr{{2, "", "1 fields, the header has 2"}}},
		{"trailing comma", "openid,name\n" + o1 + ",a,\n", AudienceOptions{}, nil, []lineErr{{2, "", "3 fields"}}},
		{"empty required", "openid,name\n" + o1 + ",  \n", AudienceOptions{RequiredVars: []string{"name"}}, nil, []lineErr{{2, "name", `variable "name" is empty; the message uses it`}}},
		{"empty optional", "openid,name\n" + o1 + ",\n", AudienceOptions{}, []string{o1}, nil},
		{"duplicate after invalid", "openid,name\n" + o1 + ",\n" + o1 + ",ok\n", AudienceOptions{RequiredVars: []string{"name"}},
			[]string{o1}, []lineErr{{2, "name", "is empty"}}},
		{"duplicates", "openid\n" + o1 + "\n" + o2 + "\n" + o1 + "\n" + o1 + "\n", AudienceOptions{},
			[]string{o1, o2}, []lineErr{{4, "openid", "duplicate of line 2"}, {5, "openid", "duplicate of line 2"}}},
		{"bare quote", "openid,name\n" + o1 + `,a"b` + "\n", AudienceOptions{}, nil, []lineErr{{2, "", "a quote in an unquoted field"}}},
		{"space before quote", "openid,name\n" + o1 + `, "b"` + "\n", AudienceOptions{}, nil, []lineErr{{2, "", "a quote in an unquoted field"}}},
		{"quoted line breaks", "openid,name\n" + o1 + ",\"a\r\nb\n\nc\"\n" + o2 + ",x\n", AudienceOptions{}, []string{o1, o2}, nil},
		{"error line after a multi-line record", "openid,name\n" + o1 + ",\"a\nb\"\nbad,x\n", AudienceOptions{}, []string{o1}, []lineErr{{4, "openid", "invalid openid"}}},
		{"invalid UTF-8 on the second line of a record", "openid,name\n" + o1 + ",\"a\nb\xff\"\n", AudienceOptions{}, nil, []lineErr{{3, "name", "byte 0xFF at byte 2 of the line"}}},
		{"invalid UTF-8 in the openid", "openid,name\n\xc3" + o1 + ",x\n", AudienceOptions{}, nil, []lineErr{{2, "openid", "byte 0xC3 at byte 1"}}},
		{"overlong line", "openid,name\n" + o1 + "," + strings.Repeat("x", 100) + "\n" + o2 + ",ok\n", AudienceOptions{MaxLineBytes: 64},
			[]string{o2}, []lineErr{{2, "", "line is longer than the limit of 64 bytes"}}},
		{"unclosed quote", "openid,name\n" + o1 + ",\"abc\n" + o2 + ",ok\n" + o3 + ",ok\n", AudienceOptions{},
			[]string{o2, o3}, []lineErr{{2, "", "quoted field starting on this line is never closed"}}},
		{"unclosed quote within the limit", "openid,name\n" + o1 + ",\"abc\n" + o2 + ",ok\n" + o3 + ",ok\n" + o4 + ",ok\n", AudienceOptions{MaxLineBytes: 64},
			[]string{o2, o3, o4}, []lineErr{{2, "", "quoted field starting on this line is not closed within the limit of 64 bytes"}}},
		{"unclosed quote before an overlong line", "openid,name\n" + o1 + ",\"abc\n" + strings.Repeat("y", 70) + "\n" + o2 + ",ok\n", AudienceOptions{MaxLineBytes: 64},
			[]string{o2}, []lineErr{{2, "", "not closed within"}, {3, "", "line is longer than the limit of 64 bytes"}}},
		{"a quote on the next line closes the field", "openid,name\n" + o1 + ",\"abc\n" + o2 + ",\"x, y\"\n" + o3 + ",ok\n", AudienceOptions{},
			[]string{o3}, []lineErr{{2, "", "text after the closing quote of a quoted field (at byte 65)"}}},
		{"line of exactly the limit", "openid,name\n" + o1 + "," + strings.Repeat("x", 64-29) + "\r\n", AudienceOptions{MaxLineBytes: 64}, []string{o1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := readString(t, tt.in, FormatCSV, tt.opts)
			require.NoError(t, res.err)
			require.Equal(t, tt.accepted, openids(res.recipients))
			requireLineErrors(t, res.report.Errors, tt.errors)
		})
	}
}

func TestAudienceCSVHeader(t *testing.T) {
	t.Parallel()

	o1 := testOpenID(1)
	tests := []struct {
		name string
		in   string
		opts AudienceOptions
		line int
		want string
	}{
		{"empty file", "", AudienceOptions{}, 0, "the file is empty: a header row naming the openid column is required"},
		{"only blank lines", "\n\n \n", AudienceOptions{}, 3, "the file is empty"},
		{"BOM only", "\xEF\xBB\xBF", AudienceOptions{}, 1, "the file is empty"},
		{"no openid column", "id,name\n" + o1 + ",x\n", AudienceOptions{}, 1, "header: no openid column: a header row naming the openid column is required"},
		{"no header", o1 + ",张三\n", AudienceOptions{}, 1, "the first line looks like data; add a header row such as openid,name"},
		{"two openid columns", "openid,OpenID\n", AudienceOptions{}, 1, "two openid columns"},
		{"duplicate column", "openid,name,name\n", AudienceOptions{}, 1, `two columns named "name"`},
		{"unnamed column", "openid,,name\n", AudienceOptions{}, 1, "column 2 has no name"},
		{"required column missing", "openid,city\n", AudienceOptions{RequiredVars: []string{"name"}}, 1, `no column "name", which the message uses`},
		{"required column case", "\nopenid,Name\n", AudienceOptions{RequiredVars: []string{"name"}}, 2, `(found "Name": names are case-sensitive)`},
		{"header not UTF-8", "openid,nom\xe9\n", AudienceOptions{}, 1, "invalid UTF-8"},
		{"header bad CSV", "openid,\"name\n", AudienceOptions{}, 1, "never closed"},
		{"header too long", "openid," + strings.Repeat("x", 100) + "\n", AudienceOptions{MaxLineBytes: 50}, 1, "longer than the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := readString(t, tt.in, FormatCSV, tt.opts)
			require.ErrorIs(t, res.err, ErrBadHeader)
			var fe *FileError
			require.True(t, errors.As(res.err, &fe))
			require.Equal(t, tt.line, fe.Line)
			require.Contains(t, res.err.Error(), tt.want)
			if tt.line > 0 {
				require.Contains(t, res.err.Error(), fmt.Sprintf("campaigns: audience: line %d: ", tt.line))
			}
			require.Empty(t, res.recipients)
		})
	}
}

func TestAudienceJSONL(t *testing.T) {
	t.Parallel()

	o1, o2 := testOpenID(1), testOpenID(2)
	tests := []struct {
		name   string
		in     string
		opts   AudienceOptions
		vars   []map[string]string // of the accepted recipients
		errors []lineErr
	}{
		{"numbers", `{"openid":"` + o1 + `","a":12,"b":-3.50,"c":12345678901234567890123,"d":1.5e-3,"e":2E2}`, AudienceOptions{},
			[]map[string]string{{"a": "12", "b": "-3.50", "c": "12345678901234567890123", "d": "0.0015", "e": "200"}}, nil},
		{"huge exponent", `{"openid":"` + o1 + `","a":1e400}`, AudienceOptions{}, nil, []lineErr{{1, "a", "out of range: write it as a string"}}},
		{"openid only", `{"openid":"` + o1 + `"}`, AudienceOptions{}, []map[string]string{nil}, nil},
		{"openid as a number", `{"openid":12345}`, AudienceOptions{}, nil, []lineErr{{1, "openid", "invalid openid"}}},
		{"openid twice", `{"openid":"` + o1 + `","OPENID":"` + o2 + `"}`, AudienceOptions{}, nil, []lineErr{{1, "OPENID", "openid appears twice"}}},
		{"escapes", `{"openid":"` + o1 + `","a":"\u00e9\n\"x\"\\"}`, AudienceOptions{}, []map[string]string{{"a": "é\n\"x\"\\"}}, nil},
		{"missing required key", `{"openid":"` + o1 + `","city":"x"}`, AudienceOptions{RequiredVars: []string{"name"}}, nil, []lineErr{{1, "name", `variable "name" is missing`}}},
		{"empty object", `{}`, AudienceOptions{}, nil, []lineErr{{1, "openid", "no openid"}}},
		{"string line", `"` + o1 + `"`, AudienceOptions{}, nil, []lineErr{{1, "", "not a JSON object"}}},
		{"truncated", `{"openid":"` + o1, AudienceOptions{}, nil, []lineErr{{1, "openid", "invalid JSON"}}},
		{"bad syntax", `{"openid" "` + o1 + `"}`, AudienceOptions{}, nil, []lineErr{{1, "openid", "invalid JSON at byte 10"}}},
		{"trailing comma", `{"openid":"` + o1 + `",}`, AudienceOptions{}, nil, []lineErr{{1, "", "invalid JSON"}}},
		{"invalid UTF-8", `{"openid":"` + o1 + `","a":"caf` + "\xe9" + `"}`, AudienceOptions{}, nil, []lineErr{{1, "", "invalid UTF-8: byte 0xE9 at byte 50 of the line"}}},
		{"overlong", `{"openid":"` + o1 + `","a":"` + strings.Repeat("x", 100) + `"}` + "\n" + `{"openid":"` + o2 + `"}`, AudienceOptions{MaxLineBytes: 80},
			[]map[string]string{nil}, []lineErr{{1, "", "longer than the limit of 80 bytes"}}},
		{"surrogate pair", `{"openid":"` + o1 + `","a":"\ud83d\ude00 \ufffd \\ud800"}`, AudienceOptions{}, []map[string]string{{"a": "😀 \uFFFD \\ud800"}}, nil},
		{"lone surrogate", `{"openid":"` + o1 + `","a":"x\ud800y"}`, AudienceOptions{}, nil, []lineErr{{1, "a", "lone surrogate"}}},
		{"lone low surrogate in a key", `{"openid":"` + o1 + `","\udc00":"x"}`, AudienceOptions{}, nil, []lineErr{{1, "\uFFFD", "lone surrogate"}}},
		{"blank and CRLF", "\r\n\t\r\n{\"openid\":\"" + o1 + "\"}\r\n", AudienceOptions{}, []map[string]string{nil}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := readString(t, tt.in, FormatJSONL, tt.opts)
			require.NoError(t, res.err)
			var vars []map[string]string
			for _, r := range res.recipients {
				vars = append(vars, r.Vars)
			}
			require.Equal(t, tt.vars, vars)
			requireLineErrors(t, res.report.Errors, tt.errors)
		})
	}
}

func TestAudienceCheck(t *testing.T) {
	t.Parallel()

	m := compile(t, templateCampaign())
	in := "openid,name,order\n" +
		testOpenID(1) + ",张三,A-1\n" +
		testOpenID(2) + "," + strings.Repeat("长", 13) + ",A-2\n" +
		testOpenID(3) + ",李四,订单3\n"
	res := readString(t, in, FormatCSV, AudienceOptions{RequiredVars: m.Variables(), Check: m.CheckRecipient})
	require.NoError(t, res.err)
	require.Equal(t, []string{testOpenID(1)}, openids(res.recipients))
	requireLineErrors(t, res.report.Errors, []lineErr{
		{3, "template.data.thing1", "rendered from name: 21 characters, thing takes at most 20"},
		{4, "template.data.character_string2", "rendered from order: character '订'"},
	})
	require.Equal(t, strings.Repeat("长", 13)+"，您的订单已发货", res.report.Errors[0].Value)

	// Any other error of Check is recorded with its text.
	res = readString(t, in, FormatCSV, AudienceOptions{Check: func(map[string]string) error { return errors.New("nope") }})
	requireLineErrors(t, res.report.Errors, []lineErr{{2, "", "nope"}, {3, "", "nope"}, {4, "", "nope"}})
}

func TestAudienceSeen(t *testing.T) {
	t.Parallel()

	seen := map[string]bool{testOpenID(2): true} // from an earlier upload
	mark := func(id string) bool {
		if seen[id] {
			return true
		}
		seen[id] = true
		return false
	}
	in := "openid\n" + testOpenID(1) + "\n" + testOpenID(2) + "\n" + testOpenID(1) + "\nbad\n"
	res := readString(t, in, FormatCSV, AudienceOptions{Seen: mark})
	require.Equal(t, []string{testOpenID(1)}, openids(res.recipients))
	requireLineErrors(t, res.report.Errors, []lineErr{
		{3, "openid", "duplicate of an earlier recipient"},
		{4, "openid", "duplicate of an earlier recipient"},
		{5, "openid", "invalid openid"},
	})
	require.Len(t, seen, 2, "Seen is called only for otherwise valid lines")
}

func TestAudienceLimits(t *testing.T) {
	t.Parallel()

	var b strings.Builder
	b.WriteString("openid\n")
	for i := range 30 {
		fmt.Fprintf(&b, "bad%d\n", i)
	}
	in := b.String()

	res := readString(t, in, FormatCSV, AudienceOptions{MaxErrors: 5, MaxBadLines: -1})
	require.NoError(t, res.err)
	require.Equal(t, 30, res.report.InvalidOpenIDs)
	require.Len(t, res.report.Errors, 5, "only the first MaxErrors are kept")
	require.Equal(t, 6, res.report.Errors[4].Line)

	res = readString(t, in, FormatCSV, AudienceOptions{MaxErrors: -1, MaxBadLines: -1})
	require.Empty(t, res.report.Errors)

	res = readString(t, in, FormatCSV, AudienceOptions{MaxBadLines: 10})
	require.ErrorIs(t, res.err, ErrTooManyBadLines)
	var fe *FileError
	require.True(t, errors.As(res.err, &fe))
	require.Equal(t, 12, fe.Line)
	require.EqualError(t, res.err, "campaigns: audience: line 12: 11 bad lines, more than the limit of 10: is this the right file, in UTF-8?")
	require.Equal(t, 11, res.report.InvalidOpenIDs)

	// The default cap stops a wrong file long before its end.
	b.Reset()
	b.WriteString("openid\n")
	for range AudienceMaxBadLinesDefault + 10 {
		b.WriteString("x\n")
	}
	res = readString(t, b.String(), FormatCSV, AudienceOptions{})
	require.ErrorIs(t, res.err, ErrTooManyBadLines)
	require.Len(t, res.report.Errors, AudienceMaxErrorsDefault)
}

// errReader returns data, then err.
type errReader struct {
	data io.Reader
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	n, err := r.data.Read(p)
	if errors.Is(err, io.EOF) {
		return n, r.err
	}
	return n, err
}

func TestAudienceReadError(t *testing.T) {
	t.Parallel()

	boom := errors.New("connection reset")
	for _, f := range []Format{FormatCSV, FormatJSONL} {
		in := "openid\n" + testOpenID(1) + "\n"
		if f == FormatJSONL {
			in = `{"openid":"` + testOpenID(1) + `"}` + "\n" + `{"openid":"` + testOpenID(2) + `"}` + "\n"
		}
		res := readAll(t, &errReader{data: strings.NewReader(in), err: boom}, f, AudienceOptions{})
		require.ErrorIs(t, res.err, boom)
		var fe *FileError
		require.True(t, errors.As(res.err, &fe))
		require.Equal(t, 3, fe.Line)
		require.EqualError(t, res.err, "campaigns: audience: line 3: read: connection reset")
	}

	res := readString(t, "openid\n", "xml", AudienceOptions{})
	require.ErrorIs(t, res.err, ErrUnknownFormat)
}

func TestAudienceLarge(t *testing.T) {
	t.Parallel()

	// ok-3000: 3000 recipients with variables, every 100th repeated, read
	// through a pipe so nothing holds the whole file.
	pr, pw := io.Pipe()
	go func() {
		fmt.Fprintln(pw, "openid,name,order")
		for i := range 3000 {
			fmt.Fprintf(pw, "%s,用户%d,A-%d\r\n", testOpenID(i), i, i)
			if i%100 == 0 {
				fmt.Fprintf(pw, "%s,again,A\r\n", testOpenID(i))
			}
		}
		pw.Close()
	}()
	m := compile(t, templateCampaign())
	res := readAll(t, pr, FormatCSV, AudienceOptions{RequiredVars: m.Variables(), Check: m.CheckRecipient})
	require.NoError(t, res.err)
	require.Equal(t, Report{Lines: 3030, Accepted: 3000, Duplicates: 30, Variables: []string{"name", "order"}}, Report{
		Lines: res.report.Lines, Accepted: res.report.Accepted, Duplicates: res.report.Duplicates, Variables: res.report.Variables,
	})
	require.Equal(t, "用户2999", res.recipients[2999].Vars["name"])
	require.Equal(t, 3031, res.recipients[2999].Line)
	require.Equal(t, "duplicate of line 2", res.report.Errors[0].Message)
	require.Equal(t, 3, res.report.Errors[0].Line)
}

func TestDetectFormat(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		first string
		want  Format
	}{
		{"a.csv", `{"openid":"x"}`, FormatCSV}, // the extension decides
		{"A.CSV", "", FormatCSV},
		{"a.jsonl", "openid", FormatJSONL},
		{"a.ndjson", "", FormatJSONL},
		{"a.json", "", FormatJSONL},
		{"upload", "\xEF\xBB\xBF\r\n  {\"openid\":\"x\"}", FormatJSONL},
		{"upload.txt", "openid,name\n", FormatCSV},
		{"", "\xEF\xBB\xBF openid", FormatCSV},
		{"upload", " \n", ""},
		{"", "", ""},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, DetectFormat(tt.name, []byte(tt.first)), "%q %q", tt.name, tt.first)
	}
}

func TestSafeValue(t *testing.T) {
	t.Parallel()

	require.Equal(t, "", safeValue(""))
	require.Equal(t, `caf\xE9 \u000A\u0000 中`, safeValue("caf\xe9 \n\x00 中"))
	require.Equal(t, strings.Repeat("中", 64)+"…", safeValue(strings.Repeat("中", 100)))
}

// fuzzCheck is what every accepted recipient must satisfy, whatever the
// input.
func fuzzCheck(t *testing.T, data []byte, f Format) {
	required := []string{"name"}
	ar := NewAudienceReader(bytes.NewReader(data), f, AudienceOptions{RequiredVars: required, MaxLineBytes: 256, MaxBadLines: -1})
	seen := map[string]bool{}
	for {
		r, err := ar.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("fatal error %v is not a *FileError", err)
			}
			break
		}
		if !ValidOpenID(r.OpenID) {
			t.Fatalf("accepted invalid openid %q", r.OpenID)
		}
		if seen[r.OpenID] {
			t.Fatalf("accepted %q twice", r.OpenID)
		}
		seen[r.OpenID] = true
		for _, v := range required {
			if strings.TrimSpace(r.Vars[v]) == "" {
				t.Fatalf("accepted %q without %s: %v", r.OpenID, v, r.Vars)
			}
		}
		for k, v := range r.Vars {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				t.Fatalf("accepted invalid UTF-8 %q=%q", k, v)
			}
		}
		if r.Line < 1 {
			t.Fatalf("line %d", r.Line)
		}
	}
	rp := ar.Report()
	if rp.Lines != rp.Accepted+rp.Blank+rp.Duplicates+rp.InvalidOpenIDs+rp.Invalid || rp.Accepted != len(seen) {
		t.Fatalf("counts do not add up: %+v, %d accepted", rp, len(seen))
	}
	for _, le := range rp.Errors {
		if !utf8.ValidString(le.Value) || strings.ContainsAny(le.Value, "\n\r\x00") || le.Line < 1 {
			t.Fatalf("unsafe line error %+v", le)
		}
	}
}

func FuzzAudienceCSV(f *testing.F) {
	for _, name := range []string{"bom.csv", "crlf.csv", "nasty.csv", "latin1.csv"} {
		b, err := os.ReadFile(filepath.Join(audienceDir, name))
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte("openid,name\n\"" + testOpenID(1) + "\",\"a\"\"b\"\n"))
	f.Add([]byte("name,OPENID\r\nx," + testOpenID(1) + "\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCheck(t, data, FormatCSV)
	})
}

func FuzzAudienceJSONL(f *testing.F) {
	b, err := os.ReadFile(filepath.Join(audienceDir, "nasty.jsonl"))
	require.NoError(f, err)
	f.Add(b)
	f.Add([]byte(`{"openid":"` + testOpenID(1) + `","name":1e5}`))
	f.Add([]byte(`{"openid":"` + testOpenID(1) + `","name":"\ud800"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		fuzzCheck(t, data, FormatJSONL)
	})
}

func BenchmarkAudienceCSV(b *testing.B) {
	var buf bytes.Buffer
	buf.WriteString("openid,name,order\n")
	const n = 100_000
	for i := range n {
		fmt.Fprintf(&buf, "oBBBBBBBBBBBBBBBBBBBB%07d,用户%d,A-%d\n", i, i, i)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		ar := NewAudienceReader(bytes.NewReader(data), FormatCSV, AudienceOptions{RequiredVars: []string{"name"}})
		for {
			if _, err := ar.Next(); err != nil {
				if !errors.Is(err, io.EOF) {
					b.Fatal(err)
				}
				break
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/recipient")
}

// BenchmarkSeenSet measures the memory of duplicate detection per
// recipient (the "B/recipient" metric), which the AudienceReader doc
// quotes.
func BenchmarkSeenSet(b *testing.B) {
	const n = 1_000_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("oBBBBBBBBBBBBBBBBBBBB%07d", i)
	}
	var perRecipient float64
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var s seenSet
		s.init()
		for i, id := range ids {
			s.add(id, i)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perRecipient = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(s.m)
	}
	b.ReportMetric(perRecipient, "B/recipient")
}
