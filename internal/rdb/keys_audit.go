package rdb

// Audit is the stream of a campaign's audit trail: one entry per
// state-changing request of the API (see AppendAudit), capped to the newest
// entries.
func (k Keys) Audit(id string) string { return k.campaign(id) + ":audit" }
