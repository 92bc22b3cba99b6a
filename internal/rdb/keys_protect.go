package rdb

// Suppressed is the hash of an account's suppression list: openid ->
// "reason|code|at|source|note" (EncodeSuppression).
func (k Keys) Suppressed(appID string) string { return k.account(appID) + ":sup" }

// CapLog is the sorted set of the messages a user of an account got that
// count toward its frequency caps: member "campaign:run", score when it
// was admitted (ms). It expires after the longest cap's window.
func (k Keys) CapLog(appID, openid string) string { return k.account(appID) + ":cap:" + openid }

// Rest is the hash of an account's users WeChat asked to leave alone for a
// while (43117, a "failed:freq limit" receipt): openid -> until (ms).
func (k Keys) Rest(appID string) string { return k.account(appID) + ":rest" }

// CSWindows is the hash of an account's users' customer-service windows:
// openid -> "start|end|allowed|campaign:run,..." (ms; the runs that used
// the window's messages).
func (k Keys) CSWindows(appID string) string { return k.account(appID) + ":cs" }

// Deferred is the sorted set of a run's recipients deferred by the
// account's protection: member "reason:openid", score until when (ms).
func (k Keys) Deferred(id string, run int) string { return k.Run(id, run) + ":def" }
