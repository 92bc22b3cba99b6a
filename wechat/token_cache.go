package wechat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sync/singleflight"

	"github.com/wxmass/wxmass/internal/rdb"
)

// Defaults of TokenCacheConfig.
const (
	LocalTTLDefault        = 10 * time.Second
	RefreshAheadDefault    = 5 * time.Minute
	RefreshRetryMaxDefault = 30 * time.Second
	LeaseTTLDefault        = 15 * time.Second
	MinValidDefault        = 5 * time.Second
	ErrorTTLDefault        = 30 * time.Second
	PollMaxDefault         = 200 * time.Millisecond
)

// FetchFunc fetches a new access_token from WeChat.
type FetchFunc func(ctx context.Context) (AccessToken, error)

// TokenCacheConfig configures a TokenCache. Zero durations take the
// defaults named after them.
type TokenCacheConfig struct {
	// AppID names the account; its token lives in Redis under this id.
	AppID string
	// Fetch gets a new token, usually Client.StableToken bound to the
	// account's appid and appsecret.
	Fetch FetchFunc
	// LocalTTL is how long a process reuses a token read from Redis before
	// reading it again (LocalTTLDefault).
	LocalTTL time.Duration
	// RefreshAhead is how long before expiry one process refreshes the
	// token (RefreshAheadDefault: stable_token rolls over five minutes
	// before expiry and answers the same token before that).
	RefreshAhead time.Duration
	// RefreshRetryMax bounds the wait before another refresh when a refresh
	// answered a token that is already due (RefreshRetryMaxDefault).
	RefreshRetryMax time.Duration
	// LeaseTTL bounds how long one process may hold the fetch lease; it must
	// exceed the token API's timeout (LeaseTTLDefault).
	LeaseTTL time.Duration
	// MinValid is the least validity a token must have left to be used
	// (MinValidDefault).
	MinValid time.Duration
	// ErrorTTL is how long a configuration error of the token API (wrong
	// secret, IP not whitelisted...) is remembered, so that processes fail
	// fast instead of calling the token API again (ErrorTTLDefault).
	ErrorTTL time.Duration
	// PollMax is the longest pause between two looks at Redis while another
	// process fetches (PollMaxDefault).
	PollMax time.Duration
	// Logger receives refresh failures; nil means none.
	Logger *zap.Logger
	// Now is the clock for the in-process cache (time.Now).
	Now func() time.Time
}

func (c *TokenCacheConfig) withDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.LocalTTL, LocalTTLDefault)
	def(&c.RefreshAhead, RefreshAheadDefault)
	def(&c.RefreshRetryMax, RefreshRetryMaxDefault)
	def(&c.LeaseTTL, LeaseTTLDefault)
	def(&c.MinValid, MinValidDefault)
	def(&c.ErrorTTL, ErrorTTLDefault)
	def(&c.PollMax, PollMaxDefault)
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// TokenCache is a TokenSource shared by every process through Redis: one
// token per account, fetched by exactly one process at a time (a Redis lease;
// the others wait for the stored value), refreshed proactively before it
// expires, and replaced after an invalid-token errcode only if the stored
// token is still the one that failed. Reads are served from memory for
// LocalTTL, so the send path costs no Redis round trip for its token.
//
// TokenCache is safe for concurrent use.
type TokenCache struct {
	cfg   TokenCacheConfig
	rdb   *rdb.RDB
	owner string
	sf    singleflight.Group

	local       atomic.Pointer[localToken]
	invalidated atomic.Pointer[string] // the token this process last invalidated
}

type localToken struct {
	token string
	until time.Time
}

// NewTokenCache returns a TokenCache for cfg.AppID backed by r.
func NewTokenCache(r *rdb.RDB, cfg TokenCacheConfig) (*TokenCache, error) {
	if cfg.AppID == "" {
		return nil, errors.New("wechat: token cache: AppID is empty")
	}
	if cfg.Fetch == nil {
		return nil, errors.New("wechat: token cache: Fetch is nil")
	}
	cfg.withDefaults()
	var b [8]byte
	_, _ = rand.Read(b[:])
	host, _ := os.Hostname()
	return &TokenCache{
		cfg:   cfg,
		rdb:   r,
		owner: fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b[:])),
	}, nil
}

// Token returns the account's access_token. It is served from memory when a
// recent copy is there; otherwise it is read from Redis, and fetched from
// WeChat by this process only if it holds the lease. Concurrent callers in a
// process share one look at Redis. It returns when ctx is done.
func (tc *TokenCache) Token(ctx context.Context) (string, error) {
	if l := tc.local.Load(); l != nil && tc.cfg.Now().Before(l.until) {
		return l.token, nil
	}
	ch := tc.sf.DoChan("token", func() (any, error) {
		// The shared load must not fail because the first caller gave up.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*tc.cfg.LeaseTTL)
		defer cancel()
		return tc.load(lctx)
	})
	select {
	case <-ctx.Done():
		return "", fmt.Errorf("wechat: token: %w", ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	}
}

func (tc *TokenCache) load(ctx context.Context) (string, error) {
	pause := 5 * time.Millisecond
	for {
		st, err := tc.rdb.GetToken(ctx, tc.cfg.AppID, tc.owner, tc.cfg.LeaseTTL, tc.cfg.MinValid)
		if err != nil {
			return "", fmt.Errorf("wechat: token: %w", err)
		}
		switch st.Status {
		case rdb.TokenOK:
			tc.keep(st.Token, st.ExpiresIn, st.RefreshIn)
			return st.Token, nil
		case rdb.TokenRefresh:
			tok, err := tc.fetch(ctx)
			if err != nil {
				// The stored token is still valid: keep using it and let a
				// later call try the refresh again.
				tc.cfg.Logger.Warn("token refresh failed; the current token is still valid",
					zap.String("app_id", tc.cfg.AppID), zap.Duration("expires_in", st.ExpiresIn), zap.Error(err))
				tc.keep(st.Token, st.ExpiresIn, 0)
				return st.Token, nil
			}
			return tok, nil
		case rdb.TokenLeased:
			return tc.fetch(ctx)
		case rdb.TokenFailed:
			// Stored by fetch as "api|errmsg".
			api, msg, _ := strings.Cut(st.ErrMsg, "|")
			return "", &APIError{Code: st.ErrCode, Msg: msg, API: api}
		case rdb.TokenWait:
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return "", fmt.Errorf("wechat: token: waiting for another process's fetch: %w", ctx.Err())
			case <-t.C:
			}
			pause = min(2*pause, tc.cfg.PollMax)
		}
	}
}

// fetch gets a new token from WeChat while this process holds the lease,
// stores it, and releases the lease.
func (tc *TokenCache) fetch(ctx context.Context) (string, error) {
	at, err := tc.cfg.Fetch(ctx)
	if err != nil {
		var ae *APIError
		if errors.As(err, &ae) && errors.Is(err, ErrTokenConfig) {
			msg := ae.API + "|" + ae.Msg
			if serr := tc.rdb.StoreTokenError(ctx, tc.cfg.AppID, tc.owner, ae.Code, msg, tc.cfg.ErrorTTL); serr != nil {
				return "", errors.Join(err, serr)
			}
			return "", err
		}
		if rerr := tc.rdb.ReleaseTokenLease(ctx, tc.cfg.AppID, tc.owner); rerr != nil {
			return "", errors.Join(err, rerr)
		}
		return "", err
	}
	st, err := tc.rdb.StoreToken(ctx, tc.cfg.AppID, tc.owner, at.Token, at.ExpiresIn, tc.cfg.RefreshAhead, tc.cfg.RefreshRetryMax)
	if err != nil {
		return "", fmt.Errorf("wechat: token: %w", err)
	}
	if !st.Stored {
		// Our lease ran out and another process took over; our token is
		// valid, but the stored one is what everyone else uses.
		tc.cfg.Logger.Warn("token fetched after the lease expired; not stored", zap.String("app_id", tc.cfg.AppID))
		return at.Token, nil
	}
	tc.keep(at.Token, st.ExpiresIn, st.RefreshIn)
	return at.Token, nil
}

// keep caches token in memory for LocalTTL, but never past the point where it
// is due for a refresh or about to expire.
func (tc *TokenCache) keep(token string, expiresIn, refreshIn time.Duration) {
	d := min(tc.cfg.LocalTTL, expiresIn-tc.cfg.MinValid)
	if refreshIn <= 0 {
		// Due for a refresh that another process is doing: look again soon.
		d = min(d, tc.cfg.PollMax)
	} else {
		d = min(d, refreshIn)
	}
	if d <= 0 {
		tc.local.Store(nil)
		return
	}
	tc.local.Store(&localToken{token: token, until: tc.cfg.Now().Add(d)})
}

// Invalidate tells the cache that failed was refused as invalid. The stored
// token is deleted only if it is still failed, so a caller holding an old
// token never throws away a fresh one; the next Token call then fetches.
func (tc *TokenCache) Invalidate(ctx context.Context, failed string) error {
	if l := tc.local.Load(); l != nil && l.token == failed {
		tc.local.CompareAndSwap(l, nil)
	}
	if p := tc.invalidated.Load(); p != nil && *p == failed {
		return nil // this process already removed it
	}
	if _, err := tc.rdb.InvalidateToken(ctx, tc.cfg.AppID, failed); err != nil {
		return fmt.Errorf("wechat: %w", err)
	}
	tc.invalidated.Store(&failed)
	return nil
}
