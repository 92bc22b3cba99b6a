package rdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// How the schedule operations keep the campaign's hash and the global
// index (Keys.Schedules) consistent without a script over both (they are in
// different Cluster slots):
//
//   - The campaign hash's next_fire field is the truth. Every script
//     changes it under the campaign's hash tag, atomically with the state
//     and the fire claims.
//   - The index is a copy, written after the script: ZADD when a campaign is
//     scheduled, ZREM when it is unscheduled or cancelled, and a
//     compare-and-set move (MoveSchedule) after each fire.
//   - A crash between the script and the index write leaves the index
//     behind: an entry that is due but already claimed, or that points at a
//     campaign no longer on a schedule. The next scheduler to read it calls
//     ClaimFire, which answers FireStale or FireUnscheduled with the truth,
//     and moves or drops the entry. The one write that can be lost is the
//     ZADD of ScheduleCampaign; its caller has seen an error and scheduling
//     again is idempotent and writes the entry.

// campaignListLua is the prelude of the schedule scripts: inlist(s, list)
// says whether s is one of the comma-separated names in list.
const campaignListLua = `
local function inlist(s, list)
  return s ~= nil and s ~= '' and string.find(',' .. list .. ',', ',' .. s .. ',', 1, true) ~= nil
end
`

// scheduleCampaign puts a campaign on its schedule.
//
// KEYS[1] campaign hash. ARGV[1] next fire (ms), ARGV[2] the state it
// takes, ARGV[3] the states it may be scheduled from (comma-separated),
// ARGV[4] the states in which a campaign with a next_fire is on its
// schedule already.
// Returns {1, cur, next_fire} when scheduled, {2, cur, next_fire} when it
// was on its schedule already (nothing changed), {0, cur, ""} when its
// state refuses, {-1, "", ""} if missing.
var scheduleCampaign = redis.NewScript(campaignLua + campaignListLua + `
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then
  return {-1, '', ''}
end
local nf = redis.call('HGET', KEYS[1], 'next_fire')
if nf and inlist(cur, ARGV[4]) then
  return {2, cur, nf}
end
if not inlist(cur, ARGV[3]) then
  return {0, cur, ''}
end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'next_fire', ARGV[1], 'updated', now())
return {1, cur, ARGV[1]}
`)

// ScheduleCampaign moves the campaign to state with next as its next fire
// time, if it is in one of from, and indexes it. A campaign already on its
// schedule (a next fire time and a state among on) is left as it is and
// indexed again, which repairs an index entry a crash lost; already says
// so. It returns the campaign's next fire time, or a *StateError.
func (r *RDB) ScheduleCampaign(ctx context.Context, id string, next time.Time, state string, from, on []string) (nextFire time.Time, already bool, err error) {
	res, err := scheduleCampaign.Run(ctx, r.c, []string{r.keys.Campaign(id)},
		next.UnixMilli(), state, strings.Join(from, ","), strings.Join(on, ",")).Slice()
	if err != nil {
		return time.Time{}, false, fmt.Errorf("schedule campaign: %w", err)
	}
	if err := stateReply(res); err != nil {
		return time.Time{}, false, err
	}
	n, _ := res[0].(int64)
	nextFire, err = parseMillis(res[2])
	if err != nil {
		return time.Time{}, false, fmt.Errorf("schedule campaign: %w", err)
	}
	if err := r.IndexSchedule(ctx, id, nextFire); err != nil {
		return time.Time{}, false, err
	}
	return nextFire, n == 2, nil
}

// unscheduleCampaign takes a campaign off its schedule.
//
// KEYS[1] campaign hash. ARGV[1] the state that goes back to ARGV[2] (a
// campaign scheduled but never fired), ARGV[3] the other states a campaign
// on its schedule may be in, which it keeps (between or during the runs of
// a recurring schedule).
// Returns {1, cur} when done, {0, cur} when it is not on a schedule, {-1,
// ""} if missing.
var unscheduleCampaign = redis.NewScript(campaignLua + campaignListLua + `
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then
  return {-1, ''}
end
if redis.call('HEXISTS', KEYS[1], 'next_fire') == 0 or not (cur == ARGV[1] or inlist(cur, ARGV[3])) then
  return {0, cur}
end
redis.call('HDEL', KEYS[1], 'next_fire')
if cur == ARGV[1] then
  redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updated', now())
end
return {1, cur}
`)

// UnscheduleCampaign takes the campaign off its schedule: a campaign in
// state from goes to state to, one in a state among keep stays in it, and
// it leaves the index. It returns a *StateError when the campaign is not on
// a schedule.
func (r *RDB) UnscheduleCampaign(ctx context.Context, id, from, to string, keep []string) error {
	res, err := unscheduleCampaign.Run(ctx, r.c, []string{r.keys.Campaign(id)}, from, to, strings.Join(keep, ",")).Slice()
	if err != nil {
		return fmt.Errorf("unschedule campaign: %w", err)
	}
	if err := stateReply(res); err != nil {
		return err
	}
	return r.UnindexSchedule(ctx, id)
}

// DropSchedule forgets the campaign's next fire time and its index entry,
// whatever its state: for a campaign that stopped for good (cancelled).
func (r *RDB) DropSchedule(ctx context.Context, id string) error {
	if err := r.c.HDel(ctx, r.keys.Campaign(id), "next_fire").Err(); err != nil {
		return fmt.Errorf("drop schedule: %w", err)
	}
	return r.UnindexSchedule(ctx, id)
}

// NextFire returns the campaign's next fire time, and false when it is not
// on a schedule.
func (r *RDB) NextFire(ctx context.Context, id string) (time.Time, bool, error) {
	s, err := r.c.HGet(ctx, r.keys.Campaign(id), "next_fire").Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next fire: %w", err)
	}
	t, err := parseMillis(s)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next fire: %w", err)
	}
	return t, !t.IsZero(), nil
}

// IndexSchedule sets the campaign's entry in the index to next.
func (r *RDB) IndexSchedule(ctx context.Context, id string, next time.Time) error {
	err := r.c.ZAdd(ctx, r.keys.Schedules(), redis.Z{Score: float64(next.UnixMilli()), Member: id}).Err()
	if err != nil {
		return fmt.Errorf("index schedule: %w", err)
	}
	return nil
}

// UnindexSchedule removes the campaign's entry from the index.
func (r *RDB) UnindexSchedule(ctx context.Context, id string) error {
	if err := r.c.ZRem(ctx, r.keys.Schedules(), id).Err(); err != nil {
		return fmt.Errorf("unindex schedule: %w", err)
	}
	return nil
}

// moveSchedule moves an index entry if it is still where the caller saw it.
//
// KEYS[1] index. ARGV[1] campaign id, ARGV[2] the score seen (ms), ARGV[3]
// the new score ("" removes the entry).
// Returns 1 when moved, 0 when the entry was elsewhere or gone.
var moveSchedule = redis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s or tonumber(s) ~= tonumber(ARGV[2]) then
  return 0
end
if ARGV[3] == '' then
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
`)

// MoveSchedule sets the campaign's index entry to to (zero removes it), but
// only if it still is from: an entry someone else moved meanwhile (the
// campaign unscheduled and scheduled again, another scheduler's repair) is
// left alone. It reports whether it moved the entry.
func (r *RDB) MoveSchedule(ctx context.Context, id string, from, to time.Time) (bool, error) {
	dst := ""
	if !to.IsZero() {
		dst = strconv.FormatInt(to.UnixMilli(), 10)
	}
	n, err := moveSchedule.Run(ctx, r.c, []string{r.keys.Schedules()}, id, from.UnixMilli(), dst).Int()
	if err != nil {
		return false, fmt.Errorf("move schedule: %w", err)
	}
	return n == 1, nil
}

// DueSchedule is an index entry whose fire time has come.
type DueSchedule struct {
	ID string
	At time.Time
}

// DueSchedules returns at most limit index entries due at now (fire time
// ≤ now), earliest first.
func (r *RDB) DueSchedules(ctx context.Context, now time.Time, limit int64) ([]DueSchedule, error) {
	zs, err := r.c.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{
		Key: r.keys.Schedules(), Start: "-inf", Stop: strconv.FormatInt(now.UnixMilli(), 10),
		ByScore: true, Count: limit,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("due schedules: %w", err)
	}
	out := make([]DueSchedule, 0, len(zs))
	for _, z := range zs {
		id, _ := z.Member.(string)
		out = append(out, DueSchedule{ID: id, At: time.UnixMilli(int64(z.Score))})
	}
	return out, nil
}

// The answers of ClaimFire.
const (
	// FireStarted: this caller won the fire and started run Run.
	FireStarted = "started"
	// FireSkipped: this caller won the fire, which started nothing because
	// the caller asked for no run (a missed fire skipped).
	FireSkipped = "skipped"
	// FireBusy: this caller won the fire, which started nothing because the
	// campaign's previous run is still live (a state among Busy).
	FireBusy = "busy"
	// FireEmpty: this caller won the fire, which started nothing because
	// the audience is empty.
	FireEmpty = "empty"
	// FireStale: the campaign's next fire time is not this one: another
	// caller claimed it (or the campaign was scheduled again). Next is the
	// campaign's next fire time, and Run the run this fire started, if one
	// did (0 otherwise).
	FireStale = "stale"
	// FireUnscheduled: the campaign is not on a schedule, or is in a state
	// that cannot fire (any next fire time it had is dropped).
	FireUnscheduled = "unscheduled"
	// fireMoved: the campaign's current run changed since the caller read
	// it; ClaimFire reads it again.
	fireMoved = "moved"
)

// FireClaim is one claim of one fire of a campaign's schedule.
type FireClaim struct {
	// ID is the campaign, At the fire time claimed: it must be the
	// campaign's next fire time.
	ID string
	At time.Time
	// Next becomes the campaign's next fire time if this claim wins; zero
	// takes the campaign off its schedule.
	Next time.Time
	// Start starts a run when the claim wins.
	Start bool
	// Sized takes the run's size from the campaign's audience list now
	// (inline and file audiences); otherwise the size is -1 until the launch
	// fetches the audience.
	Sized bool
	// StartFrom are the states a fire may start a run from, Busy those in
	// which it is won but starts nothing. A campaign in any other state is
	// FireUnscheduled.
	StartFrom, Busy []string
	// Running is the state of the campaign and the run a fire starts.
	Running string
	// Scheduled is the state of a campaign waiting for its first fire, and
	// Unscheduled the state it takes if it is left without a next fire time
	// and no run.
	Scheduled, Unscheduled string
	// Keep is how long the fire's claim is remembered.
	Keep time.Duration
}

// FireReply is ClaimFire's answer.
type FireReply struct {
	// Status is one of the Fire constants.
	Status string
	// State is the campaign's state before the claim.
	State string
	// Next is the campaign's next fire time after the claim; zero when it
	// has none.
	Next time.Time
	// Run is the run this fire started (FireStarted, FireStale), or 0.
	Run int
}

// Won reports whether this caller won the fire.
func (f FireReply) Won() bool {
	switch f.Status {
	case FireStarted, FireSkipped, FireBusy, FireEmpty:
		return true
	}
	return false
}

// claimFire claims one fire of a campaign's schedule, starts its run and
// advances the campaign's next fire time, in one step.
//
// KEYS[1] campaign hash, KEYS[2] fire claim, KEYS[3] audience list,
// KEYS[4] the hash of the run a start creates (the current run + 1).
// ARGV[1] fire time (ms), ARGV[2] next fire time (ms, "" for none),
// ARGV[3] claim keep time (ms), ARGV[4] the current run as the caller read
// it, ARGV[5] '1' to start a run, ARGV[6] '1' to size the run from KEYS[3],
// ARGV[7] running state, ARGV[8] scheduled state, ARGV[9] unscheduled
// state, ARGV[10] states a run starts from, ARGV[11] busy states
// (comma-separated).
// Returns {status, state before, next fire ("" none), run}.
var claimFire = redis.NewScript(campaignLua + campaignListLua + `
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then
  return {'missing', '', '', 0}
end
local nf = redis.call('HGET', KEYS[1], 'next_fire')
if not nf then
  return {'unscheduled', cur, '', 0}
end
if not inlist(cur, ARGV[10]) and not inlist(cur, ARGV[11]) then
  redis.call('HDEL', KEYS[1], 'next_fire')
  return {'unscheduled', cur, '', 0}
end
if tonumber(nf) ~= tonumber(ARGV[1]) then
  return {'stale', cur, nf, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
local status, run = 'skipped', 0
local claimed = redis.call('GET', KEYS[2])
if claimed then
  -- Fired before: the campaign was scheduled again across a fire time it
  -- had fired already (or processes' clocks disagree). Only advance.
  status, run = 'stale', tonumber(claimed)
elseif ARGV[5] == '1' then
  if (redis.call('HGET', KEYS[1], 'run') or '0') ~= ARGV[4] then
    return {'moved', cur, nf, 0}
  end
  local size = -1
  if ARGV[6] == '1' then
    size = redis.call('LLEN', KEYS[3])
  end
  if inlist(cur, ARGV[11]) then
    status = 'busy'
  elseif size == 0 then
    status = 'empty'
  else
    local now = now()
    run = redis.call('HINCRBY', KEYS[1], 'run', 1)
    local list = ''
    if ARGV[6] == '1' then list = KEYS[3] end
    redis.call('HSET', KEYS[4], 'state', ARGV[7], 'size', size, 'expanded', 0, 'started', now, 'audience', list)
    redis.call('HSET', KEYS[1], 'state', ARGV[7], 'updated', now)
    status = 'started'
  end
end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], 'next_fire')
  if status ~= 'started' and cur == ARGV[8] then
    redis.call('HSET', KEYS[1], 'state', ARGV[9], 'updated', now())
  end
else
  redis.call('HSET', KEYS[1], 'next_fire', ARGV[2])
end
if not claimed then
  redis.call('SET', KEYS[2], run, 'PX', ARGV[3])
end
return {status, cur, ARGV[2], run}
`)

// claimMovedRetries is how often ClaimFire reads the current run again
// when a run started between its read and its claim.
const claimMovedRetries = 3

// ClaimFire claims the fire of the campaign's schedule at c.At, atomically
// in the campaign's hash tag: it checks that the campaign is on a schedule
// in a state that may fire and that c.At is its next fire time, claims the
// fire (a key named by the campaign and the fire time, kept for c.Keep, so
// that the same fire time never fires twice even if the campaign is
// scheduled again), starts the run when c.Start, and sets the campaign's
// next fire time to c.Next. Exactly one caller wins each fire time.
//
// ClaimFire does not touch the index: the caller moves the entry from c.At
// to reply.Next (MoveSchedule) once it has queued the run's launch, so that
// a crash before then leaves the entry due, and the next scheduler finds
// the run in a FireStale reply and queues its launch.
func (r *RDB) ClaimFire(ctx context.Context, c FireClaim) (FireReply, error) {
	next := ""
	if !c.Next.IsZero() {
		next = strconv.FormatInt(c.Next.UnixMilli(), 10)
	}
	start, sized := "0", "0"
	if c.Start {
		start = "1"
	}
	if c.Sized {
		sized = "1"
	}
	atMs := c.At.UnixMilli()
	for try := 0; ; try++ {
		cur, err := r.c.HGet(ctx, r.keys.Campaign(c.ID), "run").Int()
		if errors.Is(err, redis.Nil) {
			return FireReply{}, ErrCampaignNotFound
		}
		if err != nil {
			return FireReply{}, fmt.Errorf("claim fire: %w", err)
		}
		keys := []string{r.keys.Campaign(c.ID), r.keys.Fire(c.ID, atMs), r.keys.Audience(c.ID), r.keys.Run(c.ID, cur+1)}
		res, err := claimFire.Run(ctx, r.c, keys, atMs, next, c.Keep.Milliseconds(), cur, start, sized,
			c.Running, c.Scheduled, c.Unscheduled, strings.Join(c.StartFrom, ","), strings.Join(c.Busy, ",")).Slice()
		if err != nil {
			return FireReply{}, fmt.Errorf("claim fire: %w", err)
		}
		if len(res) != 4 {
			return FireReply{}, fmt.Errorf("claim fire: script answered %d values", len(res))
		}
		status, _ := res[0].(string)
		state, _ := res[1].(string)
		run, _ := res[3].(int64)
		switch status {
		case "missing":
			return FireReply{}, ErrCampaignNotFound
		case fireMoved:
			if try+1 < claimMovedRetries {
				continue
			}
			return FireReply{}, fmt.Errorf("claim fire: the current run of %s keeps changing", c.ID)
		}
		nf, err := parseMillis(res[2])
		if err != nil {
			return FireReply{}, fmt.Errorf("claim fire: %w", err)
		}
		return FireReply{Status: status, State: state, Next: nf, Run: int(run)}, nil
	}
}

// parseMillis reads a Unix ms time from a script's answer: zero for "".
func parseMillis(v any) (time.Time, error) {
	s, _ := v.(string)
	if s == "" {
		return time.Time{}, nil
	}
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q", s)
	}
	return time.UnixMilli(ms), nil
}
