package rdb

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// recordCampaignTest stores the time and message digest of a campaign's
// successful test send in its hash (fields tested_at, in ms by the Redis
// clock, and tested_digest), whatever its state but deleting.
//
// KEYS[1] campaign hash. ARGV[1] digest, ARGV[2] the deleting state.
// Returns the time stored (ms), or 0 if the campaign is missing or being
// deleted.
var recordCampaignTest = redis.NewScript(campaignLua + `
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur or cur == ARGV[2] then
  return 0
end
local now = now()
redis.call('HSET', KEYS[1], 'tested_at', now, 'tested_digest', ARGV[1])
return now
`)

// RecordCampaignTest stores digest as the message a successful test send of
// campaign id reached, and returns the time it stored (by the Redis clock).
// It returns ErrCampaignNotFound for a campaign that is missing or being
// deleted. A later GetCampaign reads both in CampaignRecord.
func (r *RDB) RecordCampaignTest(ctx context.Context, id, digest string) (time.Time, error) {
	ms, err := recordCampaignTest.Run(ctx, r.c, []string{r.keys.Campaign(id)}, digest, StateDeleting).Int64()
	if err != nil {
		return time.Time{}, fmt.Errorf("record campaign test: %w", err)
	}
	if ms == 0 {
		return time.Time{}, ErrCampaignNotFound
	}
	return time.UnixMilli(ms), nil
}

// AudienceVarsOf returns the stored variables (a JSON object, or "" when the
// audience has none) of each of openids in campaign id's audience, and
// whether each is in the audience at all.
func (r *RDB) AudienceVarsOf(ctx context.Context, id string, openids []string) ([]string, []bool, error) {
	if len(openids) == 0 {
		return nil, nil, nil
	}
	v, err := r.c.HMGet(ctx, r.keys.AudienceVars(id), openids...).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fmt.Errorf("audience vars: %w", err)
	}
	vars, found := make([]string, len(openids)), make([]bool, len(openids))
	for i, x := range v {
		vars[i], found[i] = x.(string)
	}
	return vars, found, nil
}
