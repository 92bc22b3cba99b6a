package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v3"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/secret"
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
		&cli.StringFlag{Name: flagCallbackPath, Value: "/wechat/callback", Usage: "path of the WeChat callback receiver (message push URL); it is on when " + envCallbackToken + " is set", Sources: sources(flagCallbackPath)},
		&cli.StringFlag{Name: flagCallbackMode, Value: callback.ModePlain, Usage: "message encryption mode configured for the account: plain, compatible or safe (safe and compatible need " + envCallbackAESKey + ")", Sources: sources(flagCallbackMode)},
	}
}

// receiptWait is how long a receipt waits for the record of its send.
const receiptWait = 2 * time.Second

var errUnknownMsgID = errors.New("receipt of a msgid with no outcome yet")

// receiptDedupeTTL is how long a push's dedupe key is kept: WeChat retries
// within seconds, and the handler refuses timestamps older than 5 minutes.
const receiptDedupeTTL = 15 * time.Minute

// newCallback returns the callback receiver and its path, or a nil handler
// when WXMASS_CALLBACK_TOKEN is not set. Receipts (TEMPLATESENDJOBFINISH)
// move outcomes from sent to delivered or failed.
func (a *app) newCallback(cmd *cli.Command, appID string, r *rdb.RDB) (http.Handler, string, error) {
	token := strings.TrimSpace(os.Getenv(envCallbackToken))
	if token == "" {
		return nil, "", nil
	}
	path := cmd.String(flagCallbackPath)
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "/v1/") {
		return nil, "", usagef("--%s: %q must start with / and not be under /v1/", flagCallbackPath, path)
	}
	log := a.log.Named("callback")
	h, err := callback.NewHandler(callback.Config{
		Token:          token,
		AESKey:         secret.New(strings.TrimSpace(os.Getenv(envCallbackAESKey))),
		PreviousAESKey: secret.New(strings.TrimSpace(os.Getenv(envCallbackAESKeyPrev))),
		AppID:          appID,
		Mode:           cmd.String(flagCallbackMode),
		OnEvent: func(ctx context.Context, e callback.Event) error {
			if !e.IsReceipt() {
				return nil
			}
			// A receipt can overtake the record of its send (the worker
			// records right after WeChat answers): look again for a
			// moment, then answer 500 so that WeChat pushes it again.
			wait := 50 * time.Millisecond
			deadline := time.Now().Add(receiptWait)
			for {
				res, err := r.ApplyReceipt(ctx, e.MsgID, e.Delivery == callback.DeliveryDelivered, e.Reason)
				if err != nil {
					return err // answered 500: WeChat pushes it again
				}
				if res.Found && res.Status != "" {
					return nil
				}
				if time.Now().Add(wait).After(deadline) {
					// Not recorded yet, another sender on the account, or
					// an outcome expired.
					log.Debug("receipt of an unknown msgid", zap.Int64("msgid", e.MsgID))
					return errUnknownMsgID
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
				wait = min(2*wait, 400*time.Millisecond)
			}
		},
		Dedupe: func(ctx context.Context, key string) (bool, error) {
			return r.FirstDelivery(ctx, key, receiptDedupeTTL)
		},
		Release: r.ForgetDelivery,
		Logger:  log,
	})
	if err != nil {
		return nil, "", usagef("callback: %w", err)
	}
	return h, path, nil
}
