// Command wxmass sends WeChat Official Account messages to very many users,
// reliably and inside WeChat's limits. Run `wxmass --help` for the
// subcommands; every flag also has a WXMASS_* environment variable.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	_ "time/tzdata" // quota resets are computed in Asia/Shanghai even where the system has no zoneinfo

	"github.com/redis/go-redis/v9"
	"github.com/urfave/cli/v3"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/monitoring"
)

// Exit codes scripts can rely on.
const (
	exitOK      = 0
	exitFailure = 1 // the command ran and failed
	exitUsage   = 2 // bad flags, configuration or input
)

// usageError marks errors in the command line or configuration.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// app holds what main builds once and the subcommands share.
type app struct {
	log *zap.Logger
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	a := &app{log: zap.NewNop()}
	err := a.command().Run(ctx, os.Args)
	_ = a.log.Sync()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "wxmass:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(exitUsage)
		}
		var re runEndedError
		if errors.As(err, &re) {
			os.Exit(exitRunEnded)
		}
		os.Exit(exitFailure)
	}
	os.Exit(exitOK)
}

func (a *app) command() *cli.Command {
	return &cli.Command{
		Name:    "wxmass",
		Usage:   "send WeChat Official Account messages to very many users, inside WeChat's limits",
		Version: version(),
		Flags:   globalFlags(),
		Before: func(ctx context.Context, cmd *cli.Command) (context.Context, error) {
			log, err := monitoring.NewLogger(monitoring.LoggerConfig{
				Level:  cmd.String(flagLogLevel),
				Format: cmd.String(flagLogFormat),
				Output: os.Stderr,
			})
			if err != nil {
				return ctx, usageError{err}
			}
			a.log = log
			redis.SetLogger(redisLogger{log.Named("redis")})
			return ctx, nil
		},
		Commands: []*cli.Command{
			a.fakeWechatCommand(),
			a.demoCommand(),
			a.tokenCommand(),
			a.workerCommand(),
			a.serveCommand(),
			a.allCommand(),
			a.campaignCommand(),
			a.suppressCommand(),
			a.benchCommand(),
		},
	}
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return bi.Main.Version + " (" + s.Value[:12] + ")"
			}
		}
		return bi.Main.Version
	}
	return "devel"
}

// redisLogger writes go-redis's own messages (failed dials, reconnects,
// Sentinel failovers) through zap, as JSON like every other line.
type redisLogger struct{ log *zap.Logger }

func (l redisLogger) Printf(_ context.Context, format string, v ...any) {
	l.log.Warn(fmt.Sprintf(format, v...))
}
