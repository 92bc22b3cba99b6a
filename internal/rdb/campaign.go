package rdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Errors of the campaign operations.
var (
	ErrCampaignExists   = errors.New("rdb: campaign exists")
	ErrCampaignNotFound = errors.New("rdb: campaign not found")
	ErrRunNotFound      = errors.New("rdb: run not found")
	// ErrState is returned when a campaign or run is not in a state the
	// operation allows; StateError says which.
	ErrState = errors.New("rdb: wrong state")
)

// StateError is a state check that failed: the campaign (or run) was in
// State, which the operation does not accept.
type StateError struct{ State string }

func (e *StateError) Error() string   { return "rdb: wrong state " + strconv.Quote(e.State) }
func (e *StateError) Is(t error) bool { return t == ErrState }

// campaignLua is the prelude of the campaign scripts: now() is the Redis
// server's clock in milliseconds, allowed(cur, i, j) says whether cur is one
// of ARGV[i..j].
const campaignLua = `
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function allowed(cur, i, j)
  for k = i, j do
    if ARGV[k] == cur then return true end
  end
  return false
end
`

// stateReply turns the {n, state} reply of a state-checked script into an
// error: ErrCampaignNotFound for -1, a *StateError naming the current
// state for 0, nil otherwise.
func stateReply(res []any) error {
	n, _ := res[0].(int64)
	switch n {
	case -1:
		return ErrCampaignNotFound
	case 0:
		cur, _ := res[1].(string)
		return &StateError{State: cur}
	}
	return nil
}

// CampaignRecord is a stored campaign.
type CampaignRecord struct {
	Doc     []byte
	State   string
	Run     int // the latest run, 0 before the first
	Updated time.Time
	// TestedAt and TestedDigest are the time and message digest of the
	// campaign's last successful test send (RecordCampaignTest); zero
	// before the first.
	TestedAt     time.Time
	TestedDigest string
}

// createCampaign stores a new campaign.
//
// KEYS[1] campaign hash. ARGV[1] doc, ARGV[2] state.
// Returns 1, or 0 if the campaign exists.
var createCampaign = redis.NewScript(campaignLua + `
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local now = now()
redis.call('HSET', KEYS[1], 'doc', ARGV[1], 'state', ARGV[2], 'run', 0, 'updated', now)
return 1
`)

// CreateCampaign stores a new campaign document in state, and indexes it by
// created (for listing).
func (r *RDB) CreateCampaign(ctx context.Context, id string, doc []byte, state string, created time.Time) error {
	n, err := createCampaign.Run(ctx, r.c, []string{r.keys.Campaign(id)}, doc, state).Int()
	if err != nil {
		return fmt.Errorf("create campaign: %w", err)
	}
	if n == 0 {
		return ErrCampaignExists
	}
	// The index lives in another slot; a crash here leaves the campaign
	// reachable by id, only missing from listings.
	if err := r.c.ZAdd(ctx, r.keys.Campaigns(), redis.Z{Score: float64(created.UnixMilli()), Member: id}).Err(); err != nil {
		return fmt.Errorf("index campaign: %w", err)
	}
	return nil
}

// GetCampaign reads a campaign.
func (r *RDB) GetCampaign(ctx context.Context, id string) (CampaignRecord, error) {
	v, err := r.c.HMGet(ctx, r.keys.Campaign(id), "doc", "state", "run", "updated", "tested_at", "tested_digest").Result()
	if err != nil {
		return CampaignRecord{}, fmt.Errorf("get campaign: %w", err)
	}
	doc, ok := v[0].(string)
	if !ok {
		return CampaignRecord{}, ErrCampaignNotFound
	}
	rec := CampaignRecord{Doc: []byte(doc)}
	rec.State, _ = v[1].(string)
	if s, ok := v[2].(string); ok {
		rec.Run, _ = strconv.Atoi(s)
	}
	if s, ok := v[3].(string); ok {
		ms, _ := strconv.ParseInt(s, 10, 64)
		rec.Updated = time.UnixMilli(ms)
	}
	if s, ok := v[4].(string); ok {
		ms, _ := strconv.ParseInt(s, 10, 64)
		rec.TestedAt = time.UnixMilli(ms)
	}
	rec.TestedDigest, _ = v[5].(string)
	return rec, nil
}

// updateCampaign replaces the document and state if the state is one of
// the allowed ones.
//
// KEYS[1] campaign hash. ARGV[1] doc ("" keeps it), ARGV[2] new state ("" keeps
// it), ARGV[3..] allowed current states.
// Returns {1, state} on success, {0, state} when refused, {-1, ""} if missing.
var updateCampaign = redis.NewScript(campaignLua + `
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then
  return {-1, ''}
end
if not allowed(cur, 3, #ARGV) then
  return {0, cur}
end
local now = now()
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'doc', ARGV[1]) end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'state', ARGV[2]) end
redis.call('HSET', KEYS[1], 'updated', now)
return {1, cur}
`)

// UpdateCampaign replaces the campaign's document (nil keeps it) and state
// ("" keeps it), if its current state is one of from. It returns a
// *StateError naming the current state otherwise.
func (r *RDB) UpdateCampaign(ctx context.Context, id string, doc []byte, state string, from ...string) error {
	args := []any{string(doc), state}
	for _, f := range from {
		args = append(args, f)
	}
	res, err := updateCampaign.Run(ctx, r.c, []string{r.keys.Campaign(id)}, args...).Slice()
	if err != nil {
		return fmt.Errorf("update campaign: %w", err)
	}
	return stateReply(res)
}

// ListCampaigns returns campaign ids by creation time, newest first, from
// offset, at most limit.
func (r *RDB) ListCampaigns(ctx context.Context, offset, limit int64) ([]string, int64, error) {
	pipe := r.c.Pipeline()
	ids := pipe.ZRevRange(ctx, r.keys.Campaigns(), offset, offset+limit-1)
	n := pipe.ZCard(ctx, r.keys.Campaigns())
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, fmt.Errorf("list campaigns: %w", err)
	}
	return ids.Val(), n.Val(), nil
}

// appendAudience adds recipients to a campaign's audience, skipping openids
// already in it, while the campaign is in one of the allowed states.
//
// KEYS[1] campaign hash, KEYS[2] audience list, KEYS[3] vars hash.
// ARGV[1] number of allowed states n, ARGV[2..n+1] states, then pairs of
// openid, vars. Returns {added, duplicates} or {-1, state} when refused.
var appendAudience = redis.NewScript(campaignLua + `
local cur = redis.call('HGET', KEYS[1], 'state')
local n = tonumber(ARGV[1])
if not allowed(cur, 2, n + 1) then
  return {-1, cur or ''}
end
local added, dups = 0, 0
local batch = {}
for i = n + 2, #ARGV, 2 do
  if redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 1]) == 1 then
    added = added + 1
    batch[#batch + 1] = ARGV[i]
  else
    dups = dups + 1
  end
end
if #batch > 0 then
  redis.call('RPUSH', KEYS[2], unpack(batch))
end
return {added, dups}
`)

// AudienceEntry is one recipient of an audience: its openid and its
// variables as a JSON object ("" when none).
type AudienceEntry struct {
	OpenID string
	Vars   string
}

// AppendAudience adds entries to the campaign's audience in one round trip,
// skipping openids it already has, if the campaign is in one of states. It
// returns how many were added and how many were duplicates. Callers send
// batches of a few hundred to a few thousand entries.
func (r *RDB) AppendAudience(ctx context.Context, id string, entries []AudienceEntry, states ...string) (added, dups int, err error) {
	return r.appendAudience(ctx, id, r.keys.Audience(id), r.keys.AudienceVars(id), entries, states)
}

// AppendAudienceStaging is AppendAudience into the staging keys of an
// upload; CommitAudience makes them the audience.
func (r *RDB) AppendAudienceStaging(ctx context.Context, id string, entries []AudienceEntry, states ...string) (added, dups int, err error) {
	return r.appendAudience(ctx, id, r.keys.AudienceStaging(id), r.keys.AudienceVarsStaging(id), entries, states)
}

func (r *RDB) appendAudience(ctx context.Context, id, list, vars string, entries []AudienceEntry, states []string) (added, dups int, err error) {
	args := make([]any, 0, 1+len(states)+2*len(entries))
	args = append(args, len(states))
	for _, s := range states {
		args = append(args, s)
	}
	for _, e := range entries {
		args = append(args, e.OpenID, e.Vars)
	}
	keys := []string{r.keys.Campaign(id), list, vars}
	res, err := appendAudience.Run(ctx, r.c, keys, args...).Slice()
	if err != nil {
		return 0, 0, fmt.Errorf("append audience: %w", err)
	}
	if a, _ := res[0].(int64); a == -1 {
		cur, _ := res[1].(string)
		if cur == "" {
			return 0, 0, ErrCampaignNotFound
		}
		return 0, 0, &StateError{State: cur}
	}
	a, _ := res[0].(int64)
	d, _ := res[1].(int64)
	return int(a), int(d), nil
}

// commitAudience replaces the audience with the staged upload and the
// campaign document with ARGV[1], if the state is allowed.
//
// KEYS[1] campaign, KEYS[2] list, KEYS[3] vars, KEYS[4] staged list,
// KEYS[5] staged vars. ARGV[1] doc, ARGV[2..] allowed states.
// Returns {1, state}, or {0, state} when refused, {-1, ""} if missing.
var commitAudience = redis.NewScript(campaignLua + `
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then
  return {-1, ''}
end
if not allowed(cur, 2, #ARGV) then
  redis.call('DEL', KEYS[4], KEYS[5])
  return {0, cur}
end
redis.call('DEL', KEYS[2], KEYS[3])
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('RENAME', KEYS[4], KEYS[2])
  redis.call('RENAME', KEYS[5], KEYS[3])
end
redis.call('HSET', KEYS[1], 'doc', ARGV[1])
return {1, cur}
`)

// CommitAudience makes the staged upload the campaign's audience (an empty
// upload empties it) and stores doc, in one step, if the campaign is in one
// of states; otherwise it drops the staged upload.
func (r *RDB) CommitAudience(ctx context.Context, id string, doc []byte, states ...string) error {
	args := []any{string(doc)}
	for _, s := range states {
		args = append(args, s)
	}
	keys := []string{r.keys.Campaign(id), r.keys.Audience(id), r.keys.AudienceVars(id), r.keys.AudienceStaging(id), r.keys.AudienceVarsStaging(id)}
	res, err := commitAudience.Run(ctx, r.c, keys, args...).Slice()
	if err != nil {
		return fmt.Errorf("commit audience: %w", err)
	}
	return stateReply(res)
}

// DropStagedAudience deletes an upload that will not be committed.
func (r *RDB) DropStagedAudience(ctx context.Context, id string) error {
	if err := r.c.Del(ctx, r.keys.AudienceStaging(id), r.keys.AudienceVarsStaging(id)).Err(); err != nil {
		return fmt.Errorf("drop staged audience: %w", err)
	}
	return nil
}

// ClearAudience deletes the campaign's audience.
func (r *RDB) ClearAudience(ctx context.Context, id string) error {
	if err := r.c.Del(ctx, r.keys.Audience(id), r.keys.AudienceVars(id)).Err(); err != nil {
		return fmt.Errorf("clear audience: %w", err)
	}
	return nil
}

// AudienceLen returns the number of recipients in the campaign's audience.
func (r *RDB) AudienceLen(ctx context.Context, id string) (int64, error) {
	n, err := r.c.LLen(ctx, r.keys.Audience(id)).Result()
	if err != nil {
		return 0, fmt.Errorf("audience length: %w", err)
	}
	return n, nil
}

// AudienceRange returns the openids at positions [start, stop] of list,
// which is Audience or RunAudience.
func (r *RDB) AudienceRange(ctx context.Context, list string, start, stop int64) ([]string, error) {
	v, err := r.c.LRange(ctx, list, start, stop).Result()
	if err != nil {
		return nil, fmt.Errorf("audience range: %w", err)
	}
	return v, nil
}

// AppendRunAudience appends openids to a run's own audience list (a
// followers or tag audience fetched at launch).
func (r *RDB) AppendRunAudience(ctx context.Context, id string, run int, openids []string) error {
	if len(openids) == 0 {
		return nil
	}
	args := make([]any, len(openids))
	for i, o := range openids {
		args[i] = o
	}
	if err := r.c.RPush(ctx, r.keys.RunAudience(id, run), args...).Err(); err != nil {
		return fmt.Errorf("append run audience: %w", err)
	}
	return nil
}

// ResetRunAudience deletes a run's own audience list (before fetching it
// again after a crash).
func (r *RDB) ResetRunAudience(ctx context.Context, id string, run int) error {
	if err := r.c.Del(ctx, r.keys.RunAudience(id, run)).Err(); err != nil {
		return fmt.Errorf("reset run audience: %w", err)
	}
	return nil
}

// ResetRunAttempts deletes a run's attempt records (before a retry run
// that will be that run carries some over).
func (r *RDB) ResetRunAttempts(ctx context.Context, id string, run int) error {
	if err := r.c.Del(ctx, r.keys.Attempts(id, run)).Err(); err != nil {
		return fmt.Errorf("reset run attempts: %w", err)
	}
	return nil
}

// startRun creates the next run of a campaign and sets the campaign's state,
// if its state is one of the allowed ones.
//
// KEYS[1] campaign hash. ARGV[1] new campaign state, ARGV[2] run state,
// ARGV[3] run size (-1: not known yet), ARGV[4] audience list key
// ("" if not known yet), ARGV[5..] allowed states.
// Returns {run, state} or {0, state} when refused, {-1, ""} if missing.
//
// It also writes the new run's hash (Keys.Run), which it is not given in
// KEYS because its number is only known inside the script: the name is
// KEYS[1] without its ":campaign" suffix, plus ":r:<run>", so it keeps the
// campaign's {c:ID} hash tag and lies in KEYS[1]'s slot, which is all Redis
// Cluster requires of such a key (TestCluster runs StartRun on a cluster).
var startRun = redis.NewScript(campaignLua + `
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then
  return {-1, ''}
end
if not allowed(cur, 5, #ARGV) then
  return {0, cur}
end
local now = now()
local run = redis.call('HINCRBY', KEYS[1], 'run', 1)
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated', now)
local rk = string.sub(KEYS[1], 1, -10) .. ':r:' .. run
redis.call('HSET', rk, 'state', ARGV[2], 'size', ARGV[3], 'expanded', 0, 'started', now, 'audience', ARGV[4])
return {run, cur}
`)

// StartRun creates the campaign's next run in runState with size (-1 when
// it is only known after the launch fetches the audience) and audience
// list, and sets the campaign to campaignState, if the campaign is in one
// of from. It returns the new run's number.
func (r *RDB) StartRun(ctx context.Context, id, campaignState, runState string, size int64, audience string, from ...string) (int, error) {
	args := []any{campaignState, runState, size, audience}
	for _, f := range from {
		args = append(args, f)
	}
	res, err := startRun.Run(ctx, r.c, []string{r.keys.Campaign(id)}, args...).Slice()
	if err != nil {
		return 0, fmt.Errorf("start run: %w", err)
	}
	if err := stateReply(res); err != nil {
		return 0, err
	}
	n, _ := res[0].(int64)
	return int(n), nil
}

// RunRecord is a run's state and counters.
type RunRecord struct {
	// State is running, paused, stopping (stopped, while its last
	// recipients get their outcomes), completed, failed or cancelled.
	State    string
	Size     int64 // -1 until the audience is known
	Expanded int64 // recipients handed to send tasks (or settled in bulk)
	Audience string
	Started  time.Time
	Finished time.Time // zero while the run is live or stopping
	Reason   string    // why it failed or was cancelled
	// Final is the state a stopped run ends in once every recipient has an
	// outcome (failed or cancelled); "" for a run never stopped.
	Final string
	// Stopped is when the run was stopped; zero if it never was.
	Stopped time.Time
	// Transactional says that the run is a transactional send's, whose
	// task goes to the transactional queue (MarkTransactional).
	Transactional bool
	// MassCapped is, for a mass run, how many recipients had their
	// month's (day's) mass messages already by wxmass's count when it
	// launched: WeChat filters them. -1 when not counted, -2 for a send
	// to all when sends to all reached the cap (everyone is filtered).
	MassCapped int64
	Counters   map[string]int64
}

// Settled is the number of recipients with a final outcome.
func (r RunRecord) Settled() int64 { return r.Counters["total"] }

// GetRun reads a run and its counters in one round trip.
func (r *RDB) GetRun(ctx context.Context, id string, run int) (RunRecord, error) {
	pipe := r.c.Pipeline()
	h := pipe.HGetAll(ctx, r.keys.Run(id, run))
	cnt := pipe.HGetAll(ctx, r.keys.Counters(id, run))
	if _, err := pipe.Exec(ctx); err != nil {
		return RunRecord{}, fmt.Errorf("get run: %w", err)
	}
	m := h.Val()
	if len(m) == 0 {
		return RunRecord{}, ErrRunNotFound
	}
	rec := RunRecord{State: m["state"], Audience: m["audience"], Reason: m["reason"], Final: m["final"],
		Transactional: m["queue"] == "tx", Counters: map[string]int64{}}
	rec.Size, _ = strconv.ParseInt(m["size"], 10, 64)
	rec.Expanded, _ = strconv.ParseInt(m["expanded"], 10, 64)
	rec.MassCapped = -1
	if v, ok := m["mass_capped"]; ok {
		rec.MassCapped, _ = strconv.ParseInt(v, 10, 64)
	}
	if ms, err := strconv.ParseInt(m["started"], 10, 64); err == nil {
		rec.Started = time.UnixMilli(ms)
	}
	if ms, err := strconv.ParseInt(m["finished"], 10, 64); err == nil && ms > 0 {
		rec.Finished = time.UnixMilli(ms)
	}
	if ms, err := strconv.ParseInt(m["stopped"], 10, 64); err == nil && ms > 0 {
		rec.Stopped = time.UnixMilli(ms)
	}
	for k, v := range cnt.Val() {
		rec.Counters[k], _ = strconv.ParseInt(v, 10, 64)
	}
	return rec, nil
}

// GetRunState reads only a run's state, for the workers' cache.
func (r *RDB) GetRunState(ctx context.Context, id string, run int) (string, error) {
	s, err := r.c.HGet(ctx, r.keys.Run(id, run), "state").Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrRunNotFound
	}
	if err != nil {
		return "", fmt.Errorf("get run state: %w", err)
	}
	return s, nil
}

// markExpanded raises a run's expanded count to ARGV[1] if it is lower.
var markExpanded = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], 'expanded') or '0')
if tonumber(ARGV[1]) > cur then
  redis.call('HSET', KEYS[1], 'expanded', ARGV[1])
end
return 1
`)

// MarkExpanded records that recipients [0, upto) of the run have been
// handed to send tasks or settled.
func (r *RDB) MarkExpanded(ctx context.Context, id string, run int, upto int64) error {
	if err := markExpanded.Run(ctx, r.c, []string{r.keys.Run(id, run)}, upto).Err(); err != nil {
		return fmt.Errorf("mark expanded: %w", err)
	}
	return nil
}

// MarkTransactional records that the run's one recipient has been handed
// to a send task on the transactional queue: MarkExpanded to 1, and a mark
// that lets the reconciler queue a lost send on the same queue.
func (r *RDB) MarkTransactional(ctx context.Context, id string, run int) error {
	if err := r.c.HSet(ctx, r.keys.Run(id, run), "expanded", 1, "queue", "tx").Err(); err != nil {
		return fmt.Errorf("mark transactional: %w", err)
	}
	return nil
}

// setStates moves a campaign and its current run to new states if they are
// in allowed ones.
//
// KEYS[1] campaign hash, KEYS[2] run hash. ARGV[1] campaign state, ARGV[2]
// run state ("" leaves the run), ARGV[3] reason, ARGV[4] number n of
// allowed campaign states, ARGV[5..4+n] those states.
// Returns {1, cur} or {0, cur} when refused, {-1, ""} if missing.
var setStates = redis.NewScript(campaignLua + `
local cur = redis.call('HGET', KEYS[1], 'state')
if not cur then
  return {-1, ''}
end
if not allowed(cur, 5, 4 + tonumber(ARGV[4])) then
  return {0, cur}
end
local now = now()
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updated', now)
if ARGV[2] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then
  local rst = redis.call('HGET', KEYS[2], 'state')
  if rst == 'running' or rst == 'paused' then
    redis.call('HSET', KEYS[2], 'state', ARGV[2])
    if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], 'reason', ARGV[3]) end
  end
end
return {1, cur}
`)

// SetStates moves the campaign to campaignState and its run to runState
// ("" leaves the run alone; a finished run is never changed), recording
// reason on the run, if the campaign is in one of from. Then it announces
// the change on the events channel so that workers drop their cached state.
func (r *RDB) SetStates(ctx context.Context, id string, run int, campaignState, runState, reason string, from ...string) error {
	args := []any{campaignState, runState, reason, len(from)}
	for _, f := range from {
		args = append(args, f)
	}
	res, err := setStates.Run(ctx, r.c, []string{r.keys.Campaign(id), r.keys.Run(id, run)}, args...).Slice()
	if err != nil {
		return fmt.Errorf("set states: %w", err)
	}
	if err := stateReply(res); err != nil {
		return err
	}
	r.Announce(ctx, id)
	return nil
}

// Announce publishes that campaign id changed. Delivery is best effort:
// workers also re-read state every second.
func (r *RDB) Announce(ctx context.Context, id string) {
	_ = r.c.Publish(ctx, r.keys.Events(), id).Err()
}

// Subscribe returns a subscription to the events channel.
func (r *RDB) Subscribe(ctx context.Context) *redis.PubSub {
	return r.c.Subscribe(ctx, r.keys.Events())
}

// CountCampaignStates counts every campaign by its state.
func (r *RDB) CountCampaignStates(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	err := r.eachCampaign(ctx, []string{"state"}, func(_ string, v []any) {
		if st, ok := v[0].(string); ok {
			out[st]++
		}
	})
	if err != nil {
		return nil, fmt.Errorf("count campaign states: %w", err)
	}
	return out, nil
}

// eachCampaign calls fn with the values of fields (nil where missing) of
// every campaign of the campaign list, reading them in pipelined pages of
// 500.
func (r *RDB) eachCampaign(ctx context.Context, fields []string, fn func(id string, values []any)) error {
	const page = 500
	for start := int64(0); ; start += page {
		ids, err := r.c.ZRange(ctx, r.keys.Campaigns(), start, start+page-1).Result()
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		pipe := r.c.Pipeline()
		cmds := make([]*redis.SliceCmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.HMGet(ctx, r.keys.Campaign(id), fields...)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		for i, c := range cmds {
			if v, err := c.Result(); err == nil && len(v) == len(fields) {
				fn(ids[i], v)
			}
		}
		if len(ids) < page {
			return nil
		}
	}
}
