package rdb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
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
	v, err := r.c.HMGet(ctx, r.keys.Campaign(id), "doc", "state", "run", "updated").Result()
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
	State    string
	Size     int64 // -1 until the audience is known
	Expanded int64 // recipients handed to send tasks (or settled in bulk)
	Audience string
	Started  time.Time
	Finished time.Time // zero while the run is live
	Reason   string    // why it failed or was cancelled
	Counters map[string]int64
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
	rec := RunRecord{State: m["state"], Audience: m["audience"], Reason: m["reason"], Counters: map[string]int64{}}
	rec.Size, _ = strconv.ParseInt(m["size"], 10, 64)
	rec.Expanded, _ = strconv.ParseInt(m["expanded"], 10, 64)
	if ms, err := strconv.ParseInt(m["started"], 10, 64); err == nil {
		rec.Started = time.UnixMilli(ms)
	}
	if ms, err := strconv.ParseInt(m["finished"], 10, 64); err == nil && ms > 0 {
		rec.Finished = time.UnixMilli(ms)
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

// setRunSize sets the audience size and list of a run once it is known, and
// completes the run at once if the audience is empty.
//
// KEYS[1] run hash, KEYS[2] campaign hash. ARGV[1] size, ARGV[2] list key,
// ARGV[3] campaign state after completion.
var setRunSize = redis.NewScript(campaignLua + `
redis.call('HSET', KEYS[1], 'size', ARGV[1], 'audience', ARGV[2])
if tonumber(ARGV[1]) == 0 then
  local now = now()
  local st = redis.call('HGET', KEYS[1], 'state')
  if st == 'running' or st == 'paused' then
    redis.call('HSET', KEYS[1], 'state', 'completed', 'finished', now)
    local cst = redis.call('HGET', KEYS[2], 'state')
    if cst == 'running' or cst == 'paused' then
      redis.call('HSET', KEYS[2], 'state', ARGV[3], 'updated', now)
    end
  end
end
return 1
`)

// SetRunSize records the size and audience list of a run once the launch
// knows them. An empty audience completes the run at once, and the
// campaign moves to doneState.
func (r *RDB) SetRunSize(ctx context.Context, id string, run int, size int64, list, doneState string) error {
	err := setRunSize.Run(ctx, r.c, []string{r.keys.Run(id, run), r.keys.Campaign(id)}, size, list, doneState).Err()
	if err != nil {
		return fmt.Errorf("set run size: %w", err)
	}
	return nil
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
  if rst ~= 'completed' and rst ~= 'cancelled' and rst ~= 'failed' then
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

// Outcome statuses.
const (
	OutcomeSent      = "sent"
	OutcomeDelivered = "delivered"
	OutcomeFailed    = "failed"
	OutcomeSkipped   = "skipped"
	OutcomeCancelled = "cancelled"
)

// Outcome is a recipient's final outcome in a run.
type Outcome struct {
	Status string
	Code   int    // errcode of a failure (0 for transport failures)
	Class  string // the errcode's class, from retry
	MsgID  int64  // template sends
	Detail string // reason of a skip or cancel, meaning of a failure
	At     time.Time
}

// EncodeOutcome writes o as stored, "status|code|class|msgid|detail",
// without the time the record script appends from the server clock.
func EncodeOutcome(o Outcome) string { return o.encode() }

// encode: see EncodeOutcome.
func (o Outcome) encode() string {
	detail := strings.ReplaceAll(o.Detail, "|", "/")
	var b strings.Builder
	b.Grow(len(o.Status) + len(o.Class) + len(detail) + 32)
	b.WriteString(o.Status)
	b.WriteByte('|')
	if o.Code != 0 {
		b.WriteString(strconv.Itoa(o.Code))
	}
	b.WriteByte('|')
	b.WriteString(o.Class)
	b.WriteByte('|')
	if o.MsgID != 0 {
		b.WriteString(strconv.FormatInt(o.MsgID, 10))
	}
	b.WriteByte('|')
	b.WriteString(detail)
	return b.String()
}

// ParseOutcome decodes a stored outcome.
func ParseOutcome(s string) (Outcome, error) {
	parts := strings.SplitN(s, "|", 6)
	if len(parts) != 6 {
		return Outcome{}, fmt.Errorf("outcome %q: want 6 fields", s)
	}
	o := Outcome{Status: parts[0], Class: parts[2], Detail: parts[4]}
	var err error
	if parts[1] != "" {
		if o.Code, err = strconv.Atoi(parts[1]); err != nil {
			return Outcome{}, fmt.Errorf("outcome %q: code: %w", s, err)
		}
	}
	if parts[3] != "" {
		if o.MsgID, err = strconv.ParseInt(parts[3], 10, 64); err != nil {
			return Outcome{}, fmt.Errorf("outcome %q: msgid: %w", s, err)
		}
	}
	ms, err := strconv.ParseInt(parts[5], 10, 64)
	if err != nil {
		return Outcome{}, fmt.Errorf("outcome %q: time: %w", s, err)
	}
	o.At = time.UnixMilli(ms)
	return o, nil
}

// recordOutcomes stores final outcomes of recipients who have none yet and
// updates the run's counters and timeline in the same step, so that the
// counters always add up; when every recipient has an outcome the run (and
// the campaign, if this is its current run) completes.
//
// KEYS[1] outcomes, KEYS[2] counters, KEYS[3] timeline, KEYS[4] run hash,
// KEYS[5] campaign hash. ARGV[1] campaign state after completion, ARGV[2]
// run number, then for each recipient: openid, encoded outcome, status,
// errcode ("" for none), class ("" for none). Counter increments are summed
// before they are written, so a batch of many outcomes costs one HINCRBY
// per distinct counter. Returns {recorded, completed(0|1), flags}, flags a
// string of '1' (recorded) or '0' (had an outcome already) per recipient.
var recordOutcomes = redis.NewScript(campaignLua + `
local now = now()
local sec = math.floor(now / 1000)
local recorded = 0
local counts, order = {}, {}
local function bump(k)
  local c = counts[k]
  if c == nil then
    order[#order + 1] = k
    c = 0
  end
  counts[k] = c + 1
end
local flags = {}
for i = 3, #ARGV, 5 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1] .. '|' .. now) == 1 then
    recorded = recorded + 1
    flags[#flags + 1] = '1'
    bump(ARGV[i + 2])
    if ARGV[i + 3] ~= '' then bump('code:' .. ARGV[i + 3]) end
    if ARGV[i + 4] ~= '' then bump('class:' .. ARGV[i + 4]) end
  else
    flags[#flags + 1] = '0'
  end
end
flags = table.concat(flags)
if recorded == 0 then
  return {0, 0, flags}
end
for _, k in ipairs(order) do
  redis.call('HINCRBY', KEYS[2], k, counts[k])
  if string.find(k, ':', 1, true) == nil then
    redis.call('HINCRBY', KEYS[3], k .. ':' .. sec, counts[k])
  end
end
local total = redis.call('HINCRBY', KEYS[2], 'total', recorded)
local size = tonumber(redis.call('HGET', KEYS[4], 'size') or '-1')
if size >= 0 and total >= size then
  local rst = redis.call('HGET', KEYS[4], 'state')
  redis.call('HSET', KEYS[4], 'finished', now)
  if rst == 'running' or rst == 'paused' then
    redis.call('HSET', KEYS[4], 'state', 'completed')
  end
  if tonumber(redis.call('HGET', KEYS[5], 'run')) == tonumber(ARGV[2]) then
    local cst = redis.call('HGET', KEYS[5], 'state')
    if cst == 'running' or cst == 'paused' then
      redis.call('HSET', KEYS[5], 'state', ARGV[1], 'updated', now)
    end
  end
  return {recorded, 1, flags}
end
return {recorded, 0, flags}
`)

// Settle is one recipient's outcome to record.
type Settle struct {
	OpenID  string
	Outcome Outcome
}

// RecordOutcomes stores the outcomes of recipients that have none yet,
// with the run's counters, in one round trip (plus the msgid index entries
// of sent template messages, pipelined in the same round trip). It returns
// how many were new and whether the run is now complete; doneState is the
// campaign's state once its run completes.
func (r *RDB) RecordOutcomes(ctx context.Context, id string, run int, doneState string, settles ...Settle) (int, bool, error) {
	if len(settles) == 0 {
		return 0, false, nil
	}
	var res *redis.Cmd
	err := r.withScripts(ctx, func(pipe redis.Pipeliner) {
		res = r.queueRecord(ctx, pipe, id, run, doneState, settles)
	}, recordOutcomes)
	if err != nil {
		return 0, false, fmt.Errorf("record outcomes: %w", err)
	}
	recorded, completed, _, err := recordReply(res)
	if err != nil {
		return 0, false, fmt.Errorf("record outcomes: %w", err)
	}
	return recorded, completed, nil
}

// recordReply decodes the record script's answer.
func recordReply(res *redis.Cmd) (recorded int, completed bool, flags string, err error) {
	v, err := res.Slice()
	if err != nil {
		return 0, false, "", err
	}
	if len(v) != 3 {
		return 0, false, "", fmt.Errorf("record script answered %d values", len(v))
	}
	n, _ := v[0].(int64)
	c, _ := v[1].(int64)
	f, _ := v[2].(string)
	return int(n), c == 1, f, nil
}

// queueRecord adds the record script of one run's settles, and their msgid
// index entries, to pipe.
func (r *RDB) queueRecord(ctx context.Context, pipe redis.Pipeliner, id string, run int, doneState string, settles []Settle) *redis.Cmd {
	args := make([]any, 0, 2+5*len(settles))
	args = append(args, doneState, run)
	for _, s := range settles {
		code := ""
		if s.Outcome.Code != 0 {
			code = strconv.Itoa(s.Outcome.Code)
		}
		args = append(args, s.OpenID, s.Outcome.encode(), s.Outcome.Status, code, s.Outcome.Class)
	}
	keys := []string{r.keys.Outcomes(id, run), r.keys.Counters(id, run), r.keys.Timeline(id, run), r.keys.Run(id, run), r.keys.Campaign(id)}
	res := recordOutcomes.EvalSha(ctx, pipe, keys, args...)
	for _, s := range settles {
		if s.Outcome.MsgID != 0 {
			pipe.HSet(ctx, r.keys.MsgIDIndex(s.Outcome.MsgID), strconv.FormatInt(s.Outcome.MsgID, 10), id+"|"+strconv.Itoa(run)+"|"+s.OpenID)
		}
	}
	return res
}

// withScripts runs the commands fill queues in one pipeline. If the server
// does not know a script (first use, or its script cache was flushed), it
// loads scripts and runs the pipeline once more: the commands queued must
// be safe to repeat.
func (r *RDB) withScripts(ctx context.Context, fill func(redis.Pipeliner), scripts ...*redis.Script) error {
	for try := 0; ; try++ {
		pipe := r.c.Pipeline()
		fill(pipe)
		cmds, err := pipe.Exec(ctx)
		if err != nil && try == 0 && anyNoScript(cmds) {
			for _, s := range scripts {
				if err := s.Load(ctx, r.c).Err(); err != nil {
					return fmt.Errorf("load script: %w", err)
				}
			}
			continue
		}
		return err
	}
}

func anyNoScript(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if isNoScript(c.Err()) {
			return true
		}
	}
	return false
}

func isNoScript(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") }

// HasOutcomes returns, for each openid, whether it already has an outcome
// in the run.
func (r *RDB) HasOutcomes(ctx context.Context, id string, run int, openids []string) ([]bool, error) {
	if len(openids) == 0 {
		return nil, nil
	}
	v, err := r.c.HMGet(ctx, r.keys.Outcomes(id, run), openids...).Result()
	if err != nil {
		return nil, fmt.Errorf("has outcomes: %w", err)
	}
	out := make([]bool, len(v))
	for i, x := range v {
		out[i] = x != nil
	}
	return out, nil
}

// GetOutcome returns a recipient's outcome in a run, and false if it has
// none yet.
func (r *RDB) GetOutcome(ctx context.Context, id string, run int, openid string) (Outcome, bool, error) {
	s, err := r.c.HGet(ctx, r.keys.Outcomes(id, run), openid).Result()
	if errors.Is(err, redis.Nil) {
		return Outcome{}, false, nil
	}
	if err != nil {
		return Outcome{}, false, fmt.Errorf("get outcome: %w", err)
	}
	o, err := ParseOutcome(s)
	return o, err == nil, err
}

// ScanOutcomes calls fn with every outcome of a run, in no order, a page at
// a time.
func (r *RDB) ScanOutcomes(ctx context.Context, id string, run int, fn func(openid string, o Outcome) error) error {
	var cursor uint64
	for {
		kv, next, err := r.c.HScan(ctx, r.keys.Outcomes(id, run), cursor, "", 1000).Result()
		if err != nil {
			return fmt.Errorf("scan outcomes: %w", err)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			o, err := ParseOutcome(kv[i+1])
			if err != nil {
				return err
			}
			if err := fn(kv[i], o); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// LookupMsgID returns the campaign, run and openid of a sent template
// message by its msgid.
func (r *RDB) LookupMsgID(ctx context.Context, msgid int64) (id string, run int, openid string, ok bool, err error) {
	s, err := r.c.HGet(ctx, r.keys.MsgIDIndex(msgid), strconv.FormatInt(msgid, 10)).Result()
	if errors.Is(err, redis.Nil) {
		return "", 0, "", false, nil
	}
	if err != nil {
		return "", 0, "", false, fmt.Errorf("lookup msgid: %w", err)
	}
	parts := strings.SplitN(s, "|", 3)
	if len(parts) != 3 {
		return "", 0, "", false, fmt.Errorf("lookup msgid: bad entry %q", s)
	}
	run, err = strconv.Atoi(parts[1])
	if err != nil {
		return "", 0, "", false, fmt.Errorf("lookup msgid: bad entry %q", s)
	}
	return parts[0], run, parts[2], true, nil
}

// TimelinePoint is how many recipients of a run settled with Status in the
// second starting at Sec (Unix seconds, by the Redis clock).
type TimelinePoint struct {
	Sec    int64
	Status string
	N      int64
}

// GetTimeline returns a run's per-second outcome counts, oldest first.
func (r *RDB) GetTimeline(ctx context.Context, id string, run int) ([]TimelinePoint, error) {
	m, err := r.c.HGetAll(ctx, r.keys.Timeline(id, run)).Result()
	if err != nil {
		return nil, fmt.Errorf("get timeline: %w", err)
	}
	out := make([]TimelinePoint, 0, len(m))
	for k, v := range m {
		st, sec, ok := strings.Cut(k, ":")
		s, err1 := strconv.ParseInt(sec, 10, 64)
		n, err2 := strconv.ParseInt(v, 10, 64)
		if !ok || err1 != nil || err2 != nil {
			continue // not written by the record script
		}
		out = append(out, TimelinePoint{Sec: s, Status: st, N: n})
	}
	slices.SortFunc(out, func(a, b TimelinePoint) int {
		if a.Sec != b.Sec {
			return cmp.Compare(a.Sec, b.Sec)
		}
		return strings.Compare(a.Status, b.Status)
	})
	return out, nil
}

// CountCampaignStates counts every campaign by its state, reading the
// states in pipelined pages of 500.
func (r *RDB) CountCampaignStates(ctx context.Context) (map[string]int64, error) {
	out := map[string]int64{}
	const page = 500
	for start := int64(0); ; start += page {
		ids, err := r.c.ZRange(ctx, r.keys.Campaigns(), start, start+page-1).Result()
		if err != nil {
			return nil, fmt.Errorf("count campaign states: %w", err)
		}
		if len(ids) == 0 {
			return out, nil
		}
		pipe := r.c.Pipeline()
		cmds := make([]*redis.StringCmd, len(ids))
		for i, id := range ids {
			cmds[i] = pipe.HGet(ctx, r.keys.Campaign(id), "state")
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("count campaign states: %w", err)
		}
		for _, c := range cmds {
			if st, err := c.Result(); err == nil {
				out[st]++
			}
		}
		if len(ids) < page {
			return out, nil
		}
	}
}
