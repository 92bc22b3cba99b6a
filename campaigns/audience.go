package campaigns

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Format is the format of an audience file.
type Format string

// The audience file formats.
const (
	// FormatCSV is RFC 4180 CSV with a header row that names an "openid"
	// column; the other columns are variables.
	FormatCSV Format = "csv"
	// FormatJSONL is one JSON object per line, {"openid": "...", "name":
	// "...", ...}; the other keys are variables.
	FormatJSONL Format = "jsonl"
)

// Defaults of AudienceOptions.
const (
	// AudienceMaxLineBytesDefault is the default longest line (or CSV
	// record, for quoted fields with line breaks), in bytes.
	AudienceMaxLineBytesDefault = 16 << 10
	// AudienceMaxErrorsDefault is the default number of LineErrors a Report
	// keeps.
	AudienceMaxErrorsDefault = 100
	// AudienceMaxBadLinesDefault is the default number of invalid lines
	// (Invalid + InvalidOpenIDs) after which reading stops with
	// ErrTooManyBadLines: a file that bad is the wrong file, or in the
	// wrong encoding.
	AudienceMaxBadLinesDefault = 10_000
)

var (
	// ErrTooManyBadLines is wrapped by the *FileError Next returns when more
	// lines than AudienceOptions.MaxBadLines were invalid.
	ErrTooManyBadLines = errors.New("campaigns: audience: too many bad lines")
	// ErrBadHeader is wrapped by the *FileError Next returns when a CSV
	// file's header row is missing or unusable.
	ErrBadHeader = errors.New("campaigns: audience: bad header")
	// ErrUnknownFormat is wrapped by the *FileError Next returns when the
	// reader was made with a Format that is not FormatCSV or FormatJSONL.
	ErrUnknownFormat = errors.New("campaigns: audience: unknown format")
	// ErrNoRecipients is wrapped by the *FileError Store.UploadAudience
	// returns for a file none of whose lines is a valid recipient: storing
	// it would empty the audience.
	ErrNoRecipients = errors.New("campaigns: audience: no valid recipient")
)

// DetectFormat returns the format of an audience file from its name and its
// first bytes. The name's extension decides when it is known (.csv; .jsonl,
// .ndjson, .json); otherwise content starting (after a BOM and blank space)
// with '{' is JSONL and any other content CSV. It returns "" for an unknown
// extension and no content.
func DetectFormat(name string, firstBytes []byte) Format {
	switch strings.ToLower(path.Ext(name)) {
	case ".csv":
		return FormatCSV
	case ".jsonl", ".ndjson", ".json":
		return FormatJSONL
	}
	b := bytes.TrimLeft(bytes.TrimPrefix(firstBytes, bom), " \t\r\n")
	switch {
	case len(b) == 0:
		return ""
	case b[0] == '{':
		return FormatJSONL
	}
	return FormatCSV
}

var bom = []byte("\xEF\xBB\xBF")

// Recipient is one accepted line of an audience file.
type Recipient struct {
	// Line is the 1-based line number the recipient's record starts on.
	Line int
	// OpenID is the recipient, with surrounding spaces removed; it passed
	// ValidOpenID.
	OpenID string
	// Vars holds the recipient's variables: every column or key other than
	// openid. It is nil when the file has none.
	Vars map[string]string
}

// AudienceOptions configures an AudienceReader. The zero value reads any
// well-formed file with the defaults.
type AudienceOptions struct {
	// RequiredVars are the variables every recipient must have with a
	// non-blank value: the message's Variables. A CSV header without one is
	// a file error; a blank value, or a JSONL line without the key, is a
	// line error naming the variable.
	RequiredVars []string
	// Check, if set, is called with the variables of each line that is
	// otherwise acceptable; an error makes the line invalid. Pass
	// Message.CheckRecipient so that values WeChat would refuse are found
	// at upload, not at send.
	Check func(vars map[string]string) error
	// Seen, if set, replaces the reader's own duplicate detection: it
	// reports whether openid was seen before and records it. It is called
	// once for each line that is otherwise acceptable, in file order. With
	// Seen, duplicate line errors cannot name the first occurrence.
	Seen func(openid string) bool
	// MaxLineBytes is the longest line, or CSV record, in bytes; longer
	// lines are line errors. Zero means AudienceMaxLineBytesDefault.
	MaxLineBytes int
	// MaxErrors is how many LineErrors the Report keeps; the counts cover
	// all of them. Zero means AudienceMaxErrorsDefault; negative keeps none.
	MaxErrors int
	// MaxBadLines is how many invalid lines (Invalid + InvalidOpenIDs) are
	// tolerated before Next fails with ErrTooManyBadLines. Zero means
	// AudienceMaxBadLinesDefault; negative means no limit.
	MaxBadLines int
}

// Report counts what an AudienceReader has read so far. Lines is the number
// of records after the CSV header (a quoted field with line breaks makes one
// record of several lines) and always equals Accepted + Blank + Duplicates +
// InvalidOpenIDs + Invalid. A line counts once, in the first of these that
// applies: Blank, Invalid (malformed: too long, not UTF-8, bad CSV or JSON,
// wrong number of fields), InvalidOpenIDs (missing or malformed openid),
// Invalid (a required variable blank, or Check failed), Duplicates (an
// openid already accepted), Accepted.
type Report struct {
	Lines          int `json:"lines"`
	Accepted       int `json:"accepted"`
	Blank          int `json:"blank"`
	Duplicates     int `json:"duplicates"`
	InvalidOpenIDs int `json:"invalid_openids"`
	Invalid        int `json:"invalid"`
	// Errors are the first MaxErrors problems, duplicates included, in file
	// order.
	Errors []LineError `json:"errors,omitempty"`
	// Variables are the variables the file provides: the CSV header's
	// columns other than openid in order, or every key other than openid
	// seen so far in a JSONL file, sorted.
	Variables []string `json:"variables"`
}

// LineError is a problem with one line of an audience file. It is recorded
// in the Report, not returned by Next.
type LineError struct {
	// Line is the 1-based line number.
	Line int `json:"line"`
	// Field is the column or key at fault ("openid", a variable's name), or
	// the message field (such as "template.data.thing1") when Check refused
	// the line; empty when the whole line is at fault.
	Field string `json:"field,omitempty"`
	// Value is the offending value, shortened to 64 characters, with
	// invalid UTF-8 and control characters escaped as \xNN and \uNNNN.
	Value string `json:"value,omitempty"`
	// Message says what is wrong.
	Message string `json:"message"`
}

// Error returns "line <n>: <field>: <message>".
func (e LineError) Error() string {
	if e.Field == "" {
		return "line " + strconv.Itoa(e.Line) + ": " + e.Message
	}
	return "line " + strconv.Itoa(e.Line) + ": " + e.Field + ": " + e.Message
}

// FileError is a problem that stops reading an audience file: a read error,
// a missing or bad CSV header, or too many bad lines.
type FileError struct {
	// Line is the 1-based line the problem was found on, or 0 if none was
	// read.
	Line int
	// Message says what is wrong.
	Message string
	// Err is the cause: the reader's error, ErrBadHeader,
	// ErrTooManyBadLines or ErrUnknownFormat.
	Err error
}

// Error returns "campaigns: audience: line <n>: <message>: <cause>".
func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString("campaigns: audience: ")
	if e.Line > 0 {
		b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
	}
	b.WriteString(e.Message)
	if e.Err != nil && !isAudienceSentinel(e.Err) {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns Err.
func (e *FileError) Unwrap() error { return e.Err }

func isAudienceSentinel(err error) bool {
	return err == ErrTooManyBadLines || err == ErrBadHeader || err == ErrUnknownFormat || err == ErrNoRecipients
}

// AudienceReader reads an audience file as a stream of recipients. It holds
// one line (or CSV record) in memory at a time, plus the set of accepted
// openids for duplicate detection, unless AudienceOptions.Seen takes that
// over: 96 bits of seeded hashes and the first line per accepted recipient,
// about 40 bytes each with the map's overhead (BenchmarkSeenSet measures 38
// at one million), so about 400 MB for ten million. The openids themselves
// are not kept. A false duplicate needs a 96-bit hash collision: less than
// one chance in 10¹⁵ for ten million recipients.
//
// An AudienceReader is not safe for concurrent use.
type AudienceReader struct {
	format   Format
	opts     AudienceOptions
	lr       lineReader
	report   Report
	err      error
	seen     seenSet
	required []string

	// CSV
	header    bool
	names     []string // column names, trimmed
	openidCol int
	fields    []string
	rec       []byte

	// JSONL
	keys map[string]bool
}

// NewAudienceReader returns a reader of the audience file r in format f.
// Reading is lazy: problems with the file are returned by Next.
func NewAudienceReader(r io.Reader, f Format, opts AudienceOptions) *AudienceReader {
	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = AudienceMaxLineBytesDefault
	}
	switch {
	case opts.MaxErrors == 0:
		opts.MaxErrors = AudienceMaxErrorsDefault
	case opts.MaxErrors < 0:
		opts.MaxErrors = 0
	}
	switch {
	case opts.MaxBadLines == 0:
		opts.MaxBadLines = AudienceMaxBadLinesDefault
	case opts.MaxBadLines < 0:
		opts.MaxBadLines = math.MaxInt
	}
	a := &AudienceReader{
		format: f,
		opts:   opts,
		lr:     lineReader{br: bufio.NewReaderSize(r, 64<<10), max: opts.MaxLineBytes},
		keys:   map[string]bool{},
	}
	for _, v := range opts.RequiredVars {
		if v != "" && !strings.EqualFold(v, "openid") && !slices.Contains(a.required, v) {
			a.required = append(a.required, v)
		}
	}
	if opts.Seen == nil {
		a.seen.init()
	}
	if f != FormatCSV && f != FormatJSONL {
		a.err = &FileError{Message: "format " + strconv.Quote(string(f)) + " is not csv or jsonl", Err: ErrUnknownFormat}
	}
	return a
}

// Next returns the next accepted recipient. Lines that are blank, invalid or
// duplicates are counted and recorded in the Report and skipped. At the end
// of the file it returns io.EOF. A *FileError (a read error, a bad CSV
// header, too many bad lines) ends reading: Next returns it from then on.
func (a *AudienceReader) Next() (Recipient, error) {
	for a.err == nil {
		var (
			rec Recipient
			ok  bool
		)
		if a.format == FormatCSV {
			rec, ok, a.err = a.nextCSV()
		} else {
			rec, ok, a.err = a.nextJSONL()
		}
		if ok {
			return rec, nil
		}
		if a.err == nil && a.report.Invalid+a.report.InvalidOpenIDs > a.opts.MaxBadLines {
			a.err = &FileError{Line: a.lr.line, Message: strconv.Itoa(a.report.Invalid+a.report.InvalidOpenIDs) + " bad lines, more than the limit of " + strconv.Itoa(a.opts.MaxBadLines) + ": is this the right file, in UTF-8?", Err: ErrTooManyBadLines}
		}
	}
	return Recipient{}, a.err
}

// Report returns the counts and errors so far; after Next returned io.EOF
// they are final. The caller owns the returned slices.
func (a *AudienceReader) Report() Report {
	r := a.report
	r.Errors = slices.Clone(a.report.Errors)
	if a.format == FormatJSONL {
		r.Variables = make([]string, 0, len(a.keys))
		for k := range a.keys {
			r.Variables = append(r.Variables, k)
		}
		slices.Sort(r.Variables)
	} else {
		r.Variables = slices.Clone(a.report.Variables)
	}
	if r.Variables == nil {
		r.Variables = []string{}
	}
	return r
}

// lineError records a problem with a line. count is the Report counter the
// line goes to.
func (a *AudienceReader) lineError(count *int, line int, field, value, msg string) {
	*count++
	if len(a.report.Errors) < a.opts.MaxErrors {
		a.report.Errors = append(a.report.Errors, LineError{Line: line, Field: field, Value: safeValue(value), Message: msg})
	}
}

// accept applies the checks shared by both formats to a well-formed line:
// the openid, the required variables, Check and duplicates.
func (a *AudienceReader) accept(line int, openid string, hasOpenID bool, vars map[string]string) (Recipient, bool) {
	r := &a.report
	openid = strings.TrimSpace(openid)
	switch {
	case !hasOpenID || openid == "":
		a.lineError(&r.InvalidOpenIDs, line, "openid", "", "no openid")
		return Recipient{}, false
	case !ValidOpenID(openid):
		a.lineError(&r.InvalidOpenIDs, line, "openid", openid, "invalid openid: 20 to 64 letters, digits, '_' and '-'")
		return Recipient{}, false
	}
	for _, name := range a.required {
		v, ok := vars[name]
		switch {
		case !ok:
			a.lineError(&r.Invalid, line, name, "", "variable "+strconv.Quote(name)+" is missing; the message uses it")
			return Recipient{}, false
		case strings.TrimSpace(v) == "":
			a.lineError(&r.Invalid, line, name, v, "variable "+strconv.Quote(name)+" is empty; the message uses it")
			return Recipient{}, false
		}
	}
	if a.opts.Check != nil {
		if err := a.opts.Check(vars); err != nil {
			var re *RecipientError
			if errors.As(err, &re) {
				msg := re.Reason
				if len(re.Variables) > 0 {
					msg = "rendered from " + strings.Join(re.Variables, ", ") + ": " + msg
				}
				a.lineError(&r.Invalid, line, re.Field, re.Value, msg)
			} else {
				a.lineError(&r.Invalid, line, "", "", err.Error())
			}
			return Recipient{}, false
		}
	}
	if a.opts.Seen != nil {
		if a.opts.Seen(openid) {
			a.lineError(&r.Duplicates, line, "openid", openid, "duplicate of an earlier recipient")
			return Recipient{}, false
		}
	} else if first, dup := a.seen.add(openid, line); dup {
		a.lineError(&r.Duplicates, line, "openid", openid, "duplicate of line "+strconv.Itoa(first))
		return Recipient{}, false
	}
	r.Accepted++
	return Recipient{Line: line, OpenID: openid, Vars: vars}, true
}

// nextCSV reads one CSV record. It returns ok for an accepted recipient and
// a non-nil error only for a fatal problem.
func (a *AudienceReader) nextCSV() (Recipient, bool, error) {
	if !a.header {
		if err := a.readHeader(); err != nil {
			return Recipient{}, false, err
		}
	}
	line, rec, problem, err := a.readRecord()
	if err != nil {
		return Recipient{}, false, err
	}
	r := &a.report
	r.Lines++
	if problem != "" {
		a.lineError(&r.Invalid, line, "", "", problem)
		return Recipient{}, false, nil
	}
	if isBlank(rec) {
		r.Blank++
		return Recipient{}, false, nil
	}
	s := string(rec)
	fields, col, msg := parseCSV(s, a.fields[:0])
	a.fields = fields
	if msg != "" {
		a.lineError(&r.Invalid, line, "", "", "not valid CSV: "+msg+" (at byte "+strconv.Itoa(col)+")")
		return Recipient{}, false, nil
	}
	if !utf8.ValidString(s) {
		a.utf8Error(line, s, fields)
		return Recipient{}, false, nil
	}
	if allBlank(fields) {
		r.Blank++
		return Recipient{}, false, nil
	}
	if len(fields) != len(a.names) {
		a.lineError(&r.Invalid, line, "", "", strconv.Itoa(len(fields))+" fields, the header has "+strconv.Itoa(len(a.names)))
		return Recipient{}, false, nil
	}
	var vars map[string]string
	if len(a.names) > 1 {
		vars = make(map[string]string, len(a.names)-1)
		for i, name := range a.names {
			if i != a.openidCol {
				vars[name] = fields[i]
			}
		}
	}
	rcp, ok := a.accept(line, fields[a.openidCol], true, vars)
	return rcp, ok, nil
}

// utf8Error records a record with invalid UTF-8, naming the line and column
// of the first bad byte.
func (a *AudienceReader) utf8Error(line int, s string, fields []string) {
	i := 0
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			break
		}
		i += size
	}
	bad := line + strings.Count(s[:i], "\n")
	field, value := "", ""
	for j, f := range fields {
		if !utf8.ValidString(f) {
			if j < len(a.names) {
				field = a.names[j]
			}
			value = f
			break
		}
	}
	a.lineError(&a.report.Invalid, bad, field, value, fmt.Sprintf("invalid UTF-8: byte 0x%02X at byte %d of the line; save the file as UTF-8", s[i], i-strings.LastIndexByte(s[:i], '\n')))
}

// readHeader reads the CSV header: the first record that is not blank.
func (a *AudienceReader) readHeader() error {
	var (
		line    int
		rec     []byte
		problem string
		err     error
	)
	for {
		line, rec, problem, err = a.readRecord()
		if errors.Is(err, io.EOF) {
			return &FileError{Line: a.lr.line, Message: "the file is empty: a header row naming the openid column is required", Err: ErrBadHeader}
		}
		if err != nil {
			return err
		}
		if problem != "" || !isBlank(rec) {
			break
		}
	}
	bad := func(msg string) error { return &FileError{Line: line, Message: "header: " + msg, Err: ErrBadHeader} }
	if problem != "" {
		return bad(problem)
	}
	s := string(rec)
	if !utf8.ValidString(s) {
		return bad("invalid UTF-8: save the file as UTF-8")
	}
	names, col, msg := parseCSV(s, nil)
	if msg != "" {
		return bad("not valid CSV: " + msg + " (at byte " + strconv.Itoa(col) + ")")
	}
	a.openidCol = -1
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
		name := names[i]
		switch {
		case name == "":
			return bad("column " + strconv.Itoa(i+1) + " has no name")
		case strings.EqualFold(name, "openid") && a.openidCol >= 0:
			return bad("two openid columns")
		case strings.EqualFold(name, "openid"):
			a.openidCol = i
		case slices.Contains(names[:i], name):
			return bad("two columns named " + strconv.Quote(name))
		default:
			a.report.Variables = append(a.report.Variables, name)
		}
	}
	if a.openidCol < 0 {
		if ValidOpenID(strings.TrimSpace(names[0])) {
			return bad("no openid column: the first line looks like data; add a header row such as openid,name")
		}
		return bad("no openid column: a header row naming the openid column is required")
	}
	for _, req := range a.required {
		if slices.Contains(names, req) {
			continue
		}
		msg := "no column " + strconv.Quote(req) + ", which the message uses"
		for _, n := range names {
			if strings.EqualFold(n, req) {
				msg += " (found " + strconv.Quote(n) + ": names are case-sensitive)"
				break
			}
		}
		return bad(msg)
	}
	a.names = names
	a.header = true
	return nil
}

// readRecord reads one CSV record: a line, and the lines after it while a
// quoted field is open. problem is set for a record that is too long or
// whose quoted field is not closed by the end of the file or within
// MaxLineBytes: the first line is then the bad record, and the lines read
// after it are read again as records of their own, so that a stray quote
// costs one line, not the rest of the file. err is io.EOF at the end, or a
// *FileError.
func (a *AudienceReader) readRecord() (line int, rec []byte, problem string, err error) {
	b, tooLong, err := a.lr.next()
	if err != nil {
		return 0, nil, "", err
	}
	line = a.lr.line
	if tooLong {
		return line, nil, a.tooLong(), nil
	}
	a.rec = append(a.rec[:0], b...)
	if !quoteOpen(b, false) {
		return line, a.rec, "", nil
	}
	first := len(a.rec)
	for {
		b, tooLong, err := a.lr.next()
		switch {
		case errors.Is(err, io.EOF):
			a.unread(first, nil)
			return line, nil, "quoted field starting on this line is never closed", nil
		case err != nil:
			return 0, nil, "", err
		case tooLong || len(a.rec)+1+len(b) > a.opts.MaxLineBytes:
			a.unread(first, &pendingLine{b: bytes.Clone(b), tooLong: tooLong})
			return line, nil, "quoted field starting on this line is not closed within the limit of " + strconv.Itoa(a.opts.MaxLineBytes) + " bytes", nil
		}
		a.rec = append(a.rec, '\n')
		a.rec = append(a.rec, b...)
		if !quoteOpen(b, true) {
			return line, a.rec, "", nil
		}
	}
}

// unread gives the lines of a.rec after its first line (which ends at
// first), and then last, back to the line reader.
func (a *AudienceReader) unread(first int, last *pendingLine) {
	var lines []pendingLine
	if first < len(a.rec) {
		for l := range bytes.SplitSeq(bytes.Clone(a.rec[first+1:]), []byte("\n")) {
			lines = append(lines, pendingLine{b: l})
		}
	}
	if last != nil {
		lines = append(lines, *last)
	}
	a.lr.unread(lines)
}

func (a *AudienceReader) tooLong() string {
	return "line is longer than the limit of " + strconv.Itoa(a.opts.MaxLineBytes) + " bytes"
}

// nextJSONL reads one JSONL line.
func (a *AudienceReader) nextJSONL() (Recipient, bool, error) {
	b, tooLong, err := a.lr.next()
	if err != nil {
		return Recipient{}, false, err
	}
	line := a.lr.line
	r := &a.report
	r.Lines++
	switch {
	case tooLong:
		a.lineError(&r.Invalid, line, "", "", a.tooLong())
		return Recipient{}, false, nil
	case isBlank(b):
		r.Blank++
		return Recipient{}, false, nil
	case !utf8.Valid(b):
		a.utf8Error(line, string(b), nil)
		return Recipient{}, false, nil
	}
	openid, hasOpenID, vars, field, msg := a.parseObject(b)
	if msg != "" {
		a.lineError(&r.Invalid, line, field, "", msg)
		return Recipient{}, false, nil
	}
	rcp, ok := a.accept(line, openid, hasOpenID, vars)
	return rcp, ok, nil
}

// parseObject decodes one JSONL line: an object of string or number
// values. On a problem it returns the key at fault (if any) and a message.
func (a *AudienceReader) parseObject(b []byte) (openid string, hasOpenID bool, vars map[string]string, field, msg string) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	syntax := func(err error) string {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return "invalid JSON at byte " + strconv.FormatInt(se.Offset, 10) + ": " + se.Error()
		}
		return "invalid JSON: " + err.Error()
	}
	tok, err := dec.Token()
	if err != nil {
		return "", false, nil, "", syntax(err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return "", false, nil, "", "not a JSON object: each line must be one object such as {\"openid\": \"...\"}"
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false, nil, "", syntax(err)
		}
		key, _ := tok.(string)
		if strings.ContainsRune(key, utf8.RuneError) && lostSurrogate(b) {
			return "", false, nil, key, `a \u escape is a lone surrogate, which is not a character`
		}
		val, err := dec.Token()
		if err != nil {
			return "", false, nil, key, syntax(err)
		}
		var s string
		switch v := val.(type) {
		case string:
			if strings.ContainsRune(v, utf8.RuneError) && lostSurrogate(b) {
				return "", false, nil, key, `a \u escape is a lone surrogate, which is not a character`
			}
			s = v
		case json.Number:
			var ok bool
			if s, ok = numberText(v); !ok {
				return "", false, nil, key, "number " + truncate(v.String(), 32) + " is out of range: write it as a string"
			}
		case json.Delim:
			return "", false, nil, key, "nested objects and arrays are not allowed: values are strings or numbers"
		case bool:
			return "", false, nil, key, strconv.FormatBool(v) + " is not allowed: values are strings or numbers"
		case nil:
			return "", false, nil, key, "null is not allowed: values are strings or numbers"
		}
		if strings.EqualFold(strings.TrimSpace(key), "openid") {
			if hasOpenID {
				return "", false, nil, key, "openid appears twice"
			}
			openid, hasOpenID = s, true
			continue
		}
		if vars == nil {
			vars = map[string]string{}
		}
		if _, dup := vars[key]; dup {
			return "", false, nil, key, "key appears twice"
		}
		vars[key] = s
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return "", false, nil, "", syntax(err)
	}
	if rest := bytes.TrimSpace(b[dec.InputOffset():]); len(rest) > 0 {
		return "", false, nil, "", "more than one JSON value on the line"
	}
	for k := range vars {
		a.keys[k] = true
	}
	return openid, hasOpenID, vars, "", ""
}

// lostSurrogate reports whether a JSON line has a \u escape of a UTF-16
// surrogate that encoding/json would decode as U+FFFD because it is not
// part of a valid pair. It is called only when a decoded string holds
// U+FFFD.
func lostSurrogate(b []byte) bool {
	for i := 0; i+6 <= len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if b[i+1] != 'u' {
			i++ // skip the escaped character, which may be a backslash
			continue
		}
		hi, ok := hex4(b[i+2 : i+6])
		switch {
		case !ok:
		case hi >= 0xDC00 && hi <= 0xDFFF:
			return true // a low surrogate first
		case hi >= 0xD800 && hi <= 0xDBFF:
			if i+12 > len(b) || b[i+6] != '\\' || b[i+7] != 'u' {
				return true
			}
			lo, ok := hex4(b[i+8 : i+12])
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 6
		}
		i += 5
	}
	return false
}

func hex4(b []byte) (rune, bool) {
	v, err := strconv.ParseUint(string(b), 16, 16)
	return rune(v), err == nil
}

// numberText returns a JSON number as decimal text: as written when it has
// no exponent (so 39.80 stays 39.80), else through float64 when the result
// is at most 21 digits long.
func numberText(n json.Number) (string, bool) {
	s := n.String()
	if !strings.ContainsAny(s, "eE") {
		return s, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.Abs(f) >= 1e21 || f != 0 && math.Abs(f) < 1e-6 {
		return "", false
	}
	return strconv.FormatFloat(f, 'f', -1, 64), true
}

// lineReader reads lines of at most max bytes, without their "\n" or
// "\r\n", and skips a UTF-8 BOM at the start of the input. Lines given
// back with unread are read again first.
type lineReader struct {
	br      *bufio.Reader
	max     int
	line    int // the number of the last line returned
	buf     []byte
	pending []pendingLine
}

// pendingLine is a line given back to a lineReader.
type pendingLine struct {
	b       []byte
	tooLong bool
}

// unread gives back lines, the last ones next returned, to be read again
// before any others.
func (l *lineReader) unread(lines []pendingLine) {
	l.pending = append(lines, l.pending...)
	l.line -= len(lines)
}

// next returns the next line. For a line longer than max it discards the
// rest of the line and returns tooLong. It returns io.EOF after the last
// line and a *FileError for a read error. The returned bytes are valid until
// the next call.
func (l *lineReader) next() (b []byte, tooLong bool, err error) {
	if len(l.pending) > 0 {
		p := l.pending[0]
		l.pending = l.pending[1:]
		l.line++
		return p.b, p.tooLong, nil
	}
	l.buf = l.buf[:0]
	read := 0
	for {
		chunk, err := l.br.ReadSlice('\n')
		read += len(chunk)
		if !tooLong {
			if len(l.buf)+len(chunk) > l.max+2 { // room for "\r\n"
				tooLong = true
				l.buf = l.buf[:0]
			} else {
				l.buf = append(l.buf, chunk...)
			}
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			if read == 0 {
				return nil, false, io.EOF
			}
			break
		}
		return nil, false, &FileError{Line: l.line + 1, Message: "read", Err: err}
	}
	l.line++
	b = l.buf
	if l.line == 1 {
		b = bytes.TrimPrefix(b, bom)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if tooLong || len(b) > l.max {
		return nil, true, nil
	}
	return b, false, nil
}

// quoteOpen reports whether a quoted field is open at the end of line b of
// a CSV record, given whether one was open at its start.
func quoteOpen(b []byte, inQuotes bool) bool {
	fieldStart := !inQuotes
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inQuotes && c == '"':
			if i+1 < len(b) && b[i+1] == '"' {
				i++
			} else {
				inQuotes = false
			}
		case inQuotes:
		case c == '"' && fieldStart:
			inQuotes = true
		case c == ',':
			fieldStart = true
			continue
		}
		fieldStart = false
	}
	return inQuotes
}

// parseCSV splits a CSV record into fields by RFC 4180, appending to
// fields. Fields are substrings of s unless they hold escaped quotes. On
// malformed input it returns the 1-based byte offset and a message.
func parseCSV(s string, fields []string) ([]string, int, string) {
	i := 0
	for {
		if i < len(s) && s[i] == '"' {
			var b strings.Builder
			j, start := i+1, i+1
			for {
				k := strings.IndexByte(s[j:], '"')
				if k < 0 {
					return fields, i + 1, "quoted field is never closed"
				}
				j += k
				if j+1 < len(s) && s[j+1] == '"' {
					b.WriteString(s[start : j+1])
					j += 2
					start = j
					continue
				}
				break
			}
			f := s[start:j]
			if b.Len() > 0 {
				b.WriteString(f)
				f = b.String()
			}
			fields = append(fields, f)
			j++
			if j == len(s) {
				return fields, 0, ""
			}
			if s[j] != ',' {
				return fields, j + 1, "text after the closing quote of a quoted field"
			}
			i = j + 1
			continue
		}
		k := strings.IndexByte(s[i:], ',')
		f := s[i:]
		if k >= 0 {
			f = s[i : i+k]
		}
		if q := strings.IndexByte(f, '"'); q >= 0 {
			return fields, i + q + 1, `a quote in an unquoted field: quote the field and double the quote ("")`
		}
		fields = append(fields, f)
		if k < 0 {
			return fields, 0, ""
		}
		i += k + 1
	}
}

func isBlank(b []byte) bool {
	return len(bytes.TrimLeft(b, " \t")) == 0
}

func allBlank(fields []string) bool {
	for _, f := range fields {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// seenSet is the set of accepted openids, as 96 bits of two seeded 64-bit
// hashes mapped to the line of their first occurrence: 16 bytes a slot.
// Among ten million openids the chance of any false duplicate is below
// 10⁻¹⁵.
type seenSet struct {
	s1, s2 maphash.Seed
	m      map[[3]uint32]uint32
}

func (s *seenSet) init() {
	s.s1, s.s2 = maphash.MakeSeed(), maphash.MakeSeed()
	s.m = map[[3]uint32]uint32{}
}

// add records openid, first seen on line, and reports whether it was seen
// before and on which line.
func (s *seenSet) add(openid string, line int) (int, bool) {
	h := maphash.String(s.s1, openid)
	k := [3]uint32{uint32(h), uint32(h >> 32), uint32(maphash.String(s.s2, openid))}
	if first, ok := s.m[k]; ok {
		return int(first), true
	}
	s.m[k] = uint32(min(line, math.MaxUint32))
	return 0, false
}

// safeValue shortens v to 64 characters and escapes invalid UTF-8 (\xNN)
// and control characters (\uNNNN), so that it can be shown and logged.
func safeValue(v string) string {
	if v == "" {
		return ""
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(v); {
		if n == 64 {
			b.WriteString("…")
			break
		}
		r, size := utf8.DecodeRuneInString(v[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02X`, v[i])
		case r < ' ' || r == 0x7f || r >= 0x80 && r < 0xa0 || r == 0x2028 || r == 0x2029:
			fmt.Fprintf(&b, `\u%04X`, r)
		default:
			b.WriteRune(r)
		}
		i += size
		n++
	}
	return b.String()
}
