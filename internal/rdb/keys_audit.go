package rdb

// Audit is the stream of a campaign's audit trail: one entry per
// state-changing request of the API (see AppendAudit), capped to the newest
// entries.
func (k Keys) Audit(id string) string { return k.campaign(id) + ":audit" }

// AccountAudit is the stream of an account's audit trail: one entry per
// state-changing request of the API on the account rather than a campaign
// (its suppression list, its mass-send speed; see AppendAccountAudit),
// capped to the newest entries. It is keyed by appid, beside the account's
// other keys.
func (k Keys) AccountAudit(appID string) string { return k.account(appID) + ":audit" }
