package campaigns

import (
	"context"
	"errors"
	"time"
)

// ReceiptWaitDefault is how long Reconcile waits for the record of the
// send a receipt is about.
const ReceiptWaitDefault = 2 * time.Second

// receiptLostWindow is how long after a template send lost its answer a
// success receipt for an unrecorded msgid is taken for it.
const receiptLostWindow = 10 * time.Minute

// ErrUnknownMsgID is returned by Reconcile for a receipt whose msgid no
// recorded send has (yet): the callback answers it with an error, so that
// WeChat pushes it again.
var ErrUnknownMsgID = errors.New("campaigns: receipt of a msgid with no outcome yet")

// ErrReceiptMismatch is returned by Reconcile for a receipt whose user (the
// push's FromUserName) is not the recipient of its msgid: it changed
// nothing. WeChat never sends one; it is a forged or misrouted push, and
// pushing it again would change nothing either.
var ErrReceiptMismatch = errors.New("campaigns: receipt from another user than its message's recipient")

// Receipt is a delivery receipt (TEMPLATESENDJOBFINISH) pushed to an
// account's callback.
type Receipt struct {
	// Account is the id of the account whose callback received it.
	Account string
	// OpenID is the user (the push's FromUserName).
	OpenID string
	// MsgID is the msgid template/send answered.
	MsgID int64
	// Delivered says whether it reports a delivery; Reason says why not.
	Delivered bool
	Reason    string
	// Created is the push's CreateTime.
	Created time.Time
}

// Reconcile applies a delivery receipt to the outcome of the send it is
// about (see ApplyReceipt): sent becomes delivered, or failed with
// ClassReceipt and the reason. A receipt can overtake the record of its
// send (the worker records right after WeChat answers), so one whose msgid
// is not recorded yet is looked up again for up to wait
// (ReceiptWaitDefault when 0), then ErrUnknownMsgID. A success receipt for
// a msgid wxmass never saw settles a recipient whose template send to
// rc.OpenID lost its answer within the last minutes (rdb's
// ResolveByReceipt): it is delivered, and its pending retry is not made;
// only rc.OpenID can be settled so. A replayed receipt changes nothing and
// is no error. A receipt whose rc.OpenID is not the recipient of its msgid
// changes nothing and returns ErrReceiptMismatch, with the recipient in
// ReceiptResult (Mismatch set); one with an empty rc.OpenID is an error.
func (s *Store) Reconcile(ctx context.Context, rc Receipt, wait time.Duration) (ReceiptResult, error) {
	if wait <= 0 {
		wait = ReceiptWaitDefault
	}
	pause := 50 * time.Millisecond
	deadline := time.Now().Add(wait)
	for {
		res, err := s.ApplyReceipt(ctx, rc.MsgID, rc.OpenID, rc.Delivered, rc.Reason)
		if err != nil {
			return ReceiptResult{}, err
		}
		if res.Mismatch {
			return res, ErrReceiptMismatch
		}
		if res.Found && res.Status != "" {
			return res, nil
		}
		if rc.Delivered && rc.Account != "" {
			res, err := s.r.ResolveByReceipt(ctx, rc.Account, rc.OpenID, rc.MsgID, rc.Created, receiptLostWindow, string(StateCompleted))
			if err != nil {
				return ReceiptResult{}, err
			}
			if res.Changed {
				return res, nil
			}
		}
		if time.Now().Add(pause).After(deadline) {
			// Not recorded yet, another sender on the account, or an
			// outcome deleted.
			return ReceiptResult{}, ErrUnknownMsgID
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ReceiptResult{}, ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 400*time.Millisecond)
	}
}
