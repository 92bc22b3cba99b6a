package campaigns

import (
	"context"
	"errors"
	"time"
)

// ReceiptWaitDefault is how long Reconcile waits for the record of the
// send a receipt is about.
const ReceiptWaitDefault = 2 * time.Second

// ErrUnknownMsgID is returned by Reconcile for a receipt whose msgid no
// recorded send has (yet): the callback answers it with an error, so that
// WeChat pushes it again.
var ErrUnknownMsgID = errors.New("campaigns: receipt of a msgid with no outcome yet")

// Reconcile applies a delivery receipt (TEMPLATESENDJOBFINISH) to the
// outcome of the send it is about (see ApplyReceipt): sent becomes
// delivered, or failed with ClassReceipt and reason. A receipt can
// overtake the record of its send (the worker records right after WeChat
// answers), so one whose msgid is not recorded yet is looked up again for
// up to wait (ReceiptWaitDefault when 0), then ErrUnknownMsgID. A replayed
// receipt changes nothing and is no error.
func (s *Store) Reconcile(ctx context.Context, msgid int64, delivered bool, reason string, wait time.Duration) (ReceiptResult, error) {
	if wait <= 0 {
		wait = ReceiptWaitDefault
	}
	pause := 50 * time.Millisecond
	deadline := time.Now().Add(wait)
	for {
		res, err := s.ApplyReceipt(ctx, msgid, delivered, reason)
		if err != nil {
			return ReceiptResult{}, err
		}
		if res.Found && res.Status != "" {
			return res, nil
		}
		if time.Now().Add(pause).After(deadline) {
			// Not recorded yet, another sender on the account, or an
			// outcome deleted.
			return res, ErrUnknownMsgID
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
