package rdb

import (
	"fmt"
	"strings"
)

// PrefixDefault is the key prefix used when none is configured.
const PrefixDefault = "wxmass"

// Keys builds every Redis key wxmass uses. The zero value uses
// PrefixDefault.
type Keys struct {
	Prefix string
}

// CheckPrefix reports whether prefix can be a key prefix on Redis Cluster.
// A '{' or '}' in it would change the part of each key Redis hashes: a
// prefix holding "{}" unties a campaign's keys (its scripts then fail with
// CROSSSLOT), and one holding "{x}" puts every key of wxmass in one slot, on
// one node.
func CheckPrefix(prefix string) error {
	if strings.ContainsAny(prefix, "{}") {
		return fmt.Errorf("rdb: key prefix %q contains '{' or '}', which would change how Redis Cluster places keys", prefix)
	}
	return nil
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

// Breaker is the hash of an account's open circuit breaker (WeChat
// unreachable for it): fields since (when it opened, ms since the epoch by
// the Redis clock) and probes (failed probes since). It exists only while
// the breaker is open, and expires unless probes keep extending it.
func (k Keys) Breaker(appID string) string { return k.account(appID) + ":breaker" }

// BreakerProbe is the slot of the account's next breaker probe: the process
// that sets it probes WeChat, the others wait for it to lapse.
func (k Keys) BreakerProbe(appID string) string { return k.account(appID) + ":breaker:probe" }
