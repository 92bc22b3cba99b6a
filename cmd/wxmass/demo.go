package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
	"github.com/wxmass/wxmass/worker"
)

const (
	flagDemoAudience = "demo-audience"
	flagDemoFake     = "demo-fake-config"
	flagDemoWorkers  = "demo-workers"
	flagDemoTimeout  = "demo-timeout"
)

func (a *app) demoCommand() *cli.Command {
	return &cli.Command{
		Name: "demo",
		Usage: "run a whole campaign against an in-process fake WeChat with faults on: upload an audience file, " +
			"send through workers under the rate limit, and print the report",
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: flagDemoAudience, Value: "testdata/demo/audience.csv", Usage: "CSV audience (openid,name,order)", TakesFile: true, Sources: sources(flagDemoAudience)},
			&cli.StringFlag{Name: flagDemoFake, Value: "testdata/demo/fake.yaml", Usage: "configuration of the in-process fake WeChat", TakesFile: true, Sources: sources(flagDemoFake)},
			&cli.IntFlag{Name: flagDemoWorkers, Value: 2, Usage: "worker servers to run in the demo process (each as a separate worker process would)", Sources: sources(flagDemoWorkers)},
			&cli.DurationFlag{Name: flagDemoTimeout, Value: 5 * time.Minute, Usage: "give up if the run has not completed by then", Sources: sources(flagDemoTimeout)},
		}, pipelineFlags()...),
		Action: a.runDemo,
	}
}

func (a *app) runDemo(ctx context.Context, cmd *cli.Command) error {
	out := cmd.Root().Writer
	fakeCfg, err := loadFakeConfig(cmd.String(flagDemoFake))
	if err != nil {
		return err
	}
	if _, err := newRetryPolicy(cmd); err != nil {
		return err
	}
	audience, err := os.Open(cmd.String(flagDemoAudience))
	if err != nil {
		return usagef("--%s: %w (run the demo from the repository's root, or `make demo`)", flagDemoAudience, err)
	}
	defer audience.Close()
	if !cmd.IsSet(flagRate) {
		// The demo's fake allows 500 template sends a second.
		if err := cmd.Set(flagRate, "400"); err != nil {
			return err
		}
	}
	// The demo has no callback receiver: its mass job's result comes from
	// mass/get, asked soon.
	for flag, v := range map[string]string{flagMassPollAfter: "2s", flagMassPollInterval: "1s"} {
		if !cmd.IsSet(flag) {
			if err := cmd.Set(flag, v); err != nil {
				return err
			}
		}
	}

	// The fake WeChat, in this process, on a free port.
	fake, err := wechattest.New(fakeCfg)
	if err != nil {
		return usageError{err}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fctx, stopFake := context.WithCancel(context.WithoutCancel(ctx))
	fakeDone := make(chan error, 1)
	go func() { fakeDone <- fake.Run(fctx, ln) }()
	defer func() {
		stopFake()
		if err := <-fakeDone; err != nil {
			a.log.Error("fake wechat", zap.Error(err))
		}
	}()
	fakeURL := "http://" + ln.Addr().String()
	acct := credentials{AppID: wechattest.AppIDDefault, Secret: secret.New(wechattest.SecretDefault)}
	if len(fakeCfg.Accounts) > 0 {
		acct = credentials{AppID: fakeCfg.Accounts[0].AppID, Secret: secret.New(fakeCfg.Accounts[0].Secret)}
	}

	// The workers, each with its own clients, as separate processes.
	n := max(1, int(cmd.Int(flagDemoWorkers)))
	var rts []*runtime
	var srvs []*worker.Server
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), cmd.Duration(flagShutdownTimeout)+5*time.Second)
		defer cancel()
		for _, s := range srvs {
			_ = s.Stop(sctx)
		}
		for _, rt := range rts {
			rt.close()
		}
	}()
	for range n {
		wc := wechat.New(wechat.WithBaseURLs(fakeURL))
		defer wc.CloseIdleConnections()
		rt, err := a.newRuntime(ctx, cmd, []account.Spec{singleSpec(acct, accountDefaults(cmd))}, wc)
		if err != nil {
			return err
		}
		rts = append(rts, rt)
		srv := worker.NewServer(rt.asynqOpt, rt.worker, serverConfig(cmd))
		if err := srv.Start(ctx); err != nil {
			return err
		}
		srvs = append(srvs, srv)
	}
	rt := rts[0]

	fmt.Fprintf(out, "wxmass demo: fake WeChat at %s (faults: %s), Redis at %s, %d workers, rate %.0f/s\n",
		fakeURL, describeFaults(fake.Faults()), redactURL(cmd.String(flagRedisURL)), n, cmd.Float(flagRate))

	c := &campaigns.Campaign{
		Name:    "demo: order shipped",
		Account: acct.AppID,
		Kind:    campaigns.KindTemplate,
		Template: &campaigns.TemplateSpec{
			TemplateID: wechattest.TemplateIDDefault,
			URL:        "https://example.com/orders?from=wxmass&campaign=demo",
			Data: map[string]string{
				"thing1":            "{{.name}}，您的订单已发货",
				"character_string2": "{{.order}}",
				"time3":             time.Now().In(shanghai()).Format("2006-01-02 15:04"),
			},
		},
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceFile, Variables: []string{"name", "order"}},
	}
	if err := rt.store.Create(ctx, c); err != nil {
		return err
	}
	up, err := rt.store.UploadAudience(ctx, c.ID, audience, campaigns.FormatCSV)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "campaign %s: %d recipients uploaded (%d lines, %d duplicates, %d invalid)\n",
		c.ID, up.Stored, up.Report.Lines, up.Report.Duplicates, up.Report.Invalid+up.Report.InvalidOpenIDs)
	run, err := rt.producer.Start(ctx, c.ID)
	if err != nil {
		return err
	}

	// Half way, every token is invalidated, as if another system had
	// refreshed it: the sends in flight get 40001, one worker refreshes, all
	// retry once.
	invalidated := false
	deadline := time.Now().Add(cmd.Duration(flagDemoTimeout))
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var rec campaigns.RunRecord
	for {
		rec, err = rt.store.Run(ctx, c.ID, run)
		if err != nil {
			return err
		}
		line := fmt.Sprintf("  %s: %d/%d settled (%d sent, %d failed", rec.State, rec.Settled(), rec.Size, rec.Counters["sent"], rec.Counters["failed"])
		if n := rec.Counters["unknown"]; n > 0 {
			line += fmt.Sprintf(", %d unknown", n)
		}
		fmt.Fprintln(out, line+")")
		if rec.Size >= 0 && rec.Settled() >= rec.Size {
			break
		}
		if !invalidated && rec.Size > 0 && rec.Settled() > rec.Size/2 {
			fake.InvalidateTokens()
			invalidated = true
			fmt.Fprintln(out, "  (the fake invalidated every access_token)")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("demo: run not complete after %s", cmd.Duration(flagDemoTimeout))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}

	printReport(out, rt.policy, c, run, rec)
	st := fake.Stats()
	tpl, tok := st.APIs[wechat.APITemplateSend], st.APIs[wechat.APIStableToken]
	fmt.Fprintf(out, "\nWhat the fake WeChat recorded:\n")
	fmt.Fprintf(out, "  template sends: %d calls, %d delivered, %d answered from the client_msg_id window\n", tpl.Calls, tpl.Accepted, tpl.Deduped)
	fmt.Fprintf(out, "  faults injected: %d HTTP 5xx, %d -1, %d dropped connections\n", tpl.Faults.HTTP5xx, tpl.Faults.SystemError, tpl.Faults.DropAfterRecord)
	fmt.Fprintf(out, "  duplicates delivered: %d\n", st.DuplicatesDelivered)
	fmt.Fprintf(out, "  peak calls in one second: %d (limit %.0f + burst)\n", tpl.Peak1s, cmd.Float(flagRate))
	fmt.Fprintf(out, "  stable_token calls: %d\n", tok.Calls)
	if rec.Counters["sent"] != tpl.Accepted || st.DuplicatesDelivered != 0 {
		return errors.New("demo: the report and the fake's record disagree")
	}
	return massDemo(ctx, out, rt, fake, acct.AppID, cmd.String(flagDemoAudience), deadline)
}

// massDemo sends a mass text message (群发) to the demo's audience: one
// batch of its 3,000 openids, one job, whose result comes from mass/get.
// It prints the run's report by batch and the fake's record of the job.
func massDemo(ctx context.Context, out io.Writer, rt *runtime, fake *wechattest.Server, appID, audiencePath string, deadline time.Time) error {
	c := &campaigns.Campaign{
		Name: "demo: monthly digest (mass)", Account: appID, Kind: campaigns.KindMass,
		Mass:     &campaigns.MassSpec{MsgType: "text", Text: &wechat.Text{Content: "十二月会员月报：本月精选已上线"}},
		Audience: campaigns.AudienceSpec{Source: campaigns.SourceFile, Variables: []string{"name", "order"}},
	}
	if err := rt.store.Create(ctx, c); err != nil {
		return err
	}
	f, err := os.Open(audiencePath)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := rt.store.UploadAudience(ctx, c.ID, f, campaigns.FormatCSV); err != nil {
		return err
	}
	run, err := rt.producer.Start(ctx, c.ID)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nMass campaign %s (群发): the same audience as one mass/send job\n", c.ID)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var rec campaigns.RunRecord
	for {
		if rec, err = rt.store.Run(ctx, c.ID, run); err != nil {
			return err
		}
		if rec.Size >= 0 && rec.Settled() >= rec.Size {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("demo: the mass run did not complete in time")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	batches, err := rt.store.MassBatches(ctx, c.ID, run)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Report of campaign %s run %d: %s; a mass send has no per-recipient outcome, only its batches'\n", c.ID, run, rec.State)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  BATCH\tRECIPIENTS\tMSG_ID\tSTATE\tVIA")
	jobs := map[int64]bool{}
	for _, b := range batches {
		state, via := "sending", ""
		if b.Result != nil {
			state, via = b.Result.Status, b.Result.Via
		}
		jobs[b.Submission.MsgID] = true
		fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\t%s\n", b.Key, b.Submission.Recipients, b.Submission.MsgID, state, via)
	}
	_ = tw.Flush()
	fmt.Fprintln(out, "What the fake WeChat recorded for the job:")
	found := 0
	for _, j := range fake.MassJobs() {
		if !jobs[j.MsgID] {
			continue
		}
		found++
		fmt.Fprintf(out, "  msg_id %d: %s, %d delivered, %d filtered (over 4 this month), %d errors (unfollowed, refused, blocked)\n",
			j.MsgID, j.Status, len(j.Delivered), len(j.Filtered), len(j.Errors))
	}
	if found != len(batches) || rec.Counters[campaigns.OutcomeSent] != int64(len(batches)) {
		return errors.New("demo: the mass report and the fake's record disagree")
	}
	return nil
}

// printReport prints a run's counts by outcome and by errcode.
func printReport(w io.Writer, policy *retry.Policy, c *campaigns.Campaign, run int, rec campaigns.RunRecord) {
	dur := rec.Finished.Sub(rec.Started)
	fmt.Fprintf(w, "\nReport of campaign %s run %d: %s in %s", c.ID, run, rec.State, dur.Round(time.Millisecond))
	if dur > 0 {
		fmt.Fprintf(w, " (%.0f recipients/s)", float64(rec.Settled())/dur.Seconds())
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  OUTCOME\tRECIPIENTS")
	for _, s := range campaigns.OutcomeStatuses {
		fmt.Fprintf(tw, "  %s\t%d\n", s, rec.Counters[s])
	}
	fmt.Fprintf(tw, "  total\t%d of %d\n", rec.Settled(), rec.Size)
	_ = tw.Flush()
	if n := rec.Counters[campaigns.OutcomeUnknown]; n > 0 {
		fmt.Fprintf(w, "  (%d unknown: an answer was lost and WeChat's next answer could not settle it, so the message may\n"+
			"  have reached them; they are never retried unless asked for by name: see README, Outcomes)\n", n)
	}
	var codes []string
	for k := range rec.Counters {
		if strings.HasPrefix(k, "code:") {
			codes = append(codes, k)
		}
	}
	if len(codes) == 0 {
		return
	}
	sort.Strings(codes)
	fmt.Fprintln(tw, "\n  ERRCODE\tRECIPIENTS\tCLASS\tMEANING")
	for _, k := range codes {
		code := strings.TrimPrefix(k, "code:")
		class, meaning := "unknown", ""
		var n int
		if _, err := fmt.Sscan(code, &n); err == nil {
			if r, ok := policy.Rule(n); ok {
				class, meaning = r.Class.String(), r.Meaning
			}
		}
		fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\n", code, rec.Counters[k], class, meaning)
	}
	_ = tw.Flush()
}

func describeFaults(f wechattest.Faults) string {
	var parts []string
	add := func(name string, rate float64) {
		if rate > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f%%", name, rate*100))
		}
	}
	add("-1", f.SystemError)
	add("5xx", f.HTTP5xx)
	add("dropped connection", f.DropAfterRecord)
	add("slow", f.Slow)
	add("token invalidation", f.InvalidateTokens)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func shanghai() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}
