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

// ApplyReceipt records a TEMPLATESENDJOBFINISH receipt: it finds the
// recipient of msgid and, if the recipient's outcome is still sent, moves
// it to delivered (reason is ignored) or to failed with class
// ClassReceipt and detail reason, updating the run's counters in the same
// script. Applying a receipt again, or after another, changes nothing and
// reports Changed false; an unknown msgid is Found false, not an error. An
// empty reason of a failure is stored as "unknown"; '|' becomes '/' and
// reasons are cut to ReceiptReasonMax bytes. It costs two round trips (the
// msgid index lives in another Cluster slot than the campaign).
func (r *RDB) ApplyReceipt(ctx context.Context, msgid int64, delivered bool, reason string) (ReceiptResult, error) {
	id, run, openid, ok, err := r.LookupMsgID(ctx, msgid)
	if err != nil {
		return ReceiptResult{}, fmt.Errorf("apply receipt: %w", err)
	}
	if !ok {
		return ReceiptResult{}, nil
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
