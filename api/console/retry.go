package console

import (
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/wxmass/wxmass/campaigns"
)

// Retry of a run's failed recipients: GET and POST
// /console/campaigns/{id}/runs/{run}/retry. The filters are the API's
// (campaigns.RetryFilter): the outcomes to send again, and among them the
// classes of failure and the errcodes, offered as the run's counters have
// them. The page says how many recipients the chosen filter matches, as
// far as the counters tell; its confirmation posts
// POST /v1/campaigns/{id}/runs/{run}/retry and opens the campaign on its
// new run.

// retryOption is one checkbox of the retry form.
type retryOption struct {
	// Value is the filter's value; ID the checkbox's id.
	Value, ID string
	// Count is how many of the run's recipients have it.
	Count   int64
	Checked bool
}

// retryData is the retry page.
type retryData struct {
	C   campaignRow
	Run runStatus
	// Settled says whether every recipient of the run has an outcome: a
	// retry waits until then.
	Settled                  bool
	Statuses, Classes, Codes []retryOption
	// Match is how many recipients the filter matches, Exact whether the
	// counters tell exactly or only at most.
	Match int64
	Exact bool
	// Unknown is set when the filter sends unknown recipients again.
	Unknown bool
	// Checked is the key of the filter that Match is for; the
	// confirmation is for that filter.
	Checked string
	Err     *opError
}

func (c *Console) retryPage(w http.ResponseWriter, r *http.Request, v *view) error {
	d, err := c.retryData(r, v)
	if err != nil {
		return err
	}
	d.choose(campaigns.RetryFilter{})
	return v.Render("retry", d)
}

// retryData reads the campaign and the run.
func (c *Console) retryData(r *http.Request, v *view) (*retryData, error) {
	id, run := r.PathValue("id"), r.PathValue("run")
	if _, err := strconv.Atoi(run); err != nil {
		return nil, notFound(v.T("error.no_page"))
	}
	cr, err := c.campaign(r, id)
	if err != nil {
		return nil, err
	}
	d := &retryData{C: cr}
	if err := c.get(r, apiPath(id, "/runs/"+url.PathEscape(run)), nil, &d.Run); err != nil {
		return nil, err
	}
	d.Settled = d.Run.Finished != nil
	v.Nav, v.Title = "campaigns", v.T("ops.retry.title", cr.Name, d.Run.Run)
	v.loc = c.location(cr.Account)
	return d, nil
}

// retrySubmit shows the match of the form's filter or, when it was shown as
// it is, starts the retry.
func (c *Console) retrySubmit(w http.ResponseWriter, r *http.Request, v *view) error {
	d, err := c.retryData(r, v)
	if err != nil {
		return err
	}
	f := campaigns.RetryFilter{Statuses: r.PostForm["status"], Classes: r.PostForm["class"]}
	for _, s := range r.PostForm["code"] {
		n, err := strconv.Atoi(s)
		if err != nil {
			return &pageError{status: http.StatusBadRequest, msg: v.T("ops.retry.bad_code", s)}
		}
		f.Errcodes = append(f.Errcodes, n)
	}
	d.choose(f)
	if r.PostFormValue("op") != "confirm" || r.PostFormValue("checked") != d.Checked {
		return v.Render("retry", d)
	}
	if _, err := c.call(r, http.MethodPost, apiPath(d.C.ID, "/runs/"+strconv.Itoa(d.Run.Run)+"/retry"), nil, f, ""); err != nil {
		if d.Err, err = c.opErrorOf(v, err); err != nil {
			return err
		}
		return v.Render("retry", d)
	}
	http.Redirect(w, r, campaignPath(d.C.ID)+"?done=retry", http.StatusSeeOther)
	return nil
}

// retryClasses are the classes a retry filter takes (the API's
// retryClasses: retry's classes of failure, exhausted and receipt). The
// counters have others (a skipped recipient's suppressed, capped, window),
// which the API refuses in a filter.
var retryClasses = []string{"unknown", "refresh_token", "retry", "recipient", "message", "fatal", "quota",
	campaigns.ClassExhausted, campaigns.ClassReceipt}

// choose builds the form's options from the run's counters with f's
// values checked (failed when f names no outcome), and what f matches.
func (d *retryData) choose(f campaigns.RetryFilter) {
	statuses := f.Statuses
	if len(statuses) == 0 {
		statuses = []string{campaigns.OutcomeFailed}
	}
	counters := d.Run.Counters
	d.Statuses, d.Classes, d.Codes = nil, nil, nil
	for _, s := range campaigns.RetryStatuses {
		d.Statuses = append(d.Statuses, retryOption{Value: s, ID: "f-retry-status-" + s, Count: counters[s], Checked: slices.Contains(statuses, s)})
	}
	var classes []string
	var codes []int
	for k := range counters {
		if v, ok := strings.CutPrefix(k, "class:"); ok {
			if slices.Contains(retryClasses, v) {
				classes = append(classes, v)
			}
		} else if v, ok := strings.CutPrefix(k, "code:"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				codes = append(codes, n)
			}
		}
	}
	sort.Strings(classes)
	sort.Ints(codes)
	for _, cl := range classes {
		d.Classes = append(d.Classes, retryOption{Value: cl, ID: "f-retry-class-" + cl, Count: counters["class:"+cl],
			Checked: slices.Contains(f.Classes, cl)})
	}
	for _, n := range codes {
		s := strconv.Itoa(n)
		d.Codes = append(d.Codes, retryOption{Value: s, ID: "f-retry-code-" + s, Count: counters["code:"+s],
			Checked: slices.Contains(f.Errcodes, n)})
	}
	// The outcomes' counts are exact; a class's or errcode's counts every
	// outcome of that class or code, so with either chosen the counters
	// bound the match from above.
	d.Match, d.Exact = 0, len(f.Classes) == 0 && len(f.Errcodes) == 0
	for _, s := range statuses {
		d.Match += counters[s]
	}
	if len(f.Classes) > 0 {
		var n int64
		for _, cl := range f.Classes {
			n += counters["class:"+cl]
		}
		d.Match = min(d.Match, n)
	}
	if len(f.Errcodes) > 0 {
		var n int64
		for _, code := range f.Errcodes {
			n += counters["code:"+strconv.Itoa(code)]
		}
		d.Match = min(d.Match, n)
	}
	d.Unknown = slices.Contains(statuses, campaigns.OutcomeUnknown)
	key := url.Values{"status": statuses, "class": f.Classes}
	for _, code := range f.Errcodes {
		key.Add("code", strconv.Itoa(code))
	}
	d.Checked = key.Encode()
}
