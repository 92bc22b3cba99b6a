package console

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wxmass/wxmass/internal/httpserve"
)

// An account's suppression list: a page of it (GET
// /v1/accounts/{account}/suppressions, by its cursor), one user looked up,
// added with a note, removed after a confirmation, a CSV file imported
// (with the per-line report) and the export linked. Every change goes
// through the API.

const (
	// supPageSize is a page of the list (the API's HSCAN COUNT: about).
	supPageSize = 50
	// supImportMaxBytes bounds an imported file's form: the API takes at
	// most 100,000 openids, each line at most a few hundred bytes.
	supImportMaxBytes = 64 << 20
)

// supEntry is a suppression list's entry (api.suppressionView).
type supEntry struct {
	OpenID string `json:"openid"`
	Reason string `json:"reason"`
	Code   int    `json:"code"`
	At     string `json:"at"`
	Source string `json:"source"`
	Note   string `json:"note"`
}

// supRow is an entry as the page shows it.
type supRow struct {
	supEntry
	When string
}

// importReport is an import's answer, or the report of a refused one
// (api.importAnswer).
type importReport struct {
	Added    int `json:"added"`
	Updated  int `json:"updated"`
	Bad      int `json:"bad"`
	BadLines []struct {
		Line  int    `json:"line"`
		Error string `json:"error"`
	} `json:"bad_lines"`
}

// translate puts the bad lines' errors into v's language (lineError).
func (rep *importReport) translate(v *view) {
	if rep == nil {
		return
	}
	for i := range rep.BadLines {
		rep.BadLines[i].Error = lineError(v, rep.BadLines[i].Error)
	}
}

// supData is the suppression list's page.
type supData struct {
	Account string
	Total   int64
	Entries []supRow
	// Cursor is this page's cursor; NextURL the next page's link.
	Cursor, NextURL string
	// Search is the openid looked up; Found its entry, NotFound set when
	// it is not on the list.
	Search   string
	Found    *supRow
	NotFound bool
	// OpenID and Note are the add form's values, kept when it is refused.
	OpenID, Note string
	// Errors are the field errors by field (openids, note, search, file);
	// Error a form's error that names no field, Detail the API's words.
	Errors        map[string]string
	Error, Detail string
	// Report is an import's report.
	Report *importReport
	// Refused is set when the import stored nothing.
	Refused bool
}

func (c *Console) supPath(r *http.Request) string {
	return "/v1/accounts/" + url.PathEscape(r.PathValue("account")) + "/suppressions"
}

func supPageURL(account string) string {
	return "/console/accounts/" + url.PathEscape(account) + "/suppressions"
}

// supDone are the flashes of the list's actions.
var supDone = map[string]bool{"added": true, "removed": true}

// suppressionsPage is the list, with the search, add and import forms.
func (c *Console) suppressionsPage(w http.ResponseWriter, r *http.Request, v *view) error {
	d := &supData{Errors: map[string]string{}}
	if done := r.URL.Query().Get("done"); supDone[done] {
		v.Flash = v.T("sup.done." + done)
	}
	return c.renderSuppressions(w, r, v, d, http.StatusOK)
}

// renderSuppressions reads the page of the list (and the search) into d
// and shows it with status.
func (c *Console) renderSuppressions(w http.ResponseWriter, r *http.Request, v *view, d *supData, status int) error {
	acct := r.PathValue("account")
	d.Account = acct
	v.loc = c.location(acct)
	q := r.URL.Query()
	d.Cursor = q.Get("cursor")
	list := url.Values{"limit": {strconv.Itoa(supPageSize)}}
	if d.Cursor != "" {
		list.Set("cursor", d.Cursor)
	}
	var page struct {
		Entries    []supEntry `json:"entries"`
		NextCursor string     `json:"next_cursor"`
		Total      int64      `json:"total"`
	}
	if err := c.get(r, c.supPath(r), list, &page); err != nil {
		return err
	}
	d.Total = page.Total
	for _, e := range page.Entries {
		d.Entries = append(d.Entries, supRow{supEntry: e, When: supWhen(v, e.At)})
	}
	if page.NextCursor != "" {
		d.NextURL = supPageURL(acct) + "?" + url.Values{"cursor": {page.NextCursor}}.Encode()
	}
	if d.Search = strings.TrimSpace(q.Get("openid")); d.Search != "" {
		var e supEntry
		err := c.get(r, c.supPath(r)+"/"+url.PathEscape(d.Search), nil, &e)
		ae, isAPI := asAPIError(err)
		switch {
		case err == nil:
			d.Found = &supRow{supEntry: e, When: supWhen(v, e.At)}
		case isAPI && ae.Code == "not_suppressed":
			d.NotFound = true
		case isAPI && ae.Code == "invalid_field":
			d.Errors["search"] = v.T("sup.err.openid")
		default:
			return err
		}
	}
	v.Nav, v.Title = "accounts", v.T("sup.title", acct)
	if status != http.StatusOK {
		return renderStatus(w, c, v, "suppressions", d, status)
	}
	return v.Render("suppressions", d)
}

// renderStatus renders page with data and a status other than 200 (a
// refused form shown again).
func renderStatus(w http.ResponseWriter, c *Console, v *view, page string, data any, status int) error {
	_ = v.Render(page, data)
	c.render(w, v, status)
	v.page = ""
	return nil
}

// supWhen shows an entry's time (RFC 3339) in the view's zone.
func supWhen(v *view, at string) string {
	t, err := time.Parse(time.RFC3339, at)
	if err != nil {
		return at
	}
	return v.Time(t)
}

// supAdd adds one user with a note (POST .../suppressions); a refused
// field is shown next to it.
func (c *Console) supAdd(w http.ResponseWriter, r *http.Request, v *view) error {
	d := &supData{Errors: map[string]string{}, OpenID: strings.TrimSpace(r.PostFormValue("openid")), Note: r.PostFormValue("note")}
	body := map[string]any{"openids": []string{d.OpenID}, "note": d.Note}
	if d.OpenID == "" {
		body["openids"] = []string{}
	}
	_, err := c.call(r, http.MethodPost, c.supPath(r), nil, body, "")
	if ae, ok := asAPIError(err); ok && ae.Code == "invalid_field" {
		switch {
		case d.OpenID == "":
			d.Errors["openids"] = v.T("sup.err.openid_required")
		case strings.HasPrefix(ae.Field, "openids"):
			d.Errors["openids"] = v.T("sup.err.openid")
		case ae.Field == "note":
			d.Errors["note"] = v.T("sup.err.note")
		default:
			d.Error = c.apiErrorText(v, ae)
		}
		return c.renderSuppressions(w, r, v, d, http.StatusUnprocessableEntity)
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, supPageURL(r.PathValue("account"))+"?done=added", http.StatusSeeOther)
	return nil
}

// supRemoveData is the confirmation of a removal.
type supRemoveData struct {
	Account string
	Entry   supRow
}

// supConfirmRemove says what removing a user does, with the button.
func (c *Console) supConfirmRemove(w http.ResponseWriter, r *http.Request, v *view) error {
	var e supEntry
	if err := c.get(r, c.supPath(r)+"/"+url.PathEscape(r.PathValue("openid")), nil, &e); err != nil {
		return err
	}
	acct := r.PathValue("account")
	v.loc = c.location(acct)
	v.Nav, v.Title = "accounts", v.T("sup.remove.title")
	return v.Render("suppression_remove", supRemoveData{Account: acct, Entry: supRow{supEntry: e, When: supWhen(v, e.At)}})
}

// supRemove removes a user (DELETE .../suppressions/{openid}).
func (c *Console) supRemove(w http.ResponseWriter, r *http.Request, v *view) error {
	if _, err := c.call(r, http.MethodDelete, c.supPath(r)+"/"+url.PathEscape(r.PathValue("openid")), nil, nil, ""); err != nil {
		return err
	}
	http.Redirect(w, r, supPageURL(r.PathValue("account"))+"?done=removed", http.StatusSeeOther)
	return nil
}

// supImportForm reads the import's multipart form, at most
// supImportMaxBytes (a larger one is refused as too large), checks its
// form token and runs supImport.
func (c *Console) supImportForm(w http.ResponseWriter, r *http.Request, v *view) error {
	// The browser's upload is read here, under the server's upload
	// deadline rather than its body timeout (httpserve.Upload).
	r.Body = http.MaxBytesReader(w, httpserve.Upload(r), supImportMaxBytes)
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		var big *http.MaxBytesError
		if errors.As(err, &big) {
			return &pageError{status: http.StatusRequestEntityTooLarge, msg: v.T("apierr.body_too_large")}
		}
		return &pageError{status: http.StatusBadRequest, msg: v.T("sup.err.file")}
	}
	defer func() { _ = r.MultipartForm.RemoveAll() }()
	if !checkFormToken(r) {
		return &pageError{status: http.StatusForbidden, msg: v.T("error.form_token")}
	}
	return c.supImport(w, r, v)
}

// supImport sends an uploaded CSV file to PUT .../suppressions/import and
// shows its report: what was added, and each bad line.
func (c *Console) supImport(w http.ResponseWriter, r *http.Request, v *view) error {
	d := &supData{Errors: map[string]string{}}
	f, _, err := r.FormFile("file")
	if err != nil {
		d.Errors["file"] = v.T("sup.err.file")
		return c.renderSuppressions(w, r, v, d, http.StatusUnprocessableEntity)
	}
	defer f.Close()
	a, err := c.call(r, http.MethodPut, c.supPath(r)+"/import", nil, io.Reader(f), "text/csv")
	if ae, ok := asAPIError(err); ok && ae.Status == http.StatusUnprocessableEntity {
		var refused struct {
			Report *importReport `json:"report"`
		}
		if json.Unmarshal(a.Body, &refused) == nil {
			d.Report = refused.Report
			d.Report.translate(v)
		}
		d.Refused, d.Error, d.Detail = true, v.T("sup.import.refused"), ae.Message
		return c.renderSuppressions(w, r, v, d, http.StatusUnprocessableEntity)
	}
	if ae, ok := asAPIError(err); ok && (ae.Code == "body_too_large" || ae.Code == "unsupported_media_type") {
		d.Errors["file"] = c.apiErrorText(v, ae)
		return c.renderSuppressions(w, r, v, d, ae.Status)
	}
	if err != nil {
		return err
	}
	d.Report = &importReport{}
	if err := json.Unmarshal(a.Body, d.Report); err != nil {
		return err
	}
	d.Report.translate(v)
	v.Flash = v.T("sup.done.imported", d.Report.Added, d.Report.Updated, d.Report.Bad)
	return c.renderSuppressions(w, r, v, d, http.StatusOK)
}
