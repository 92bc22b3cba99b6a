package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v3"
)

// campaignDeleteCommand is `wxmass campaign delete ID`: DELETE
// /v1/campaigns/{id}. A campaign with a live run (409) or an unknown one
// (404) exits 2, as every 4xx answer does.
func campaignDeleteCommand(withClient func(func(context.Context, *cli.Command, *apiClient) error) cli.ActionFunc,
	idArg func(*cli.Command) (string, error)) *cli.Command {
	return &cli.Command{
		Name: "delete", ArgsUsage: "ID",
		Usage: "delete a campaign and everything of it (runs, outcomes, audience, audit trail, schedule); refused for a running, paused or stopping one",
		Action: withClient(func(ctx context.Context, cmd *cli.Command, c *apiClient) error {
			id, err := idArg(cmd)
			if err != nil {
				return err
			}
			if err := c.do(ctx, "DELETE", "/v1/campaigns/"+id, "", nil, nil); err != nil {
				return err
			}
			fmt.Fprintf(cmd.Root().Writer, "campaign %s: deleted\n", id)
			return nil
		}),
	}
}
