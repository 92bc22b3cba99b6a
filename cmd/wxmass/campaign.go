package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"github.com/wxmass/wxmass/campaigns"
)

// Flags and environment of `wxmass campaign`.
const (
	flagAPIURL = "api-url"
	envAPIKey  = "WXMASS_API_KEY"
)

// exitRunEnded is the exit code of `campaign watch` when the run ended
// failed or cancelled.
const exitRunEnded = 3

// runEndedError is a watched run that ended other than completed.
type runEndedError struct{ state, reason string }

func (e runEndedError) Error() string {
	if e.reason != "" {
		return "the run ended " + e.state + ": " + e.reason
	}
	return "the run ended " + e.state
}

// apiClient is the CLI's client of the HTTP API.
type apiClient struct {
	base string
	key  string
	http *http.Client
}

// apiFailure is an error answer of the API.
type apiFailure struct {
	status int
	Code   string `json:"code"`
	Msg    string `json:"message"`
	Field  string `json:"field"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (e *apiFailure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (HTTP %d %s", e.Msg, e.status, e.Code)
	if e.Field != "" {
		fmt.Fprintf(&b, ", field %s", e.Field)
	}
	b.WriteString(")")
	for _, fe := range e.Errors {
		fmt.Fprintf(&b, "\n  %s: %s", fe.Field, fe.Message)
	}
	return b.String()
}

func newAPIClient(cmd *cli.Command) (*apiClient, error) {
	key := strings.TrimSpace(os.Getenv(envAPIKey))
	if key == "" {
		return nil, usagef("set %s to an API key of the server", envAPIKey)
	}
	base := strings.TrimRight(cmd.String(flagAPIURL), "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return nil, usagef("--%s: %q is not an http(s) URL", flagAPIURL, base)
	}
	return &apiClient{base: base, key: key, http: &http.Client{Timeout: 5 * time.Minute}}, nil
}

// do sends a request and decodes a JSON answer into out. A 4xx answer,
// whatever its body, is a usage error (exit 2): the request, the key or the
// --api-url was wrong; a 5xx answer or a transport failure is a failure
// (exit 1).
func (c *apiClient) do(ctx context.Context, method, path, contentType string, body io.Reader, out any, header ...string) error {
	res, err := c.send(ctx, method, path, contentType, body, header...)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// send sends a request and returns the answer, whose body the caller
// closes, when its status is below 400; an error answer is returned as
// do's errors.
func (c *apiClient) send(ctx context.Context, method, path, contentType string, body io.Reader, header ...string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] != "" {
			req.Header.Set(header[i], header[i+1])
		}
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if res.StatusCode < 400 {
		return res, nil
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	var env struct {
		Error *apiFailure `json:"error"`
	}
	if json.Unmarshal(raw, &env) != nil || env.Error == nil {
		// Not the API's answer: a proxy's, or another server at
		// --api-url.
		err := fmt.Errorf("%s %s: HTTP %d (not an answer of the wxmass API: is --%s right?)", method, path, res.StatusCode, flagAPIURL)
		if res.StatusCode < 500 {
			return nil, usageError{err}
		}
		return nil, err
	}
	env.Error.status = res.StatusCode
	if res.StatusCode < 500 {
		return nil, usageError{env.Error}
	}
	return nil, env.Error
}

// runStatus is GET /v1/campaigns/{id}/runs/{run}.
type runStatus struct {
	Campaign string           `json:"campaign"`
	Account  string           `json:"account"`
	Run      int              `json:"run"`
	State    string           `json:"state"`
	Final    string           `json:"final"`
	Reason   string           `json:"reason"`
	Size     int64            `json:"size"`
	Expanded int64            `json:"expanded"`
	Settled  int64            `json:"settled"`
	Started  time.Time        `json:"started"`
	Finished *time.Time       `json:"finished"`
	Counters map[string]int64 `json:"counters"`
	Waiting  *struct {
		Reason string     `json:"reason"`
		Since  time.Time  `json:"since"`
		Until  *time.Time `json:"until"`
	} `json:"waiting"`
	Protection *runProtection `json:"protection"`
	Mass       *massStatus    `json:"mass"`
}

// runProtection is a run's protection object: the recipients the
// account's protection held back.
type runProtection struct {
	Suppressed    int64 `json:"suppressed"`
	Capped        int64 `json:"capped"`
	OutsideWindow int64 `json:"outside_window"`
	Deferred      struct {
		Cap  int64 `json:"cap"`
		Rest int64 `json:"rest"`
	} `json:"deferred"`
	DeferredNow int64      `json:"deferred_now"`
	NextDue     *time.Time `json:"next_due"`
}

// cliTime is how the CLI shows a time of day to come: local, to the
// minute.
func cliTime(t time.Time) string { return t.Local().Format("2006-01-02 15:04 MST") }

// protectionLine says what the account's protection held back of a run,
// the non-zero counts only, or "".
func protectionLine(p *runProtection) string {
	if p == nil {
		return ""
	}
	var parts []string
	for _, c := range []struct {
		what string
		n    int64
	}{
		{"suppressed", p.Suppressed}, {"capped", p.Capped}, {"outside window", p.OutsideWindow},
		{"deferred by caps", p.Deferred.Cap}, {"deferred by rests", p.Deferred.Rest},
	} {
		if c.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c.what, c.n))
		}
	}
	if p.DeferredNow > 0 {
		now := fmt.Sprintf("deferred now %d", p.DeferredNow)
		if p.NextDue != nil {
			now += " (next " + cliTime(*p.NextDue) + ")"
		}
		parts = append(parts, now)
	}
	return strings.Join(parts, " · ")
}

// massStatus is the part of a mass run's status the CLI prints.
type massStatus struct {
	Note           string `json:"note"`
	CappedAtLaunch any    `json:"capped_at_launch"`
	Batches        []struct {
		Batch      string     `json:"batch"`
		Recipients int64      `json:"recipients"`
		MsgID      int64      `json:"msg_id"`
		Duplicate  bool       `json:"duplicate"`
		State      string     `json:"state"`
		ConfirmBy  *time.Time `json:"confirm_by"`
		Result     *struct {
			WeChatStatus string `json:"wechat_status"`
			Meaning      string `json:"meaning"`
			HasCounts    bool   `json:"has_counts"`
			TotalCount   int64  `json:"total_count"`
			FilterCount  int64  `json:"filter_count"`
			SentCount    int64  `json:"sent_count"`
			ErrorCount   int64  `json:"error_count"`
			Via          string `json:"via"`
		} `json:"result"`
	} `json:"batches"`
	Totals struct {
		Filtered  int64 `json:"filtered"`
		SentCount int64 `json:"sent_count"`
	} `json:"totals"`
}

// awaitingConfirmation returns the deadline of a batch of the run that
// waits for an admin's confirmation, if one does.
func (st runStatus) awaitingConfirmation() (time.Time, bool) {
	if st.Mass == nil {
		return time.Time{}, false
	}
	for _, b := range st.Mass.Batches {
		if b.State == "awaiting_confirmation" && b.ConfirmBy != nil {
			return *b.ConfirmBy, true
		}
	}
	return time.Time{}, false
}

// printMass prints a mass run's batches.
func printMass(w io.Writer, m *massStatus) error {
	fmt.Fprintln(w, m.Note)
	if m.CappedAtLaunch != nil {
		fmt.Fprintf(w, "capped at launch (their month's mass messages already, by wxmass's count): %v\n", m.CappedAtLaunch)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "batch\trecipients\tmsg_id\tstate\twechat\ttotal\tafter filtering\tsent\terrors")
	for _, b := range m.Batches {
		state := b.State
		if b.ConfirmBy != nil && state == "awaiting_confirmation" {
			state += " until " + b.ConfirmBy.Format(time.RFC3339)
		}
		if b.Duplicate {
			state += " (retry answered 45065)"
		}
		recipients := "all"
		if b.Recipients > 0 {
			recipients = strconv.FormatInt(b.Recipients, 10)
		}
		line := fmt.Sprintf("%s\t%s\t%d\t%s", b.Batch, recipients, b.MsgID, state)
		switch r := b.Result; {
		case r == nil:
			line += "\t\t\t\t\t"
		case r.HasCounts:
			line += fmt.Sprintf("\t%s\t%d\t%d\t%d\t%d", strings.TrimSuffix(r.WeChatStatus+": "+r.Meaning, ": "), r.TotalCount, r.FilterCount, r.SentCount, r.ErrorCount)
		default:
			line += fmt.Sprintf("\t%s (mass/get: no counts)\t\t\t\t", r.WeChatStatus)
		}
		fmt.Fprintln(tw, line)
	}
	fmt.Fprintf(tw, "total\t\t\t\t\t\t\t%d\t\n", m.Totals.SentCount)
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "filtered by WeChat: %d\n", m.Totals.Filtered)
	return err
}

// waitingLine says what a run's sends wait for (WeChat, since when; the
// quiet hours, until when), or "".
func waitingLine(st runStatus) string {
	switch w := st.Waiting; {
	case w == nil:
		return ""
	case w.Reason == "quiet_hours" && w.Until != nil:
		return "waiting: quiet hours until " + cliTime(*w.Until) + " (sends wait without using retries)"
	}
	return "waiting for WeChat since " + st.Waiting.Since.Format(time.RFC3339) + " (" + st.Waiting.Reason + ")"
}

func (a *app) campaignCommand() *cli.Command {
	idArg := func(cmd *cli.Command) (string, error) {
		if cmd.Args().Len() != 1 {
			return "", usagef("want one campaign id, got %d arguments", cmd.Args().Len())
		}
		return cmd.Args().First(), nil
	}
	runFlag := &cli.IntFlag{Name: "run", Usage: "the run (default: the latest)", Sources: sources("run")}
	withClient := func(f func(ctx context.Context, cmd *cli.Command, c *apiClient) error) cli.ActionFunc {
		return func(ctx context.Context, cmd *cli.Command) error {
			c, err := newAPIClient(cmd)
			if err != nil {
				return err
			}
			return f(ctx, cmd, c)
		}
	}
	printRun := withClient(func(ctx context.Context, cmd *cli.Command, c *apiClient) error {
		id, err := idArg(cmd)
		if err != nil {
			return err
		}
		st, err := c.run(ctx, id, int(cmd.Int("run")))
		if err != nil {
			return err
		}
		return printRunReport(cmd.Root().Writer, st)
	})
	control := func(op string) *cli.Command {
		return &cli.Command{
			Name: op, Usage: op + " a campaign", ArgsUsage: "ID",
			Action: withClient(func(ctx context.Context, cmd *cli.Command, c *apiClient) error {
				id, err := idArg(cmd)
				if err != nil {
					return err
				}
				var out map[string]any
				if err := c.do(ctx, "POST", "/v1/campaigns/"+id+"/"+op, "", nil, &out); err != nil {
					return err
				}
				if op == "start" {
					fmt.Fprintf(cmd.Root().Writer, "campaign %s: run %v started\n", id, out["run"])
					if ws, ok := out["warnings"].([]any); ok {
						for _, w := range ws {
							fmt.Fprintf(cmd.Root().ErrWriter, "warning: %v\n", w)
						}
					}
					return nil
				}
				fmt.Fprintf(cmd.Root().Writer, "campaign %s: %v\n", id, out["state"])
				if fires, ok := out["next_fires"].([]any); ok && len(fires) > 0 {
					fmt.Fprintf(cmd.Root().Writer, "next fires: %v\n", fires)
				}
				return nil
			}),
		}
	}
	return &cli.Command{
		Name:  "campaign",
		Usage: "the client of the HTTP API: create, upload, test, start, schedule, unschedule, pause, resume, cancel, retry-failed, status, watch, report, events, delete, mass-delete, mass-speed (API key in " + envAPIKey + ")",
		Description: "The API's contract, every endpoint with its parameters, bodies, answers and error codes, is an OpenAPI 3.1\n" +
			"document served by wxmass serve at GET /v1/openapi.json (no key needed), for client generators and API explorers.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: flagAPIURL, Value: "http://127.0.0.1:8080", Usage: "the HTTP API of wxmass serve", Sources: sources(flagAPIURL)},
		},
		Commands: []*cli.Command{
			{
				Name: "create", Usage: "create a campaign from a JSON file (- for stdin); prints its id", ArgsUsage: "FILE",
				Flags: []cli.Flag{&cli.StringFlag{Name: "idempotency-key", Usage: "makes a retried create safe", Sources: sources("idempotency-key")}},
				Action: withClient(func(ctx context.Context, cmd *cli.Command, c *apiClient) error {
					if cmd.Args().Len() != 1 {
						return usagef("want one campaign file (- for stdin)")
					}
					body, err := readArg(cmd.Args().First())
					if err != nil {
						return err
					}
					var out struct {
						ID string `json:"id"`
					}
					if err := c.do(ctx, "POST", "/v1/campaigns", "application/json", bytes.NewReader(body), &out, "Idempotency-Key", cmd.String("idempotency-key")); err != nil {
						return err
					}
					fmt.Fprintln(cmd.Root().Writer, out.ID)
					return nil
				}),
			},
			{
				Name: "upload", Usage: "upload the audience file of a draft file campaign (.csv or .jsonl)", ArgsUsage: "ID FILE",
				Action: withClient(func(ctx context.Context, cmd *cli.Command, c *apiClient) error {
					if cmd.Args().Len() != 2 {
						return usagef("want a campaign id and a file")
					}
					id, path := cmd.Args().Get(0), cmd.Args().Get(1)
					ct := "text/csv"
					switch strings.ToLower(filepath.Ext(path)) {
					case ".jsonl", ".ndjson":
						ct = "application/x-ndjson"
					case ".csv":
					default:
						return usagef("%s: name a .csv or .jsonl file", path)
					}
					f, err := os.Open(path)
					if err != nil {
						return usagef("%w", err)
					}
					defer f.Close()
					var out struct {
						Stored int `json:"stored"`
						Report struct {
							Lines, Accepted, Blank, Duplicates int
							InvalidOpenIDs                     int `json:"invalid_openids"`
							Invalid                            int
							Errors                             []struct {
								Line           int
								Field, Message string
							}
						} `json:"report"`
					}
					if err := c.do(ctx, "PUT", "/v1/campaigns/"+id+"/audience", ct, f, &out); err != nil {
						return err
					}
					w := cmd.Root().Writer
					r := out.Report
					fmt.Fprintf(w, "stored %d recipients: %d lines, %d accepted, %d blank, %d duplicates, %d invalid openids, %d invalid\n",
						out.Stored, r.Lines, r.Accepted, r.Blank, r.Duplicates, r.InvalidOpenIDs, r.Invalid)
					for _, e := range r.Errors {
						fmt.Fprintf(w, "  line %d: %s: %s\n", e.Line, e.Field, e.Message)
					}
					return nil
				}),
			},
			control("start"), control("pause"), control("resume"), control("cancel"), control("schedule"), control("unschedule"),
			campaignDeleteCommand(withClient, idArg),
			campaignEventsCommand(withClient, idArg),
			campaignTestCommand(withClient, idArg),
			campaignMassDeleteCommand(withClient, idArg, runFlag),
			campaignMassSpeedCommand(withClient),
			{
				Name: "retry-failed", Usage: "start a new run over the failed recipients of a run (default: the latest)", ArgsUsage: "ID",
				Flags: []cli.Flag{runFlag,
					&cli.StringFlag{Name: "errcodes", Usage: "comma-separated errcodes: only failures with one of them", Sources: sources("errcodes")},
					&cli.StringFlag{Name: "statuses", Usage: "comma-separated outcomes to send again: failed (default), skipped, cancelled, and unknown only when named (WeChat may have delivered those: the answer says what it risks)", Sources: sources("statuses")},
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
					f := map[string]any{}
					if v := cmd.String("errcodes"); v != "" {
						var codes []int
						for _, part := range strings.Split(v, ",") {
							n, err := strconv.Atoi(strings.TrimSpace(part))
							if err != nil {
								return usagef("--errcodes: %q is not a number", part)
							}
							codes = append(codes, n)
						}
						f["errcodes"] = codes
					}
					if v := cmd.String("statuses"); v != "" {
						var statuses []string
						for _, part := range strings.Split(v, ",") {
							statuses = append(statuses, strings.TrimSpace(part))
						}
						f["statuses"] = statuses
					}
					body, _ := json.Marshal(f)
					var out struct {
						Run     int   `json:"run"`
						Size    int64 `json:"size"`
						Unknown *struct {
							Included int64  `json:"included"`
							Warning  string `json:"warning"`
						} `json:"unknown"`
					}
					if err := c.do(ctx, "POST", "/v1/campaigns/"+id+"/runs/"+strconv.Itoa(st.Run)+"/retry", "application/json", bytes.NewReader(body), &out); err != nil {
						return err
					}
					fmt.Fprintf(cmd.Root().Writer, "campaign %s: run %d started over %d recipients of run %d\n", id, out.Run, out.Size, st.Run)
					if out.Unknown != nil {
						fmt.Fprintf(cmd.Root().Writer, "unknown recipients included: %d. %s\n", out.Unknown.Included, out.Unknown.Warning)
					}
					return nil
				}),
			},
			{
				Name: "status", Usage: "print a run's state, counters and failures by errcode (default: the latest run)", ArgsUsage: "ID",
				Flags: []cli.Flag{runFlag}, Action: printRun,
			},
			{
				Name: "report", Usage: "print a run's outcomes and errcodes as a table (as status does)", ArgsUsage: "ID",
				Flags: []cli.Flag{runFlag}, Action: printRun,
			},
			{
				Name: "watch", Usage: "show a run's progress until it ends (exit 0 completed, 3 failed or cancelled)", ArgsUsage: "ID",
				Flags: []cli.Flag{runFlag, &cli.DurationFlag{Name: "every", Value: time.Second, Usage: "how often to refresh", Sources: sources("every")}},
				Action: withClient(func(ctx context.Context, cmd *cli.Command, c *apiClient) error {
					id, err := idArg(cmd)
					if err != nil {
						return err
					}
					return watch(ctx, cmd.Root().Writer, c, id, int(cmd.Int("run")), cmd.Duration("every"))
				}),
			},
		},
	}
}

// run reads a run's status; run 0 means the latest.
func (c *apiClient) run(ctx context.Context, id string, run int) (runStatus, error) {
	if run == 0 {
		var cv struct {
			LatestRun int `json:"latest_run"`
		}
		if err := c.do(ctx, "GET", "/v1/campaigns/"+id, "", nil, &cv); err != nil {
			return runStatus{}, err
		}
		if cv.LatestRun == 0 {
			return runStatus{}, usagef("campaign %s has not run yet", id)
		}
		run = cv.LatestRun
	}
	var st runStatus
	err := c.do(ctx, "GET", "/v1/campaigns/"+id+"/runs/"+strconv.Itoa(run), "", nil, &st)
	return st, err
}

func readArg(path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(os.Stdin)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("%w", err)
	}
	return b, nil
}

// done reports whether a run state is final: a stopping run is not, until
// every recipient has its outcome.
func done(state string) bool {
	return state == "completed" || state == "failed" || state == "cancelled"
}

// watch redraws a progress line every interval until the run ends.
func watch(ctx context.Context, w io.Writer, c *apiClient, id string, run int, every time.Duration) error {
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	var lastSettled int64
	var lastAt time.Time
	rate := 0.0
	for {
		st, err := c.run(ctx, id, run)
		if err != nil {
			return err
		}
		run = st.Run
		now := time.Now()
		if !lastAt.IsZero() {
			if dt := now.Sub(lastAt).Seconds(); dt > 0 {
				inst := float64(st.Settled-lastSettled) / dt
				rate = 0.5*rate + 0.5*inst
			}
		}
		lastSettled, lastAt = st.Settled, now
		fmt.Fprint(w, "\r"+progressLine(st, rate)+"\x1b[K")
		if done(st.State) {
			fmt.Fprintln(w)
			if st.State != "completed" {
				return runEndedError{state: st.State, reason: st.Reason}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(w)
			return ctx.Err()
		case <-t.C:
		}
	}
}

// progressLine is one line of watch: a bar, the counts, the rate and ETA.
func progressLine(st runStatus, rate float64) string {
	const width = 30
	size := max(st.Size, 0)
	frac := 0.0
	if size > 0 {
		frac = min(1, float64(st.Settled)/float64(size))
	}
	filled := int(frac * width)
	bar := strings.Repeat("#", filled) + strings.Repeat(".", width-filled)
	remaining := max(size-st.Settled, 0)
	eta := "-"
	if rate > 0 && remaining > 0 {
		eta = (time.Duration(float64(remaining)/rate) * time.Second).Round(time.Second).String()
	}
	failed := st.Counters["failed"]
	state := st.State
	if st.State == "stopping" && st.Final != "" {
		state = "stopping: will be " + st.Final
	}
	switch w := st.Waiting; {
	case w == nil:
	case w.Reason == "quiet_hours" && w.Until != nil:
		state += "; quiet hours until " + w.Until.Local().Format(time.TimeOnly)
	default:
		state += "; waiting for WeChat since " + w.Since.Format(time.TimeOnly)
	}
	if by, ok := st.awaitingConfirmation(); ok {
		state += "; awaiting an admin's confirmation until " + by.Format(time.TimeOnly)
	}
	line := fmt.Sprintf("[%s] %5.1f%%  sent %d  failed %d", bar, 100*frac, st.Counters["sent"]+st.Counters["delivered"], failed)
	if n := st.Counters["unknown"]; n > 0 {
		line += fmt.Sprintf("  unknown %d", n)
	}
	if p := protectionLine(st.Protection); p != "" {
		line += "  " + p
	}
	return line + fmt.Sprintf("  remaining %d  %.0f/s  ETA %s  (%s)", remaining, rate, eta, state)
}

// printRunReport prints a run's counters as tables: outcomes, then errcodes
// and classes.
func printRunReport(w io.Writer, st runStatus) error {
	fmt.Fprintf(w, "campaign %s (account %s) run %d: %s", st.Campaign, st.Account, st.Run, st.State)
	if st.State == "stopping" && st.Final != "" {
		fmt.Fprintf(w, " (will be %s once every recipient has an outcome)", st.Final)
	}
	if st.Reason != "" {
		fmt.Fprintf(w, " (%s)", st.Reason)
	}
	fmt.Fprintln(w)
	if l := waitingLine(st); l != "" {
		fmt.Fprintln(w, l)
	}
	if l := protectionLine(st.Protection); l != "" {
		fmt.Fprintln(w, l)
	}
	fmt.Fprintf(w, "recipients %d, settled %d, started %s", st.Size, st.Settled, st.Started.Format(time.RFC3339))
	if st.Finished != nil {
		fmt.Fprintf(w, ", finished %s (%s)", st.Finished.Format(time.RFC3339), st.Finished.Sub(st.Started).Round(time.Millisecond))
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "outcome\tcount\tshare\t")
	for _, k := range campaigns.OutcomeStatuses {
		if n := st.Counters[k]; n > 0 || k == "sent" || k == "failed" {
			fmt.Fprintf(tw, "%s\t%d\t%s\t\n", k, n, share(n, st.Size))
		}
	}
	var codes, classes []string
	for k := range st.Counters {
		switch {
		case strings.HasPrefix(k, "code:"):
			codes = append(codes, k)
		case strings.HasPrefix(k, "class:"):
			classes = append(classes, k)
		}
	}
	byCount := func(a, b string) int {
		if d := st.Counters[b] - st.Counters[a]; d != 0 {
			if d > 0 {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	}
	slices.SortFunc(codes, byCount)
	slices.SortFunc(classes, byCount)
	if len(codes)+len(classes) > 0 {
		fmt.Fprintln(tw, "\t\t\t")
		fmt.Fprintln(tw, "failures by\tcount\tshare\t")
		for _, k := range append(codes, classes...) {
			fmt.Fprintf(tw, "%s\t%d\t%s\t\n", k, st.Counters[k], share(st.Counters[k], st.Size))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if st.Mass != nil {
		return printMass(w, st.Mass)
	}
	return nil
}

func share(n, of int64) string {
	if of <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}
