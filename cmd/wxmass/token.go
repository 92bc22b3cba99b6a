package main

import (
	"context"
	"fmt"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/wxmass/wxmass/account"
)

func (a *app) tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "inspect the accounts' shared access_tokens",
		Commands: []*cli.Command{{
			Name:  "check",
			Usage: "get each account's shared token (fetching it if none is stored) and print when it was fetched and expires; the token itself is never printed",
			Flags: accountsFlags(),
			Action: func(ctx context.Context, cmd *cli.Command) error {
				rc, r, _, err := openRedis(ctx, cmd)
				if err != nil {
					return err
				}
				defer rc.Close()
				specs, err := loadSpecs(cmd)
				if err != nil {
					return err
				}
				client, err := newWechatClient(cmd)
				if err != nil {
					return err
				}
				defer client.CloseIdleConnections()
				hub, err := account.NewHub(a.hubConfig(cmd, client, r), specs)
				if err != nil {
					return err
				}
				w := cmd.Root().Writer
				for i, s := range specs {
					if i > 0 {
						fmt.Fprintln(w)
					}
					fmt.Fprintf(w, "account:    %s\n", s.ID)
					fmt.Fprintf(w, "appid:      %s\n", s.AppID)
					fmt.Fprintf(w, "token api:  %s via %s\n", s.TokenAPI, client.BaseURL())
					acct, err := hub.Registry().Get(s.ID)
					if err != nil {
						return err
					}
					if _, err := acct.Tokens.Token(ctx); err != nil {
						return fmt.Errorf("account %s: %w", s.ID, err)
					}
					info, err := r.TokenInfo(ctx, s.AppID)
					if err != nil {
						return err
					}
					if !info.Present {
						fmt.Fprintln(w, "token:      fetched but not stored (another process holds the lease)")
						continue
					}
					fmt.Fprintf(w, "fetched at: %s\n", info.FetchedAt.Format(time.RFC3339))
					fmt.Fprintf(w, "refresh at: %s\n", info.RefreshAt.Format(time.RFC3339))
					fmt.Fprintf(w, "expires at: %s (in %s)\n", info.ExpiresAt.Format(time.RFC3339), time.Until(info.ExpiresAt).Round(time.Second))
				}
				return nil
			},
		}},
	}
}
