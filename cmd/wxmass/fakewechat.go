package main

import (
	"context"
	"net"
	"os"

	"github.com/urfave/cli/v3"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/wechat/wechattest"
)

const (
	flagFakeListen = "fake-listen"
	flagFakeConfig = "fake-config"
)

func (a *app) fakeWechatCommand() *cli.Command {
	return &cli.Command{
		Name:  "fakewechat",
		Usage: "run the strict fake WeChat API server (for the demo, tests, benchmarks and load tests)",
		Description: "Serves /cgi-bin/... like api.weixin.qq.com, with tokens that expire and rotate, strict body checks, " +
			"client_msg_id dedupe, per-second and daily limits, and faults drawn from a seed. " +
			"GET /fake/stats reports calls, deliveries, duplicates and the peak one-second rate per API; " +
			"see README.md for the other /fake/ endpoints.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: flagFakeListen, Value: "127.0.0.1:9010", Usage: "address to listen on", Sources: sources(flagFakeListen)},
			&cli.StringFlag{Name: flagFakeConfig, Usage: "YAML configuration of accounts, templates, followers, terminal openids, limits and faults (testdata/demo/fake.yaml is an example)", TakesFile: true, Sources: sources(flagFakeConfig)},
		},
		Action: func(ctx context.Context, cmd *cli.Command) error {
			cfg, err := loadFakeConfig(cmd.String(flagFakeConfig))
			if err != nil {
				return err
			}
			srv, err := wechattest.New(cfg)
			if err != nil {
				return usageError{err}
			}
			ln, err := net.Listen("tcp", cmd.String(flagFakeListen))
			if err != nil {
				return usagef("--%s: %w", flagFakeListen, err)
			}
			a.log.Info("fake wechat listening", zap.String("url", "http://"+ln.Addr().String()))
			return srv.Run(ctx, ln)
		},
	}
}

// loadFakeConfig reads the fake's YAML configuration; "" is the zero Config.
func loadFakeConfig(path string) (wechattest.Config, error) {
	if path == "" {
		return wechattest.Config{}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return wechattest.Config{}, usagef("--%s: %w", flagFakeConfig, err)
	}
	defer f.Close()
	cfg, err := wechattest.LoadConfig(f)
	if err != nil {
		return wechattest.Config{}, usagef("--%s %s: %w", flagFakeConfig, path, err)
	}
	return cfg, nil
}
