package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/urfave/cli/v3"
)

// Flags of `wxmass campaign mass-delete` and `mass-speed`.
const (
	flagMassBatch      = "batch"
	flagMassArticleIdx = "article-idx"
	flagMassSpeedSet   = "set"
)

// errMassDeleteFailed is the error (exit 1) of a mass delete that WeChat
// did not make for some batch.
var errMassDeleteFailed = errors.New("WeChat did not delete every batch's message")

// massDeleteAnswer is the answer of POST
// /v1/campaigns/{id}/runs/{run}/mass-delete.
type massDeleteAnswer struct {
	Run        int  `json:"run"`
	ArticleIdx int  `json:"article_idx"`
	OK         bool `json:"ok"`
	Results    []struct {
		Batch string `json:"batch"`
		MsgID int64  `json:"msg_id"`
		callOutcome
	} `json:"results"`
}

// campaignMassDeleteCommand is `wxmass campaign mass-delete ID [--run N]
// [--batch KEY]... [--article-idx K]`: POST
// /v1/campaigns/{id}/runs/{run}/mass-delete. It prints one line per batch
// and exits 0 when WeChat deleted every batch's message, 1 when it did not
// for some batch, and 2 when the API refused the request (any 4xx).
func campaignMassDeleteCommand(withClient func(func(context.Context, *cli.Command, *apiClient) error) cli.ActionFunc,
	idArg func(*cli.Command) (string, error), runFlag cli.Flag) *cli.Command {
	return &cli.Command{
		Name: "mass-delete", ArgsUsage: "ID",
		Usage: "delete the sent message of a mass run's batches (mass/delete; default: every batch WeChat accepted of the latest run); " +
			"exits 1 when WeChat did not delete one",
		Flags: []cli.Flag{runFlag,
			&cli.StringSliceFlag{Name: flagMassBatch, Usage: "a batch of the run, as its mass view names it (such as b0:0-8333, or all); repeat for more (default: every accepted batch)", Sources: sources(flagMassBatch)},
			&cli.IntFlag{Name: flagMassArticleIdx, Usage: "the article of an mpnews to delete, 1 to 8 (default 0: the whole message)", Sources: sources(flagMassArticleIdx)},
		},
		Action: withClient(func(ctx context.Context, cmd *cli.Command, c *apiClient) error {
			id, err := idArg(cmd)
			if err != nil {
				return err
			}
			st, err := c.run(ctx, id, int(cmd.Int("run")))
			if err != nil {
				return err
			}
			req := map[string]any{}
			if batches := cmd.StringSlice(flagMassBatch); len(batches) > 0 {
				req["batches"] = batches
			}
			if cmd.IsSet(flagMassArticleIdx) {
				req["article_idx"] = cmd.Int(flagMassArticleIdx)
			}
			body, err := json.Marshal(req)
			if err != nil {
				return err
			}
			var out massDeleteAnswer
			path := "/v1/campaigns/" + url.PathEscape(id) + "/runs/" + strconv.Itoa(st.Run) + "/mass-delete"
			if err := c.do(ctx, "POST", path, "application/json", bytes.NewReader(body), &out); err != nil {
				return err
			}
			w := cmd.Root().Writer
			what := "deleted"
			if out.ArticleIdx != 0 {
				what = "article " + strconv.Itoa(out.ArticleIdx) + " deleted"
			}
			for _, r := range out.Results {
				fmt.Fprintf(w, "%s: msg_id %d: %s\n", r.Batch, r.MsgID, r.describe(what))
			}
			if !out.OK {
				return errMassDeleteFailed
			}
			return nil
		}),
	}
}

// massSpeedAnswer is the answer of GET and PUT
// /v1/accounts/{account}/mass-speed.
type massSpeedAnswer struct {
	Account   string `json:"account"`
	Speed     int    `json:"speed"`
	RealSpeed *int   `json:"realspeed"`
}

// campaignMassSpeedCommand is `wxmass campaign mass-speed ACCOUNT [--set
// N]`: GET (or, with --set, PUT) /v1/accounts/{account}/mass-speed. A
// speed outside 0-4, an unknown account or a send to all awaiting its
// admin's confirmation (409) exits 2, as every 4xx answer does.
func campaignMassSpeedCommand(withClient func(func(context.Context, *cli.Command, *apiClient) error) cli.ActionFunc) *cli.Command {
	return &cli.Command{
		Name: "mass-speed", ArgsUsage: "ACCOUNT",
		Usage: "print an account's mass-send speed (mass/speed/get), or set it with --set (0 fastest to 4 slowest)",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: flagMassSpeedSet, Usage: "set the speed level: 0 (800,000 users a minute), 1 (600,000), 2 (450,000), 3 (300,000) or 4 (100,000)", Sources: sources(flagMassSpeedSet)},
		},
		Action: withClient(func(ctx context.Context, cmd *cli.Command, c *apiClient) error {
			if cmd.Args().Len() != 1 {
				return usagef("want one account (its id or appid), got %d arguments", cmd.Args().Len())
			}
			path := "/v1/accounts/" + url.PathEscape(cmd.Args().First()) + "/mass-speed"
			w := cmd.Root().Writer
			var out massSpeedAnswer
			if cmd.IsSet(flagMassSpeedSet) {
				body, err := json.Marshal(map[string]int{"speed": cmd.Int(flagMassSpeedSet)})
				if err != nil {
					return err
				}
				if err := c.do(ctx, "PUT", path, "application/json", bytes.NewReader(body), &out); err != nil {
					return err
				}
				fmt.Fprintf(w, "%s: mass speed set to %d\n", out.Account, out.Speed)
				return nil
			}
			if err := c.do(ctx, "GET", path, "", nil, &out); err != nil {
				return err
			}
			if out.RealSpeed == nil {
				fmt.Fprintf(w, "%s: mass speed %d\n", out.Account, out.Speed)
				return nil
			}
			fmt.Fprintf(w, "%s: mass speed %d (realspeed %d: %d,000 users a minute)\n", out.Account, out.Speed, *out.RealSpeed, *out.RealSpeed*10)
			return nil
		}),
	}
}
