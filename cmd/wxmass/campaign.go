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
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
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
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if res.StatusCode >= 400 {
		var env struct {
			Error *apiFailure `json:"error"`
		}
		if json.Unmarshal(raw, &env) != nil || env.Error == nil {
			// Not the API's answer: a proxy's, or another server at
			// --api-url.
			err := fmt.Errorf("%s %s: HTTP %d (not an answer of the wxmass API: is --%s right?)", method, path, res.StatusCode, flagAPIURL)
			if res.StatusCode < 500 {
				return usageError{err}
			}
			return err
		}
		env.Error.status = res.StatusCode
		if res.StatusCode < 500 {
			return usageError{env.Error}
		}
		return env.Error
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
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
		Usage: "the client of the HTTP API: create, upload, start, schedule, unschedule, pause, resume, cancel, retry-failed, status, watch, report, events, delete (API key in " + envAPIKey + ")",
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
	line := fmt.Sprintf("[%s] %5.1f%%  sent %d  failed %d", bar, 100*frac, st.Counters["sent"]+st.Counters["delivered"], failed)
	if n := st.Counters["unknown"]; n > 0 {
		line += fmt.Sprintf("  unknown %d", n)
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
	return tw.Flush()
}

func share(n, of int64) string {
	if of <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}
