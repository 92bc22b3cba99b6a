package account

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat"
)

// tokenMetrics counts access_token fetches by account ID;
// *monitoring.Metrics implements it.
type tokenMetrics interface {
	TokenRefresh(account string, err error)
}

// HubConfig configures a Hub.
type HubConfig struct {
	// WeChat fetches the accounts' access_tokens, with each account's
	// TokenAPI. Required.
	WeChat *wechat.Client
	// RDB holds the access_tokens every process shares, and the token
	// errors they remember. Required.
	RDB *rdb.RDB
	// Metrics counts token fetches by account ID (*monitoring.Metrics).
	// Default: none.
	Metrics tokenMetrics
	// Logger is the parent of the Hub's loggers: the token caches log as
	// Logger.Named("token") and reloads as Logger.Named("accounts").
	// Default: no logs.
	Logger *zap.Logger

	// Path is the accounts file Run reads again. Empty: the accounts are
	// the ones given to NewHub for the life of the process (they came
	// from flags), and Run returns at once.
	Path string
	// Defaults fill what the accounts file leaves out (see LoadFile).
	Defaults Defaults
	// Getenv reads the environment for the file's *_env secrets. Default:
	// os.Getenv.
	Getenv func(string) string
	// Interval is how often Run reads the accounts file and the secret
	// files it names. Default: WatchIntervalDefault.
	Interval time.Duration
}

// Hub keeps a process's accounts in step with their configuration. It
// builds an Account for every Spec, with one shared token cache per appid
// for the life of the Hub (fetching with the appsecret and token API in
// force at the time of the fetch), and a Registry the pipeline reads; Apply
// and Run change them without a restart.
//
// A Hub is safe for concurrent use.
type Hub struct {
	cfg     HubConfig
	metrics tokenMetrics
	log     *zap.Logger
	reg     *Registry
	reload  chan struct{}

	mu     sync.Mutex
	specs  []Spec
	creds  map[string]*atomic.Pointer[Spec] // by appid
	tokens map[string]*wechat.TokenCache    // by appid
	// onApply is called after every applied configuration.
	onApply []func([]Spec)
}

// NewHub returns a Hub whose accounts in force are specs, the first being
// the default. It does no I/O: tokens are fetched on first use.
func NewHub(cfg HubConfig, specs []Spec) (*Hub, error) {
	if cfg.WeChat == nil {
		return nil, errors.New("account: hub: WeChat is nil")
	}
	if cfg.RDB == nil {
		return nil, errors.New("account: hub: RDB is nil")
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Interval <= 0 {
		cfg.Interval = WatchIntervalDefault
	}
	h := &Hub{cfg: cfg, metrics: cfg.Metrics, log: cfg.Logger, reload: make(chan struct{}, 1),
		creds: map[string]*atomic.Pointer[Spec]{}, tokens: map[string]*wechat.TokenCache{}}
	if h.metrics == nil {
		h.metrics = noMetrics{}
	}
	accts, err := h.build(specs)
	if err != nil {
		return nil, err
	}
	if h.reg, err = NewRegistry(accts...); err != nil {
		return nil, err
	}
	h.specs = specs
	return h, nil
}

type noMetrics struct{}

func (noMetrics) TokenRefresh(string, error) {}

// Registry returns the registry of the accounts in force. It is the same
// Registry for the life of the Hub; Apply replaces its contents.
func (h *Hub) Registry() *Registry { return h.reg }

// Specs returns the configuration in force. The caller must not modify it.
func (h *Hub) Specs() []Spec {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.specs
}

// OnApply registers f, called with the new configuration after every one
// Apply (or Run) puts in force, in order. f runs under the Hub's lock: it
// must not call the Hub. Register before Run starts, so that no
// configuration is applied between reading Specs and registering.
func (h *Hub) OnApply(f func([]Spec)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onApply = append(h.onApply, f)
}

// build returns the Accounts of specs, reusing the token cache of each
// appid and pointing its fetches at the spec's credentials.
func (h *Hub) build(specs []Spec) ([]*Account, error) {
	out := make([]*Account, 0, len(specs))
	for i := range specs {
		s := &specs[i]
		cur, ok := h.creds[s.AppID]
		if !ok {
			cur = &atomic.Pointer[Spec]{}
			cur.Store(s)
			tc, err := wechat.NewTokenCache(h.cfg.RDB, wechat.TokenCacheConfig{AppID: s.AppID, Fetch: h.fetcher(cur), Logger: h.log.Named("token")})
			if err != nil {
				return nil, err
			}
			h.creds[s.AppID], h.tokens[s.AppID] = cur, tc
		}
		limits := make(map[string]ratelimit.Limit, len(s.Limits))
		for api, l := range s.Limits {
			l.Daily = s.DailyQuota[api]
			limits[api] = l
		}
		out = append(out, &Account{ID: s.ID, AppID: s.AppID, Tokens: h.tokens[s.AppID],
			Limits: limits, Default: limits[wechat.APITemplateSend], Mass: s.Mass, Protection: s.Protection.WithDefaults(),
			Location: s.Location})
	}
	return out, nil
}

// fetcher fetches a token with the credentials cur holds at the time.
func (h *Hub) fetcher(cur *atomic.Pointer[Spec]) wechat.FetchFunc {
	return func(ctx context.Context) (wechat.AccessToken, error) {
		s := cur.Load()
		var t wechat.AccessToken
		var err error
		if s.TokenAPI == TokenAPIPlain {
			t, err = h.cfg.WeChat.PlainToken(ctx, s.AppID, s.Secret)
		} else {
			t, err = h.cfg.WeChat.StableToken(ctx, s.AppID, s.Secret, false)
		}
		h.metrics.TokenRefresh(s.ID, err)
		return t, err
	}
}

// Apply makes specs the accounts in force: the Registry's accounts are
// replaced at once; every appid keeps its token cache, whose next fetch
// uses the new appsecret and token API; a token error remembered from an
// old appsecret is forgotten in Redis (ctx bounds that); then the OnApply
// funcs are called. If specs are refused (an empty list, a duplicate id or
// appid), the accounts in force stay.
func (h *Hub) Apply(ctx context.Context, specs []Spec) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	accts, err := h.build(specs)
	if err != nil {
		return err
	}
	if err := h.reg.Replace(accts...); err != nil {
		return err
	}
	for i := range specs {
		s := &specs[i]
		old := h.creds[s.AppID].Swap(s)
		if old.Secret != s.Secret || old.TokenAPI != s.TokenAPI {
			// A token error remembered from the old secret would keep
			// every process from fetching for a while.
			if err := h.cfg.RDB.ClearTokenError(ctx, s.AppID); err != nil {
				h.log.Warn("forget the token error of the old appsecret", zap.String("account", s.ID), zap.Error(err))
			}
		}
	}
	h.specs = specs
	for _, f := range h.onApply {
		f(specs)
	}
	return nil
}

// Reload makes a running Run read the accounts file at once (call it on
// SIGHUP). It never blocks: reloads asked for while one is pending are
// one reload.
func (h *Hub) Reload() {
	select {
	case h.reload <- struct{}{}:
	default:
	}
}

// Run keeps the accounts in step with the accounts file (HubConfig.Path)
// until ctx ends: it reads the file and the secret files it names every
// Interval and on Reload, and applies a configuration that differs from the
// one in force (see Watch): rotated secrets, new rates and callbacks, added
// or removed accounts. A file that no longer loads is logged and ignored.
// Run returns nil when ctx ends, or at once without a Path. Run it once.
func (h *Hub) Run(ctx context.Context) error {
	if h.cfg.Path == "" {
		return nil
	}
	return Watch(ctx, WatchConfig{
		Path: h.cfg.Path, Defaults: h.cfg.Defaults, Getenv: h.cfg.Getenv,
		Interval: h.cfg.Interval,
		Reload:   h.reload,
		Apply: func(specs []Spec, _ Changes) error {
			return h.Apply(ctx, specs)
		},
		Logger: h.log.Named("accounts"),
	}, h.Specs())
}
