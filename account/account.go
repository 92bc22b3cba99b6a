// Package account holds the Official Accounts a wxmass process sends for:
// each one's name, appid, shared access token and rate limits per API, the
// accounts file they are configured in (see LoadFile and Watch), and the
// Hub that builds them and keeps them in step with the file.
package account

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat"
)

// ErrUnknown is returned for an account that is not configured.
var ErrUnknown = errors.New("account: unknown account")

// Account is one Official Account. It does not change once registered: a
// reload registers new Accounts (see Registry.Replace).
type Account struct {
	// ID names the account in campaigns, reports, metrics and logs.
	// Default: AppID.
	ID string
	// AppID is the account's appid at WeChat.
	AppID string
	// Tokens is the account's access_token, shared by every process.
	Tokens wechat.TokenSource
	// Limits maps an API name (wechat.APITemplateSend, ...) to the account's
	// rate limit for it; APIs not listed use Default.
	Limits map[string]ratelimit.Limit
	// Default is the limit of APIs without their own.
	Default ratelimit.Limit
	// Mass is how the account may send mass messages.
	Mass MassSpec
	// Protection is the account's frequency caps, quiet hours and
	// customer-service window.
	Protection Protection
	// Location is the account's time zone, in which the console shows its
	// dates; nil means TimeZoneDefault (see Account.TimeZone).
	Location *time.Location
}

// TimeZone returns the account's time zone: Location, or TimeZoneDefault
// when it is nil (time.UTC should the zone database lack it).
func (a *Account) TimeZone() *time.Location {
	if a.Location != nil {
		return a.Location
	}
	return defaultLocation()
}

var defaultLocation = sync.OnceValue(func() *time.Location {
	loc, err := time.LoadLocation(TimeZoneDefault)
	if err != nil {
		return time.UTC
	}
	return loc
})

// Limit returns the account's rate limit for api.
func (a *Account) Limit(api string) ratelimit.Limit {
	if l, ok := a.Limits[api]; ok {
		return l
	}
	if api == APIMass {
		return MassLimit
	}
	return a.Default
}

// APIMass is the bucket of every mass API of an account
// (campaigns.APIMass, which this package cannot import).
const APIMass = "message/mass"

// Subscription reports whether the account is a subscription account.
func (m MassSpec) Subscription() bool { return m.Type == TypeSubscription }

// BucketKey is the rate-limit bucket of (account, API), shared by every
// process. It is keyed by appid: WeChat's limits belong to the appid, not
// to the name an operator gives it.
func (a *Account) BucketKey(api string) string { return a.AppID + ":" + api }

// Registry looks accounts up by name or appid. Replace swaps the whole set
// at once; lookups are safe concurrently with it.
type Registry struct {
	cur atomic.Pointer[accountSet]
}

type accountSet struct {
	byID    map[string]*Account
	byAppID map[string]*Account
	def     string
	ordered []*Account
}

// NewRegistry returns a registry of accounts; the first is the default for
// campaigns that name none.
func NewRegistry(accounts ...*Account) (*Registry, error) {
	r := &Registry{}
	if err := r.Replace(accounts...); err != nil {
		return nil, err
	}
	return r, nil
}

// Replace makes accounts the registry's accounts, the first being the
// default. On error the registry is unchanged.
func (r *Registry) Replace(accounts ...*Account) error {
	s := &accountSet{byID: make(map[string]*Account, len(accounts)), byAppID: make(map[string]*Account, len(accounts))}
	for _, a := range accounts {
		if a.AppID == "" {
			return errors.New("account: empty appid")
		}
		if a.ID == "" {
			a.ID = a.AppID
		}
		if _, dup := s.byID[a.ID]; dup {
			return fmt.Errorf("account: %s configured twice", a.ID)
		}
		if _, dup := s.byAppID[a.AppID]; dup {
			return fmt.Errorf("account: appid %s configured twice", a.AppID)
		}
		if s.def == "" {
			s.def = a.ID
		}
		s.byID[a.ID] = a
		s.byAppID[a.AppID] = a
		s.ordered = append(s.ordered, a)
	}
	if len(s.byID) == 0 {
		return errors.New("account: no account configured")
	}
	sort.Slice(s.ordered, func(i, j int) bool { return s.ordered[i].ID < s.ordered[j].ID })
	r.cur.Store(s)
	return nil
}

// Get returns the account named name, by ID or else by appid ("" means the
// default account).
func (r *Registry) Get(name string) (*Account, error) {
	s := r.cur.Load()
	if name == "" {
		name = s.def
	}
	if a, ok := s.byID[name]; ok {
		return a, nil
	}
	if a, ok := s.byAppID[name]; ok {
		return a, nil
	}
	return nil, fmt.Errorf("%w %q (configured: %s)", ErrUnknown, name, s.names())
}

// Default returns the ID of the default account.
func (r *Registry) Default() string { return r.cur.Load().def }

// All returns the accounts, ordered by ID.
func (r *Registry) All() []*Account { return r.cur.Load().ordered }

func (s *accountSet) names() string {
	var out string
	for i, a := range s.ordered {
		if i > 0 {
			out += ", "
		}
		out += a.ID
	}
	return out
}
