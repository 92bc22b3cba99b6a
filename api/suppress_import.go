package api

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/httpserve"
)

// PUT /v1/accounts/{account}/suppressions/import reads a CSV body, one user
// a line: "openid" or "openid,note" (a note with a comma or a quote is
// quoted as CSV has it; a note is one line). A first line "openid" or
// "openid,note" is a header; blank lines are skipped. Each bad line is
// reported by its number, as an audience upload's are, and skipped; the
// limits are an audience file's (campaigns.Audience*Default). The body is
// read whole before anything is stored: a body with no valid line, or one
// the limits refuse, changes nothing.

// SuppressImportMax is the most openids one import adds.
const SuppressImportMax = 100_000

// suppressImportWrite is how many entries one write of an import stores.
const suppressImportWrite = 1000

// importAnswer is the answer of an import, and the report of a refused
// one.
type importAnswer struct {
	Added   int `json:"added"`
	Updated int `json:"updated"`
	// Bad is how many lines were refused; BadLines the first
	// campaigns.AudienceMaxErrorsDefault of them, in body order.
	Bad      int           `json:"bad"`
	BadLines []badLineView `json:"bad_lines"`
}

// badLineView is a line an import refused.
type badLineView struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// importRefusal is a refused import: the error to answer, and the report
// of what was read up to it.
type importRefusal struct {
	e *Error
	// line is the line it names, 0 for the whole body.
	line int
}

// importReader reads an import's body a line at a time.
type importReader struct {
	br     *bufio.Reader
	line   int
	header bool // a header was seen, or the first line was data
	seen   map[string]int
	out    importAnswer
	// proto is every entry's reason, time and source.
	proto campaigns.Suppression
	// entries are the valid lines' users, in body order.
	entries []campaigns.Suppression
}

// bad records a refused line.
func (ir *importReader) bad(msg string) {
	ir.out.Bad++
	if len(ir.out.BadLines) < campaigns.AudienceMaxErrorsDefault {
		ir.out.BadLines = append(ir.out.BadLines, badLineView{Line: ir.line, Error: msg})
	}
}

// next reads the next line, without its end; tooLong reports a line
// longer than campaigns.AudienceMaxLineBytesDefault (which is skipped). It
// returns io.EOF after the last line.
func (ir *importReader) next() (b []byte, tooLong bool, err error) {
	b, err = ir.br.ReadSlice('\n')
	for errors.Is(err, bufio.ErrBufferFull) {
		tooLong = true
		_, err = ir.br.ReadSlice('\n')
	}
	switch {
	case errors.Is(err, io.EOF) && len(b) == 0 && !tooLong:
		return nil, false, io.EOF
	case err != nil && !errors.Is(err, io.EOF):
		return nil, false, err
	}
	ir.line++
	b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
	if ir.line == 1 {
		b = bytes.TrimPrefix(b, []byte("\xEF\xBB\xBF"))
	}
	return b, tooLong, nil
}

// read reads the whole body into ir.entries and ir.out, or returns why the
// import is refused as a whole.
func (ir *importReader) read() *importRefusal {
	for {
		b, tooLong, err := ir.next()
		var big *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return nil
		case errors.As(err, &big):
			return &importRefusal{e: apiError(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "",
				"the body is larger than %d bytes; nothing was stored", big.Limit)}
		case err != nil:
			return &importRefusal{e: apiError(http.StatusBadRequest, CodeInvalidField, "", "the body could not be read; nothing was stored")}
		}
		if r := ir.parse(b, tooLong); r != nil {
			return r
		}
		if ir.out.Bad > campaigns.AudienceMaxBadLinesDefault {
			return &importRefusal{line: ir.line, e: apiError(http.StatusUnprocessableEntity, CodeInvalidField, "",
				"%d bad lines, more than the limit of %d: is this the right file, in UTF-8? Nothing was stored", ir.out.Bad, campaigns.AudienceMaxBadLinesDefault)}
		}
		if len(ir.entries) > SuppressImportMax {
			return &importRefusal{line: ir.line, e: apiError(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "",
				"more than %d openids: import them in parts; nothing was stored", SuppressImportMax)}
		}
	}
}

// parse reads one line.
func (ir *importReader) parse(b []byte, tooLong bool) *importRefusal {
	switch {
	case tooLong:
		ir.bad("longer than " + strconv.Itoa(campaigns.AudienceMaxLineBytesDefault) + " bytes")
		return nil
	case !utf8.Valid(b):
		ir.bad("invalid UTF-8: save the file as UTF-8")
		return nil
	case len(bytes.TrimSpace(b)) == 0:
		return nil
	}
	cr := csv.NewReader(bytes.NewReader(b))
	cr.FieldsPerRecord = -1
	cells, err := cr.Read()
	if err != nil {
		msg := err.Error()
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			msg = pe.Err.Error() + " (at character " + strconv.Itoa(pe.Column) + ")"
		}
		ir.bad("not valid CSV: " + msg)
		return nil
	}
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	first := !ir.header
	ir.header = true
	if first && strings.EqualFold(cells[0], "openid") {
		if len(cells) > 2 || (len(cells) == 2 && !strings.EqualFold(cells[1], "note")) {
			return &importRefusal{line: ir.line, e: apiError(http.StatusUnprocessableEntity, CodeInvalidField, "",
				"header: %q: the columns are openid and, optionally, note; nothing was stored", clip(strings.Join(cells, ",")))}
		}
		return nil
	}
	if len(cells) > 2 {
		ir.bad(strconv.Itoa(len(cells)) + " fields: want openid, or openid,note (quote a note that has a comma)")
		return nil
	}
	openid := cells[0]
	switch {
	case openid == "":
		ir.bad("openid: no openid")
		return nil
	case !campaigns.ValidOpenID(openid):
		ir.bad("openid: " + strconv.Quote(clipValue(openid)) + " is not an openid: 20 to 64 letters, digits, '_' and '-'")
		return nil
	}
	note := ""
	if len(cells) == 2 {
		note = cells[1]
		if why := checkNote(note); why != "" {
			ir.bad("note: " + why)
			return nil
		}
	}
	if first, dup := ir.seen[openid]; dup {
		ir.bad("openid: duplicate of line " + strconv.Itoa(first))
		return nil
	}
	ir.seen[openid] = ir.line
	e := ir.proto
	e.OpenID, e.Note = openid, note
	ir.entries = append(ir.entries, e)
	return nil
}

// clipValue shortens a line's value for its error: 64 characters at most.
func clipValue(s string) string {
	if utf8.RuneCountInString(s) <= 64 {
		return s
	}
	return string([]rune(s)[:64]) + "…"
}

// importSuppressions answers PUT
// /v1/accounts/{account}/suppressions/import.
func (s *Server) importSuppressions(w http.ResponseWriter, r *http.Request) *Error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "text/csv" {
		return apiError(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Type",
			"send text/csv (one openid a line, optionally ,note), not %q", clip(r.Header.Get("Content-Type")))
	}
	a, e := s.suppressAccount(r)
	if e != nil {
		return e
	}
	ctx := r.Context()
	noteAuditAccount(ctx, a.ID)
	p, _ := PrincipalFrom(ctx)
	ir := &importReader{br: bufio.NewReaderSize(http.MaxBytesReader(w, httpserve.Upload(r), s.cfg.MaxUploadBytes), campaigns.AudienceMaxLineBytesDefault),
		seen: map[string]int{}, out: importAnswer{BadLines: []badLineView{}},
		proto: campaigns.Suppression{Reason: campaigns.SuppressManual, At: s.cfg.Now(), Source: p.Key}}
	refusal := ir.read()
	if refusal == nil && len(ir.entries) == 0 {
		refusal = &importRefusal{e: apiError(http.StatusUnprocessableEntity, CodeInvalidField, "", "the body has no openid; nothing was stored")}
		if len(ir.out.BadLines) > 0 {
			first := ir.out.BadLines[0]
			refusal = &importRefusal{line: first.Line, e: apiError(http.StatusUnprocessableEntity, CodeInvalidField, "",
				"no valid line: line %d: %s; nothing was stored", first.Line, first.Error)}
		}
	}
	if refusal != nil {
		noteAuditCounts(ctx, auditCount{"added", 0}, auditCount{"updated", 0}, auditCount{"bad", ir.out.Bad})
		if refusal.e.status != http.StatusUnprocessableEntity {
			return refusal.e
		}
		writeRefused(ctx, w, refusal.e, refusal.line, ir.out)
		return nil
	}
	for i := 0; i < len(ir.entries); i += suppressImportWrite {
		n, err := s.cfg.Store.Suppress(ctx, a.AppID, true, ir.entries[i:min(i+suppressImportWrite, len(ir.entries))]...)
		ir.out.Added += n
		if err != nil {
			s.countSuppressed(a, ir.out.Added)
			noteAuditCounts(ctx, auditCount{"added", ir.out.Added}, auditCount{"bad", ir.out.Bad})
			return storeError(err)
		}
	}
	s.countSuppressed(a, ir.out.Added)
	ir.out.Updated = len(ir.entries) - ir.out.Added
	noteAuditCounts(ctx, auditCount{"added", ir.out.Added}, auditCount{"updated", ir.out.Updated}, auditCount{"bad", ir.out.Bad})
	writeJSON(w, http.StatusOK, ir.out)
	return nil
}
