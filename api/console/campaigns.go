package console

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/i18n"
)

// pageSize is the campaign list's page.
const pageSize = 50

// campaignRow is a campaign as the API lists it (api.campaignView).
type campaignRow struct {
	campaigns.Campaign
	LatestRun int         `json:"latest_run"`
	NextFires []time.Time `json:"next_fires"`
}

// UnmarshalJSON reads the campaign and the API's fields beside it.
func (c *campaignRow) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &c.Campaign); err != nil {
		return err
	}
	var extra struct {
		LatestRun int         `json:"latest_run"`
		NextFires []time.Time `json:"next_fires"`
	}
	if err := json.Unmarshal(b, &extra); err != nil {
		return err
	}
	c.LatestRun, c.NextFires = extra.LatestRun, extra.NextFires
	return nil
}

// listData is the campaign list's page.
type listData struct {
	Campaigns         []campaignRow
	Total             int64
	Q, State, Account string
	States            []campaigns.State
	Accounts          []string
	PrevURL, NextURL  string
}

// allStates are the states the list filters by.
var allStates = []campaigns.State{campaigns.StateDraft, campaigns.StateScheduled, campaigns.StateRunning, campaigns.StatePaused,
	campaigns.StateStopping, campaigns.StateCompleted, campaigns.StateCancelled, campaigns.StateFailed}

// campaignList is the campaign list: GET /v1/campaigns with the filters,
// a page at a time.
func (c *Console) campaignList(w http.ResponseWriter, r *http.Request, v *view) error {
	in := r.URL.Query()
	d := listData{Q: in.Get("q"), State: in.Get("state"), Account: in.Get("account"), States: allStates, Accounts: c.accountIDs()}
	q := url.Values{"limit": {strconv.Itoa(pageSize)}}
	for _, k := range []string{"q", "state", "account", "offset"} {
		if val := in.Get(k); val != "" {
			q.Set(k, val)
		}
	}
	var page struct {
		Campaigns  []campaignRow `json:"campaigns"`
		Total      int64         `json:"total"`
		NextOffset *int64        `json:"next_offset"`
	}
	if err := c.get(r, "/v1/campaigns", q, &page); err != nil {
		return err
	}
	d.Campaigns, d.Total = page.Campaigns, page.Total
	link := func(offset int64) string {
		l := url.Values{}
		for _, k := range []string{"q", "state", "account"} {
			if val := in.Get(k); val != "" {
				l.Set(k, val)
			}
		}
		if offset > 0 {
			l.Set("offset", strconv.FormatInt(offset, 10))
		}
		if len(l) == 0 {
			return "/console/campaigns"
		}
		return "/console/campaigns?" + l.Encode()
	}
	if page.NextOffset != nil {
		d.NextURL = link(*page.NextOffset)
	}
	if off, _ := strconv.ParseInt(in.Get("offset"), 10, 64); off > 0 {
		// Back one page of the unfiltered list; a filtered list goes back
		// to its start (its pages have no fixed size).
		prev := int64(0)
		if d.Q == "" && d.State == "" && d.Account == "" {
			prev = max(off-pageSize, 0)
		}
		d.PrevURL = link(prev)
	}
	v.Nav, v.Title = "campaigns", v.T("nav.campaigns")
	return v.Render("campaigns", d)
}

// accountIDs are the configured accounts' ids.
func (c *Console) accountIDs() []string {
	if c.cfg.Accounts == nil {
		return nil
	}
	var out []string
	for _, a := range c.cfg.Accounts.All() {
		out = append(out, a.ID)
	}
	return out
}

// runStatus is a run's status as the API shows it (api.runView), the part
// the console reads.
type runStatus struct {
	Campaign string           `json:"campaign"`
	Account  string           `json:"account"`
	Run      int              `json:"run"`
	State    string           `json:"state"`
	Final    string           `json:"final"`
	Reason   string           `json:"reason"`
	Size     int64            `json:"size"`
	Expanded int64            `json:"expanded"`
	Settled  int64            `json:"settled"`
	Started  time.Time        `json:"started"`
	Finished *time.Time       `json:"finished"`
	Counters map[string]int64 `json:"counters"`
	Waiting  *struct {
		Reason string    `json:"reason"`
		Since  time.Time `json:"since"`
		Until  time.Time `json:"until"`
	} `json:"waiting"`
}

// campaignData is a campaign's page.
type campaignData struct {
	C   campaignRow
	Run *runStatus
	// Actions are the actions the campaign's state allows.
	Actions []string
	// Live is set while the run is live: the page follows its progress.
	Live bool
	// Preview is a draft's message as a recipient sees it (preview.go).
	Preview *preview
}

// actionsFor are the actions of a campaign in state s.
func actionsFor(s campaigns.State) []string {
	switch s {
	case campaigns.StateDraft:
		return []string{"edit", "audience", "test", "start", "schedule", "delete"}
	case campaigns.StateScheduled:
		return []string{"start", "unschedule"}
	case campaigns.StateRunning:
		return []string{"pause", "cancel"}
	case campaigns.StatePaused:
		return []string{"resume", "cancel"}
	case campaigns.StateCompleted, campaigns.StateFailed, campaigns.StateCancelled:
		return []string{"start", "schedule", "delete"}
	}
	return nil
}

func (c *Console) campaignPage(w http.ResponseWriter, r *http.Request, v *view) error {
	id := r.PathValue("id")
	var d campaignData
	if err := c.get(r, "/v1/campaigns/"+url.PathEscape(id), nil, &d.C); err != nil {
		return err
	}
	if d.C.LatestRun > 0 {
		var rs runStatus
		if err := c.get(r, "/v1/campaigns/"+url.PathEscape(id)+"/runs/"+strconv.Itoa(d.C.LatestRun), nil, &rs); err != nil {
			return err
		}
		d.Run = &rs
		d.Live = rs.Finished == nil
	}
	d.Actions = actionsFor(d.C.State)
	if d.C.State == campaigns.StateDraft {
		d.Preview = c.preview(r, v, &d.C.Campaign, d.C.ID, "")
	}
	v.Flash = flash(v, r.URL.Query().Get("done"))
	v.Nav, v.Title = "campaigns", d.C.Name
	v.loc = c.location(d.C.Account)
	return v.Render("campaign", d)
}

// flash is the message of an action just done ("" for none or unknown):
// its "done.<action>" message.
func flash(v *view, action string) string {
	if action == "" || !i18n.Default().Has(v.L.Tag, "done."+action) {
		return ""
	}
	return v.T("done." + action)
}

// confirmable are the actions with a confirmation page, and the API
// request each stands for.
var confirmable = map[string]bool{"start": true, "pause": true, "resume": true, "cancel": true, "unschedule": true, "delete": true}

// confirmData is a confirmation page.
type confirmData struct {
	C      campaignRow
	Action string
}

// confirmPage says what an action will do, with the button that does it.
func (c *Console) confirmPage(w http.ResponseWriter, r *http.Request, v *view) error {
	action := r.PathValue("action")
	if !confirmable[action] {
		return notFound(v.T("error.no_page"))
	}
	var d confirmData
	if err := c.get(r, "/v1/campaigns/"+url.PathEscape(r.PathValue("id")), nil, &d.C); err != nil {
		return err
	}
	d.Action = action
	v.Nav, v.Title = "campaigns", v.T("confirm."+action+".title", d.C.Name)
	return v.Render("confirm", d)
}

// campaignAction does a confirmed action through the API and shows the
// campaign again.
func (c *Console) campaignAction(w http.ResponseWriter, r *http.Request, v *view) error {
	id, action := r.PathValue("id"), r.PathValue("action")
	if !confirmable[action] {
		return notFound(v.T("error.no_page"))
	}
	path, method := "/v1/campaigns/"+url.PathEscape(id)+"/"+action, http.MethodPost
	if action == "delete" {
		path, method = "/v1/campaigns/"+url.PathEscape(id), http.MethodDelete
	}
	if _, err := c.call(r, method, path, nil, nil, ""); err != nil {
		return err
	}
	if action == "delete" {
		http.Redirect(w, r, "/console/campaigns", http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/console/campaigns/"+url.PathEscape(id)+"?done="+action, http.StatusSeeOther)
	return nil
}

// location is the time zone of account's dates: the accounts file's
// time_zone, account.TimeZoneDefault for an account it does not know.
func (c *Console) location(accountID string) *time.Location {
	if c.cfg.Accounts != nil {
		if a, err := c.cfg.Accounts.Get(accountID); err == nil {
			return a.TimeZone()
		}
	}
	return (&account.Account{}).TimeZone()
}
