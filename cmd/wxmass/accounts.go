package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/urfave/cli/v3"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/secret"
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

// watchAccounts keeps rt's accounts in step with --accounts-file until ctx
// ends or stop is called: hub.Run reads it again every
// --accounts-reload-interval, and SIGHUP reads it at once. stop waits for
// both to end. Without the file it does nothing, and SIGHUP keeps its
// default action.
func (a *app) watchAccounts(ctx context.Context, cmd *cli.Command, hub *account.Hub) (stop func()) {
	if cmd.String(flagAccountsFile) == "" {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				hub.Reload()
			}
		}
	})
	wg.Go(func() {
		if err := hub.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			a.log.Error("accounts watch", zap.Error(err))
		}
	})
	return func() {
		cancel()
		wg.Wait()
		signal.Stop(hup)
	}
}

// hubConfig is the account.Hub configuration of the flags: the accounts
// file and its reload interval (none for commands without them, such as
// demo).
func (a *app) hubConfig(cmd *cli.Command, wc *wechat.Client, r *rdb.RDB) account.HubConfig {
	return account.HubConfig{
		WeChat: wc, RDB: r, Logger: a.log,
		Path:     cmd.String(flagAccountsFile),
		Defaults: accountDefaults(cmd),
		Getenv:   os.Getenv,
		Interval: cmd.Duration(flagAccountsReload),
	}
}
