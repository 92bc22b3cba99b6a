package rdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// Receipt failures: the class an outcome failed by a receipt gets, and the
// prefix of the counters of their reasons.
const (
	// ClassReceipt is the class of outcomes failed by a delivery receipt.
	ClassReceipt = "receipt"
	// ReceiptReasonMax is the longest reason stored, in bytes.
	ReceiptReasonMax = 64
)

// ReceiptResult says what ApplyReceipt did.
type ReceiptResult struct {
	// Found is whether the msgid belongs to a recorded template send.
	Found bool
	// Mismatch is whether the receipt names another user than the
	// recipient of its msgid (Found is true, Campaign, Run and OpenID name
	// that recipient): nothing changed.
	Mismatch bool
	// Changed is whether the outcome moved from sent to delivered or
	// failed. It is false for a replayed or late receipt, whose recipient
	// already has another status.
	Changed bool
	// Campaign, Run and OpenID locate the recipient, when Found.
	Campaign string
	Run      int
	OpenID   string
	// Status is the recipient's status after the call ("" when the msgid is
	// indexed but the recipient has no outcome).
	Status string
	// Finished is the state the run finished in because of the receipt
	// (ResolveByReceipt may give a stopped run's last recipient its
	// outcome), or "".
	Finished string
}

// applyReceipt moves a recipient's outcome from sent to delivered or to
// failed (class "receipt", detail = reason), keeping code, msgid and the
// time, and moves the run's counters with it: sent -1, then delivered +1,
// or failed +1, class:receipt +1 and receipt:<reason> +1. total does not
// change, so the counters still add up. An outcome that is not sent, or
// whose msgid is another, is left alone: the state itself makes replayed
// receipts harmless.
//
// KEYS[1] outcomes, KEYS[2] counters. ARGV[1] openid, ARGV[2] msgid,
// ARGV[3] "1" for delivered, "0" for failed, ARGV[4] reason.
// Returns {1, new status} when changed, {0, current status} otherwise
// ("" when the recipient has no outcome).
var applyReceipt = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then
  return {0, ''}
end
local status, code, class, msgid, detail, at = string.match(cur, '^([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$')
if status ~= 'sent' or msgid ~= ARGV[2] then
  return {0, status or ''}
end
local new
if ARGV[3] == '1' then
  new = 'delivered'
  redis.call('HSET', KEYS[1], ARGV[1], table.concat({new, code, class, msgid, detail, at}, '|'))
else
  new = 'failed'
  redis.call('HSET', KEYS[1], ARGV[1], table.concat({new, code, 'receipt', msgid, ARGV[4], at}, '|'))
  redis.call('HINCRBY', KEYS[2], 'class:receipt', 1)
  redis.call('HINCRBY', KEYS[2], 'receipt:' .. ARGV[4], 1)
end
redis.call('HINCRBY', KEYS[2], 'sent', -1)
redis.call('HINCRBY', KEYS[2], new, 1)
return {1, new}
`)

// ApplyReceipt records a TEMPLATESENDJOBFINISH receipt about the user from
// (the push's FromUserName): it finds the recipient of msgid and, if that
// recipient is from and its outcome is still sent, moves it to
// delivered (reason is ignored) or to failed with class ClassReceipt and
// detail reason, updating the run's counters in the same script. A receipt
// from another user than the msgid's recipient changes nothing and reports
// Mismatch (a forged or misrouted push must not settle someone else).
// Applying a receipt again, or after another, changes nothing and reports
// Changed false; an unknown msgid is Found false, not an error. An empty
// from is an error. An empty reason of a failure is stored as "unknown";
// '|' becomes '/' and reasons are cut to ReceiptReasonMax bytes. It costs
// two round trips (the msgid index lives in another Cluster slot than the
// campaign).
func (r *RDB) ApplyReceipt(ctx context.Context, msgid int64, from string, delivered bool, reason string) (ReceiptResult, error) {
	if from == "" {
		return ReceiptResult{}, errors.New("apply receipt: empty openid")
	}
	id, run, openid, ok, err := r.LookupMsgID(ctx, msgid)
	if err != nil {
		return ReceiptResult{}, fmt.Errorf("apply receipt: %w", err)
	}
	if !ok {
		return ReceiptResult{}, nil
	}
	if openid != from {
		return ReceiptResult{Found: true, Mismatch: true, Campaign: id, Run: run, OpenID: openid}, nil
	}
	res := ReceiptResult{Found: true, Campaign: id, Run: run, OpenID: openid}
	deliveredArg := "0"
	if delivered {
		deliveredArg, reason = "1", ""
	} else {
		reason = receiptReason(reason)
	}
	keys := []string{r.keys.Outcomes(id, run), r.keys.Counters(id, run)}
	v, err := applyReceipt.Run(ctx, r.c, keys, openid, strconv.FormatInt(msgid, 10), deliveredArg, reason).Slice()
	if err != nil {
		return ReceiptResult{}, fmt.Errorf("apply receipt: %w", err)
	}
	if len(v) != 2 {
		return ReceiptResult{}, fmt.Errorf("apply receipt: reply of %d values, want 2", len(v))
	}
	n, _ := v[0].(int64)
	res.Changed = n == 1
	res.Status, _ = v[1].(string)
	return res, nil
}

// receiptReason cleans a failure reason for storage in an outcome and a
// counter name.
func receiptReason(reason string) string {
	reason = strings.TrimSpace(strings.ReplaceAll(strings.ToValidUTF8(reason, ""), "|", "/"))
	if reason == "" {
		return "unknown"
	}
	if len(reason) > ReceiptReasonMax {
		n := ReceiptReasonMax
		for n > 0 && !utf8.RuneStart(reason[n]) {
			n--
		}
		reason = reason[:n]
	}
	return reason
}

// FirstDelivery claims key for ttl (which must be positive): it reports
// true for the first call with key, and false while the claim lasts. The callback handler uses it
// as its Dedupe, so that WeChat's retries of a push are handled once.
func (r *RDB) FirstDelivery(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		return false, fmt.Errorf("first delivery: ttl %v is not positive", ttl)
	}
	err := r.c.SetArgs(ctx, r.keys.ReceiptDedupe(key), "1", redis.SetArgs{Mode: "NX", TTL: ttl}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("first delivery: %w", err)
	}
	return true, nil
}

// ForgetDelivery drops the claim on key, so that the next FirstDelivery
// with it is first again (the callback handler's Release, after its event
// failed).
func (r *RDB) ForgetDelivery(ctx context.Context, key string) error {
	if err := r.c.Del(ctx, r.keys.ReceiptDedupe(key)).Err(); err != nil {
		return fmt.Errorf("forget delivery: %w", err)
	}
	return nil
}

// resolveReceipt settles, by a delivery receipt whose msgid wxmass never
// saw, a recipient whose template send lost its answer: one with no
// outcome yet whose attempt is open or lost, or one recorded unknown,
// becomes delivered with the receipt's msgid (see ledgerLua). Any other
// recipient is left as it is.
//
// KEYS: the ledger's (KEYS[7] unused). ARGV[1] doneState, ARGV[2] run,
// ARGV[3] openid, ARGV[4] msgid. Returns {"n" (recorded) | "r" (replaced
// unknown) | "" (left), finished state or "", the recipient's status}.
var resolveReceipt = redis.NewScript(campaignLua + ledgerLua + `
L.open(ARGV[1], ARGV[2])
local openid, msgid = ARGV[3], ARGV[4]
local detail = 'a delivery receipt for a send whose answer was lost'
local res, status = '', ''
local cur = redis.call('HGET', KEYS[1], openid)
if cur then
  status = split(cur)
  if status == 'unknown' and resolve(openid, 'delivered', '', '', msgid, detail) then
    res, status = 'r', 'delivered'
  end
else
  local a = attempt(openid)
  if a and (a.lost == '1' or a.open == '1') and put(openid, 'delivered', '', '', msgid, detail) then
    res, status = 'n', 'delivered'
  end
end
return {res, L.close(), status}
`)

// ResolveByReceipt settles the recipient openid of account by a success
// receipt (TEMPLATESENDJOBFINISH) for msgid, which no recorded send has,
// when wxmass noted that a template send to openid lost its answer (an
// EndAttempt with Account; Keys.Lost): if the receipt was created between
// a minute before the note and window after it, and the recipient has no
// outcome yet (a retry of the send is pending) or is unknown, it becomes
// delivered with the receipt's msgid, which the msgid index then holds.
// ReceiptResult.Found is false when no note matches; doneState is the
// campaign's state once its run completes.
//
// Only openid's own note is read and only openid is settled, so a receipt
// never settles another user; and a msgid the index holds for another
// recipient (a recorded send: ApplyReceipt's) is Found false here, never
// moved to openid.
//
// WeChat's receipt names the user, not the message: another system sending
// to the same user through the same account within window would be taken
// for the lost send. Failure receipts are never matched this way, so a
// wrong match can only keep a user from a second message.
func (r *RDB) ResolveByReceipt(ctx context.Context, account, openid string, msgid int64, created time.Time, window time.Duration, doneState string) (ReceiptResult, error) {
	if openid == "" {
		return ReceiptResult{}, errors.New("resolve by receipt: empty openid")
	}
	note, err := r.c.Get(ctx, r.keys.Lost(account, openid)).Result()
	if errors.Is(err, redis.Nil) {
		return ReceiptResult{}, nil
	}
	if err != nil {
		return ReceiptResult{}, fmt.Errorf("resolve by receipt: %w", err)
	}
	parts := strings.SplitN(note, "|", 3)
	if len(parts) != 3 {
		return ReceiptResult{}, fmt.Errorf("resolve by receipt: bad note %q", note)
	}
	run, err1 := strconv.Atoi(parts[1])
	ms, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return ReceiptResult{}, fmt.Errorf("resolve by receipt: bad note %q: %w", note, err)
	}
	lost := time.UnixMilli(ms)
	if created.Before(lost.Add(-time.Minute)) || created.After(lost.Add(window)) {
		return ReceiptResult{}, nil
	}
	id := parts[0]
	xid, xrun, xopenid, indexed, err := r.LookupMsgID(ctx, msgid)
	if err != nil {
		return ReceiptResult{}, fmt.Errorf("resolve by receipt: %w", err)
	}
	if indexed && (xid != id || xrun != run || xopenid != openid) {
		return ReceiptResult{}, nil
	}
	var res *redis.Cmd
	err = r.withScripts(ctx, func(pipe redis.Pipeliner) {
		res = resolveReceipt.EvalSha(ctx, pipe, r.ledgerKeys(id, run, r.keys.Attempts(id, run)), doneState, run, openid, strconv.FormatInt(msgid, 10))
	}, resolveReceipt)
	if err != nil {
		return ReceiptResult{}, fmt.Errorf("resolve by receipt: %w", err)
	}
	v, err := res.Slice()
	if err != nil || len(v) != 3 {
		return ReceiptResult{}, fmt.Errorf("resolve by receipt: %v answered %d values", err, len(v))
	}
	did, _ := v[0].(string)
	fin, _ := v[1].(string)
	out := ReceiptResult{Found: true, Changed: did != "", Campaign: id, Run: run, OpenID: openid, Finished: fin}
	out.Status, _ = v[2].(string)
	if out.Changed {
		pipe := r.c.Pipeline()
		pipe.HSet(ctx, r.keys.MsgIDIndex(msgid), strconv.FormatInt(msgid, 10), id+"|"+strconv.Itoa(run)+"|"+openid)
		pipe.Del(ctx, r.keys.Lost(account, openid))
		if _, err := pipe.Exec(ctx); err != nil {
			return out, fmt.Errorf("resolve by receipt: %w", err)
		}
	}
	return out, nil
}
