package rdb

import "strconv"

// Schedules is the index of the campaigns on a schedule: a sorted set of
// campaign id -> next fire time (Unix ms). It is one global key, in a slot
// of its own, so no campaign script touches it: it is written by separate
// commands after the campaign's hash (whose next_fire field is the
// authoritative copy), and every scheduler repairs an entry it finds
// behind. See ClaimFire.
func (k Keys) Schedules() string { return k.prefix() + ":schedules" }

// Fire is the claim of one fire of a campaign's schedule, named by its fire
// time in Unix ms: whoever sets it first fires. Its value is the run the
// fire started (0 for none). It expires after the claim's keep time.
func (k Keys) Fire(id string, atMillis int64) string {
	return k.campaign(id) + ":fire:" + strconv.FormatInt(atMillis, 10)
}
