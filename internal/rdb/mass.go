package rdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Mass sends (群发). A mass run's "recipients" in the ledger are its
// batches; what WeChat says of each batch is kept beside the ledger:
//
//   - MassBatches(id, run): batch -> its submission (JSON MassSubmission),
//     batch + ":result" -> its result (JSON MassResult), written once, and
//     batch + ":deleted" -> its deletion by mass/delete (JSON
//     MassDeletion), once an operator deleted the sent message.
//   - MassMsgID(appid, msgid): "campaign|run|batch", so that a
//     MASSSENDJOBFINISH push finds its batch.
//   - MassReceived(appid, period): openid -> mass messages sent to the user
//     in the period (a month, or a day on a subscription account), and
//     "*" -> sends to all followers, which count for everyone.

// MassBatches is the hash of a mass run's batches.
func (k Keys) MassBatches(id string, run int) string { return k.Run(id, run) + ":mass" }

// MassMsgID maps a mass job's msg_id to its batch.
func (k Keys) MassMsgID(appID string, msgID int64) string {
	return k.prefix() + ":massmsg:" + appID + ":" + strconv.FormatInt(msgID, 10)
}

// MassReceived counts the mass messages each user of an account got in a
// period ("2026-12", or "2026-12-07" on a subscription account).
func (k Keys) MassReceived(appID, period string) string {
	return k.prefix() + ":{massrcv:" + appID + "}:" + period
}

// MassEarly keeps a MASSSENDJOBFINISH result that came before wxmass
// recorded its job (the send's answer was lost, and the retry that learns
// the msg_id from 45065 comes later).
func (k Keys) MassEarly(appID string, msgID int64) string {
	return k.prefix() + ":massearly:" + appID + ":" + strconv.FormatInt(msgID, 10)
}

// MassEveryone is the field of MassReceived counting sends to all.
const MassEveryone = "*"

// massMsgIDTTL is how long a mass job's msg_id finds its batch: its push
// comes within hours, and a run's deadline is 72 hours by default.
const massMsgIDTTL = 8 * 24 * time.Hour

// MassSubmission is what wxmass knows of a batch once WeChat accepted its
// job.
type MassSubmission struct {
	ClientMsgID string    `json:"clientmsgid"`
	MsgID       int64     `json:"msg_id"`
	MsgDataID   int64     `json:"msg_data_id,omitempty"`
	Recipients  int64     `json:"recipients,omitempty"` // openids in the batch (0 for all or a tag)
	Submitted   time.Time `json:"submitted"`
	// Duplicate is set when WeChat answered 45065: a try before had been
	// accepted, and this is its job.
	Duplicate bool `json:"duplicate,omitempty"`
	// ConfirmBy is set for a send to all on an account with API mass-send
	// protection: the admin must confirm it in the WeChat app by then.
	ConfirmBy time.Time `json:"confirm_by,omitzero"`
}

// MassResult is a batch's result: a MASSSENDJOBFINISH push, or mass/get.
type MassResult struct {
	// Status is sent, failed, review_failed, deleted (mass/get says DELETE)
	// or unknown (a status WeChat does not document).
	Status string `json:"status"`
	// WeChatStatus is WeChat's own words: the push's Status ("send
	// success", "err(20001)") or mass/get's msg_status.
	WeChatStatus string `json:"wechat_status"`
	ReviewCode   int    `json:"review_code,omitempty"`
	Meaning      string `json:"meaning,omitempty"`
	// Counts are the push's TotalCount, FilterCount, SentCount and
	// ErrorCount; HasCounts is false when the result came from mass/get,
	// which gives none.
	HasCounts   bool      `json:"has_counts"`
	TotalCount  int64     `json:"total_count"`
	FilterCount int64     `json:"filter_count"`
	SentCount   int64     `json:"sent_count"`
	ErrorCount  int64     `json:"error_count"`
	Via         string    `json:"via"` // push or poll
	At          time.Time `json:"at"`
}

// MassDeletion records that an operator deleted a batch's sent message
// with mass/delete. It changes nothing in the ledger: the batch was sent.
type MassDeletion struct {
	// At is when WeChat accepted the deletion.
	At time.Time `json:"at"`
	// ArticleIdx is the article deleted (1-based, of an mpnews), or 0 for
	// the whole message.
	ArticleIdx int `json:"article_idx,omitempty"`
}

// MassBatchRecord is one batch of a mass run as stored.
type MassBatchRecord struct {
	Key        string
	Submission *MassSubmission // nil until WeChat accepted the job
	Result     *MassResult     // nil until the job's result came
	Deleted    *MassDeletion   // nil unless its message was deleted
}

// Suffixes of the MassBatches fields beside a batch's submission.
const (
	massResultSuffix  = ":result"
	massDeletedSuffix = ":deleted"
)

// ErrMassBatchNotAccepted is returned by RecordMassDeletion for a batch
// that has no accepted job.
var ErrMassBatchNotAccepted = errors.New("rdb: mass batch not accepted")

// recordMassDeletion records a batch's deletion. A deletion of the whole
// message is final: a later deletion of one article does not replace it
// (a stored deletion without "article_idx" is of the whole message:
// MassDeletion omits a zero ArticleIdx).
//
// KEYS[1] batches. ARGV[1] batch, ARGV[2] deletion (JSON), ARGV[3] "1"
// when it deletes one article. Returns 1 when stored, 0 when a whole
// deletion was kept, -1 when the batch has no submission.
var recordMassDeletion = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
local f = ARGV[1] .. ':deleted'
if ARGV[3] == '1' then
  local cur = redis.call('HGET', KEYS[1], f)
  if cur and not string.find(cur, '"article_idx"', 1, true) then return 0 end
end
redis.call('HSET', KEYS[1], f, ARGV[2])
return 1
`)

// RecordMassDeletion records that the message of an accepted batch (or one
// of its articles) was deleted; the ledger is left as it is. It reports
// whether d was stored (false: the whole message's deletion, recorded
// before, stays), and returns ErrMassBatchNotAccepted for a batch without
// an accepted job.
func (r *RDB) RecordMassDeletion(ctx context.Context, id string, run int, batch string, d MassDeletion) (bool, error) {
	raw, err := json.Marshal(d)
	if err != nil {
		return false, err
	}
	article := "0"
	if d.ArticleIdx != 0 {
		article = "1"
	}
	n, err := recordMassDeletion.Run(ctx, r.c, []string{r.keys.MassBatches(id, run)}, batch, raw, article).Int()
	if err != nil {
		return false, fmt.Errorf("record mass deletion: %w", err)
	}
	if n < 0 {
		return false, fmt.Errorf("%w: %s of run %d of %s", ErrMassBatchNotAccepted, batch, run, id)
	}
	return n == 1, nil
}

// acceptMass records that WeChat accepted a batch's job: the submission
// (kept if one is there) and the batch's attempt marked accepted (open A,
// no answer lost: the job stands, whatever happened to earlier tries).
//
// KEYS[1] attempts, KEYS[2] batches. ARGV[1] batch, ARGV[2] submission,
// ARGV[3] process. Returns {1 if this call recorded it, the submission
// stored}.
var acceptMass = redis.NewScript(`
local cur = redis.call('HGET', KEYS[2], ARGV[1])
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local a = redis.call('HGET', KEYS[1], ARGV[1])
local n, first, cmr = '1', tostring(ms), ''
if a then
  local an, af, _, _, _, _, ac = string.match(a, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
  if an then n, first, cmr = an, af, ac end
end
redis.call('HSET', KEYS[1], ARGV[1], n .. '|' .. first .. '|' .. ms .. '|A|0|' .. ARGV[3] .. '|' .. cmr)
if cur then return {0, cur} end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return {1, ARGV[2]}
`)

// AcceptMass records a batch's accepted job and indexes its msg_id, in one
// round trip. It reports whether this call recorded it (false: it was, and
// sub is what was stored then).
func (r *RDB) AcceptMass(ctx context.Context, id string, run int, batch, appID, proc string, sub MassSubmission) (bool, MassSubmission, error) {
	raw, err := json.Marshal(sub)
	if err != nil {
		return false, sub, err
	}
	var res *redis.Cmd
	err = r.withScripts(ctx, func(pipe redis.Pipeliner) {
		res = acceptMass.EvalSha(ctx, pipe, []string{r.keys.Attempts(id, run), r.keys.MassBatches(id, run)}, batch, raw, proc)
		pipe.Set(ctx, r.keys.MassMsgID(appID, sub.MsgID), id+"|"+strconv.Itoa(run)+"|"+batch, massMsgIDTTL)
	}, acceptMass)
	if err != nil {
		return false, sub, fmt.Errorf("accept mass batch: %w", err)
	}
	v, err := res.Slice()
	if err != nil || len(v) != 2 {
		return false, sub, fmt.Errorf("accept mass batch: %v", err)
	}
	n, _ := v[0].(int64)
	s, _ := v[1].(string)
	var stored MassSubmission
	if err := json.Unmarshal([]byte(s), &stored); err != nil {
		return false, sub, fmt.Errorf("accept mass batch: stored submission: %w", err)
	}
	return n == 1, stored, nil
}

// MassBatch reads one batch's submission and result.
func (r *RDB) MassBatch(ctx context.Context, id string, run int, batch string) (MassBatchRecord, error) {
	v, err := r.c.HMGet(ctx, r.keys.MassBatches(id, run), batch, batch+massResultSuffix, batch+massDeletedSuffix).Result()
	if err != nil {
		return MassBatchRecord{}, fmt.Errorf("mass batch: %w", err)
	}
	rec := MassBatchRecord{Key: batch}
	if s, ok := v[0].(string); ok {
		rec.Submission = new(MassSubmission)
		if err := json.Unmarshal([]byte(s), rec.Submission); err != nil {
			return rec, fmt.Errorf("mass batch %s: submission: %w", batch, err)
		}
	}
	if s, ok := v[1].(string); ok {
		rec.Result = new(MassResult)
		if err := json.Unmarshal([]byte(s), rec.Result); err != nil {
			return rec, fmt.Errorf("mass batch %s: result: %w", batch, err)
		}
	}
	if s, ok := v[2].(string); ok {
		rec.Deleted = new(MassDeletion)
		if err := json.Unmarshal([]byte(s), rec.Deleted); err != nil {
			return rec, fmt.Errorf("mass batch %s: deletion: %w", batch, err)
		}
	}
	return rec, nil
}

// MassBatchRecords reads every batch of a run that WeChat accepted, in no
// particular order.
func (r *RDB) MassBatchRecords(ctx context.Context, id string, run int) ([]MassBatchRecord, error) {
	m, err := r.c.HGetAll(ctx, r.keys.MassBatches(id, run)).Result()
	if err != nil {
		return nil, fmt.Errorf("mass batches: %w", err)
	}
	byKey := map[string]*MassBatchRecord{}
	var out []*MassBatchRecord
	get := func(k string) *MassBatchRecord {
		if b := byKey[k]; b != nil {
			return b
		}
		b := &MassBatchRecord{Key: k}
		byKey[k] = b
		out = append(out, b)
		return b
	}
	for f, s := range m {
		if k, ok := strings.CutSuffix(f, massResultSuffix); ok {
			res := new(MassResult)
			if err := json.Unmarshal([]byte(s), res); err != nil {
				return nil, fmt.Errorf("mass batch %s: result: %w", k, err)
			}
			get(k).Result = res
			continue
		}
		if k, ok := strings.CutSuffix(f, massDeletedSuffix); ok {
			d := new(MassDeletion)
			if err := json.Unmarshal([]byte(s), d); err != nil {
				return nil, fmt.Errorf("mass batch %s: deletion: %w", k, err)
			}
			get(k).Deleted = d
			continue
		}
		sub := new(MassSubmission)
		if err := json.Unmarshal([]byte(s), sub); err != nil {
			return nil, fmt.Errorf("mass batch %s: submission: %w", f, err)
		}
		get(f).Submission = sub
	}
	recs := make([]MassBatchRecord, len(out))
	for i, b := range out {
		recs[i] = *b
	}
	return recs, nil
}

// FinishMass stores a batch's result (the first one stays: a push and a
// poll may both come) and records the batch's outcome in the ledger, in one
// round trip. It reports whether the result was stored by this call.
func (r *RDB) FinishMass(ctx context.Context, id string, run int, batch, doneState string, res MassResult, o Outcome) (bool, Recorded, error) {
	raw, err := json.Marshal(res)
	if err != nil {
		return false, Recorded{}, err
	}
	var set *redis.BoolCmd
	var rec *redis.Cmd
	err = r.withScripts(ctx, func(pipe redis.Pipeliner) {
		set = pipe.HSetNX(ctx, r.keys.MassBatches(id, run), batch+massResultSuffix, raw)
		rec = r.queueRecord(ctx, pipe, id, run, doneState, []Settle{{OpenID: batch, Outcome: o, Mode: RecordPlain}})
	}, recordOutcomes)
	if err != nil {
		return false, Recorded{}, fmt.Errorf("finish mass batch: %w", err)
	}
	recorded, err := recordReply(rec)
	if err != nil {
		return false, Recorded{}, fmt.Errorf("finish mass batch: %w", err)
	}
	return set.Val(), recorded, nil
}

// LookupMassMsgID returns the campaign, run and batch of a mass job.
func (r *RDB) LookupMassMsgID(ctx context.Context, appID string, msgID int64) (id string, run int, batch string, ok bool, err error) {
	s, err := r.c.Get(ctx, r.keys.MassMsgID(appID, msgID)).Result()
	if errors.Is(err, redis.Nil) {
		return "", 0, "", false, nil
	}
	if err != nil {
		return "", 0, "", false, fmt.Errorf("lookup mass msg_id: %w", err)
	}
	p := strings.SplitN(s, "|", 3)
	if len(p) != 3 {
		return "", 0, "", false, fmt.Errorf("lookup mass msg_id: bad entry %q", s)
	}
	run, err = strconv.Atoi(p[1])
	if err != nil {
		return "", 0, "", false, fmt.Errorf("lookup mass msg_id: bad entry %q", s)
	}
	return p[0], run, p[2], true, nil
}

// CountMassReceived adds one mass message to each openid's count of the
// period (or, with no openids, one to everyone's: a send to all), kept for
// ttl. It is called once per accepted job.
func (r *RDB) CountMassReceived(ctx context.Context, appID, period string, openids []string, ttl time.Duration) error {
	key := r.keys.MassReceived(appID, period)
	pipe := r.c.Pipeline()
	if len(openids) == 0 {
		pipe.HIncrBy(ctx, key, MassEveryone, 1)
	}
	for _, o := range openids {
		pipe.HIncrBy(ctx, key, o, 1)
	}
	pipe.Expire(ctx, key, ttl)
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("count mass messages: %w", err)
	}
	return nil
}

// MassReceived returns how many mass messages of the period each openid
// got (its own count plus the sends to all), and the sends to all alone.
func (r *RDB) MassReceived(ctx context.Context, appID, period string, openids []string) ([]int64, int64, error) {
	key := r.keys.MassReceived(appID, period)
	v, err := r.c.HMGet(ctx, key, append([]string{MassEveryone}, openids...)...).Result()
	if err != nil {
		return nil, 0, fmt.Errorf("mass messages received: %w", err)
	}
	num := func(x any) int64 {
		s, _ := x.(string)
		n, _ := strconv.ParseInt(s, 10, 64)
		return n
	}
	all := num(v[0])
	out := make([]int64, len(openids))
	for i := range openids {
		out[i] = all + num(v[i+1])
	}
	return out, all, nil
}

// SetRunField sets one field of a run's hash (a run that exists).
func (r *RDB) SetRunField(ctx context.Context, id string, run int, field, value string) error {
	n, err := r.c.Exists(ctx, r.keys.Run(id, run)).Result()
	if err != nil {
		return fmt.Errorf("set run %s: %w", field, err)
	}
	if n == 0 {
		return ErrRunNotFound
	}
	if err := r.c.HSet(ctx, r.keys.Run(id, run), field, value).Err(); err != nil {
		return fmt.Errorf("set run %s: %w", field, err)
	}
	return nil
}

// KeepEarlyMassResult keeps the result of a mass job wxmass has not
// recorded yet, for ttl.
func (r *RDB) KeepEarlyMassResult(ctx context.Context, appID string, msgID int64, res MassResult, ttl time.Duration) error {
	raw, err := json.Marshal(res)
	if err != nil {
		return err
	}
	if err := r.c.Set(ctx, r.keys.MassEarly(appID, msgID), raw, ttl).Err(); err != nil {
		return fmt.Errorf("keep early mass result: %w", err)
	}
	return nil
}

// EarlyMassResult returns a result kept by KeepEarlyMassResult, if any.
func (r *RDB) EarlyMassResult(ctx context.Context, appID string, msgID int64) (MassResult, bool, error) {
	s, err := r.c.Get(ctx, r.keys.MassEarly(appID, msgID)).Result()
	if errors.Is(err, redis.Nil) {
		return MassResult{}, false, nil
	}
	if err != nil {
		return MassResult{}, false, fmt.Errorf("early mass result: %w", err)
	}
	var res MassResult
	if err := json.Unmarshal([]byte(s), &res); err != nil {
		return MassResult{}, false, fmt.Errorf("early mass result: %w", err)
	}
	return res, true, nil
}
