package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/wxmass/wxmass/wechat"
)

func (a *app) tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "inspect the account's shared access_token",
		Commands: []*cli.Command{{
			Name:  "check",
			Usage: "get the shared token (fetching it if none is stored) and print when it was fetched and expires; the token itself is never printed",
			Action: func(ctx context.Context, cmd *cli.Command) error {
				rc, r, err := openRedis(ctx, cmd)
				if err != nil {
					return err
				}
				defer rc.Close()
				acct, err := loadAccount(cmd)
				if err != nil {
					return err
				}
				client, err := newWechatClient(cmd)
				if err != nil {
					return err
				}
				fetch, err := tokenFetcher(cmd, client, acct)
				if err != nil {
					return err
				}
				tc, err := wechat.NewTokenCache(r, wechat.TokenCacheConfig{AppID: acct.AppID, Fetch: fetch, Logger: a.log.Named("token")})
				if err != nil {
					return err
				}
				if _, err := tc.Token(ctx); err != nil {
					return err
				}
				info, err := r.TokenInfo(ctx, acct.AppID)
				if err != nil {
					return err
				}
				w := cmd.Root().Writer
				fmt.Fprintf(w, "appid:      %s\n", acct.AppID)
				fmt.Fprintf(w, "token api:  %s via %s\n", cmd.String(flagTokenAPI), client.BaseURL())
				if !info.Present {
					fmt.Fprintln(w, "token:      fetched but not stored (another process holds the lease)")
					return nil
				}
				fmt.Fprintf(w, "fetched at: %s\n", info.FetchedAt.Format(time.RFC3339))
				fmt.Fprintf(w, "refresh at: %s\n", info.RefreshAt.Format(time.RFC3339))
				fmt.Fprintf(w, "expires at: %s (in %s)\n", info.ExpiresAt.Format(time.RFC3339), time.Until(info.ExpiresAt).Round(time.Second))
				return nil
			},
		}},
	}
}
