package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/urfave/cli/v3"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/monitoring"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat"
)

// Flags of the accounts file.
const (
	flagAccountsFile   = "accounts-file"
	flagAccountsReload = "accounts-reload-interval"
)

func accountsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagAccountsFile, Usage: "YAML file of the Official Accounts to send for (id, appid, appsecret_file or appsecret_env, token_api, rate, burst, daily_quota, callback); re-read every --" + flagAccountsReload + " and on SIGHUP, so rotated secrets take effect without a restart. Without it, --" + flagAppID + " and " + envAppSecret + " configure one account", TakesFile: true, Sources: sources(flagAccountsFile)},
		&cli.DurationFlag{Name: flagAccountsReload, Value: account.WatchIntervalDefault, Usage: "how often the accounts file and the secret files it names are read again", Sources: sources(flagAccountsReload)},
	}
}

// loadSpecs reads the accounts the flags configure: the accounts file, or
// the one account of --appid and its appsecret.
func loadSpecs(cmd *cli.Command) ([]account.Spec, error) {
	d := accountDefaults(cmd)
	if d.TokenAPI != account.TokenAPIStable && d.TokenAPI != account.TokenAPIPlain {
		return nil, usagef("--%s: %q is not stable or plain", flagTokenAPI, d.TokenAPI)
	}
	if d.Rate <= 0 {
		return nil, usagef("--%s must be positive", flagRate)
	}
	if path := cmd.String(flagAccountsFile); path != "" {
		if cmd.String(flagAppID) != "" || cmd.String(flagAppSecretFile) != "" {
			return nil, usagef("--%s configures the accounts: drop --%s and --%s", flagAccountsFile, flagAppID, flagAppSecretFile)
		}
		specs, err := account.LoadFile(path, d, os.Getenv)
		if err != nil {
			return nil, usageError{err}
		}
		return specs, nil
	}
	cred, err := loadAccount(cmd)
	if err != nil {
		return nil, err
	}
	s := singleSpec(cred, d)
	if token := strings.TrimSpace(os.Getenv(envCallbackToken)); token != "" {
		s.Callback = &account.CallbackSpec{
			Mode:           cmd.String(flagCallbackMode),
			Token:          secret.New(token),
			AESKey:         secret.New(strings.TrimSpace(os.Getenv(envCallbackAESKey))),
			PreviousAESKey: secret.New(strings.TrimSpace(os.Getenv(envCallbackAESKeyPrev))),
		}
	}
	return []account.Spec{s}, nil
}

// singleSpec is the account of cred with the flags' limits on every API.
func singleSpec(cred credentials, d account.Defaults) account.Spec {
	burst := d.Burst
	if burst <= 0 {
		burst = max(1, int(d.Rate/10))
	}
	l := ratelimit.Limit{Rate: d.Rate, Burst: burst}
	return account.Spec{ID: cred.AppID, AppID: cred.AppID, Secret: cred.Secret, TokenAPI: d.TokenAPI,
		Limits: map[string]ratelimit.Limit{wechat.APITemplateSend: l, wechat.APICustomSend: l, wechat.APIBizSend: l}}
}

// accountDefaults are the flags' defaults for what the accounts file
// leaves out. Commands without --rate get 100/s (they do not send).
func accountDefaults(cmd *cli.Command) account.Defaults {
	d := account.Defaults{Rate: cmd.Float(flagRate), Burst: int(cmd.Int(flagBurst)), TokenAPI: cmd.String(flagTokenAPI)}
	if d.Rate == 0 && !cmd.IsSet(flagRate) {
		d.Rate = 100
	}
	return d
}

// accountHub keeps the process's accounts in step with their
// configuration: one token cache per appid for the life of the process,
// fetching with the appsecret in force, and the registry the pipeline
// reads.
type accountHub struct {
	reg     *account.Registry
	wc      *wechat.Client
	rdb     *rdb.RDB
	metrics *monitoring.Metrics
	log     *zap.Logger

	mu     sync.Mutex
	specs  []account.Spec
	creds  map[string]*atomic.Pointer[account.Spec] // by appid
	tokens map[string]*wechat.TokenCache            // by appid
	// onApply is called after every applied configuration (the callback
	// receiver rebuilds its handlers).
	onApply []func([]account.Spec)
}

func newAccountHub(wc *wechat.Client, r *rdb.RDB, m *monitoring.Metrics, log *zap.Logger, specs []account.Spec) (*accountHub, error) {
	h := &accountHub{wc: wc, rdb: r, metrics: m, log: log,
		creds: map[string]*atomic.Pointer[account.Spec]{}, tokens: map[string]*wechat.TokenCache{}}
	accts, err := h.build(specs)
	if err != nil {
		return nil, err
	}
	if h.reg, err = account.NewRegistry(accts...); err != nil {
		return nil, err
	}
	h.specs = specs
	return h, nil
}

// build returns the Accounts of specs, reusing the token cache of each
// appid and pointing its fetches at the spec's credentials.
func (h *accountHub) build(specs []account.Spec) ([]*account.Account, error) {
	out := make([]*account.Account, 0, len(specs))
	for i := range specs {
		s := &specs[i]
		cur, ok := h.creds[s.AppID]
		if !ok {
			cur = &atomic.Pointer[account.Spec]{}
			cur.Store(s)
			tc, err := wechat.NewTokenCache(h.rdb, wechat.TokenCacheConfig{AppID: s.AppID, Fetch: h.fetcher(cur), Logger: h.log.Named("token")})
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
		out = append(out, &account.Account{ID: s.ID, AppID: s.AppID, Tokens: h.tokens[s.AppID],
			Limits: limits, Default: limits[wechat.APITemplateSend]})
	}
	return out, nil
}

// fetcher fetches a token with the credentials cur holds at the time.
func (h *accountHub) fetcher(cur *atomic.Pointer[account.Spec]) wechat.FetchFunc {
	return func(ctx context.Context) (wechat.AccessToken, error) {
		s := cur.Load()
		var t wechat.AccessToken
		var err error
		if s.TokenAPI == account.TokenAPIPlain {
			t, err = h.wc.PlainToken(ctx, s.AppID, s.Secret)
		} else {
			t, err = h.wc.StableToken(ctx, s.AppID, s.Secret, false)
		}
		h.metrics.TokenRefresh(s.ID, err)
		return t, err
	}
}

// apply makes specs the accounts in force.
func (h *accountHub) apply(ctx context.Context, specs []account.Spec, c account.Changes) error {
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
			if err := h.rdb.ClearTokenError(ctx, s.AppID); err != nil {
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

// current returns the specs in force.
func (h *accountHub) current() []account.Spec {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.specs
}

// watch keeps the accounts in step with --accounts-file until ctx ends;
// SIGHUP reads it at once. Without the file it does nothing.
func (h *accountHub) watch(ctx context.Context, cmd *cli.Command) {
	path := cmd.String(flagAccountsFile)
	if path == "" {
		return
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	reload := make(chan struct{}, 1)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				select {
				case reload <- struct{}{}:
				default:
				}
			}
		}
	}()
	d := accountDefaults(cmd)
	go func() {
		err := account.Watch(ctx, account.WatchConfig{
			Path: path, Defaults: d, Getenv: os.Getenv,
			Interval: cmd.Duration(flagAccountsReload),
			Reload:   reload,
			Apply: func(specs []account.Spec, c account.Changes) error {
				return h.apply(ctx, specs, c)
			},
			Logger: h.log.Named("accounts"),
		}, h.current())
		if err != nil && !errors.Is(err, context.Canceled) {
			h.log.Error("accounts watch", zap.Error(err))
		}
	}()
}

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
