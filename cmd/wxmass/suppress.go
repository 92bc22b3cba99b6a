package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"
)

// Flags of `wxmass suppress`.
const (
	flagSuppressAccount = "account"
	flagSuppressLimit   = "limit"
	flagSuppressCursor  = "cursor"
	flagSuppressAll     = "all"
	flagSuppressNote    = "note"
)

// suppression is an entry of GET /v1/accounts/{account}/suppressions.
type suppression struct {
	OpenID string `json:"openid"`
	Reason string `json:"reason"`
	Code   int    `json:"code"`
	At     string `json:"at"`
	Source string `json:"source"`
	Note   string `json:"note"`
}

// suppressionPage is a page of a suppression list.
type suppressionPage struct {
	Entries    []suppression `json:"entries"`
	NextCursor string        `json:"next_cursor"`
	Total      int64         `json:"total"`
}

// suppressCommand is `wxmass suppress
// list|get|add|remove|import|export|events --account ID`: the client of an
// account's suppression list in the API, and of the account's audit trail.
func (a *app) suppressCommand() *cli.Command {
	// withAccount runs f with the client and the path of the account.
	withAccount := func(f func(ctx context.Context, cmd *cli.Command, c *apiClient, path string) error) cli.ActionFunc {
		return func(ctx context.Context, cmd *cli.Command) error {
			acct := strings.TrimSpace(cmd.String(flagSuppressAccount))
			if acct == "" {
				return usagef("--%s: name the account (its id or appid)", flagSuppressAccount)
			}
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			return f(ctx, cmd, c, "/v1/accounts/"+url.PathEscape(acct))
		}
	}
	// withList runs f with the client and the path of the account's list.
	withList := func(f func(ctx context.Context, cmd *cli.Command, c *apiClient, path string) error) cli.ActionFunc {
		return withAccount(func(ctx context.Context, cmd *cli.Command, c *apiClient, path string) error {
			return f(ctx, cmd, c, path+"/suppressions")
		})
	}
	openidArgs := func(cmd *cli.Command, what string) ([]string, error) {
		if cmd.Args().Len() == 0 {
			return nil, usagef("want %s", what)
		}
		return cmd.Args().Slice(), nil
	}
	return &cli.Command{
		Name: "suppress",
		Usage: "the client of an account's suppression list in the HTTP API: list, get, add, remove, import, export " +
			"(the users no campaign of the account sends to), and events (the account's audit trail; API key in " + envAPIKey + ")",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: flagAPIURL, Value: "http://127.0.0.1:8080", Usage: "the HTTP API of wxmass serve", Sources: sources(flagAPIURL)},
			&cli.StringFlag{Name: flagSuppressAccount, Usage: "the account whose list it is, by id or appid (required)", Sources: sources(flagSuppressAccount)},
		},
		Commands: []*cli.Command{
			{
				Name: "list", Usage: "print the list as a table, a page at a time (--all: every page)",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: flagSuppressLimit, Value: 100, Usage: "about how many entries a page holds, 1 to 1000", Sources: sources(flagSuppressLimit)},
					&cli.StringFlag{Name: flagSuppressCursor, Usage: "where the page starts: the cursor a page before printed", Sources: sources(flagSuppressCursor)},
					&cli.BoolFlag{Name: flagSuppressAll, Usage: "follow the cursors to the end of the list", Sources: sources(flagSuppressAll)},
				},
				Action: withList(func(ctx context.Context, cmd *cli.Command, c *apiClient, path string) error {
					if cmd.Args().Len() > 0 {
						return usagef("list takes no arguments")
					}
					return listSuppressions(ctx, cmd.Root().Writer, cmd.Root().ErrWriter, c, path,
						int(cmd.Int(flagSuppressLimit)), cmd.String(flagSuppressCursor), cmd.Bool(flagSuppressAll))
				}),
			},
			{
				Name: "get", Usage: "print a user's entry (exit 2 when the user is not on the list)", ArgsUsage: "OPENID",
				Action: withList(func(ctx context.Context, cmd *cli.Command, c *apiClient, path string) error {
					if cmd.Args().Len() != 1 {
						return usagef("want one openid")
					}
					var e suppression
					if err := c.do(ctx, "GET", path+"/"+url.PathEscape(cmd.Args().First()), "", nil, &e); err != nil {
						return err
					}
					_, err := fmt.Fprintln(cmd.Root().Writer, suppressionLine(e))
					return err
				}),
			},
			{
				Name: "add", Usage: "put users on the list (reason manual, with your key's name and --note); a user on it already gets this entry instead", ArgsUsage: "OPENID...",
				Flags: []cli.Flag{&cli.StringFlag{Name: flagSuppressNote, Usage: "why, for the operators who read the list (one line, at most 200 characters)", Sources: sources(flagSuppressNote)}},
				Action: withList(func(ctx context.Context, cmd *cli.Command, c *apiClient, path string) error {
					openids, err := openidArgs(cmd, "one openid or more")
					if err != nil {
						return err
					}
					body, err := json.Marshal(map[string]any{"openids": openids, "note": cmd.String(flagSuppressNote)})
					if err != nil {
						return err
					}
					var out struct{ Added, Updated int }
					if err := c.do(ctx, "POST", path, "application/json", bytes.NewReader(body), &out); err != nil {
						return err
					}
					_, err = fmt.Fprintf(cmd.Root().Writer, "added %d, updated %d\n", out.Added, out.Updated)
					return err
				}),
			},
			{
				Name: "remove", Usage: "take users off the list, whatever the reason (exit 2 when one was not on it)", ArgsUsage: "OPENID...",
				Action: withList(func(ctx context.Context, cmd *cli.Command, c *apiClient, path string) error {
					openids, err := openidArgs(cmd, "one openid or more")
					if err != nil {
						return err
					}
					w, missing := cmd.Root().Writer, 0
					for _, o := range openids {
						err := c.do(ctx, "DELETE", path+"/"+url.PathEscape(o), "", nil, nil)
						var f *apiFailure
						switch {
						case err == nil:
							fmt.Fprintf(w, "%s: removed\n", o)
						case errors.As(err, &f) && f.Code == "not_suppressed":
							fmt.Fprintf(w, "%s: not on the list\n", o)
							missing++
						default:
							return fmt.Errorf("%s: %w", o, err)
						}
					}
					if missing > 0 {
						return usagef("%d of the %d users were not on the list", missing, len(openids))
					}
					return nil
				}),
			},
			{
				Name: "import", Usage: "put the users of a CSV file (- for stdin) on the list: openid or openid,note a line, a header openid[,note] allowed; bad lines are reported by number and skipped", ArgsUsage: "FILE",
				Action: withList(func(ctx context.Context, cmd *cli.Command, c *apiClient, path string) error {
					if cmd.Args().Len() != 1 {
						return usagef("want one file (- for stdin)")
					}
					var in io.Reader = os.Stdin
					if name := cmd.Args().First(); name != "-" {
						f, err := os.Open(name)
						if err != nil {
							return usagef("%w", err)
						}
						defer f.Close()
						in = f
					}
					var out struct {
						Added, Updated, Bad int
						BadLines            []struct {
							Line  int
							Error string
						} `json:"bad_lines"`
					}
					if err := c.do(ctx, "PUT", path+"/import", "text/csv", in, &out); err != nil {
						return err
					}
					w := cmd.Root().Writer
					fmt.Fprintf(w, "added %d, updated %d, bad lines %d\n", out.Added, out.Updated, out.Bad)
					for _, l := range out.BadLines {
						fmt.Fprintf(w, "  line %d: %s\n", l.Line, l.Error)
					}
					if more := out.Bad - len(out.BadLines); more > 0 {
						fmt.Fprintf(w, "  (and %d more)\n", more)
					}
					return nil
				}),
			},
			{
				Name: "export", Usage: "write the whole list as CSV to stdout (openid,reason,code,at,source,note)",
				Action: withList(func(ctx context.Context, cmd *cli.Command, c *apiClient, path string) error {
					if cmd.Args().Len() > 0 {
						return usagef("export takes no arguments: redirect its output to a file")
					}
					res, err := c.send(ctx, "GET", path+"/export", "", nil)
					if err != nil {
						return err
					}
					defer res.Body.Close()
					if _, err := io.Copy(cmd.Root().Writer, res.Body); err != nil {
						return fmt.Errorf("export: the answer was cut short: %w", err)
					}
					return nil
				}),
			},
			{
				Name: "events", Usage: "print the account's audit trail, newest first: who added, removed, imported users of its list or set its mass-send speed, with which key, what (the counts; one user's openid masked) and the answer",
				Flags: eventsFlags(),
				Action: withAccount(func(ctx context.Context, cmd *cli.Command, c *apiClient, path string) error {
					if cmd.Args().Len() > 0 {
						return usagef("events takes no arguments")
					}
					return printTrail(ctx, cmd, c, path+"/events", "user", func(e auditEvent) string {
						if e.OpenID == "" {
							return "-"
						}
						return e.OpenID
					})
				}),
			},
		},
	}
}

// suppressionLine is an entry as one line: "OPENID: REASON (errcode N)
// since AT by SOURCE: NOTE".
func suppressionLine(e suppression) string {
	s := e.OpenID + ": " + e.Reason
	if e.Code != 0 {
		s += " (errcode " + strconv.Itoa(e.Code) + ")"
	}
	s += " since " + e.At + " by " + e.Source
	if e.Note != "" {
		s += ": " + e.Note
	}
	return s
}

// listSuppressions prints a page of the list from cursor, or with all
// every page (each entry once), as a table, and the list's size; without
// all, the next page's cursor goes to errw.
func listSuppressions(ctx context.Context, w, errw io.Writer, c *apiClient, path string, limit int, cursor string, all bool) error {
	if limit < 1 || limit > 1000 {
		return usagef("--%s: want 1 to 1000, got %d", flagSuppressLimit, limit)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "openid\treason\tcode\tat\tsource\tnote")
	seen := map[string]bool{}
	var page suppressionPage
	for {
		q := url.Values{"limit": {strconv.Itoa(limit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		if err := c.do(ctx, "GET", path+"?"+q.Encode(), "", nil, &page); err != nil {
			return err
		}
		for _, e := range page.Entries {
			if seen[e.OpenID] {
				continue // HSCAN may list an entry twice while Redis resizes the list
			}
			seen[e.OpenID] = true
			code := ""
			if e.Code != 0 {
				code = strconv.Itoa(e.Code)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.OpenID, e.Reason, code, e.At, e.Source, e.Note)
		}
		cursor = page.NextCursor
		if !all || cursor == "" {
			break
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%d shown; the list holds %d\n", len(seen), page.Total)
	if cursor != "" {
		fmt.Fprintf(errw, "more: --%s %s (or --%s)\n", flagSuppressCursor, cursor, flagSuppressAll)
	}
	return nil
}
