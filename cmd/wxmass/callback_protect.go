package main

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/logfield"
	"github.com/wxmass/wxmass/monitoring"
	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat/callback"
)

// Events of the user's that the protection acts on (wechat-api.md §7).
const (
	eventSubscribe   = "subscribe"
	eventUnsubscribe = "unsubscribe"
)

// windowEvents open the short customer-service window (wechat-api.md
// §3.1): a menu click of the kinds that count, a QR scan by a follower.
var windowEvents = map[string]bool{"CLICK": true, "SCAN": true, "scancode_push": true, "scancode_waitmsg": true}

// userEvent records what a user's push says for the account's protection:
// a message or an interaction opens a customer-service window; an
// unsubscribe suppresses the user, a subscribe lifts WeChat's suppressions
// (an operator's stay) and opens the follow's window. It reports whether
// e was such a push.
func userEvent(ctx context.Context, s account.Spec, store *campaigns.Store, metrics *monitoring.Metrics, log *zap.Logger, e callback.Event, now time.Time) (bool, error) {
	at := time.Unix(e.CreateTime, 0)
	if at.After(now) || e.CreateTime <= 0 {
		at = now
	}
	p := s.Protection.WithDefaults()
	openid := e.FromUserName
	switch {
	case e.MsgType != callback.MsgTypeEvent:
		// A message from the user: the long window.
		_, err := store.Interact(ctx, s.AppID, openid, at, p.CSWindow.Window(), p.CSWindow.Messages)
		return true, err
	case e.Event == eventSubscribe:
		n, err := store.Unsuppress(ctx, s.AppID, true, openid)
		if err != nil {
			return true, err
		}
		if n > 0 {
			log.Info("user followed again: suppression lifted", logfield.OpenID(openid))
		}
		_, err = store.Interact(ctx, s.AppID, openid, at, account.CSEventWindow, account.CSEventMessages)
		return true, err
	case e.Event == eventUnsubscribe:
		n, err := store.Suppress(ctx, s.AppID, false, campaigns.Suppression{OpenID: openid, Reason: campaigns.SuppressUnfollowed,
			At: at, Source: "event"})
		metrics.SuppressionsAdded(s.ID, campaigns.SuppressUnfollowed, n)
		return true, err
	case windowEvents[e.Event]:
		_, err := store.Interact(ctx, s.AppID, openid, at, account.CSEventWindow, account.CSEventMessages)
		return true, err
	}
	return false, nil
}

// receiptProtection acts on a template receipt that says the user blocks
// the account ("failed:user block": suppressed) or that WeChat limits how
// often the user gets messages ("failed:freq limit": the user rests for
// retry.RestDefault).
func receiptProtection(ctx context.Context, s account.Spec, store *campaigns.Store, metrics *monitoring.Metrics, e callback.Event, now time.Time) error {
	if e.Delivery != callback.DeliveryFailed {
		return nil
	}
	switch e.Reason {
	case callback.ReasonUserBlock:
		n, err := store.Suppress(ctx, s.AppID, false, campaigns.Suppression{OpenID: e.FromUserName, Reason: campaigns.SuppressBlocked,
			At: now, Source: "receipt"})
		metrics.SuppressionsAdded(s.ID, campaigns.SuppressBlocked, n)
		return err
	case callback.ReasonFreqLimit:
		return store.SetRest(ctx, s.AppID, e.FromUserName, now.Add(retry.RestDefault))
	}
	return nil
}
