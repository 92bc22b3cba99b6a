package rdb

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// StateDeleting is the state DeleteCampaign gives a campaign while it removes
// its keys: no other operation accepts it, and a delete that was cut short
// (a crash, a lost connection) resumes from it.
const StateDeleting = "deleting"

// deleteBatch is how many keys, hash fields or index entries one command of
// DeleteCampaign handles, so that no step blocks Redis for long.
const deleteBatch = 500

// markDeleting refuses a campaign in a live state, or marks it deleting and
// takes it off its schedule.
//
// KEYS[1] campaign hash. ARGV[1] the deleting state, ARGV[2..] the states
// that refuse.
// Returns {1, state before, max(run, next_run)}, {0, state, 0} when
// refused, {-1, "", 0} if missing.
var markDeleting = redis.NewScript(campaignLua + `
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then
  return {-1, '', 0}
end
if allowed(cur, 2, #ARGV) then
  return {0, cur, 0}
end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated', now())
redis.call('HDEL', KEYS[1], 'next_fire')
local run = tonumber(redis.call('HGET', KEYS[1], 'run') or '0')
local nr = tonumber(redis.call('HGET', KEYS[1], 'next_run') or '0')
if nr > run then run = nr end
return {1, cur, run}
`)

// delIfValue deletes fields of a hash whose value is still the one given.
//
// KEYS[1] hash. ARGV pairs of field, value. Returns how many it deleted.
var delIfValue = redis.NewScript(`
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    n = n + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return n
`)

// delIfPrefix deletes a string key whose value starts with ARGV[1].
var delIfPrefix = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// DeleteCampaign removes a campaign and every key of it, unless its state is
// one of live (a *StateError naming it then, and nothing changes). account
// is the campaign's Official Account: the notes of lost answers of its
// template sends (Keys.Lost) live under it.
//
// The steps, each safe to repeat:
//  1. A script on the campaign's hash refuses a live state, or sets the
//     state to StateDeleting and clears next_fire, so that no start, fire
//     or update can happen from then on (they all check the state there).
//  2. The global indexes lose it: the campaign list (and so the state
//     counts) and the schedule index.
//  3. The entries of the msgid index (in their own slots) that point at
//     its runs are removed by compare-and-delete, and so are the lost
//     answers' notes of its unknown outcomes, read from each run's outcomes
//     a page at a time.
//  4. Every key under the campaign's hash tag but its hash (runs, outcomes,
//     attempts, counters, timelines, audiences, variables, fire claims, the
//     audit trail, and any key family added later) is found by SCAN on the
//     node serving the tag's slot and removed by UNLINK in batches: the
//     memory of a big audience is freed in the background, not in the
//     command.
//  5. The campaign's hash goes last, so a delete cut short before it leaves
//     the campaign in StateDeleting, and deleting it again finishes.
//
// Idempotency claims are not touched: their keys are hashes of the clients'
// values, so only a scan of the whole keyspace could find them, and they
// expire on their own.
func (r *RDB) DeleteCampaign(ctx context.Context, id, account string, live ...string) error {
	return r.DeleteCampaignThen(ctx, id, account, nil, live...)
}

// DeleteCampaignThen is DeleteCampaign that calls beforeKeys (unless nil)
// once the campaign is marked deleting and before its keys go: the place
// to remove what it has outside Redis (its runs' archive files). An error
// of beforeKeys stops the delete there, to be finished by the next.
func (r *RDB) DeleteCampaignThen(ctx context.Context, id, account string, beforeKeys func(context.Context) error, live ...string) error {
	args := []any{StateDeleting}
	for _, s := range live {
		args = append(args, s)
	}
	res, err := markDeleting.Run(ctx, r.c, []string{r.keys.Campaign(id)}, args...).Slice()
	if err != nil {
		return fmt.Errorf("delete campaign: %w", err)
	}
	if err := stateReply(res); err != nil {
		return err
	}
	runs, _ := res[2].(int64)

	if err := r.c.ZRem(ctx, r.keys.Campaigns(), id).Err(); err != nil {
		return fmt.Errorf("delete campaign: unindex: %w", err)
	}
	if err := r.c.ZRem(ctx, r.keys.Schedules(), id).Err(); err != nil {
		return fmt.Errorf("delete campaign: unschedule: %w", err)
	}
	for run := 1; run <= int(runs); run++ {
		if err := r.unindexRun(ctx, id, run, account); err != nil {
			return fmt.Errorf("delete campaign: run %d: %w", run, err)
		}
	}
	if beforeKeys != nil {
		if err := beforeKeys(ctx); err != nil {
			return fmt.Errorf("delete campaign: %w", err)
		}
	}
	if err := r.unlinkCampaignKeys(ctx, id); err != nil {
		return fmt.Errorf("delete campaign: %w", err)
	}
	if err := r.c.Del(ctx, r.keys.Campaign(id)).Err(); err != nil {
		return fmt.Errorf("delete campaign: %w", err)
	}
	r.Announce(ctx, id)
	return nil
}

// unindexRun removes the msgid index entries and the lost answers' notes
// that point at one run, a page of its outcomes at a time.
func (r *RDB) unindexRun(ctx context.Context, id string, run int, account string) error {
	tag := id + "|" + strconv.Itoa(run) + "|"
	byShard := map[string][]any{}
	var lost []string
	flush := func() error {
		for key, pairs := range byShard {
			if err := delIfValue.Run(ctx, r.c, []string{key}, pairs...).Err(); err != nil {
				return fmt.Errorf("msgid index: %w", err)
			}
		}
		for _, openid := range lost {
			if err := delIfPrefix.Run(ctx, r.c, []string{r.keys.Lost(account, openid)}, tag).Err(); err != nil {
				return fmt.Errorf("lost note: %w", err)
			}
		}
		clear(byShard)
		lost = lost[:0]
		return nil
	}
	n := 0
	err := r.ScanOutcomes(ctx, id, run, func(openid string, o Outcome) error {
		if o.MsgID != 0 {
			key := r.keys.MsgIDIndex(o.MsgID)
			byShard[key] = append(byShard[key], strconv.FormatInt(o.MsgID, 10), tag+openid)
			n++
		}
		if o.Status == OutcomeUnknown && account != "" {
			lost = append(lost, openid)
			n++
		}
		if n >= deleteBatch {
			n = 0
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// globEscape escapes the characters SCAN's MATCH treats as a pattern.
var globEscape = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)

// unlinkCampaignKeys removes every key under the campaign's hash tag but
// its hash. On Redis Cluster it scans only the primary that serves the
// tag's slot, where all of them are.
func (r *RDB) unlinkCampaignKeys(ctx context.Context, id string) error {
	hash := r.keys.Campaign(id)
	var node redis.Cmdable = r.c
	if cc, ok := r.c.(*redis.ClusterClient); ok {
		n, err := cc.MasterForKey(ctx, hash)
		if err != nil {
			return fmt.Errorf("find node: %w", err)
		}
		node = n
	}
	match := globEscape.Replace(r.keys.campaign(id)) + ":*"
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, match, deleteBatch).Result()
		if err != nil {
			return fmt.Errorf("scan keys: %w", err)
		}
		keys = slices.DeleteFunc(keys, func(k string) bool { return k == hash })
		if len(keys) > 0 {
			if err := node.Unlink(ctx, keys...).Err(); err != nil {
				return fmt.Errorf("unlink keys: %w", err)
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}
