package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/urfave/cli/v3"
)

// Flags of `wxmass campaign test`.
const (
	flagTestTo     = "to"
	flagTestWXName = "wxname"
	flagTestAs     = "as"
)

// errTestFailed is the error (exit 1) of a test send that some target did
// not get.
var errTestFailed = errors.New("the test did not reach every target")

// testSendAnswer is the answer of POST /v1/campaigns/{id}/test.
type testSendAnswer struct {
	As      string `json:"as"`
	OK      bool   `json:"ok"`
	Results []struct {
		To     string `json:"to"`
		WXName string `json:"wxname"`
		callOutcome
	} `json:"results"`
}

// callOutcome is WeChat's answer to one call the API made for the CLI (a
// test send's target, a mass delete's batch).
type callOutcome struct {
	OK      bool   `json:"ok"`
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
	Meaning string `json:"meaning"`
}

// describe is done when the call did it, else "FAILED: " with WeChat's
// errcode, its meaning and errmsg.
func (o callOutcome) describe(done string) string {
	switch {
	case o.OK:
		return done
	case o.ErrCode != 0 && o.Meaning != "":
		return fmt.Sprintf("FAILED: errcode %d (%s): %s", o.ErrCode, o.Meaning, o.ErrMsg)
	case o.ErrCode != 0:
		return fmt.Sprintf("FAILED: errcode %d: %s", o.ErrCode, o.ErrMsg)
	}
	return "FAILED: " + o.ErrMsg
}

// campaignTestCommand is `wxmass campaign test ID --to OPENID...`: POST
// /v1/campaigns/{id}/test. It prints one line per target and exits 0 when
// every target got the message, 1 when some did not (WeChat refused it or
// did not answer), and 2 when the API refused the request (any 4xx).
func campaignTestCommand(withClient func(func(context.Context, *cli.Command, *apiClient) error) cli.ActionFunc,
	idArg func(*cli.Command) (string, error)) *cli.Command {
	return &cli.Command{
		Name: "test", ArgsUsage: "ID",
		Usage: "send the campaign's message to test openids (--to) or, for mass, WeChat IDs (--wxname), outside any run; " +
			"exits 1 when some target did not get it",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: flagTestTo, Usage: "a test openid (repeat for more; 1 to 20 targets in all)", Sources: sources(flagTestTo)},
			&cli.StringSliceFlag{Name: flagTestWXName, Usage: "a WeChat ID to preview a mass message to (repeat for more)", Sources: sources(flagTestWXName)},
			&cli.StringFlag{Name: flagTestAs, Usage: "the audience recipient whose variables the message is rendered with (default: the first with variables)", Sources: sources(flagTestAs)},
		},
		Action: withClient(func(ctx context.Context, cmd *cli.Command, c *apiClient) error {
			id, err := idArg(cmd)
			if err != nil {
				return err
			}
			req := map[string]any{}
			if to := cmd.StringSlice(flagTestTo); len(to) > 0 {
				req["to"] = to
			}
			if names := cmd.StringSlice(flagTestWXName); len(names) > 0 {
				req["wxnames"] = names
			}
			if len(req) == 0 {
				return usagef("name at least one target: --%s OPENID or, for mass, --%s NAME", flagTestTo, flagTestWXName)
			}
			if as := cmd.String(flagTestAs); as != "" {
				req["as"] = as
			}
			body, err := json.Marshal(req)
			if err != nil {
				return err
			}
			var out testSendAnswer
			if err := c.do(ctx, "POST", "/v1/campaigns/"+url.PathEscape(id)+"/test", "application/json", bytes.NewReader(body), &out); err != nil {
				return err
			}
			w := cmd.Root().Writer
			if out.As != "" {
				fmt.Fprintf(w, "campaign %s: test rendered with the variables of %s\n", id, out.As)
			}
			for _, r := range out.Results {
				target := r.To
				if r.WXName != "" {
					target = "wxname " + r.WXName
				}
				fmt.Fprintf(w, "%s: %s\n", target, r.describe("ok"))
			}
			if !out.OK {
				return errTestFailed
			}
			return nil
		}),
	}
}
