package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v3"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/logfield"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/monitoring"
	"github.com/wxmass/wxmass/wechat/callback"
)

// Flags and environment of the callback receiver.
const (
	flagCallbackPath      = "callback-path"
	flagCallbackMode      = "callback-mode"
	envCallbackToken      = "WXMASS_CALLBACK_TOKEN"
	envCallbackAESKey     = "WXMASS_CALLBACK_AES_KEY"
	envCallbackAESKeyPrev = "WXMASS_CALLBACK_AES_KEY_PREVIOUS"
)

func callbackFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagCallbackPath, Value: "/wechat/callback", Usage: "path of the WeChat callback receivers (message push URLs): path/{account id} for each account with a callback, and path itself for the default account (one account: when " + envCallbackToken + " is set)", Sources: sources(flagCallbackPath)},
		&cli.StringFlag{Name: flagCallbackMode, Value: callback.ModePlain, Usage: "message encryption mode of the account of --" + flagAppID + ": plain, compatible or safe (safe and compatible need " + envCallbackAESKey + "; the accounts file sets each account's)", Sources: sources(flagCallbackMode)},
	}
}

// receiptDedupeTTL is how long a push's dedupe key is kept: WeChat retries
// within seconds, and the handler refuses timestamps older than 5 minutes.
const receiptDedupeTTL = 15 * time.Minute

// callbackRouter serves each account's callback receiver at
// base/{account id}, and the default account's at base itself. Handlers
// are swapped whole when the accounts change.
type callbackRouter struct {
	base     string
	handlers atomic.Pointer[map[string]http.Handler] // by account id; "" is the default
}

func (cr *callbackRouter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := strings.Trim(strings.TrimPrefix(r.URL.Path, cr.base), "/")
	h, ok := (*cr.handlers.Load())[id]
	if !ok || strings.Contains(id, "/") {
		http.NotFound(w, r)
		return
	}
	h.ServeHTTP(w, r)
}

// newCallbackRouter returns the callback receivers of the accounts that
// configure one, under base (--callback-path): base/{account id} for each, and
// base itself for the default account. It follows the accounts' changes.
func (a *app) newCallbackRouter(base string, hub *account.Hub, r *rdb.RDB, metrics *monitoring.Metrics) (*callbackRouter, error) {
	path := strings.TrimRight(base, "/")
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "/v1/") {
		return nil, usagef("--%s: %q must start with / and not be under /v1/", flagCallbackPath, base)
	}
	log := a.log.Named("callback")
	store := campaigns.NewStore(r)
	build := func(specs []account.Spec) (map[string]http.Handler, error) {
		m := map[string]http.Handler{}
		for i, s := range specs {
			if s.Callback == nil {
				continue
			}
			h, err := a.callbackHandler(s, r, store, metrics, log.With(zap.String("account", s.ID)))
			if err != nil {
				return nil, fmt.Errorf("account %s: %w", s.ID, err)
			}
			metrics.DeclareCallbackRefusals(s.ID, callback.RefusedReasons)
			m[s.ID] = h
			if i == 0 {
				m[""] = h
			}
		}
		return m, nil
	}
	m, err := build(hub.Specs())
	if err != nil {
		return nil, usagef("callback: %w", err)
	}
	cr := &callbackRouter{base: path}
	cr.handlers.Store(&m)
	for id := range m {
		if id != "" {
			log.Info("callback receiver on", zap.String("path", path+"/"+id), zap.String("account", id))
		}
	}
	hub.OnApply(func(specs []account.Spec) {
		m, err := build(specs)
		if err != nil {
			log.Error("callback receivers not rebuilt; the old ones stay", zap.Error(err))
			return
		}
		cr.handlers.Store(&m)
	})
	return cr, nil
}

// callbackHandler is the callback receiver of one account. Receipts
// (TEMPLATESENDJOBFINISH) move outcomes from sent to delivered or failed.
// A request's query is claimed in Redis with its body's digest, so that a
// captured query replayed with another body is refused; a receipt from
// another user than its message's recipient is discarded. Refusals are
// counted in metrics (nil: not counted).
func (a *app) callbackHandler(s account.Spec, r *rdb.RDB, store *campaigns.Store, metrics *monitoring.Metrics, log *zap.Logger) (http.Handler, error) {
	return callback.NewHandler(callback.Config{
		Token:          s.Callback.Token.Reveal(),
		AESKey:         s.Callback.AESKey,
		PreviousAESKey: s.Callback.PreviousAESKey,
		AppID:          s.AppID,
		Mode:           s.Callback.Mode,
		OnEvent: func(ctx context.Context, e callback.Event) error {
			if e.MsgType == callback.MsgTypeEvent && e.Event == callback.EventMassSendJobFinish {
				return massFinished(ctx, s, store, metrics, log, e)
			}
			if !e.IsReceipt() {
				_, err := userEvent(ctx, s, store, metrics, log, e, time.Now())
				return err // an error is answered 500: WeChat pushes it again
			}
			res, err := store.Reconcile(ctx, campaigns.Receipt{Account: s.ID, OpenID: e.FromUserName, MsgID: e.MsgID,
				Delivered: e.Delivery == callback.DeliveryDelivered, Reason: e.Reason, Created: time.Unix(e.CreateTime, 0)}, 0)
			if err == nil || errors.Is(err, campaigns.ErrUnknownMsgID) {
				if perr := receiptProtection(ctx, s, store, metrics, e, time.Now()); perr != nil {
					return perr
				}
			}
			switch {
			case errors.Is(err, campaigns.ErrReceiptMismatch):
				// Answered "success": WeChat's retries would change nothing.
				return &callback.DiscardError{Reason: callback.RefusedReceiptMismatch, Err: fmt.Errorf("%w: the recipient is %s (campaign %s, run %d)",
					err, logfield.MaskOpenID(res.OpenID), res.Campaign, res.Run)}
			case errors.Is(err, campaigns.ErrUnknownMsgID):
				// Not recorded yet, or its run's msgid index entries are
				// gone (its receipt window passed, or it was archived):
				// such a receipt changes nothing.
				log.Debug("receipt of an unknown msgid", zap.Int64("msgid", e.MsgID))
				metrics.CallbackRefused(s.ID, "unknown_msgid")
			}
			return err // an error is answered 500: WeChat pushes it again
		},
		Dedupe: func(ctx context.Context, key string) (bool, error) {
			return r.FirstDelivery(ctx, key, receiptDedupeTTL)
		},
		Release: r.ForgetDelivery,
		ClaimRequest: func(ctx context.Context, key, digest string, ttl, lease time.Duration) (callback.Claim, error) {
			got, err := r.ClaimPush(ctx, key, digest, ttl, lease)
			return callback.Claim(got), err
		},
		SettleRequest: r.SettlePush,
		RefusedFunc:   func(reason string) { metrics.CallbackRefused(s.ID, reason) },
		Logger:        log,
	})
}

// massFinished records a MASSSENDJOBFINISH push as its batch's result.
func massFinished(ctx context.Context, s account.Spec, store *campaigns.Store, metrics *monitoring.Metrics, log *zap.Logger, e callback.Event) error {
	m := e.Mass
	status := m.Result
	if status == callback.MassUnknown {
		status = campaigns.MassUnknown
	}
	meaning := callback.ReviewMeaning(m.ReviewCode)
	res := campaigns.MassPushResult(status, e.Status, m.ReviewCode, meaning, m.TotalCount, m.FilterCount, m.SentCount, m.ErrorCount, time.Unix(e.CreateTime, 0))
	id, run, rec, err := store.FinishMassPush(ctx, s.AppID, e.MsgID, res)
	switch {
	case errors.Is(err, campaigns.ErrUnknownMassJob):
		log.Debug("mass push of an unknown msg_id", zap.Int64("msg_id", e.MsgID))
		metrics.CallbackRefused(s.ID, "unknown_msgid")
		return nil
	case err != nil:
		return err // answered 500: WeChat pushes it again
	}
	log.Info("mass job finished", zap.String("campaign_id", id), zap.Int("run", run), zap.Int64("msg_id", e.MsgID),
		zap.String("status", status), zap.Int64("sent", m.SentCount), zap.Int64("filtered", m.TotalCount-m.FilterCount))
	if rec.Finished != "" {
		metrics.RunFinished(s.ID, rec.Finished)
	}
	return nil
}
