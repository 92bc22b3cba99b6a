package api

import (
	"crypto/hmac"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/wxmass/wxmass/campaigns"
)

//go:embed assets/report.html
var reportHTML string

var (
	reportPage = template.Must(template.New("report").Parse(reportHTML))
	reportCSP  = pageCSP(reportPage, reportPageData{})
)

// ReportLinkTTLDefault is how long a signed report link opens the report
// page unless the request asks otherwise.
const ReportLinkTTLDefault = 7 * 24 * time.Hour

// reportPageData fills assets/report.html.
type reportPageData struct {
	Name   string
	Report Report
	JSON   string
	Live   bool
	// Waiting is set while the live run's sends wait for WeChat or for
	// quiet hours.
	Waiting *waitingView
}

// renderReport writes the HTML report page of a run: a progress bar, the
// counts, outcomes over time and failures by errcode, drawn in the browser
// from the report embedded in the page; it reloads itself while the run
// is live.
func (s *Server) renderReport(w http.ResponseWriter, r *http.Request, id string, run int) *Error {
	ctx := r.Context()
	c, err := s.cfg.Store.Get(ctx, id)
	if err != nil {
		return storeError(err)
	}
	rec, err := s.cfg.Store.Run(ctx, id, run)
	if err != nil {
		return storeError(err)
	}
	tl, err := s.cfg.Store.Timeline(ctx, id, run)
	if err != nil {
		return storeError(err)
	}
	rep := buildReport(c, run, rec, tl, s.meaning, time.Now())
	if err := s.cfg.Store.RecipientsKept(ctx, id, run); errors.Is(err, campaigns.ErrRecipientsExpired) {
		rep.Recipients = "expired"
	}
	if rep.Mass, err = s.mass(ctx, c, run, rec.MassCapped); err != nil {
		return storeError(err)
	}
	if rep.Protection, err = s.runProtection(ctx, c, run, rec); err != nil {
		return storeError(err)
	}
	raw, err := json.Marshal(rep)
	if err != nil {
		return apiError(http.StatusInternalServerError, CodeInternal, "", "encode report: %s", err.Error())
	}
	live := rec.State == "running" || rec.State == "paused" || rec.State == "stopping"
	// Its script and style by their hashes, nothing else inline; no
	// referrer, since a signed link carries its signature in the URL.
	data := reportPageData{Name: c.Name, Report: rep, JSON: string(raw), Live: live}
	if live {
		data.Waiting = s.waiting(ctx, c, rec)
	}
	setPageHeaders(w.Header(), reportCSP)
	if err := reportPage.Execute(w, data); err != nil {
		s.log.Warn("render report page")
	}
	return nil
}

// getReportPage is the report page behind the API key (Basic in a
// browser).
func (s *Server) getReportPage(w http.ResponseWriter, r *http.Request) *Error {
	c, run, e := s.runParams(r)
	if e != nil {
		return e
	}
	id := c.ID
	return s.renderReport(w, r, id, run)
}

// linkAnswer is a signed link to a run's report page.
type linkAnswer struct {
	URL     string    `json:"url"`
	Expires time.Time `json:"expires"`
}

// createReportLink signs a link that opens the run's report page without
// an API key until it expires (?ttl=, a duration such as 24h; 7 days by
// default, at most 90).
func (s *Server) createReportLink(w http.ResponseWriter, r *http.Request) *Error {
	c, run, e := s.runParams(r)
	if e != nil {
		return e
	}
	id := c.ID
	// A link to a run that does not exist would open nothing.
	if _, err := s.cfg.Store.Run(r.Context(), id, run); err != nil {
		return storeError(err)
	}
	ttl := ReportLinkTTLDefault
	if v := r.URL.Query().Get("ttl"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 90*24*time.Hour {
			return apiError(http.StatusBadRequest, CodeInvalidField, "ttl", "ttl must be a duration from 1s to 2160h, got %q", v)
		}
		ttl = d
	}
	key, err := s.cfg.Store.SigningKey(r.Context())
	if err != nil {
		return storeError(err)
	}
	exp := time.Now().Add(ttl).Truncate(time.Second)
	q := url.Values{"exp": {strconv.FormatInt(exp.Unix(), 10)}, "sig": {signReport(key, id, run, exp.Unix())}}
	writeJSON(w, http.StatusOK, linkAnswer{URL: "/reports/" + id + "/" + strconv.Itoa(run) + "?" + q.Encode(), Expires: exp.UTC()})
	return nil
}

func signReport(key []byte, id string, run int, exp int64) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "\n" + strconv.Itoa(run) + "\n" + strconv.FormatInt(exp, 10)))
	return hex.EncodeToString(m.Sum(nil))
}

// openReportLink serves the report page of a signed link.
func (s *Server) openReportLink(w http.ResponseWriter, r *http.Request) {
	fail := func(e *Error) { writeError(w, e) }
	id := r.PathValue("id")
	run, err := strconv.Atoi(r.PathValue("run"))
	if err != nil || run <= 0 {
		fail(apiError(http.StatusNotFound, CodeNotFound, "", "no such report"))
		return
	}
	q := r.URL.Query()
	exp, err := strconv.ParseInt(q.Get("exp"), 10, 64)
	sig, herr := hex.DecodeString(q.Get("sig"))
	if err != nil || herr != nil {
		fail(apiError(http.StatusUnauthorized, CodeUnauthorized, "sig", "this link is not signed"))
		return
	}
	key, kerr := s.cfg.Store.SigningKey(r.Context())
	if kerr != nil {
		fail(storeError(kerr))
		return
	}
	want, _ := hex.DecodeString(signReport(key, id, run, exp))
	if !hmac.Equal(sig, want) {
		fail(apiError(http.StatusUnauthorized, CodeUnauthorized, "sig", "this link's signature is not valid"))
		return
	}
	if time.Now().Unix() > exp {
		fail(apiError(http.StatusUnauthorized, CodeUnauthorized, "exp", "this link has expired; ask for a new one"))
		return
	}
	if e := s.renderReport(w, r, id, run); e != nil {
		fail(e)
	}
}
