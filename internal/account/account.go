// Package account holds the Official Accounts a wxmass process sends for:
// each one's appid, its shared access token and its rate limits per API.
package account

import (
	"errors"
	"fmt"
	"sort"

	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat"
)

// ErrUnknown is returned for an appid that is not configured.
var ErrUnknown = errors.New("account: unknown appid")

// Account is one Official Account.
type Account struct {
	// AppID identifies the account.
	AppID string
	// Tokens is the account's access_token, shared by every process.
	Tokens wechat.TokenSource
	// Limits maps an API name (wechat.APITemplateSend, ...) to the account's
	// rate limit for it; APIs not listed use Default.
	Limits map[string]ratelimit.Limit
	// Default is the limit of APIs without their own.
	Default ratelimit.Limit
}

// Limit returns the account's rate limit for api.
func (a *Account) Limit(api string) ratelimit.Limit {
	if l, ok := a.Limits[api]; ok {
		return l
	}
	return a.Default
}

// BucketKey is the rate-limit bucket of (account, API), shared by every
// process.
func (a *Account) BucketKey(api string) string { return a.AppID + ":" + api }

// Registry looks accounts up by appid. It is safe for concurrent reads once
// built.
type Registry struct {
	byID map[string]*Account
	def  string
}

// NewRegistry returns a registry of accounts; the first is the default for
// campaigns that name none.
func NewRegistry(accounts ...*Account) (*Registry, error) {
	r := &Registry{byID: make(map[string]*Account, len(accounts))}
	for _, a := range accounts {
		if a.AppID == "" {
			return nil, errors.New("account: empty appid")
		}
		if _, dup := r.byID[a.AppID]; dup {
			return nil, fmt.Errorf("account: appid %s configured twice", a.AppID)
		}
		if r.def == "" {
			r.def = a.AppID
		}
		r.byID[a.AppID] = a
	}
	if len(r.byID) == 0 {
		return nil, errors.New("account: no account configured")
	}
	return r, nil
}

// Get returns the account of appid ("" means the default account).
func (r *Registry) Get(appID string) (*Account, error) {
	if appID == "" {
		appID = r.def
	}
	a, ok := r.byID[appID]
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrUnknown, appID)
	}
	return a, nil
}

// All returns the accounts, ordered by appid.
func (r *Registry) All() []*Account {
	out := make([]*Account, 0, len(r.byID))
	for _, a := range r.byID {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AppID < out[j].AppID })
	return out
}
