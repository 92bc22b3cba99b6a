package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The audit trails: a campaign's (GET /v1/campaigns/{id}/events) and an
// account's (GET /v1/accounts/{account}/events), newest first, a page at
// a time by the API's cursor (?before=).

// eventsPageSize is a page of a trail.
const eventsPageSize = 50

// eventRow is an event as the API shows it (api.eventView) and the page.
type eventRow struct {
	At        string         `json:"at"`
	Key       string         `json:"key"`
	Via       string         `json:"via"`
	Action    string         `json:"action"`
	Campaign  string         `json:"campaign"`
	Account   string         `json:"account"`
	Run       int            `json:"run"`
	Status    int            `json:"status"`
	Code      string         `json:"code"`
	Remote    string         `json:"remote"`
	RequestID string         `json:"request_id"`
	Targets   *int           `json:"targets"`
	TargetsOK *int           `json:"targets_ok"`
	OpenID    string         `json:"openid"`
	Counts    map[string]int `json:"counts"`
	// When, ActionText, ViaText, CountsText and TargetsText are shown.
	When, ActionText, ViaText, CountsText, TargetsText string
}

// eventsData is an audit trail's page.
type eventsData struct {
	// Campaign or Account is whose trail it is; BackURL its page.
	Campaign, Account, Name string
	BackURL                 string
	Events                  []eventRow
	// FirstURL is the newest page's link (on an older page); NextURL the
	// next (older) page's.
	FirstURL, NextURL string
}

// campaignEvents is a campaign's audit trail.
func (c *Console) campaignEvents(w http.ResponseWriter, r *http.Request, v *view) error {
	id := r.PathValue("id")
	var cr campaignRow
	if err := c.get(r, "/v1/campaigns/"+url.PathEscape(id), nil, &cr); err != nil {
		return err
	}
	v.loc = c.location(cr.Account)
	d := eventsData{Campaign: id, Name: cr.Name, BackURL: "/console/campaigns/" + url.PathEscape(id)}
	if err := c.readEvents(r, v, "/v1/campaigns/"+url.PathEscape(id)+"/events", "/console/campaigns/"+url.PathEscape(id)+"/events", &d); err != nil {
		return err
	}
	v.Nav, v.Title = "campaigns", v.T("events.campaign.title", cr.Name)
	return v.Render("events", d)
}

// accountEvents is an account's audit trail.
func (c *Console) accountEvents(w http.ResponseWriter, r *http.Request, v *view) error {
	acct := r.PathValue("account")
	v.loc = c.location(acct)
	d := eventsData{Account: acct, Name: acct, BackURL: "/console/accounts"}
	if err := c.readEvents(r, v, "/v1/accounts/"+url.PathEscape(acct)+"/events", "/console/accounts/"+url.PathEscape(acct)+"/events", &d); err != nil {
		return err
	}
	v.Nav, v.Title = "accounts", v.T("events.account.title", acct)
	return v.Render("events", d)
}

// readEvents reads a page of the trail at api into d; page is the
// console's path of the trail.
func (c *Console) readEvents(r *http.Request, v *view, api, page string, d *eventsData) error {
	q := url.Values{"limit": {fmt.Sprint(eventsPageSize)}}
	before := r.URL.Query().Get("before")
	if before != "" {
		q.Set("before", before)
		d.FirstURL = page
	}
	var out struct {
		Events     []eventRow `json:"events"`
		NextBefore string     `json:"next_before"`
	}
	if err := c.get(r, api, q, &out); err != nil {
		return err
	}
	for _, e := range out.Events {
		if t, err := time.Parse(time.RFC3339Nano, e.At); err == nil {
			e.When = v.Time(t)
		} else {
			e.When = e.At
		}
		e.ActionText = c.textOr(v, "event.action."+e.Action, e.Action)
		e.ViaText = c.textOr(v, "event.via."+e.Via, e.Via)
		names := make([]string, 0, len(e.Counts))
		for n := range e.Counts {
			names = append(names, n)
		}
		slices.Sort(names)
		var parts []string
		for _, n := range names {
			parts = append(parts, v.T("event.count", c.textOr(v, "event.count."+n, n), e.Counts[n]))
		}
		e.CountsText = strings.Join(parts, v.T("event.count.sep"))
		if e.Targets != nil && e.TargetsOK != nil {
			e.TargetsText = v.T("event.targets", *e.TargetsOK, *e.Targets)
		}
		d.Events = append(d.Events, e)
	}
	if out.NextBefore != "" {
		d.NextURL = page + "?" + url.Values{"before": {out.NextBefore}}.Encode()
	}
	return nil
}

// textOr is key's text in v's language, or else (a value the catalogues
// do not name, shown as the API gives it).
func (c *Console) textOr(v *view, key, or string) string {
	if c.cat.Has(v.L.Tag, key) {
		return v.T(key)
	}
	return or
}
