package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v3"
)

// Flags of `wxmass campaign events` and `wxmass suppress events`.
const (
	flagEventsLimit = "limit"
	flagEventsJSON  = "json"
	// eventsPageMax is the most events the API answers per page.
	eventsPageMax = 200
)

// auditEvent is an event of GET /v1/campaigns/{id}/events or GET
// /v1/accounts/{account}/events.
type auditEvent struct {
	At     string `json:"at"`
	Key    string `json:"key"`
	Via    string `json:"via"`
	Action string `json:"action"`
	// Campaign is a campaign's event's, Account an account's.
	Campaign  string `json:"campaign,omitempty"`
	Account   string `json:"account,omitempty"`
	Run       int    `json:"run,omitempty"`
	Status    int    `json:"status"`
	Code      string `json:"code,omitempty"`
	Remote    string `json:"remote"`
	RequestID string `json:"request_id"`
	// Targets and TargetsOK are a test send's counts.
	Targets   *int `json:"targets,omitempty"`
	TargetsOK *int `json:"targets_ok,omitempty"`
	// OpenID is the user an account's event named, masked; Counts what it
	// changed.
	OpenID string         `json:"openid,omitempty"`
	Counts map[string]int `json:"counts,omitempty"`
}

// eventsPage is a page of the audit trail, as the API answers it.
type eventsPage struct {
	Events     []auditEvent `json:"events"`
	NextBefore string       `json:"next_before,omitempty"`
}

// eventsFlags are the flags of a command that prints an audit trail.
func eventsFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: flagEventsLimit, Value: 50, Usage: "how many events, newest first", Sources: sources(flagEventsLimit)},
		&cli.BoolFlag{Name: flagEventsJSON, Usage: "print the events as the API answers them (JSON)", Sources: sources(flagEventsJSON)},
	}
}

// campaignEventsCommand is `wxmass campaign events ID`: who did what to the
// campaign, newest first.
func campaignEventsCommand(withClient func(func(context.Context, *cli.Command, *apiClient) error) cli.ActionFunc,
	idArg func(*cli.Command) (string, error)) *cli.Command {
	return &cli.Command{
		Name: "events", Usage: "print the campaign's audit trail, newest first: who created, started, paused... it, with which key, and the answer", ArgsUsage: "ID",
		Flags: eventsFlags(),
		Action: withClient(func(ctx context.Context, cmd *cli.Command, c *apiClient) error {
			id, err := idArg(cmd)
			if err != nil {
				return err
			}
			return printTrail(ctx, cmd, c, "/v1/campaigns/"+url.PathEscape(id)+"/events", "run", func(e auditEvent) string {
				if e.Run == 0 {
					return "-"
				}
				return strconv.Itoa(e.Run)
			})
		}),
	}
}

// printTrail prints the newest --limit events of the trail at path, as
// JSON (--json) or as a table whose fourth column, named column, shows
// cell of each event.
func printTrail(ctx context.Context, cmd *cli.Command, c *apiClient, path, column string, cell func(auditEvent) string) error {
	limit := int(cmd.Int(flagEventsLimit))
	if limit < 1 {
		return usagef("--%s: want at least 1, got %d", flagEventsLimit, limit)
	}
	page, err := c.events(ctx, path, limit)
	if err != nil {
		return err
	}
	w := cmd.Root().Writer
	if cmd.Bool(flagEventsJSON) {
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(page)
	}
	return printEvents(w, page, column, cell)
}

// events reads the newest limit events of the trail at path, page by
// page; NextBefore is the cursor of what is left.
func (c *apiClient) events(ctx context.Context, path string, limit int) (eventsPage, error) {
	out := eventsPage{Events: []auditEvent{}}
	before := ""
	for len(out.Events) < limit {
		q := url.Values{"limit": {strconv.Itoa(min(limit-len(out.Events), eventsPageMax))}}
		if before != "" {
			q.Set("before", before)
		}
		var page eventsPage
		if err := c.do(ctx, "GET", path+"?"+q.Encode(), "", nil, &page); err != nil {
			return eventsPage{}, err
		}
		out.Events = append(out.Events, page.Events...)
		out.NextBefore = page.NextBefore
		if page.NextBefore == "" || len(page.Events) == 0 {
			break
		}
		before = page.NextBefore
	}
	return out, nil
}

// printEvents prints the events as a table: time, key, action, column
// (cell of each event), result.
func printEvents(w io.Writer, page eventsPage, column string, cell func(auditEvent) string) error {
	if len(page.Events) == 0 {
		_, err := fmt.Fprintln(w, "no events")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "time\tkey\taction\t%s\tresult\n", column)
	for _, e := range page.Events {
		result := strconv.Itoa(e.Status)
		if e.Code != "" {
			result += " " + e.Code
		}
		switch {
		case e.Targets != nil && e.TargetsOK != nil && e.Action == "mass_delete":
			result += fmt.Sprintf(" (%d of %d batches deleted)", *e.TargetsOK, *e.Targets)
		case e.Targets != nil && e.TargetsOK != nil:
			result += fmt.Sprintf(" (%d of %d targets ok)", *e.TargetsOK, *e.Targets)
		case len(e.Counts) > 0:
			result += " (" + countsText(e.Counts) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.At, e.Key, e.Action, cell(e), result)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.NextBefore != "" {
		_, err := fmt.Fprintln(w, "(older events: raise --limit)")
		return err
	}
	return nil
}

// countsOrder is the order an event's counts are printed in; others
// follow by name.
var countsOrder = []string{"added", "updated", "removed", "bad", "speed"}

// countsText is an event's counts as text: "added 3, updated 0".
func countsText(counts map[string]int) string {
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	rank := func(name string) int {
		if i := slices.Index(countsOrder, name); i >= 0 {
			return i
		}
		return len(countsOrder)
	}
	slices.SortFunc(names, func(a, b string) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = name + " " + strconv.Itoa(counts[name])
	}
	return strings.Join(parts, ", ")
}
