package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/wxmass/wxmass/campaigns"
)

// Schedule: GET and POST /console/campaigns/{id}/schedule. The form takes
// a cron expression in a time zone, or a one-off time. Its first post
// (preview) checks the schedule and shows its next fire times, computed
// here with the campaigns package's rules; the second (confirm) stores the
// schedule in the draft (PUT /v1/campaigns/{id}) and puts it on its
// schedule (POST /v1/campaigns/{id}/schedule).

// scheduleForm is the schedule form's values.
type scheduleForm struct {
	Cron, TZ, At, Missed string
}

// key is the form's values in one string: a confirmation is for the values
// that were previewed.
func (f scheduleForm) key() string {
	return url.Values{"cron": {f.Cron}, "tz": {f.TZ}, "at": {f.At}, "missed": {f.Missed}}.Encode()
}

// scheduleData is the schedule page.
type scheduleData struct {
	C campaignRow
	F scheduleForm
	// Checked is the key of the form whose fire times are shown: set, the
	// page offers the confirmation.
	Checked string
	// Fires are the next fire times of the previewed schedule, in its time
	// zone.
	Fires []string
	// Recurring says whether the previewed schedule is a cron one.
	Recurring bool
	// Errs are the problems by form field (cron, tz, at, missed) or
	// "schedule" for the schedule as a whole.
	Errs map[string]string
	// Missed are the policies for missed fires.
	Missed []campaigns.Missed
	Err    *opError
}

// atLayouts are the forms of a datetime-local input's value.
var atLayouts = []string{"2006-01-02T15:04", "2006-01-02T15:04:05"}

// fireLayout shows a fire time.
const fireLayout = "2006-01-02 15:04 MST (-07:00)"

func (c *Console) schedulePage(w http.ResponseWriter, r *http.Request, v *view) error {
	d, err := c.scheduleData(r, v)
	if err != nil {
		return err
	}
	d.F = scheduleForm{TZ: campaigns.TimeZoneDefault, Missed: string(campaigns.MissedDefault)}
	if s := d.C.Schedule; s != nil {
		d.F.Cron, d.F.Missed = s.Cron, string(s.Policy())
		if s.TimeZone != "" {
			d.F.TZ = s.TimeZone
		}
		if !s.At.IsZero() {
			d.F.At, d.F.TZ = s.At.Format(atLayouts[0]), s.At.Location().String()
		}
	}
	return v.Render("schedule", d)
}

func (c *Console) scheduleData(r *http.Request, v *view) (*scheduleData, error) {
	cr, err := c.campaign(r, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	v.Nav, v.Title = "campaigns", v.T("ops.schedule.title", cr.Name)
	v.loc = c.location(cr.Account)
	return &scheduleData{C: cr, Errs: map[string]string{}, Missed: []campaigns.Missed{campaigns.MissedSkip, campaigns.MissedOnce}}, nil
}

// scheduleSubmit previews the form's schedule, or, when it was previewed as
// it is, stores it and puts the campaign on it.
func (c *Console) scheduleSubmit(w http.ResponseWriter, r *http.Request, v *view) error {
	d, err := c.scheduleData(r, v)
	if err != nil {
		return err
	}
	d.F = scheduleForm{Cron: strings.TrimSpace(r.PostFormValue("cron")), TZ: strings.TrimSpace(r.PostFormValue("tz")),
		At: strings.TrimSpace(r.PostFormValue("at")), Missed: r.PostFormValue("missed")}
	s := c.checkSchedule(v, d)
	if s == nil {
		return v.Render("schedule", d)
	}
	if r.PostFormValue("op") != "confirm" || r.PostFormValue("checked") != d.F.key() {
		return v.Render("schedule", d)
	}
	if err := c.putSchedule(r, d.C.Campaign, s); err != nil {
		if d.Err, err = c.opErrorOf(v, err); err != nil {
			return err
		}
		for f, msg := range d.Err.Fields {
			if name, ok := scheduleFields[f]; ok {
				d.Errs[name] = msg
			}
		}
		d.Checked = ""
		return v.Render("schedule", d)
	}
	http.Redirect(w, r, campaignPath(d.C.ID)+"?done=schedule", http.StatusSeeOther)
	return nil
}

// scheduleFields are the form's fields of the campaign's schedule fields.
var scheduleFields = map[string]string{"schedule": "schedule", "schedule.cron": "cron", "schedule.time_zone": "tz",
	"schedule.at": "at", "schedule.missed": "missed"}

// checkSchedule reads d.F as a schedule and checks it as the API will:
// with its problems in d.Errs it returns nil; else it fills d's fire times
// and returns the schedule.
func (c *Console) checkSchedule(v *view, d *scheduleData) *campaigns.Schedule {
	f := d.F
	s := &campaigns.Schedule{Missed: campaigns.Missed(f.Missed)}
	switch {
	case f.Cron != "" && f.At != "":
		d.Errs["schedule"] = v.T("ops.schedule.both")
		return nil
	case f.Cron == "" && f.At == "":
		d.Errs["schedule"] = v.T("ops.schedule.neither")
		return nil
	case f.Cron != "":
		s.Cron, s.TimeZone = f.Cron, f.TZ
	default:
		name := f.TZ
		if name == "" {
			name = campaigns.TimeZoneDefault
		}
		loc, err := time.LoadLocation(name)
		if err != nil || name == "Local" {
			d.Errs["tz"] = v.T("ops.schedule.bad_tz", name)
			return nil
		}
		at, ok := parseAt(f.At, loc)
		if !ok {
			d.Errs["at"] = v.T("ops.schedule.bad_at")
			return nil
		}
		s.At = at
	}
	now := c.cfg.Now()
	cp := d.C.Campaign
	cp.Schedule = s
	var ve *campaigns.ValidationError
	if err := cp.ValidateAt(now); errors.As(err, &ve) {
		for _, fe := range ve.Errors {
			if name, ok := scheduleFields[fe.Field]; ok {
				d.Errs[name] = fe.Message
			}
		}
	}
	if len(d.Errs) > 0 {
		return nil
	}
	for _, t := range s.NextN(now, campaigns.NextFiresDefault) {
		d.Fires = append(d.Fires, s.Zone(t).Format(fireLayout))
	}
	if len(d.Fires) == 0 {
		d.Errs["schedule"] = v.T("ops.schedule.never")
		return nil
	}
	d.Checked, d.Recurring = f.key(), s.Recurring()
	return s
}

// parseAt reads a datetime-local value in loc.
func parseAt(s string, loc *time.Location) (time.Time, bool) {
	for _, l := range atLayouts {
		if t, err := time.ParseInLocation(l, s, loc); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// putSchedule stores s as the campaign's schedule, its definition
// otherwise as it is, and puts the campaign on it.
func (c *Console) putSchedule(r *http.Request, cp campaigns.Campaign, s *campaigns.Schedule) error {
	// The fields wxmass sets are not the request's.
	cp.ID, cp.State, cp.CreatedAt, cp.UpdatedAt, cp.TestedAt, cp.TestedDigest = "", "", time.Time{}, time.Time{}, nil, ""
	cp.Schedule = s
	id := r.PathValue("id")
	if _, err := c.call(r, http.MethodPut, apiPath(id, ""), nil, &cp, ""); err != nil {
		return err
	}
	_, err := c.call(r, http.MethodPost, apiPath(id, "/schedule"), nil, nil, "")
	return err
}
