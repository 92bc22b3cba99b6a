package rdb

import "strconv"

// campaign returns the hash-tagged part shared by all keys of one campaign,
// so that every script over a campaign's keys runs on one Cluster slot.
func (k Keys) campaign(id string) string { return k.prefix() + ":{c:" + id + "}" }

// Campaign is the hash of a campaign: doc (the JSON document), state, run
// (the current run number), next_run, updated (ms), next_fire (the next
// fire time of its schedule in ms, only while it is on one).
func (k Keys) Campaign(id string) string { return k.campaign(id) + ":campaign" }

// Audience is the list of a campaign's uploaded or inline openids, in order.
func (k Keys) Audience(id string) string { return k.campaign(id) + ":aud" }

// AudienceVars maps every openid of the audience to its variables (a JSON
// object, or "" when the audience has none). It is also the audience's set:
// an openid already there is a duplicate.
func (k Keys) AudienceVars(id string) string { return k.campaign(id) + ":vars" }

// AudienceStaging and AudienceVarsStaging receive an upload; they replace
// Audience and AudienceVars only when the whole file has been read, so a
// bad upload never damages the stored audience.
func (k Keys) AudienceStaging(id string) string { return k.campaign(id) + ":aud:staging" }

// AudienceVarsStaging: see AudienceStaging.
func (k Keys) AudienceVarsStaging(id string) string { return k.campaign(id) + ":vars:staging" }

// Run is the hash of one run of a campaign: state, size, expanded, audience
// (the list key), started, finished, stopped (ms), reason, final (the state
// a stopping run ends in).
func (k Keys) Run(id string, run int) string { return k.campaign(id) + ":r:" + strconv.Itoa(run) }

// RunAudience is the openid list of a run whose audience is fetched at
// launch (followers, tag).
func (k Keys) RunAudience(id string, run int) string { return k.Run(id, run) + ":aud" }

// Outcomes maps each recipient of a run to its final outcome.
func (k Keys) Outcomes(id string, run int) string { return k.Run(id, run) + ":out" }

// Attempts maps each recipient of a run whose send was attempted to its
// attempt record (see the ledger in ledger.go).
func (k Keys) Attempts(id string, run int) string { return k.Run(id, run) + ":att" }

// Counters holds a run's counters: total, each status, code:N, class:X.
func (k Keys) Counters(id string, run int) string { return k.Run(id, run) + ":cnt" }

// Timeline counts outcomes per status and second: "sent:1732500000" -> n.
func (k Keys) Timeline(id string, run int) string { return k.Run(id, run) + ":ts" }

// Campaigns is the sorted set of all campaign ids by creation time (ms).
func (k Keys) Campaigns() string { return k.prefix() + ":campaigns" }

// MsgIDShards is the number of hashes the msgid index is spread over.
const MsgIDShards = 64

// MsgIDIndex is the shard of the msgid index holding msgid: msgid ->
// "campaign|run|openid", for delivery receipts.
func (k Keys) MsgIDIndex(msgid int64) string {
	shard := msgid % MsgIDShards
	if shard < 0 {
		shard = -shard
	}
	return k.prefix() + ":{msgid:" + strconv.FormatInt(shard, 10) + "}"
}

// Events is the pub/sub channel on which campaign state changes are
// announced, so that every worker drops its cached state at once.
func (k Keys) Events() string { return k.prefix() + ":events" }
