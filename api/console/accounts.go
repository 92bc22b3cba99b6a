package console

import (
	"net/http"
	"time"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/wechat"
)

// accountRow is an account as GET /v1/accounts shows it (api.accountView).
type accountRow struct {
	ID         string               `json:"id"`
	AppID      string               `json:"appid"`
	Default    bool                 `json:"default"`
	TimeZone   string               `json:"time_zone"`
	Limits     map[string]limitView `json:"limits"`
	Protection protectionView       `json:"protection"`
	Circuit    *struct {
		Open   bool       `json:"open"`
		Since  *time.Time `json:"since"`
		Probes int        `json:"probes"`
	} `json:"circuit"`
	Paused []struct {
		API    string    `json:"api"`
		Reason string    `json:"reason"`
		Until  time.Time `json:"until"`
	} `json:"paused"`
}

type limitView struct {
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
}

// protectionView is an account's audience protection (api.accountProtectionView).
type protectionView struct {
	Caps []struct {
		Max int    `json:"max"`
		Per string `json:"per"`
	} `json:"caps"`
	OverCap          string `json:"over_cap"`
	CapTransactional bool   `json:"cap_transactional"`
	QuietHours       *struct {
		From          string `json:"from"`
		To            string `json:"to"`
		TimeZone      string `json:"time_zone"`
		Transactional bool   `json:"transactional"`
	} `json:"quiet_hours"`
	CSWindow struct {
		Hours    int  `json:"hours"`
		Messages int  `json:"messages"`
		Enforce  bool `json:"enforce"`
	} `json:"cs_window"`
	Suppressed int64 `json:"suppressed"`
}

// sendAPIs are the send APIs the pages show, in order, with the key of
// each one's name.
var sendAPIs = []struct{ API, Key string }{
	{wechat.APITemplateSend, "api.template"},
	{wechat.APICustomSend, "api.custom"},
	{wechat.APIBizSend, "api.subscribe"},
	{account.APIMass, "api.mass"},
}

// apiKey is the message key of api's name ("" for one the pages do not
// know).
func apiKey(api string) string {
	for _, a := range sendAPIs {
		if a.API == api {
			return a.Key
		}
	}
	return ""
}

// listAccounts reads GET /v1/accounts.
func (c *Console) listAccounts(r *http.Request) ([]accountRow, error) {
	var out struct {
		Accounts []accountRow `json:"accounts"`
	}
	if err := c.get(r, "/v1/accounts", nil, &out); err != nil {
		return nil, err
	}
	return out.Accounts, nil
}

// accountsData is the accounts page.
type accountsData struct {
	Accounts []accountRow
}

// accountsPage lists the accounts with their protection, and links to
// each one's suppression list and audit trail.
func (c *Console) accountsPage(w http.ResponseWriter, r *http.Request, v *view) error {
	accts, err := c.listAccounts(r)
	if err != nil {
		return err
	}
	v.Nav, v.Title = "accounts", v.T("nav.accounts")
	return v.Render("accounts", accountsData{Accounts: accts})
}
