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

// The ledger: what happened to each recipient of a run. Three hashes per
// run, all in the campaign's hash slot:
//
//   - Outcomes: openid -> the final outcome, "status|code|class|msgid|detail|at".
//   - Attempts: openid -> the attempt record, "n|first|last|open|lost|proc|cmidrun",
//     written before each WeChat call (BeginAttempts): n attempts begun,
//     the server times (ms) of the first and the latest, open = 1 while
//     the latest has neither been answered nor ended (A once WeChat
//     accepted a mass batch's job, whose result is still to come), lost = 1 once some
//     attempt's answer was lost (a timeout, a dropped connection, a worker
//     that died during the call), proc the process that began the latest,
//     cmidrun the run whose client_msg_id a template send uses ("" for
//     this run; a retry run carries its origin's). A record is deleted
//     when its recipient is recorded sent, the outcome that ends every
//     question about it.
//   - Counters: total, each status, code:N, class:X (and the receipts').
//
// Every script below shares one rule book (ledgerLua): a recipient's
// outcome is written once, except that `unknown` yields to a definitive
// answer that arrives later; a failure of a recipient one of whose
// attempts lost its answer is `unknown` (WeChat may have delivered it); a
// stopped run's recipients get `skipped` or `cancelled` only if no attempt
// of theirs can have reached WeChat, and `unknown` otherwise; and the run
// finishes, in the state it is bound for, in the script whose outcome
// makes the counters reach its size.

// Outcome statuses.
const (
	OutcomeSent      = "sent"
	OutcomeDelivered = "delivered"
	OutcomeFailed    = "failed"
	OutcomeUnknown   = "unknown"
	OutcomeSkipped   = "skipped"
	OutcomeCancelled = "cancelled"
)

// Run states of the ledger (the campaign states of a run, plus stopping).
const (
	RunRunning   = "running"
	RunPaused    = "paused"
	RunStopping  = "stopping"
	RunCompleted = "completed"
	RunFailed    = "failed"
	RunCancelled = "cancelled"
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
	var b strings.Builder
	b.Grow(len(o.Status) + len(o.Class) + len(o.Detail) + 32)
	b.WriteString(o.Status)
	b.WriteByte('|')
	b.WriteString(o.code())
	b.WriteByte('|')
	b.WriteString(o.Class)
	b.WriteByte('|')
	b.WriteString(o.msgID())
	b.WriteByte('|')
	b.WriteString(o.detail())
	return b.String()
}

func (o Outcome) code() string {
	if o.Code == 0 {
		return ""
	}
	return strconv.Itoa(o.Code)
}

func (o Outcome) msgID() string {
	if o.MsgID == 0 {
		return ""
	}
	return strconv.FormatInt(o.MsgID, 10)
}

// detail is the stored detail: '|' separates fields, so it becomes '/'.
func (o Outcome) detail() string { return strings.ReplaceAll(o.Detail, "|", "/") }

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

// Attempt is a recipient's attempt record in a run.
type Attempt struct {
	// N is the number of attempts begun in this run (0 for a record a
	// retry run carried over from its origin).
	N int
	// First and Last are when the first and the latest attempt began, by
	// the Redis server's clock.
	First, Last time.Time
	// Open is set while the latest attempt has neither been answered nor
	// ended.
	Open bool
	// Accepted is set once WeChat accepted the recipient's job (a mass
	// batch) and its result is still to come.
	Accepted bool
	// Lost is set once some attempt's answer was lost.
	Lost bool
	// Proc is the process that began the latest attempt.
	Proc string
	// ClientMsgRun is the run whose client_msg_id the recipient's
	// template sends carry: the run itself, or the run a retry run
	// carried it from.
	ClientMsgRun int
}

// parseAttempt decodes a stored attempt record of run.
func parseAttempt(s string, run int) (Attempt, error) {
	p := strings.SplitN(s, "|", 7)
	if len(p) != 7 {
		return Attempt{}, fmt.Errorf("attempt %q: want 7 fields", s)
	}
	var a Attempt
	var err error
	if a.N, err = strconv.Atoi(p[0]); err != nil {
		return Attempt{}, fmt.Errorf("attempt %q: n: %w", s, err)
	}
	first, err1 := strconv.ParseInt(p[1], 10, 64)
	last, err2 := strconv.ParseInt(p[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return Attempt{}, fmt.Errorf("attempt %q: time: %w", s, err)
	}
	a.First, a.Last = time.UnixMilli(first), time.UnixMilli(last)
	a.Open, a.Accepted, a.Lost, a.Proc = p[3] == "1", p[3] == "A", p[4] == "1", p[5]
	a.ClientMsgRun = run
	if p[6] != "" {
		if a.ClientMsgRun, err = strconv.Atoi(p[6]); err != nil {
			return Attempt{}, fmt.Errorf("attempt %q: cmidrun: %w", s, err)
		}
	}
	return a, nil
}

// ledgerLua is the rule book every ledger script shares (after
// campaignLua). The scripts take the same KEYS:
//
//	KEYS[1] outcomes, KEYS[2] counters, KEYS[3] timeline, KEYS[4] run hash,
//	KEYS[5] campaign hash, KEYS[6] attempts, KEYS[7] a script's own key.
//
// L.open(doneState, run) starts a script's bookkeeping; put and resolve
// record outcomes; L.close() writes the counters and the timeline in one
// HINCRBY per distinct counter, and finishes the run (L.finish) when its
// counters reach its size, returning the state it finished in ("" when it
// did not finish in this script).
const ledgerLua = `
local L = {}
function L.open(doneState, run)
  L.now = now()
  L.sec = math.floor(L.now / 1000)
  L.doneState, L.run = doneState, run
  L.new, L.resolved = 0, 0
  L.counts, L.order, L.ts, L.tsorder = {}, {}, {}, {}
end
-- add adds d to sums[k], keeping the keys in the order they came.
local function add(sums, order, k, d)
  local c = sums[k]
  if c == nil then
    order[#order + 1] = k
    c = 0
  end
  sums[k] = c + d
end
local function count(status, code, class, d, sec)
  add(L.counts, L.order, status, d)
  if code ~= '' then add(L.counts, L.order, 'code:' .. code, d) end
  if class ~= '' then add(L.counts, L.order, 'class:' .. class, d) end
  add(L.ts, L.tsorder, status .. ':' .. sec, d)
end
local function enc(status, code, class, msgid, detail)
  return status .. '|' .. code .. '|' .. class .. '|' .. msgid .. '|' .. detail .. '|' .. L.now
end
local function split(s)
  return string.match(s, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
end
-- attempt returns the fields of openid's attempt record, or nil.
local function attempt(openid)
  local a = redis.call('HGET', KEYS[6], openid)
  if not a then return nil end
  local n, first, last, open, lost, proc, cmr = string.match(a, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  return {n = tonumber(n) or 0, first = tonumber(first) or L.now, last = tonumber(last) or 0,
    open = open, lost = lost, proc = proc, cmr = cmr}
end
local function putattempt(openid, a)
  redis.call('HSET', KEYS[6], openid, a.n .. '|' .. a.first .. '|' .. a.last .. '|' .. a.open .. '|' .. a.lost .. '|' .. a.proc .. '|' .. a.cmr)
end
-- put records a final outcome for a recipient who has none; it reports
-- whether it did.
local function put(openid, status, code, class, msgid, detail)
  if redis.call('HSETNX', KEYS[1], openid, enc(status, code, class, msgid, detail)) == 0 then
    return false
  end
  L.new = L.new + 1
  count(status, code, class, 1, L.sec)
  if status == 'sent' or status == 'delivered' then redis.call('HDEL', KEYS[6], openid) end
  return true
end
-- resolve replaces a recipient's unknown outcome with a definitive one;
-- it reports whether it did.
local function resolve(openid, status, code, class, msgid, detail)
  local cur = redis.call('HGET', KEYS[1], openid)
  if not cur then return false end
  local ost, ocode, oclass, _, _, oat = split(cur)
  if ost ~= 'unknown' then return false end
  redis.call('HSET', KEYS[1], openid, enc(status, code, class, msgid, detail))
  count(ost, ocode, oclass, -1, math.floor((tonumber(oat) or L.now) / 1000))
  count(status, code, class, 1, L.sec)
  if status == 'sent' or status == 'delivered' then redis.call('HDEL', KEYS[6], openid) end
  L.resolved = L.resolved + 1
  return true
end
-- stoprule gives a recipient of a stopped run its outcome: skipped (or
-- cancelled) when none of its attempts can have reached WeChat, unknown
-- when one may have. An attempt begun less than grace ms ago may still be
-- answered: it returns 'W' and the attempt's start then. Otherwise 'S'
-- and the status recorded, or 'D' when the recipient had an outcome.
local function stoprule(openid, final, reason, grace)
  local a = attempt(openid)
  local status, detail
  if a then
    if a.open == 'A' then
      -- WeChat accepted the job (a mass batch): its result, pushed or
      -- polled, is the outcome, however long it takes.
      return 'W', L.now
    end
    if a.open == '1' and L.now - a.last < grace then
      return 'W', a.last
    end
    if a.open == '1' then
      status, detail = 'unknown', 'attempt ' .. a.n .. ' got no answer before the run stopped (its worker may have died during the call): WeChat may have delivered it'
    elseif a.lost == '1' then
      status, detail = 'unknown', 'the answer to an attempt was lost and the run stopped before it could be resolved: WeChat may have delivered it'
    end
  end
  if not status then
    if final == 'cancelled' then
      status, detail = 'cancelled', 'campaign cancelled'
    else
      status, detail = 'skipped', 'campaign stopped: ' .. reason
    end
  end
  if put(openid, status, '', '', '', detail) then return 'S', status end
  return 'D', ''
end
function L.close()
  for _, k in ipairs(L.order) do
    local d = L.counts[k]
    if d ~= 0 then redis.call('HINCRBY', KEYS[2], k, d) end
  end
  for _, k in ipairs(L.tsorder) do
    local d = L.ts[k]
    if d ~= 0 then redis.call('HINCRBY', KEYS[3], k, d) end
  end
  if L.new == 0 then return '' end
  return L.finish(redis.call('HINCRBY', KEYS[2], 'total', L.new))
end
-- L.finish finishes the run if total outcomes reach its size.
function L.finish(total)
  local size = tonumber(redis.call('HGET', KEYS[4], 'size') or '-1')
  if size < 0 or total < size then return '' end
  local rst = redis.call('HGET', KEYS[4], 'state')
  local fin
  if rst == 'running' or rst == 'paused' then
    fin = 'completed'
  elseif rst == 'stopping' then
    fin = redis.call('HGET', KEYS[4], 'final') or 'failed'
  else
    return ''
  end
  redis.call('HSET', KEYS[4], 'state', fin, 'finished', L.now)
  if tonumber(redis.call('HGET', KEYS[5], 'run')) == tonumber(L.run) then
    local cst = redis.call('HGET', KEYS[5], 'state')
    if fin == 'completed' and (cst == 'running' or cst == 'paused') then
      redis.call('HSET', KEYS[5], 'state', L.doneState, 'updated', L.now)
    elseif fin ~= 'completed' and cst == 'stopping' then
      redis.call('HSET', KEYS[5], 'state', fin, 'updated', L.now)
    end
  end
  return fin
end
`

// RecordMode says how a recipient's attempt record bears on the outcome
// recorded for it.
type RecordMode byte

const (
	// RecordPlain stores the outcome as given, if the recipient has none.
	RecordPlain RecordMode = '0'
	// RecordAnswered is the outcome of a call whose answer was read: a
	// failure becomes unknown if an earlier attempt's answer was lost, and
	// a definitive outcome (sent, failed) replaces an unknown one.
	RecordAnswered RecordMode = '1'
	// RecordUnanswered is an outcome decided without an answer in hand (a
	// task that ran out of retries): a failure becomes unknown if an
	// attempt is still open or lost its answer.
	RecordUnanswered RecordMode = '2'
)

// recordOutcomes stores final outcomes (see ledgerLua for the rules).
//
// KEYS: the ledger's (KEYS[7] unused). ARGV[1] the campaign's state once
// its run completes, ARGV[2] the run, then for each recipient 7 values:
// openid, status, code, class, msgid, detail, mode. Returns {new,
// finished state or "", stored} where stored has one character per
// recipient: 'n' recorded as given, 'u' recorded as unknown, 'r' replaced
// an unknown outcome, '0' left as it was.
var recordOutcomes = redis.NewScript(campaignLua + ledgerLua + `
L.open(ARGV[1], ARGV[2])
local stored = {}
for i = 3, #ARGV, 7 do
  local openid, status, code, class, msgid, detail, mode = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  local asked = status
  if mode ~= '0' and status ~= 'sent' and status ~= 'unknown' and status ~= 'delivered' then
    local a = attempt(openid)
    if a and (a.lost == '1' or (mode == '2' and a.open == '1')) then
      local why = status
      if code ~= '' then why = why .. ' ' .. code end
      detail = 'an earlier attempt lost its answer, then ' .. why .. ' (' .. detail .. '): WeChat may have delivered it'
      status, code, class = 'unknown', '', ''
    end
  end
  local flag = '0'
  if put(openid, status, code, class, msgid, detail) then
    flag = (status == asked) and 'n' or 'u'
  elseif mode == '1' and status ~= 'unknown' and resolve(openid, status, code, class, msgid, detail) then
    flag = 'r'
  end
  stored[#stored + 1] = flag
end
local fin = L.close()
return {L.new, fin, table.concat(stored)}
`)

// Settle is one recipient's outcome to record.
type Settle struct {
	OpenID  string
	Outcome Outcome
	Mode    RecordMode // RecordPlain when zero
}

// Stored says what a record did to one recipient's outcome.
type Stored byte

// What a record did.
const (
	StoredNothing  Stored = '0' // it had an outcome, which stays
	StoredAsGiven  Stored = 'n' // recorded as given
	StoredUnknown  Stored = 'u' // recorded as unknown (an attempt lost its answer)
	StoredResolved Stored = 'r' // replaced the recipient's unknown outcome
)

// Recorded is the result of recording outcomes.
type Recorded struct {
	// New is the number of recipients that got their first outcome.
	New int
	// Finished is the state the run finished in by this record
	// (completed, failed, cancelled), or "".
	Finished string
	// Stored says, per recipient in order, what the record did.
	Stored []Stored
}

// RecordOutcomes stores the outcomes of recipients, with the run's
// counters, in one round trip (plus the msgid index entries of sent
// template messages, pipelined in the same round trip); doneState is the
// campaign's state once its run completes.
func (r *RDB) RecordOutcomes(ctx context.Context, id string, run int, doneState string, settles ...Settle) (Recorded, error) {
	if len(settles) == 0 {
		return Recorded{}, nil
	}
	var res *redis.Cmd
	err := r.withScripts(ctx, func(pipe redis.Pipeliner) {
		res = r.queueRecord(ctx, pipe, id, run, doneState, settles)
	}, recordOutcomes)
	if err != nil {
		return Recorded{}, fmt.Errorf("record outcomes: %w", err)
	}
	rec, err := recordReply(res)
	if err != nil {
		return Recorded{}, fmt.Errorf("record outcomes: %w", err)
	}
	return rec, nil
}

// recordReply decodes the record script's answer.
func recordReply(res *redis.Cmd) (Recorded, error) {
	v, err := res.Slice()
	if err != nil {
		return Recorded{}, err
	}
	if len(v) != 3 {
		return Recorded{}, fmt.Errorf("record script answered %d values", len(v))
	}
	n, _ := v[0].(int64)
	fin, _ := v[1].(string)
	f, _ := v[2].(string)
	return Recorded{New: int(n), Finished: fin, Stored: []Stored(f)}, nil
}

// ledgerKeys returns the KEYS of a ledger script of a run, with extra as
// KEYS[7].
func (r *RDB) ledgerKeys(id string, run int, extra string) []string {
	return []string{r.keys.Outcomes(id, run), r.keys.Counters(id, run), r.keys.Timeline(id, run), r.keys.Run(id, run),
		r.keys.Campaign(id), r.keys.Attempts(id, run), extra}
}

// queueRecord adds the record script of one run's settles, and their msgid
// index entries, to pipe.
func (r *RDB) queueRecord(ctx context.Context, pipe redis.Pipeliner, id string, run int, doneState string, settles []Settle) *redis.Cmd {
	args := make([]any, 0, 2+7*len(settles))
	args = append(args, doneState, run)
	for _, s := range settles {
		mode := s.Mode
		if mode == 0 {
			mode = RecordPlain
		}
		o := s.Outcome
		args = append(args, s.OpenID, o.Status, o.code(), o.Class, o.msgID(), o.detail(), string(rune(mode)))
	}
	res := recordOutcomes.EvalSha(ctx, pipe, r.ledgerKeys(id, run, r.keys.Attempts(id, run)), args...)
	for _, s := range settles {
		if s.Outcome.MsgID != 0 {
			pipe.HSet(ctx, r.keys.MsgIDIndex(s.Outcome.MsgID), strconv.FormatInt(s.Outcome.MsgID, 10), id+"|"+strconv.Itoa(run)+"|"+s.OpenID)
		}
	}
	return res
}

// beginAttempts begins an attempt of each recipient that may be sent to,
// and gives the others their outcome by the rules.
//
// KEYS: the ledger's, KEYS[7] the audience variables. ARGV[1] doneState,
// ARGV[2] run, ARGV[3] "1" when the sends carry a dedupe key
// (client_msg_id), ARGV[4] the dedupe window in ms, ARGV[5] the process,
// ARGV[6] "1" to read variables, ARGV[7] the stop grace in ms, ARGV[8] "1"
// when the caller took no rate token (it believed the run stopped), then
// the openids. Returns {finished state or "", one answer per openid}:
//
//	G<n>|<cmidrun>|<vars>  attempt n begun; send it
//	D                      it has an outcome already
//	P                      the run is paused
//	R                      the run is running, and the caller has no token
//	W                      the run stopped; an attempt may still be in flight
//	S<status>              the rules gave it its outcome now
//	X                      the run does not exist
//	A                      WeChat accepted its job (a mass batch): await the result
var beginAttempts = redis.NewScript(campaignLua + ledgerLua + `
L.open(ARGV[1], ARGV[2])
local st = redis.call('HGET', KEYS[4], 'state')
local final, reason = st, ''
if st == 'stopping' then
  final = redis.call('HGET', KEYS[4], 'final') or 'failed'
end
if st == 'stopping' or st == 'failed' or st == 'cancelled' then
  reason = redis.call('HGET', KEYS[4], 'reason') or ''
end
local dedupe, window, proc, withVars, grace = ARGV[3] == '1', tonumber(ARGV[4]), ARGV[5], ARGV[6] == '1', tonumber(ARGV[7])
local untokened = ARGV[8] == '1'
local out = {}
for i = 9, #ARGV do
  local openid = ARGV[i]
  local res
  if not st then
    res = 'X'
  elseif redis.call('HEXISTS', KEYS[1], openid) == 1 then
    res = 'D'
  elseif st == 'paused' then
    res = 'P'
  elseif st == 'running' and untokened then
    res = 'R'
  elseif st ~= 'running' then
    local r, v = stoprule(openid, final, reason, grace)
    if r == 'S' then res = 'S' .. v else res = r end
  else
    local a = attempt(openid)
    if a and a.open == 'A' then
      -- WeChat accepted its job (a mass batch): its send task awaits
      -- the result.
      res = 'A'
    else
      if not a then
        a = {n = 0, first = L.now, open = '0', lost = '0', cmr = ''}
      end
      if a.open == '1' then a.lost = '1' end
      if a.lost == '1' and (not dedupe or L.now - a.first >= window) then
        local detail
        if dedupe then
          detail = 'the answer to an attempt was lost and the client_msg_id window has passed: WeChat may have delivered it'
        else
          detail = 'the answer to attempt ' .. a.n .. ' was lost (its worker died during the call, or no answer came); with no dedupe key it is never sent again: WeChat may have delivered it'
        end
        if put(openid, 'unknown', '', '', '', detail) then res = 'Sunknown' else res = 'D' end
      else
        if a.n == 0 and a.lost ~= '1' then a.first = L.now end
        a.n, a.last, a.open, a.proc = a.n + 1, L.now, '1', proc
        putattempt(openid, a)
        local vars = ''
        if withVars then vars = redis.call('HGET', KEYS[7], openid) or '' end
        res = 'G' .. a.n .. '|' .. a.cmr .. '|' .. vars
      end
    end
  end
  out[#out + 1] = res
end
local fin = L.close()
return {fin, out}
`)

// Begin is what BeginAttempt decided for a recipient.
type Begin struct {
	// Action is one of the Begin* constants.
	Action BeginAction
	// Attempt is the number of the attempt begun (BeginSend).
	Attempt int
	// ClientMsgRun is the run whose client_msg_id a template send carries
	// (BeginSend).
	ClientMsgRun int
	// Vars is the recipient's variables, when asked for (BeginSend).
	Vars string
	// Status is the outcome the rules gave the recipient (BeginSettled).
	Status string
	// Finished is the state the run finished in by this call, or "".
	Finished string
	// Admit is the verdict of BeginOptions.Admit (zero without one).
	Admit Admit
}

// BeginAction is what a send task does after BeginAttempt.
type BeginAction byte

// Begin actions.
const (
	BeginSend      BeginAction = 'G' // an attempt is recorded: make the call
	BeginDone      BeginAction = 'D' // the recipient has an outcome
	BeginPaused    BeginAction = 'P' // the run is paused: come back later
	BeginInFlight  BeginAction = 'W' // the run stopped while an attempt may be in flight
	BeginSettled   BeginAction = 'S' // the recipient got its outcome now (Status)
	BeginNoSuchRun BeginAction = 'X' // the run does not exist
	BeginNoToken   BeginAction = 'R' // the run is running: take a rate token first (Untokened)
	BeginAccepted  BeginAction = 'A' // WeChat accepted the recipient's job (a mass batch): await its result
)

// BeginOptions are the parameters of BeginAttempt.
type BeginOptions struct {
	// DoneState is the campaign's state once its run completes.
	DoneState string
	// Dedupe is set when the sends carry WeChat's dedupe key (template
	// client_msg_id): a lost answer is then resolved by sending again
	// with the same key within Window.
	Dedupe bool
	// Window is how long after a recipient's first attempt a send with
	// the same dedupe key is still deduplicated by WeChat.
	Window time.Duration
	// Grace is how long after it began an attempt of a stopped run may
	// still be answered.
	Grace time.Duration
	// Proc names the calling process in the attempt record.
	Proc string
	// Vars asks for the recipient's variables.
	Vars bool
	// Untokened says the caller took no rate token, believing the run
	// stopped: a running run's recipient then gets BeginNoToken.
	Untokened bool
	// Admit, when set, is the account's admission of the send
	// (protect.go), run in the same round trip just before the attempt
	// begins; its verdict is Begin.Admit.
	Admit *Admission
}

// attemptArgs are the ARGV of beginAttempts before the openids.
func (o BeginOptions) args(run int) []any {
	return []any{o.DoneState, run, boolArg(o.Dedupe), o.Window.Milliseconds(), o.Proc, boolArg(o.Vars), o.Grace.Milliseconds(), boolArg(o.Untokened)}
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// parseBegin decodes one answer of beginAttempts.
func parseBegin(s string, run int) (Begin, error) {
	if s == "" {
		return Begin{}, errors.New("empty begin answer")
	}
	b := Begin{Action: BeginAction(s[0])}
	switch b.Action {
	case BeginSend:
		p := strings.SplitN(s[1:], "|", 3)
		if len(p) != 3 {
			return Begin{}, fmt.Errorf("begin answer %q", s)
		}
		var err error
		if b.Attempt, err = strconv.Atoi(p[0]); err != nil {
			return Begin{}, fmt.Errorf("begin answer %q: %w", s, err)
		}
		b.ClientMsgRun = run
		if p[1] != "" {
			if b.ClientMsgRun, err = strconv.Atoi(p[1]); err != nil {
				return Begin{}, fmt.Errorf("begin answer %q: %w", s, err)
			}
		}
		b.Vars = p[2]
	case BeginSettled:
		b.Status = s[1:]
	case BeginDone, BeginPaused, BeginInFlight, BeginNoSuchRun, BeginNoToken, BeginAccepted:
	default:
		return Begin{}, fmt.Errorf("begin answer %q", s)
	}
	return b, nil
}

// BeginAttempts is BeginAttempt of several recipients of one run in one
// round trip.
func (r *RDB) BeginAttempts(ctx context.Context, id string, run int, opt BeginOptions, openids ...string) ([]Begin, error) {
	args := append(opt.args(run), strings2any(openids)...)
	var res *redis.Cmd
	err := r.withScripts(ctx, func(pipe redis.Pipeliner) {
		res = beginAttempts.EvalSha(ctx, pipe, r.ledgerKeys(id, run, r.keys.AudienceVars(id)), args...)
	}, beginAttempts)
	if err != nil {
		return nil, fmt.Errorf("begin attempts: %w", err)
	}
	return beginReply(res, run, len(openids))
}

func beginReply(res *redis.Cmd, run, n int) ([]Begin, error) {
	v, err := res.Slice()
	if err != nil {
		return nil, err
	}
	if len(v) != 2 {
		return nil, fmt.Errorf("begin script answered %d values", len(v))
	}
	fin, _ := v[0].(string)
	list, _ := v[1].([]any)
	if len(list) != n {
		return nil, fmt.Errorf("begin script answered %d of %d recipients", len(list), n)
	}
	out := make([]Begin, n)
	for i, x := range list {
		s, _ := x.(string)
		b, err := parseBegin(s, run)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	// The run finished by the outcomes this call recorded: one caller
	// reports it.
	for i := range out {
		if out[i].Action == BeginSettled {
			out[i].Finished = fin
			break
		}
	}
	return out, nil
}

func strings2any(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// endAttempts closes attempts that got an answer which is not their
// recipient's outcome (a retry will follow), or whose answer was lost.
//
// KEYS[1] attempts. ARGV: pairs of openid, lost ("1" or "0").
var endAttempts = redis.NewScript(`
for i = 1, #ARGV, 2 do
  local a = redis.call('HGET', KEYS[1], ARGV[i])
  if a then
    local n, first, last, open, lost, proc, cmr = string.match(a, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
    if n then
      if ARGV[i + 1] == '1' then lost = '1' end
      redis.call('HSET', KEYS[1], ARGV[i], n .. '|' .. first .. '|' .. last .. '|0|' .. lost .. '|' .. proc .. '|' .. cmr)
    end
  end
end
return 1
`)

// EndAttempt is an attempt that ended without its recipient's outcome.
type EndAttempt struct {
	OpenID string
	// Lost is set when the call may have reached WeChat but its answer
	// was not read.
	Lost bool
	// Account, when set with Lost (template sends, which get delivery
	// receipts), notes the lost answer under the account and openid for
	// LostTTL, so that a receipt whose msgid wxmass never saw can settle the
	// recipient (ResolveByReceipt).
	Account string
}

// LostTTL is how long a lost answer's note (Keys.Lost) is kept: WeChat
// pushes a receipt within seconds of the delivery, and retries it for a few
// minutes.
const LostTTL = time.Hour

// EndAttempts closes the open attempts of recipients of a run in one round
// trip.
func (r *RDB) EndAttempts(ctx context.Context, id string, run int, ends ...EndAttempt) error {
	if len(ends) == 0 {
		return nil
	}
	var res *redis.Cmd
	err := r.withScripts(ctx, func(pipe redis.Pipeliner) {
		res = r.queueEnd(ctx, pipe, id, run, ends)
	}, endAttempts)
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		return fmt.Errorf("end attempts: %w", err)
	}
	return nil
}

func (r *RDB) queueEnd(ctx context.Context, pipe redis.Pipeliner, id string, run int, ends []EndAttempt) *redis.Cmd {
	args := make([]any, 0, 2*len(ends))
	for _, e := range ends {
		args = append(args, e.OpenID, boolArg(e.Lost))
	}
	res := endAttempts.EvalSha(ctx, pipe, []string{r.keys.Attempts(id, run)}, args...)
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	for _, e := range ends {
		if e.Lost && e.Account != "" {
			pipe.Set(ctx, r.keys.Lost(e.Account, e.OpenID), id+"|"+strconv.Itoa(run)+"|"+now, LostTTL)
		}
	}
	return res
}

// GetAttempts returns the attempt records of openids in a run (ok false
// for those without one).
func (r *RDB) GetAttempts(ctx context.Context, id string, run int, openids []string) ([]Attempt, []bool, error) {
	if len(openids) == 0 {
		return nil, nil, nil
	}
	v, err := r.c.HMGet(ctx, r.keys.Attempts(id, run), openids...).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("get attempts: %w", err)
	}
	out, ok := make([]Attempt, len(v)), make([]bool, len(v))
	for i, x := range v {
		s, isStr := x.(string)
		if !isStr {
			continue
		}
		if out[i], err = parseAttempt(s, run); err != nil {
			return nil, nil, err
		}
		ok[i] = true
	}
	return out, ok, nil
}

// CarryAttempts writes attempt records into a run that has not begun
// them: a retry run's recipients whose template sends in an earlier run
// lost their answers keep that run's client_msg_id (and its first
// attempt's time, which bounds WeChat's dedupe window).
func (r *RDB) CarryAttempts(ctx context.Context, id string, run int, carried map[string]Attempt) error {
	if len(carried) == 0 {
		return nil
	}
	vals := make([]any, 0, 2*len(carried))
	for openid, a := range carried {
		ms := a.First.UnixMilli()
		vals = append(vals, openid, fmt.Sprintf("0|%d|%d|0|%s|carried|%d", ms, ms, boolArg(a.Lost), a.ClientMsgRun))
	}
	if err := r.c.HSet(ctx, r.keys.Attempts(id, run), vals...).Err(); err != nil {
		return fmt.Errorf("carry attempts: %w", err)
	}
	return nil
}

// stopRun stops a live run: the campaign and the run go to stopping, and
// the run records the state it ends in once its recipients have their
// outcomes.
//
// KEYS[1] campaign hash, KEYS[2] run hash. ARGV[1] final state (failed or
// cancelled), ARGV[2] reason. Returns {1, ""} when stopped, {0, run
// state} when the run was not live (it is stopping, or finished),
// {-1, ""} when the run does not exist.
var stopRun = redis.NewScript(campaignLua + `
local rst = redis.call('HGET', KEYS[2], 'state')
if not rst then
  return {-1, ''}
end
if rst ~= 'running' and rst ~= 'paused' then
  return {0, rst}
end
local now = now()
redis.call('HSET', KEYS[2], 'state', 'stopping', 'final', ARGV[1], 'reason', ARGV[2], 'stopped', now)
local cst = redis.call('HGET', KEYS[1], 'state')
if cst == 'running' or cst == 'paused' then
  redis.call('HSET', KEYS[1], 'state', 'stopping', 'updated', now)
end
return {1, ''}
`)

// StopRun stops a live run of campaign id, bound for final (RunFailed or
// RunCancelled) with reason ('|' becomes '/'), and announces it. It reports whether this
// call stopped it: false when the run had stopped or finished already
// (state says how it is). ErrRunNotFound when there is no such run.
func (r *RDB) StopRun(ctx context.Context, id string, run int, final, reason string) (stopped bool, state string, err error) {
	// The reason goes into outcomes, whose fields '|' separates.
	reason = strings.ReplaceAll(reason, "|", "/")
	res, err := stopRun.Run(ctx, r.c, []string{r.keys.Campaign(id), r.keys.Run(id, run)}, final, reason).Slice()
	if err != nil {
		return false, "", fmt.Errorf("stop run: %w", err)
	}
	n, _ := res[0].(int64)
	state, _ = res[1].(string)
	switch n {
	case -1:
		return false, "", ErrRunNotFound
	case 0:
		return false, state, nil
	}
	r.Announce(ctx, id)
	return true, RunStopping, nil
}

// settleStopped gives the recipients of a stopping run in a range of its
// audience their outcomes by the stop rule (see ledgerLua).
//
// KEYS: the ledger's, KEYS[7] the run's audience list. ARGV[1] doneState,
// ARGV[2] run, ARGV[3] first index, ARGV[4] last index, ARGV[5] grace in
// ms. Returns {new, pending, oldest pending attempt's start (ms, 0 if
// none), finished state or "", the run's state}.
var settleStopped = redis.NewScript(campaignLua + ledgerLua + `
L.open(ARGV[1], ARGV[2])
local st = redis.call('HGET', KEYS[4], 'state')
if st ~= 'stopping' then
  return {0, 0, 0, '', st or ''}
end
local final = redis.call('HGET', KEYS[4], 'final') or 'failed'
local reason = redis.call('HGET', KEYS[4], 'reason') or ''
local grace = tonumber(ARGV[5])
local pending, oldest = 0, 0
for _, openid in ipairs(redis.call('LRANGE', KEYS[7], ARGV[3], ARGV[4])) do
  if redis.call('HEXISTS', KEYS[1], openid) == 0 then
    local r, last = stoprule(openid, final, reason, grace)
    if r == 'W' then
      pending = pending + 1
      if oldest == 0 or last < oldest then oldest = last end
    end
  end
end
local fin = L.close()
return {L.new, pending, oldest, fin, st}
`)

// SettleResult is what SettleStopped did.
type SettleResult struct {
	// New is the number of recipients that got an outcome.
	New int
	// Pending is the number left without one because an attempt of
	// theirs began less than the grace ago; Oldest is the earliest such
	// start.
	Pending int
	Oldest  time.Time
	// Finished is the state the run finished in by this call, or "".
	Finished string
	// State is the run's state when the call began; nothing is settled
	// unless it is stopping.
	State string
}

// SettleStopped gives recipients [start, stop] of the audience list of a
// stopping run their outcomes by the stop rule, in one round trip.
func (r *RDB) SettleStopped(ctx context.Context, id string, run int, list string, start, stop int64, doneState string, grace time.Duration) (SettleResult, error) {
	var res *redis.Cmd
	err := r.withScripts(ctx, func(pipe redis.Pipeliner) {
		res = settleStopped.EvalSha(ctx, pipe, r.ledgerKeys(id, run, list), doneState, run, start, stop, grace.Milliseconds())
	}, settleStopped)
	if err != nil {
		return SettleResult{}, fmt.Errorf("settle stopped run: %w", err)
	}
	v, err := res.Slice()
	if err != nil {
		return SettleResult{}, fmt.Errorf("settle stopped run: %w", err)
	}
	if len(v) != 5 {
		return SettleResult{}, fmt.Errorf("settle stopped run: %d values", len(v))
	}
	n, _ := v[0].(int64)
	pending, _ := v[1].(int64)
	oldest, _ := v[2].(int64)
	out := SettleResult{New: int(n), Pending: int(pending)}
	if oldest > 0 {
		out.Oldest = time.UnixMilli(oldest)
	}
	out.Finished, _ = v[3].(string)
	out.State, _ = v[4].(string)
	return out, nil
}

// setRunSize sets the size and audience list of a run once the launch
// knows them, if the run has none yet; an empty audience finishes the run
// at once (completed, or the state a stopped run is bound for).
//
// KEYS: the ledger's (KEYS[7] unused). ARGV[1] doneState, ARGV[2] run,
// ARGV[3] size, ARGV[4] list key. Returns {1 if set, finished state or ""}.
var setRunSize = redis.NewScript(campaignLua + ledgerLua + `
L.open(ARGV[1], ARGV[2])
local cur = tonumber(redis.call('HGET', KEYS[4], 'size') or '-1')
if cur >= 0 then
  return {0, ''}
end
redis.call('HSET', KEYS[4], 'size', ARGV[3], 'audience', ARGV[4])
if tonumber(ARGV[3]) ~= 0 then
  return {1, ''}
end
return {1, L.finish(0)}
`)

// SetRunSize records the size and audience list of a run once its launch
// knows them (a run whose size is set already keeps it). An empty audience
// finishes the run at once, and the campaign moves to doneState. It
// returns the state the run finished in, or "".
func (r *RDB) SetRunSize(ctx context.Context, id string, run int, size int64, list, doneState string) (string, error) {
	res, err := setRunSize.Run(ctx, r.c, r.ledgerKeys(id, run, list), doneState, run, size, list).Slice()
	if err != nil {
		return "", fmt.Errorf("set run size: %w", err)
	}
	fin, _ := res[1].(string)
	return fin, nil
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
		if !ok || err1 != nil || err2 != nil || n == 0 {
			continue // not written by the record script, or moved away
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
