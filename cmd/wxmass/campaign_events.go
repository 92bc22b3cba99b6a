package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/urfave/cli/v3"
)

// Flags of `wxmass campaign events`.
const (
	flagEventsLimit = "limit"
	flagEventsJSON  = "json"
	// eventsPageMax is the most events the API answers per page.
	eventsPageMax = 200
)

// auditEvent is an event of GET /v1/campaigns/{id}/events.
type auditEvent struct {
	At        string `json:"at"`
	Key       string `json:"key"`
	Via       string `json:"via"`
	Action    string `json:"action"`
	Campaign  string `json:"campaign"`
	Run       int    `json:"run,omitempty"`
	Status    int    `json:"status"`
	Code      string `json:"code,omitempty"`
	Remote    string `json:"remote"`
	RequestID string `json:"request_id"`
}

// eventsPage is a page of the audit trail, as the API answers it.
type eventsPage struct {
	Events     []auditEvent `json:"events"`
	NextBefore string       `json:"next_before,omitempty"`
}

// campaignEventsCommand is `wxmass campaign events ID`: who did what to the
// campaign, newest first.
func campaignEventsCommand(withClient func(func(context.Context, *cli.Command, *apiClient) error) cli.ActionFunc,
	idArg func(*cli.Command) (string, error)) *cli.Command {
	return &cli.Command{
		Name: "events", Usage: "print the campaign's audit trail, newest first: who created, started, paused... it, with which key, and the answer", ArgsUsage: "ID",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: flagEventsLimit, Value: 50, Usage: "how many events, newest first", Sources: sources(flagEventsLimit)},
			&cli.BoolFlag{Name: flagEventsJSON, Usage: "print the events as the API answers them (JSON)", Sources: sources(flagEventsJSON)},
		},
		Action: withClient(func(ctx context.Context, cmd *cli.Command, c *apiClient) error {
			id, err := idArg(cmd)
			if err != nil {
				return err
			}
			limit := int(cmd.Int(flagEventsLimit))
			if limit < 1 {
				return usagef("--%s: want at least 1, got %d", flagEventsLimit, limit)
			}
			page, err := c.events(ctx, id, limit)
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
			return printEvents(w, page)
		}),
	}
}

// events reads the newest limit events of the campaign's trail, page by
// page; NextBefore is the cursor of what is left.
func (c *apiClient) events(ctx context.Context, id string, limit int) (eventsPage, error) {
	out := eventsPage{Events: []auditEvent{}}
	before := ""
	for len(out.Events) < limit {
		q := url.Values{"limit": {strconv.Itoa(min(limit-len(out.Events), eventsPageMax))}}
		if before != "" {
			q.Set("before", before)
		}
		var page eventsPage
		if err := c.do(ctx, "GET", "/v1/campaigns/"+url.PathEscape(id)+"/events?"+q.Encode(), "", nil, &page); err != nil {
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

// printEvents prints the events as a table: time, key, action, run,
// result.
func printEvents(w io.Writer, page eventsPage) error {
	if len(page.Events) == 0 {
		_, err := fmt.Fprintln(w, "no events")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "time\tkey\taction\trun\tresult")
	for _, e := range page.Events {
		run := "-"
		if e.Run != 0 {
			run = strconv.Itoa(e.Run)
		}
		result := strconv.Itoa(e.Status)
		if e.Code != "" {
			result += " " + e.Code
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.At, e.Key, e.Action, run, result)
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
