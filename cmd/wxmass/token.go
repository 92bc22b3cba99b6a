package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/internal/rdb"
)

func (a *app) tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "inspect the accounts' shared access_tokens",
		Commands: []*cli.Command{{
			Name:  "check",
			Usage: "check each account's appid and appsecret with WeChat (a fresh stable_token call; exit 1 naming the errcode when refused), get its shared token (fetching it if none is stored) and print when it was fetched and expires; no token or secret is ever printed",
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
				var refused []string
				for i, s := range specs {
					if i > 0 {
						fmt.Fprintln(w)
					}
					fmt.Fprintf(w, "account:    %s\n", s.ID)
					fmt.Fprintf(w, "appid:      %s\n", s.AppID)
					fmt.Fprintf(w, "token api:  %s via %s\n", s.TokenAPI, client.BaseURL())
					// A token already stored says nothing of the secret in
					// force now: ask WeChat for a fresh one. stable_token in
					// normal mode changes no token, and its tokens are apart
					// from the plain API's, so the check disturbs nobody.
					if _, err := client.StableToken(ctx, s.AppID, s.Secret, false); err != nil {
						fmt.Fprintf(w, "secret:     REFUSED: %v\n", err)
						refused = append(refused, fmt.Sprintf("account %s: %v", s.ID, err))
						if err := printStoredToken(ctx, w, r, s.AppID, "none stored"); err != nil {
							return err
						}
						continue
					}
					fmt.Fprintln(w, "secret:     accepted by WeChat (a fresh stable_token call)")
					acct, err := hub.Registry().Get(s.ID)
					if err != nil {
						return err
					}
					if _, err := acct.Tokens.Token(ctx); err != nil {
						return fmt.Errorf("account %s: %w", s.ID, err)
					}
					if err := printStoredToken(ctx, w, r, s.AppID, "fetched but not stored (another process holds the lease)"); err != nil {
						return err
					}
				}
				if len(refused) > 0 {
					return fmt.Errorf("WeChat refused the credentials of %d of %d accounts:\n  %s", len(refused), len(specs), strings.Join(refused, "\n  "))
				}
				return nil
			},
		}},
	}
}

// printStoredToken prints when the shared token of appid was fetched and
// when it expires, or absent when none is stored; never the token.
func printStoredToken(ctx context.Context, w io.Writer, r *rdb.RDB, appid, absent string) error {
	info, err := r.TokenInfo(ctx, appid)
	if err != nil {
		return err
	}
	if !info.Present {
		fmt.Fprintln(w, "token:      "+absent)
		return nil
	}
	fmt.Fprintf(w, "fetched at: %s\n", info.FetchedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "refresh at: %s\n", info.RefreshAt.Format(time.RFC3339))
	fmt.Fprintf(w, "expires at: %s (in %s)\n", info.ExpiresAt.Format(time.RFC3339), time.Until(info.ExpiresAt).Round(time.Second))
	return nil
}
