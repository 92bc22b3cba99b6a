package worker

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat"
)

// Media files in messages (internal/media): a run's view holds its message
// with every stored file replaced by the account's media_id, resolved
// through Config.Media when the view is loaded, and the earliest time one
// of those media_ids stops being usable (its expiry minus the cache's
// margin). A view past it is loaded again, which uploads again. A send
// answered 40007 (invalid media_id) drops the cached media_ids and the
// view, and goes again without using a retry, at most
// mediaRetriesPerRecipient times per recipient in this process.

// mediaRetriesPerRecipient bounds how often one recipient's send is tried
// again after a 40007 (within one process); then 40007 is decided as any
// errcode.
const mediaRetriesPerRecipient = 3

// mediaRetryDelay is the wait before a send tried again after a 40007: the
// view is reloaded first, by whichever send comes first.
const mediaRetryDelay = 100 * time.Millisecond

// viewMedia is what a run's view knows about its media.
type viewMedia struct {
	// until is when the first media_id stops being usable; zero for none.
	until time.Time
	// ids are the media_ids that stand for stored files.
	ids []string
}

// resolveMedia returns msg with its stored files replaced by acct's
// media_ids, and what the view keeps about them. A message without files
// is returned as it is.
func (w *Worker) resolveMedia(ctx context.Context, acct *account.Account, msg *campaigns.Message) (*campaigns.Message, viewMedia, error) {
	out, r, err := w.cfg.Media.ResolveMessage(ctx, acct, msg)
	if err != nil {
		return nil, viewMedia{}, err
	}
	return out, viewMedia{until: r.Until, ids: r.IDs}, nil
}

// mediaStale reports whether the view's media_ids are no longer usable at
// now: the view must be loaded again.
func (v *runView) mediaStale(now time.Time) bool {
	return !v.media.until.IsZero() && !now.Before(v.media.until)
}

// invalidMedia reports whether err is WeChat's 40007 (invalid media_id)
// to a message that uses stored files.
func invalidMedia(err error, v *runView) bool {
	var ae *wechat.APIError
	return len(v.media.ids) > 0 && errors.As(err, &ae) && ae.Code == 40007
}

// mediaInvalid handles a 40007 to a send of v's message: it drops the
// account's cached media_ids of the message's files (so that the next
// resolve uploads them again) and this process's view of the run (so that
// the next send loads it again). The other processes' views are dropped
// when their own sends meet 40007, or when their media_ids' time is up.
func (w *Worker) mediaInvalid(ctx context.Context, v *runView, acct *account.Account) error {
	w.runs.CompareAndDelete(runKey(v.c.ID, v.run), v)
	if w.cfg.Media == nil {
		return nil
	}
	var errs []error
	for _, id := range v.media.ids {
		errs = append(errs, w.cfg.Media.Invalidate(ctx, acct.AppID, id))
	}
	return errors.Join(errs...)
}

// mediaRetry handles a 40007 to one recipient's send: it returns the
// retry.Wait to send again after mediaInvalid, or nil when the recipient
// has been tried again mediaRetriesPerRecipient times already (the answer
// is then decided as usual).
func (w *Worker) mediaRetry(ctx context.Context, v *runView, acct *account.Account, openid string) error {
	key := runKey(v.c.ID, v.run) + "|" + openid
	x, _ := w.mediaTries.LoadOrStore(key, new(atomic.Int32))
	n := x.(*atomic.Int32).Add(1)
	if n > mediaRetriesPerRecipient {
		w.mediaTries.Delete(key)
		return nil
	}
	if err := w.mediaInvalid(ctx, v, acct); err != nil {
		w.log.Warn("invalidate media", zap.String("campaign_id", v.c.ID), zap.Error(err))
	}
	return &retry.Wait{After: mediaRetryDelay, Reason: "errcode 40007: the media expired at WeChat; uploading it again"}
}
