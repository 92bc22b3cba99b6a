package api

import (
	"encoding/csv"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/httpserve"
)

// Report is a run's report: what happened to every recipient, why, and
// when.
type Report struct {
	Campaign string `json:"campaign"`
	// Name, Account and Kind are the campaign's.
	Name    string `json:"name"`
	Account string `json:"account"`
	Kind    string `json:"kind"`
	Run     int    `json:"run"`
	// State is the run's: stopping (with Final, what it will be) until
	// every recipient of a stopped run has an outcome.
	State    string     `json:"state"`
	Final    string     `json:"final,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	Size     int64      `json:"size"`
	Settled  int64      `json:"settled"`
	Started  time.Time  `json:"started"`
	Finished *time.Time `json:"finished,omitempty"`
	// DurationSeconds is from the start to the last outcome (to now while
	// the run is live).
	DurationSeconds float64 `json:"duration_seconds"`
	// Recipients is "expired" once the run's per-recipient data passed the
	// retention; empty while it is kept (in Redis or archived).
	Recipients string `json:"recipients,omitempty"`
	// Outcomes counts recipients by final outcome: sent (accepted by
	// WeChat, no receipt yet), delivered (receipt: success), failed,
	// unknown (an answer was lost: WeChat may have delivered it), skipped,
	// cancelled (both: certainly never sent). They add up to Settled.
	Outcomes map[string]int64 `json:"outcomes"`
	// Accepted is how many WeChat accepted (sent plus delivered plus
	// receipts of failure); Delivered how many receipts said delivered.
	Accepted  int64 `json:"accepted"`
	Delivered int64 `json:"delivered"`
	// Errcodes are the failures by WeChat errcode, most frequent first.
	Errcodes []ErrcodeCount `json:"errcodes"`
	// Classes are the failures by class (recipient, message, fatal,
	// retry, exhausted, expired, ambiguous, receipt...).
	Classes map[string]int64 `json:"classes"`
	// Timeline is the outcomes per second, oldest first.
	Timeline []TimelineSecond `json:"timeline"`
	// RateAverage is Settled over the duration; RatePeak the most outcomes
	// in one second.
	RateAverage float64 `json:"rate_average"`
	RatePeak    int64   `json:"rate_peak"`
	// Mass is a mass run's batches with WeChat's counts: its outcomes are
	// per batch, not per recipient.
	Mass *massView `json:"mass,omitempty"`
	// Protection counts the recipients the account's protection held
	// back, absent when it held back none (protection.go).
	Protection *runProtectionView `json:"protection,omitempty"`
}

// ErrcodeCount is the failures of one errcode.
type ErrcodeCount struct {
	Code    int    `json:"code"`
	Count   int64  `json:"count"`
	Class   string `json:"class,omitempty"`
	Meaning string `json:"meaning,omitempty"`
}

// TimelineSecond is the outcomes of one second.
type TimelineSecond struct {
	T        time.Time        `json:"t"`
	Outcomes map[string]int64 `json:"outcomes"`
}

// runParams reads the campaign and run of a run's path.
func (s *Server) runParams(r *http.Request) (*campaigns.Campaign, int, *Error) {
	id := r.PathValue("id")
	run, err := strconv.Atoi(r.PathValue("run"))
	if err != nil || run <= 0 {
		return nil, 0, apiError(http.StatusBadRequest, CodeInvalidField, "run", "run must be a positive whole number, got %q", r.PathValue("run"))
	}
	c, err := s.cfg.Store.Get(r.Context(), id)
	if err != nil {
		return nil, 0, storeError(err)
	}
	return c, run, nil
}

func (s *Server) getReport(w http.ResponseWriter, r *http.Request) *Error {
	c, run, e := s.runParams(r)
	if e != nil {
		return e
	}
	id := c.ID
	ctx := r.Context()
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
	writeJSON(w, http.StatusOK, rep)
	return nil
}

// meaning returns an errcode's class and meaning from the retry policy.
func (s *Server) meaning(code int) (string, string) {
	if s.cfg.Policy == nil {
		return "", ""
	}
	if rule, ok := s.cfg.Policy.Rule(code); ok {
		return rule.Class.String(), rule.Meaning
	}
	return "", ""
}

func buildReport(c *campaigns.Campaign, run int, rec campaigns.RunRecord, tl []campaigns.TimelinePoint, meaning func(int) (string, string), now time.Time) Report {
	rep := Report{Campaign: c.ID, Name: c.Name, Account: c.Account, Kind: string(c.Kind), Run: run, State: rec.State, Final: rec.Final, Reason: rec.Reason, Size: rec.Size, Settled: rec.Settled(),
		Started: rec.Started, Outcomes: map[string]int64{}, Classes: map[string]int64{}, Errcodes: []ErrcodeCount{}, Timeline: []TimelineSecond{}}
	end := now
	if !rec.Finished.IsZero() {
		rep.Finished = &rec.Finished
		end = rec.Finished
	}
	if !rec.Started.IsZero() && end.After(rec.Started) {
		rep.DurationSeconds = end.Sub(rec.Started).Seconds()
		rep.RateAverage = float64(rep.Settled) / rep.DurationSeconds
	}
	for k, n := range rec.Counters {
		switch {
		case strings.HasPrefix(k, "code:"):
			code, err := strconv.Atoi(k[len("code:"):])
			if err != nil {
				continue
			}
			ec := ErrcodeCount{Code: code, Count: n}
			if meaning != nil {
				ec.Class, ec.Meaning = meaning(code)
			}
			rep.Errcodes = append(rep.Errcodes, ec)
		case strings.HasPrefix(k, "class:"):
			rep.Classes[k[len("class:"):]] = n
		case k == "total" || strings.Contains(k, ":"):
		default:
			rep.Outcomes[k] = n
		}
	}
	slices.SortFunc(rep.Errcodes, func(a, b ErrcodeCount) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return a.Code - b.Code
	})
	rep.Delivered = rep.Outcomes["delivered"]
	rep.Accepted = rep.Outcomes["sent"] + rep.Delivered + rep.Classes["receipt"]
	for _, p := range tl {
		if len(rep.Timeline) == 0 || rep.Timeline[len(rep.Timeline)-1].T.Unix() != p.Sec {
			rep.Timeline = append(rep.Timeline, TimelineSecond{T: time.Unix(p.Sec, 0).UTC(), Outcomes: map[string]int64{}})
		}
		last := &rep.Timeline[len(rep.Timeline)-1]
		last.Outcomes[p.Status] += p.N
	}
	for _, ts := range rep.Timeline {
		var n int64
		for _, c := range ts.Outcomes {
			n += c
		}
		rep.RatePeak = max(rep.RatePeak, n)
	}
	return rep
}

// exportOutcomes streams a run's outcomes as CSV: openid, status, errcode,
// class, msgid, detail, at; filtered by status and errcode when given. A
// text cell that a spreadsheet would run as a formula is neutralised
// (csvCell).
func (s *Server) exportOutcomes(w http.ResponseWriter, r *http.Request) *Error {
	c, run, e := s.runParams(r)
	if e != nil {
		return e
	}
	id := c.ID
	q := r.URL.Query()
	status := q.Get("status")
	if status != "" && !campaigns.ValidOutcome(status) {
		return apiError(http.StatusBadRequest, CodeInvalidField, "status", "status %q is not %s", status, strings.Join(campaigns.OutcomeStatuses, ", "))
	}
	code := 0
	if v := q.Get("errcode"); v != "" {
		var err error
		if code, err = strconv.Atoi(v); err != nil || code == 0 {
			return apiError(http.StatusBadRequest, CodeInvalidField, "errcode", "errcode must be a non-zero whole number, got %q", v)
		}
	}
	if _, err := s.cfg.Store.Run(r.Context(), id, run); err != nil {
		return storeError(err)
	}
	if err := s.cfg.Store.RecipientsKept(r.Context(), id, run); err != nil {
		return storeError(err)
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+id+"-run"+strconv.Itoa(run)+`-outcomes.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"openid", "status", "errcode", "class", "msgid", "detail", "at"})
	err := s.cfg.Store.ScanOutcomes(r.Context(), id, run, func(openid string, o campaigns.Outcome) error {
		// A long export is not cut while it goes on.
		httpserve.Progress(r.Context())
		if (status != "" && o.Status != status) || (code != 0 && o.Code != code) {
			return nil
		}
		// Text cells come from WeChat and from requests: see csvCell.
		row := []string{csvCell(openid), csvCell(o.Status), "", csvCell(o.Class), "", csvCell(o.Detail), o.At.UTC().Format(time.RFC3339Nano)}
		if o.Code != 0 {
			row[2] = strconv.Itoa(o.Code)
		}
		if o.MsgID != 0 {
			row[4] = strconv.FormatInt(o.MsgID, 10)
		}
		return cw.Write(row)
	})
	cw.Flush()
	if err != nil {
		// The answer has begun: all that can be done is to cut it short,
		// which the client sees as a truncated body.
		s.log.Warn("export outcomes cut short")
		panic(http.ErrAbortHandler)
	}
	return nil
}
