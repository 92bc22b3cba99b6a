package media

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/wechat"
)

// Defaults of CacheConfig.
const (
	// TemporaryLifetimeDefault is how long WeChat keeps temporary media
	// (wechat-api.md: 3 days after the upload).
	TemporaryLifetimeDefault = 72 * time.Hour
	// MarginDefault is how long before its expiry temporary media is
	// uploaded again.
	MarginDefault = time.Hour
	// LockTTLDefault is how long an upload lock lasts unless its holder
	// renews it: a process that dies holding it delays the others this
	// long at most.
	LockTTLDefault = 30 * time.Second
	// UploadRateDefault and UploadBurstDefault bound one process's uploads
	// (per second).
	UploadRateDefault  = 2
	UploadBurstDefault = 4
	// PollMinDefault and PollMaxDefault bound how often a process waiting
	// for another's upload looks at the cache (doubling from the first to
	// the second).
	PollMinDefault = 20 * time.Millisecond
	PollMaxDefault = time.Second
)

// CacheConfig configures a Cache. Zero values take the defaults named
// after the fields.
type CacheConfig struct {
	// TemporaryLifetime is how long WeChat keeps temporary media
	// (TemporaryLifetimeDefault); a test against a time-scaled fake sets
	// it scaled.
	TemporaryLifetime time.Duration
	// Margin is how long before its expiry temporary media is uploaded
	// again (MarginDefault): Resolve never returns a media_id with less
	// than Margin left.
	Margin time.Duration
	// LockTTL is the upload lock's lifetime (LockTTLDefault), renewed
	// every third of it while the upload lasts.
	LockTTL time.Duration
	// UploadRate and UploadBurst bound this process's upload calls
	// (UploadRateDefault a second, UploadBurstDefault).
	UploadRate  float64
	UploadBurst int
	// PollMin and PollMax bound the wait between looks at the cache while
	// another process uploads (PollMinDefault, PollMaxDefault).
	PollMin, PollMax time.Duration
	// NowFunc is the clock (time.Now).
	NowFunc func() time.Time
	Logger  *zap.Logger
}

func (c *CacheConfig) withDefaults() {
	if c.TemporaryLifetime <= 0 {
		c.TemporaryLifetime = TemporaryLifetimeDefault
	}
	if c.Margin <= 0 {
		c.Margin = MarginDefault
	}
	if c.LockTTL <= 0 {
		c.LockTTL = LockTTLDefault
	}
	if c.UploadRate <= 0 {
		c.UploadRate = UploadRateDefault
	}
	if c.UploadBurst <= 0 {
		c.UploadBurst = UploadBurstDefault
	}
	if c.PollMin <= 0 {
		c.PollMin = PollMinDefault
	}
	if c.PollMax < c.PollMin {
		c.PollMax = max(PollMaxDefault, c.PollMin)
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
}

// Cache resolves stored files to WeChat media_ids per account, caching
// them in Redis with their expiry. It is safe for concurrent use, and its
// single flight holds across processes sharing the Redis.
type Cache struct {
	store *Store
	r     *rdb.RDB
	wc    *wechat.Client
	cfg   CacheConfig
	lim   *rate.Limiter
	log   *zap.Logger
}

// NewCache returns a Cache of the files of store, uploading through wc.
func NewCache(store *Store, wc *wechat.Client, cfg CacheConfig) *Cache {
	cfg.withDefaults()
	return &Cache{store: store, r: store.r, wc: wc, cfg: cfg,
		lim: rate.NewLimiter(rate.Limit(cfg.UploadRate), cfg.UploadBurst), log: cfg.Logger.Named("media")}
}

// Margin is how long before its expiry a media_id is no longer used.
func (c *Cache) Margin() time.Duration { return c.cfg.Margin }

// Resolve returns the media_id of f for acct, and when it stops being
// usable (its expiry minus the margin; zero for permanent material and
// drafts). It uploads f when the account has no usable media_id for it:
// one process uploads (holding a lock in Redis, renewed while the upload
// lasts) while the others wait for its answer in the cache, polling with
// backoff; when the holder dies its lock lapses and another uploads. A
// draft's covers are resolved first (permanent images). Resolve returns
// when ctx ends, with its error.
func (c *Cache) Resolve(ctx context.Context, acct *account.Account, f campaigns.MediaFile) (string, time.Time, error) {
	h, err := hexOf(f.File)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("media: %s: %w", f.Field, err)
	}
	purpose := string(f.Purpose)
	switch f.Purpose {
	case campaigns.MediaTemporary, campaigns.MediaPermanent, campaigns.MediaDraft:
	default:
		return "", time.Time{}, fmt.Errorf("media: %s: unknown purpose %q", f.Field, purpose)
	}
	poll := c.cfg.PollMin
	for {
		if id, until, ok, err := c.cached(ctx, acct.AppID, purpose, h); err != nil || ok {
			return id, until, err
		}
		token := newToken()
		got, err := c.r.AcquireMediaLock(ctx, acct.AppID, purpose, h, token, c.cfg.LockTTL)
		if err != nil {
			return "", time.Time{}, err
		}
		if got {
			return c.uploadLocked(ctx, acct, f, h, token)
		}
		// Another process uploads: wait for its answer, or for its lock
		// to go (released after a failure, or lapsed with its holder).
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", time.Time{}, fmt.Errorf("media: %s: waiting for another process's upload: %w", f.Field, ctx.Err())
		case <-t.C:
		}
		poll = min(2*poll, c.cfg.PollMax)
	}
}

// cached returns the cache's media_id when it is usable for at least the
// margin.
func (c *Cache) cached(ctx context.Context, appID, purpose, h string) (string, time.Time, bool, error) {
	e, ok, err := c.r.MediaCache(ctx, appID, purpose, h)
	if err != nil || !ok {
		return "", time.Time{}, false, err
	}
	exp := e.Expires()
	if exp.IsZero() {
		return e.MediaID, time.Time{}, true, nil
	}
	until := exp.Add(-c.cfg.Margin)
	if !c.cfg.NowFunc().Before(until) {
		return "", time.Time{}, false, nil
	}
	return e.MediaID, until, true, nil
}

// uploadLocked uploads f holding the lock token, caches its media_id and
// releases the lock.
func (c *Cache) uploadLocked(ctx context.Context, acct *account.Account, f campaigns.MediaFile, h, token string) (string, time.Time, error) {
	purpose := string(f.Purpose)
	defer func() {
		// Released even when ctx ended: the others need not wait for the
		// lock to lapse.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := c.r.ReleaseMediaLock(rctx, acct.AppID, purpose, h, token); err != nil {
			c.log.Warn("release media lock", zap.String("app_id", acct.AppID), zap.Error(err))
		}
	}()
	// A process that held the lock just before may have cached it.
	if id, until, ok, err := c.cached(ctx, acct.AppID, purpose, h); err != nil || ok {
		return id, until, err
	}
	uctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.renew(uctx, cancel, acct.AppID, purpose, h, token)
	}()
	id, exp, err := c.upload(uctx, acct, f)
	cancel()
	wg.Wait()
	if err != nil {
		return "", time.Time{}, err
	}
	e := rdb.MediaCacheEntry{MediaID: id}
	var ttl time.Duration
	if !exp.IsZero() {
		e.ExpiresMS = exp.UnixMilli()
		ttl = exp.Sub(c.cfg.NowFunc()) + time.Minute
	}
	if err := c.r.SetMediaCache(ctx, acct.AppID, purpose, h, e, ttl); err != nil {
		return "", time.Time{}, err
	}
	c.log.Info("media uploaded", zap.String("app_id", acct.AppID), zap.String("purpose", purpose), zap.String("file", f.File), zap.Time("expires", exp))
	if exp.IsZero() {
		return id, time.Time{}, nil
	}
	return id, exp.Add(-c.cfg.Margin), nil
}

// renew extends the lock every third of its lifetime until ctx ends; when
// the lock is lost it cancels the upload.
func (c *Cache) renew(ctx context.Context, cancel context.CancelFunc, appID, purpose, h, token string) {
	t := time.NewTicker(c.cfg.LockTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := c.r.RenewMediaLock(ctx, appID, purpose, h, token, c.cfg.LockTTL)
		if err == nil && !ok {
			c.log.Warn("media upload lock lost: another process uploads", zap.String("app_id", appID), zap.String("purpose", purpose))
			cancel()
			return
		}
	}
}

// upload makes one upload call (or, for a draft, its covers' and then
// draft/add) and returns the media_id and its expiry (zero: none).
func (c *Cache) upload(ctx context.Context, acct *account.Account, f campaigns.MediaFile) (string, time.Time, error) {
	if f.Purpose == campaigns.MediaDraft {
		arts := make([]wechat.DraftArticle, len(f.Articles))
		for i, cover := range f.Covers() {
			thumb, _, err := c.Resolve(ctx, acct, cover)
			if err != nil {
				return "", time.Time{}, err
			}
			a := f.Articles[i]
			arts[i] = wechat.DraftArticle{Title: a.Title, Author: a.Author, Digest: a.Digest, Content: a.Content, ThumbMediaID: thumb}
		}
		if err := c.lim.Wait(ctx); err != nil {
			return "", time.Time{}, err
		}
		id, err := c.wc.AddDraft(ctx, acct.Tokens, arts)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("media: %s: add draft: %w", f.Field, err)
		}
		return id, time.Time{}, nil
	}
	meta, err := c.store.Get(ctx, f.File)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("media: %s: %w", f.Field, err)
	}
	data, err := c.store.Data(ctx, f.File)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("media: %s: %w", f.Field, err)
	}
	if err := c.lim.Wait(ctx); err != nil {
		return "", time.Time{}, err
	}
	if f.Purpose == campaigns.MediaTemporary {
		// WeChat's created_at has whole seconds: the earlier of it and the
		// time before the call starts the lifetime, on the safe side.
		start := c.cfg.NowFunc()
		m, err := c.wc.UploadMedia(ctx, acct.Tokens, f.Type, meta.Name, data)
		if err != nil {
			return "", time.Time{}, fmt.Errorf("media: %s: upload %s: %w", f.Field, meta.Name, err)
		}
		if created := time.Unix(m.CreatedAt, 0); m.CreatedAt > 0 && created.Before(start) {
			start = created
		}
		return m.MediaID, start.Add(c.cfg.TemporaryLifetime), nil
	}
	var video *wechat.VideoDescription
	if f.Type == wechat.MediaVideo {
		video = f.Video
		if video == nil {
			video = &wechat.VideoDescription{Title: strings.TrimSuffix(meta.Name, ".mp4")}
		}
	}
	m, err := c.wc.AddMaterial(ctx, acct.Tokens, f.Type, meta.Name, data, video)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("media: %s: add material %s: %w", f.Field, meta.Name, err)
	}
	return m.MediaID, time.Time{}, nil
}

// Invalidate drops the account's cached entry that holds mediaID (after
// WeChat answered 40007 to it), so that the next Resolve uploads again.
// An id no entry holds is no error.
func (c *Cache) Invalidate(ctx context.Context, appID, mediaID string) error {
	_, err := c.r.DropMediaID(ctx, appID, mediaID)
	return err
}

// ErrNoCache is returned by callers that need a Cache and have none.
var ErrNoCache = errors.New("media: no media cache configured: campaigns that refer to files cannot send")

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Resolved says what ResolveMessage put in a message.
type Resolved struct {
	// IDs are the media_ids that stand for stored files.
	IDs []string
	// Until is when the first of them stops being usable (its expiry
	// less the margin); zero when none expires.
	Until time.Time
}

// ResolveMessage returns msg with every stored file it refers to replaced
// by acct's media_id (uploading what is not cached), and what it put in.
// A message without files is returned as it is. A nil Cache resolves no
// file: ErrNoCache.
func (c *Cache) ResolveMessage(ctx context.Context, acct *account.Account, msg *campaigns.Message) (*campaigns.Message, Resolved, error) {
	files := msg.MediaFiles()
	if len(files) == 0 {
		return msg, Resolved{}, nil
	}
	if c == nil {
		return nil, Resolved{}, ErrNoCache
	}
	var r Resolved
	ids := make(map[string]string, len(files))
	for _, f := range files {
		id, until, err := c.Resolve(ctx, acct, f)
		if err != nil {
			return nil, Resolved{}, fmt.Errorf("resolve %s: %w", f.Field, err)
		}
		ids[f.Field] = id
		r.IDs = append(r.IDs, id)
		if !until.IsZero() && (r.Until.IsZero() || until.Before(r.Until)) {
			r.Until = until
		}
	}
	out, err := msg.WithMedia(ids)
	if err != nil {
		return nil, Resolved{}, err
	}
	return out, r, nil
}
