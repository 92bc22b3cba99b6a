package api

import (
	"encoding/csv"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/httpserve"
)

// An account's suppression list (campaigns.Store.Suppress and its
// neighbours), as the API shows and changes it:
//
//   - GET /v1/accounts/{account}/suppressions?cursor=&limit= pages through
//     the list (HSCAN: the cursor is opaque);
//   - GET and DELETE /v1/accounts/{account}/suppressions/{openid} read and
//     remove one entry, whatever its reason;
//   - POST /v1/accounts/{account}/suppressions adds users as reason manual;
//   - PUT /v1/accounts/{account}/suppressions/import adds them from a CSV
//     body (suppress_import.go);
//   - GET /v1/accounts/{account}/suppressions/export streams the list as
//     CSV.
//
// The lists are keyed by the account's appid: WeChat's openids are per
// appid. Every change is audited: in the log and in the account's trail
// (GET /v1/accounts/{account}/events), with its counts and, for one user,
// the openid masked.

// Bounds of the suppression list's endpoints.
const (
	// SuppressListLimitDefault and SuppressListLimitMax bound a page of
	// GET .../suppressions (?limit=).
	SuppressListLimitDefault = 100
	SuppressListLimitMax     = 1000
	// SuppressAddMax is the most openids one POST adds.
	SuppressAddMax = 10_000
	// SuppressNoteMax is the longest note, in characters.
	SuppressNoteMax = 200
	// suppressExportPage is how many entries an export reads at a time.
	suppressExportPage = 1000
)

// SuppressionMetrics counts the users added to suppression lists
// (monitoring.Metrics).
type SuppressionMetrics interface {
	SuppressionsAdded(account, reason string, n int)
}

// suppressionView is an entry of a suppression list as the API shows it.
type suppressionView struct {
	OpenID string `json:"openid"`
	// Reason is unfollowed, blocked, refused, invalid or manual.
	Reason string `json:"reason"`
	// Code is the errcode that added it, if one did.
	Code int `json:"code,omitempty"`
	// At is when it was added, RFC 3339 in UTC.
	At string `json:"at"`
	// Source is what added it: "campaign:run", "receipt", "event", or the
	// name of the API key of an operator.
	Source string `json:"source"`
	Note   string `json:"note"`
}

func newSuppressionView(e campaigns.Suppression) suppressionView {
	return suppressionView{OpenID: e.OpenID, Reason: e.Reason, Code: e.Code, At: e.At.UTC().Format(time.RFC3339), Source: e.Source, Note: e.Note}
}

// suppressionPage is a page of a suppression list.
type suppressionPage struct {
	Entries []suppressionView `json:"entries"`
	// NextCursor is the cursor of the next page, "" after the last.
	NextCursor string `json:"next_cursor"`
	// Total is the size of the list.
	Total int64 `json:"total"`
}

// suppressAddRequest is the body of POST .../suppressions.
type suppressAddRequest struct {
	OpenIDs []string `json:"openids"`
	Note    string   `json:"note"`
}

// suppressAddAnswer says how many users an addition put on the list
// (Added) and how many it found there, whose entries it replaced with its
// own (Updated).
type suppressAddAnswer struct {
	Added   int `json:"added"`
	Updated int `json:"updated"`
}

// suppressAccount returns the account of the path: 404 naming account for
// one this server does not send for.
func (s *Server) suppressAccount(r *http.Request) (*account.Account, *Error) {
	if s.cfg.Accounts == nil {
		return nil, apiError(http.StatusNotImplemented, CodeUnavailable, "", "this server has no accounts")
	}
	a, err := s.cfg.Accounts.Get(r.PathValue("account"))
	if err != nil {
		return nil, apiError(http.StatusNotFound, CodeNotFound, "account", "no account %q (configured: %s)",
			r.PathValue("account"), strings.Join(accountIDs(s.cfg.Accounts), ", "))
	}
	return a, nil
}

// pathOpenID returns the openid of the path, or 400 naming it.
func pathOpenID(r *http.Request) (string, *Error) {
	o := r.PathValue("openid")
	if !campaigns.ValidOpenID(o) {
		return "", apiError(http.StatusBadRequest, CodeInvalidField, "openid", "%q is not an openid: 20 to 64 letters, digits, '_' and '-'", clip(o))
	}
	return o, nil
}

// checkNote returns why note cannot be a suppression's note, or "".
func checkNote(note string) string {
	if n := utf8.RuneCountInString(note); n > SuppressNoteMax {
		return strconv.Itoa(n) + " characters, at most " + strconv.Itoa(SuppressNoteMax)
	}
	for _, r := range note {
		if unicode.IsControl(r) {
			return "a control character (" + strconv.QuoteRune(r) + "): a note is one line of text"
		}
	}
	return ""
}

// notSuppressed is the answer about a user not on a's list.
func notSuppressed(a *account.Account) *Error {
	return apiError(http.StatusNotFound, CodeNotSuppressed, "openid", "the user is not on account %s's suppression list", a.ID)
}

// listSuppressions answers GET /v1/accounts/{account}/suppressions: a
// page of about limit entries (Redis's HSCAN COUNT: a small list comes
// whole) from cursor, the next page's cursor and the list's size.
func (s *Server) listSuppressions(w http.ResponseWriter, r *http.Request) *Error {
	a, e := s.suppressAccount(r)
	if e != nil {
		return e
	}
	q := r.URL.Query()
	limit, e := intParam(q.Get("limit"), "limit", SuppressListLimitDefault, 1, SuppressListLimitMax)
	if e != nil {
		return e
	}
	var cursor uint64
	if v := q.Get("cursor"); v != "" {
		var err error
		if cursor, err = strconv.ParseUint(v, 10, 64); err != nil {
			return apiError(http.StatusBadRequest, CodeInvalidField, "cursor", "cursor must be the next_cursor of an earlier page, got %q", clip(v))
		}
	}
	ctx := r.Context()
	entries, next, err := s.cfg.Store.ScanSuppressions(ctx, a.AppID, cursor, int64(limit))
	if err != nil {
		return storeError(err)
	}
	total, err := s.cfg.Store.CountSuppressions(ctx, a.AppID)
	if err != nil {
		return storeError(err)
	}
	out := suppressionPage{Entries: make([]suppressionView, 0, len(entries)), Total: total}
	for _, e := range entries {
		out.Entries = append(out.Entries, newSuppressionView(e))
	}
	if next != 0 {
		out.NextCursor = strconv.FormatUint(next, 10)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// getSuppression answers GET /v1/accounts/{account}/suppressions/{openid}.
func (s *Server) getSuppression(w http.ResponseWriter, r *http.Request) *Error {
	a, e := s.suppressAccount(r)
	if e != nil {
		return e
	}
	openid, e := pathOpenID(r)
	if e != nil {
		return e
	}
	entries, on, err := s.cfg.Store.Suppressions(r.Context(), a.AppID, []string{openid})
	if err != nil {
		return storeError(err)
	}
	if !on[0] {
		return notSuppressed(a)
	}
	writeJSON(w, http.StatusOK, newSuppressionView(entries[0]))
	return nil
}

// addSuppressions answers POST /v1/accounts/{account}/suppressions: the
// openids (1 to SuppressAddMax, each given once or more) are put on the
// list as reason manual, with the note and the name of the request's key;
// an entry already there, whatever its reason, is replaced.
func (s *Server) addSuppressions(w http.ResponseWriter, r *http.Request) *Error {
	var req suppressAddRequest
	if e := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); e != nil {
		return e
	}
	switch n := len(req.OpenIDs); {
	case n == 0:
		return apiError(http.StatusUnprocessableEntity, CodeInvalidField, "openids", "openids is required: 1 to %d openids", SuppressAddMax)
	case n > SuppressAddMax:
		return apiError(http.StatusUnprocessableEntity, CodeInvalidField, "openids", "%d openids, at most %d in one request: use PUT .../suppressions/import for more", n, SuppressAddMax)
	}
	for i, o := range req.OpenIDs {
		if !campaigns.ValidOpenID(o) {
			return apiError(http.StatusUnprocessableEntity, CodeInvalidField, "openids["+strconv.Itoa(i)+"]",
				"%q is not an openid: 20 to 64 letters, digits, '_' and '-'", clip(o))
		}
	}
	if why := checkNote(req.Note); why != "" {
		return apiError(http.StatusUnprocessableEntity, CodeInvalidField, "note", "note: %s", why)
	}
	a, e := s.suppressAccount(r)
	if e != nil {
		return e
	}
	ctx := r.Context()
	noteAuditAccount(ctx, a.ID)
	p, _ := PrincipalFrom(ctx)
	now := s.cfg.Now()
	openids := slices.Clone(req.OpenIDs)
	slices.Sort(openids)
	openids = slices.Compact(openids)
	if len(openids) == 1 {
		noteAuditOpenID(ctx, openids[0])
	}
	entries := make([]campaigns.Suppression, len(openids))
	for i, o := range openids {
		entries[i] = campaigns.Suppression{OpenID: o, Reason: campaigns.SuppressManual, At: now, Source: p.Key, Note: req.Note}
	}
	added, err := s.cfg.Store.Suppress(ctx, a.AppID, true, entries...)
	if err != nil {
		return storeError(err)
	}
	s.countSuppressed(a, added)
	out := suppressAddAnswer{Added: added, Updated: len(entries) - added}
	noteAuditCounts(ctx, auditCount{"added", out.Added}, auditCount{"updated", out.Updated})
	writeJSON(w, http.StatusOK, out)
	return nil
}

// countSuppressed counts n users an operator added to a's list.
func (s *Server) countSuppressed(a *account.Account, n int) {
	if s.cfg.Metrics != nil {
		s.cfg.Metrics.SuppressionsAdded(a.ID, campaigns.SuppressManual, n)
	}
}

// deleteSuppression answers DELETE
// /v1/accounts/{account}/suppressions/{openid}: the user's entry goes,
// whatever its reason (an operator's word lifts WeChat's too).
func (s *Server) deleteSuppression(w http.ResponseWriter, r *http.Request) *Error {
	a, e := s.suppressAccount(r)
	if e != nil {
		return e
	}
	openid, e := pathOpenID(r)
	if e != nil {
		return e
	}
	ctx := r.Context()
	noteAuditAccount(ctx, a.ID)
	noteAuditOpenID(ctx, openid)
	n, err := s.cfg.Store.Unsuppress(ctx, a.AppID, false, openid)
	if err != nil {
		return storeError(err)
	}
	noteAuditCounts(ctx, auditCount{"removed", n})
	if n == 0 {
		return notSuppressed(a)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// exportSuppressions answers GET
// /v1/accounts/{account}/suppressions/export: the whole list as CSV
// (openid, reason, code, at, source, note), streamed a page at a time.
// Text cells a spreadsheet would run as formulas are neutralised
// (csvCell).
func (s *Server) exportSuppressions(w http.ResponseWriter, r *http.Request) *Error {
	a, e := s.suppressAccount(r)
	if e != nil {
		return e
	}
	ctx := r.Context()
	// The first page before the answer begins: a failure is still an
	// error answer.
	entries, next, err := s.cfg.Store.ScanSuppressions(ctx, a.AppID, 0, suppressExportPage)
	if err != nil {
		return storeError(err)
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+a.ID+`-suppressions.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"openid", "reason", "code", "at", "source", "note"})
	for {
		for _, e := range entries {
			// The source and the note come from requests: see csvCell.
			row := []string{csvCell(e.OpenID), csvCell(e.Reason), "", e.At.UTC().Format(time.RFC3339), csvCell(e.Source), csvCell(e.Note)}
			if e.Code != 0 {
				row[2] = strconv.Itoa(e.Code)
			}
			if err = cw.Write(row); err != nil {
				break
			}
		}
		if err != nil || next == 0 {
			break
		}
		// A long export is not cut while it goes on.
		httpserve.Progress(ctx)
		entries, next, err = s.cfg.Store.ScanSuppressions(ctx, a.AppID, next, suppressExportPage)
		if err != nil {
			break
		}
	}
	cw.Flush()
	if err == nil {
		err = cw.Error()
	}
	if err != nil {
		// The answer has begun: all that can be done is to cut it short,
		// which the client sees as a truncated body.
		s.log.Warn("export suppressions cut short")
		panic(http.ErrAbortHandler)
	}
	return nil
}
