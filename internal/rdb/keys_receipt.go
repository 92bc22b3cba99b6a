package rdb

// ReceiptDedupe is the marker of a callback push already handled, by the
// push's dedupe key (callback.Event.DedupeKey). It expires on its own.
func (k Keys) ReceiptDedupe(key string) string { return k.prefix() + ":rcpt:" + key }

// Lost names the note that account's template send to openid lost its
// answer ("campaign|run|ms"), kept LostTTL, so that a delivery receipt whose
// msgid wxmass never saw can be matched to it (ResolveByReceipt). The
// account's hash tag keeps an account's notes on one Cluster node.
func (k Keys) Lost(account, openid string) string {
	return k.prefix() + ":{lost:" + account + "}:" + openid
}

// PushClaim is the claim of a callback request (its timestamp, nonce and
// signatures, hashed by the handler into key) with the digest of its body
// (ClaimPush). It expires on its own once the request's timestamp is out of
// the handler's window.
func (k Keys) PushClaim(key string) string { return k.prefix() + ":cbreq:" + key }
