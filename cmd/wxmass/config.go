package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v3"

	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redisconn"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat"
)

// Flag names. Each flag's environment twin is WXMASS_ and the name in upper
// case with - turned into _ (see envName).
const (
	flagLogLevel         = "log-level"
	flagLogFormat        = "log-format"
	flagRedisURL         = "redis-url"
	flagRedisPrefix      = "redis-prefix"
	flagWechatBaseURL    = "wechat-base-url"
	flagWechatFallback   = "wechat-fallback-urls"
	flagWechatTimeout    = "wechat-timeout"
	flagWechatMaxConns   = "wechat-max-conns"
	flagAppID            = "appid"
	flagAppSecretFile    = "appsecret-file"
	flagTokenAPI         = "token-api"
	flagErrcodeRules     = "errcode-rules"
	flagQuotaTimezone    = "quota-timezone"
	flagQuotaResetHour   = "quota-reset-hour"
	envAppSecret         = "WXMASS_APPSECRET"
	fallbackForDefault   = "https://api2.weixin.qq.com"
	tokenAPIStable       = "stable"
	tokenAPIPlain        = "plain"
	redisURLDefault      = "redis://127.0.0.1:6379/0"
	quotaTimezoneDefault = "Asia/Shanghai"
)

// envName is the environment variable that sets flag name.
func envName(name string) string {
	return "WXMASS_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func sources(name string) cli.ValueSourceChain { return cli.EnvVars(envName(name)) }

// globalFlags are accepted by every subcommand. Secrets are never flags:
// the appsecret comes from WXMASS_APPSECRET or the file named by
// --appsecret-file.
func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagLogLevel, Value: "info", Usage: "log level: debug, info, warn or error", Sources: sources(flagLogLevel)},
		&cli.StringFlag{Name: flagLogFormat, Value: "json", Usage: "log format: json (production) or console (readable)", Sources: sources(flagLogFormat)},
		&cli.StringFlag{Name: flagRedisURL, Value: redisURLDefault, Usage: "Redis URL: redis://[:password@]host:port/db (rediss:// for TLS), redis-sentinel://[:password@]host:port,host:port/db?master=NAME, or redis-cluster://[:password@]host:port,host:port", Sources: sources(flagRedisURL)},
		&cli.StringFlag{Name: flagRedisPrefix, Value: rdb.PrefixDefault, Usage: "prefix of every Redis key wxmass writes", Sources: sources(flagRedisPrefix)},
		&cli.StringFlag{Name: flagWechatBaseURL, Value: wechat.BaseURLDefault, Usage: "base URL of the WeChat API (for trials, the address of wxmass fakewechat, such as http://127.0.0.1:9010)", Sources: sources(flagWechatBaseURL)},
		&cli.StringFlag{Name: flagWechatFallback, Usage: "comma-separated base URLs to fail over to when the base URL cannot be reached (default: " + fallbackForDefault + " when the base URL is the default, none otherwise)", Sources: sources(flagWechatFallback)},
		&cli.DurationFlag{Name: flagWechatTimeout, Value: wechat.TimeoutDefault, Usage: "bound on one WeChat API call", Sources: sources(flagWechatTimeout)},
		&cli.IntFlag{Name: flagWechatMaxConns, Value: wechat.MaxConnsPerHostDefault, Usage: "most concurrent connections to one WeChat host", Sources: sources(flagWechatMaxConns)},
		&cli.StringFlag{Name: flagAppID, Usage: "the Official Account's appid", Sources: sources(flagAppID)},
		&cli.StringFlag{Name: flagAppSecretFile, Usage: "file holding the appsecret (or set " + envAppSecret + ")", TakesFile: true, Sources: sources(flagAppSecretFile)},
		&cli.StringFlag{Name: flagTokenAPI, Value: tokenAPIStable, Usage: "access_token API: stable (cgi-bin/stable_token, recommended) or plain (cgi-bin/token)", Sources: sources(flagTokenAPI)},
		&cli.StringFlag{Name: flagErrcodeRules, Usage: "YAML file of errcode rules that extend or override the built-in classification", TakesFile: true, Sources: sources(flagErrcodeRules)},
		&cli.StringFlag{Name: flagQuotaTimezone, Value: quotaTimezoneDefault, Usage: "time zone of WeChat's daily quota reset", Sources: sources(flagQuotaTimezone)},
		&cli.IntFlag{Name: flagQuotaResetHour, Value: 0, Usage: "hour (0-23) of WeChat's daily quota reset in --quota-timezone", Sources: sources(flagQuotaResetHour)},
	}
}

// openRedis connects to --redis-url (a single Redis, Sentinel or Cluster)
// and checks that Redis answers. It returns the parsed URL too, for asynq.
func openRedis(ctx context.Context, cmd *cli.Command) (redis.UniversalClient, *rdb.RDB, *redisconn.Options, error) {
	opts, err := redisconn.Parse(cmd.String(flagRedisURL))
	if err != nil {
		return nil, nil, nil, usagef("--%s: %w", flagRedisURL, err)
	}
	if err := rdb.CheckPrefix(cmd.String(flagRedisPrefix)); err != nil {
		return nil, nil, nil, usagef("--%s: %w", flagRedisPrefix, err)
	}
	c := opts.NewClient()
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		_ = c.Close()
		return nil, nil, nil, fmt.Errorf("redis (%s) at %s does not answer (start one, or run `make demo` which starts one): %w", opts.Topology(), opts.Redacted(), err)
	}
	return c, rdb.New(c, cmd.String(flagRedisPrefix)), opts, nil
}

// redactURL drops the password from a URL for messages.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// newWechatClient builds the WeChat client from the flags.
func newWechatClient(cmd *cli.Command) (*wechat.Client, error) {
	base := strings.TrimRight(cmd.String(flagWechatBaseURL), "/")
	urls := []string{base}
	fallback := cmd.String(flagWechatFallback)
	if fallback == "" && base == wechat.BaseURLDefault {
		fallback = fallbackForDefault
	}
	for _, f := range strings.Split(fallback, ",") {
		if f = strings.TrimSpace(f); f != "" {
			urls = append(urls, f)
		}
	}
	for i, u := range urls {
		p, err := url.Parse(u)
		if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			name := flagWechatBaseURL
			if i > 0 {
				name = flagWechatFallback
			}
			return nil, usagef("--%s: %q is not an http(s) URL", name, u)
		}
	}
	if cmd.Duration(flagWechatTimeout) <= 0 {
		return nil, usagef("--%s must be positive", flagWechatTimeout)
	}
	return wechat.New(
		wechat.WithBaseURLs(urls...),
		wechat.WithHTTPClient(&http.Client{Transport: wechat.NewTransport(int(cmd.Int(flagWechatMaxConns)))}),
		wechat.WithTimeout(cmd.Duration(flagWechatTimeout)),
	), nil
}

// credentials are one Official Account's appid and appsecret.
type credentials struct {
	AppID  string
	Secret secret.String
}

// loadAccount reads the appid flag and the appsecret from WXMASS_APPSECRET
// or --appsecret-file.
func loadAccount(cmd *cli.Command) (credentials, error) {
	a := credentials{AppID: cmd.String(flagAppID)}
	if a.AppID == "" {
		return a, usagef("--%s (%s) is required", flagAppID, envName(flagAppID))
	}
	file := cmd.String(flagAppSecretFile)
	env := os.Getenv(envAppSecret)
	switch {
	case file != "" && env != "":
		return a, usagef("set the appsecret once: %s or --%s, not both", envAppSecret, flagAppSecretFile)
	case file != "":
		s, err := secret.FromFile(file)
		if err != nil {
			return a, usagef("--%s: %w", flagAppSecretFile, err)
		}
		a.Secret = s
	case env != "":
		a.Secret = secret.New(strings.TrimSpace(env))
	default:
		return a, usagef("the appsecret is missing: set %s or --%s", envAppSecret, flagAppSecretFile)
	}
	return a, nil
}

// newRetryPolicy builds the errcode classification from the built-in table,
// the operator's rules file and the quota reset settings.
func newRetryPolicy(cmd *cli.Command) (*retry.Policy, error) {
	loc, err := time.LoadLocation(cmd.String(flagQuotaTimezone))
	if err != nil {
		return nil, usagef("--%s: %w", flagQuotaTimezone, err)
	}
	cfg := retry.Config{QuotaLocation: loc, QuotaResetHour: int(cmd.Int(flagQuotaResetHour))}
	if path := cmd.String(flagErrcodeRules); path != "" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usagef("--%s: %w", flagErrcodeRules, err)
		}
		defer f.Close()
		rules, err := retry.LoadRules(f)
		if err != nil {
			return nil, usagef("--%s %s: %w", flagErrcodeRules, path, err)
		}
		cfg.Rules = rules
	}
	p, err := retry.New(cfg)
	if err != nil {
		return nil, usageError{err}
	}
	return p, nil
}
