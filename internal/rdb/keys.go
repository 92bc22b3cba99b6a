package rdb

// PrefixDefault is the key prefix used when none is configured.
const PrefixDefault = "wxmass"

// Keys builds every Redis key wxmass uses. The zero value uses
// PrefixDefault.
type Keys struct {
	Prefix string
}

func (k Keys) prefix() string {
	if k.Prefix == "" {
		return PrefixDefault
	}
	return k.Prefix
}

// account returns the hash-tagged part shared by all keys of one account.
func (k Keys) account(appID string) string { return k.prefix() + ":{acct:" + appID + "}" }

// Token is the hash holding an account's access_token: fields t (token),
// exp (expiry, ms since the epoch by the Redis clock), ref (when to refresh,
// ms), at (when fetched, ms).
func (k Keys) Token(appID string) string { return k.account(appID) + ":token" }

// TokenLease is the lock a process holds while it fetches a new token.
func (k Keys) TokenLease(appID string) string { return k.account(appID) + ":token:lease" }

// TokenError caches a token-API configuration error for a short time, so that
// every process fails fast instead of calling the token API again.
func (k Keys) TokenError(appID string) string { return k.account(appID) + ":token:error" }
