package console

import (
	"net/http"
	"net/url"
)

// accountRow is an account as GET /v1/accounts shows it, the part the
// dashboard reads.
type accountRow struct {
	ID         string `json:"id"`
	AppID      string `json:"appid"`
	Protection struct {
		Suppressed int64 `json:"suppressed"`
	} `json:"protection"`
}

// dashData is the dashboard.
type dashData struct {
	Accounts []accountRow
	Live     []campaignRow
}

// dashboard shows the accounts and the campaigns that are sending.
// TODO(console): rate, quota used and left, pauses and circuit state per
// account; live runs' progress bars, rate and ETA; recent failures.
func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, v *view) error {
	var d dashData
	var accts struct {
		Accounts []accountRow `json:"accounts"`
	}
	if err := c.get(r, "/v1/accounts", nil, &accts); err != nil {
		return err
	}
	d.Accounts = accts.Accounts
	for _, st := range []string{"running", "paused", "stopping"} {
		var page struct {
			Campaigns []campaignRow `json:"campaigns"`
		}
		if err := c.get(r, "/v1/campaigns", url.Values{"state": {st}, "limit": {"20"}}, &page); err != nil {
			return err
		}
		d.Live = append(d.Live, page.Campaigns...)
	}
	v.Nav, v.Title = "dashboard", v.T("nav.dashboard")
	return v.Render("dashboard", d)
}
