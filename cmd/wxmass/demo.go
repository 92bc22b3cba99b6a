package main

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/monitoring"
	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

const (
	flagDemoAudience = "demo-audience"
	flagDemoFake     = "demo-fake-config"
	flagDemoMaxWait  = "demo-max-wait"
)

func (a *app) demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "send a template and a customer-service message to sample recipients through a fake WeChat with faults on, and print each outcome",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: flagDemoAudience, Value: "testdata/demo/recipients.csv", Usage: "CSV of openid,name", TakesFile: true, Sources: sources(flagDemoAudience)},
			&cli.StringFlag{Name: flagDemoFake, Value: "testdata/demo/fake.yaml", Usage: "configuration of the in-process fake WeChat", TakesFile: true, Sources: sources(flagDemoFake)},
			&cli.DurationFlag{Name: flagDemoMaxWait, Value: time.Second, Usage: "longest pause between retries (the real backoff can be longer; the demo keeps it short)", Sources: sources(flagDemoMaxWait)},
		},
		Action: a.runDemo,
	}
}

type recipient struct{ openid, name string }

func (a *app) runDemo(ctx context.Context, cmd *cli.Command) error {
	out := cmd.Root().Writer
	recipients, err := readDemoAudience(cmd.String(flagDemoAudience))
	if err != nil {
		return err
	}
	fakeCfg, err := loadFakeConfig(cmd.String(flagDemoFake))
	if err != nil {
		return err
	}
	policy, err := newRetryPolicy(cmd)
	if err != nil {
		return err
	}
	rc, r, err := openRedis(ctx, cmd)
	if err != nil {
		return err
	}
	defer rc.Close()

	// The fake WeChat, in this process, on a free port.
	fake, err := wechattest.New(fakeCfg)
	if err != nil {
		return usageError{err}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fctx, stopFake := context.WithCancel(ctx)
	fakeDone := make(chan error, 1)
	go func() { fakeDone <- fake.Run(fctx, ln) }()
	defer func() {
		stopFake()
		if err := <-fakeDone; err != nil {
			a.log.Error("fake wechat", zap.Error(err))
		}
	}()

	client := wechat.New(wechat.WithBaseURLs("http://" + ln.Addr().String()))
	defer client.CloseIdleConnections()
	acct := account{AppID: wechattest.AppIDDefault, Secret: secret.New(wechattest.SecretDefault)}
	if len(fakeCfg.Accounts) > 0 {
		acct = account{AppID: fakeCfg.Accounts[0].AppID, Secret: secret.New(fakeCfg.Accounts[0].Secret)}
	}
	// A fresh key prefix per demo run, so runs never see each other's tokens.
	demoRDB := r.WithPrefix(fmt.Sprintf("%s:demo:%d", cmd.String(flagRedisPrefix), time.Now().UnixNano()))
	tokens, err := wechat.NewTokenCache(demoRDB, wechat.TokenCacheConfig{
		AppID: acct.AppID,
		Fetch: func(ctx context.Context) (wechat.AccessToken, error) {
			return client.StableToken(ctx, acct.AppID, acct.Secret, false)
		},
		Logger: a.log.Named("token"),
	})
	if err != nil {
		return err
	}
	defer demoRDB.DeleteAccount(context.WithoutCancel(ctx), acct.AppID)

	fmt.Fprintf(out, "wxmass demo: fake WeChat at http://%s (faults: %s), Redis at %s\n\n",
		ln.Addr(), describeFaults(fake.Faults()), redactURL(cmd.String(flagRedisURL)))
	run := time.Now().UTC().Format("20060102T150405")
	s := &demoSender{log: a.log.Named("demo"), policy: policy, maxWait: cmd.Duration(flagDemoMaxWait)}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RECIPIENT\tKIND\tOUTCOME\tERRCODE\tCLASS\tATTEMPTS\tDETAIL")
	for i, rcp := range recipients {
		if i == len(recipients)/2 {
			// Half way, every token is invalidated, as if another system had
			// refreshed it: the next send gets 40001, refreshes once and retries.
			fake.InvalidateTokens()
			fmt.Fprintln(tw, "--\t--\t\t\t\t\t(the fake invalidates every access_token here: the next send gets 40001, refreshes once, retries)")
		}
		tpl := &wechat.TemplateMessage{
			ToUser:      rcp.openid,
			TemplateID:  wechattest.TemplateIDDefault,
			URL:         "https://example.com/orders?id=" + fmt.Sprint(1000+i) + "&from=wxmass",
			ClientMsgID: "demo:" + run + ":" + rcp.openid,
			Data: map[string]wechat.TemplateValue{
				"thing1": {Value: rcp.name + "，您的订单已发货"},
				"time2":  {Value: time.Now().In(shanghai()).Format("2006-01-02 15:04")},
			},
		}
		res := s.send(ctx, true, func(ctx context.Context) (string, error) {
			id, err := client.SendTemplate(ctx, tokens, tpl)
			return fmt.Sprint("msgid ", id), err
		})
		res.print(tw, rcp.openid, "template")
		cs := &wechat.CustomMessage{ToUser: rcp.openid, MsgType: wechat.MsgTypeText, Text: &wechat.Text{Content: rcp.name + "，您好！订单 " + fmt.Sprint(1000+i) + " 已发货。"}}
		res = s.send(ctx, false, func(ctx context.Context) (string, error) {
			return "", client.SendCustom(ctx, tokens, cs)
		})
		res.print(tw, rcp.openid, "custom")
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	st := fake.Stats()
	tpl, cst, tok := st.APIs[wechat.APITemplateSend], st.APIs[wechat.APICustomSend], st.APIs[wechat.APIStableToken]
	fmt.Fprintf(out, "\nWhat the fake WeChat recorded:\n")
	fmt.Fprintf(out, "  template sends: %d calls, %d delivered, %d answered from the client_msg_id window\n", tpl.Calls, tpl.Accepted, tpl.Deduped)
	fmt.Fprintf(out, "  custom sends:   %d calls, %d delivered\n", cst.Calls, cst.Accepted)
	fmt.Fprintf(out, "  duplicates delivered: %d\n", st.DuplicatesDelivered)
	fmt.Fprintf(out, "  stable_token calls: %d (one fetch, one refresh after the invalidation)\n", tok.Calls)
	return ctx.Err()
}

// demoSender sends one message with the retry policy, the way a worker does
// within one task (the campaign pipeline replaces this loop).
type demoSender struct {
	log     *zap.Logger
	policy  *retry.Policy
	maxWait time.Duration
}

type demoResult struct {
	outcome  string
	decision retry.Decision
	attempts int
	detail   string
	retried  []string // why each retry happened
}

// send calls fn until the policy says stop. Without a dedupe key (custom
// sends) an ambiguous failure is not retried: it might have been delivered.
func (s *demoSender) send(ctx context.Context, deduped bool, fn func(context.Context) (string, error)) demoResult {
	var retried []string
	for attempt := 0; ; attempt++ {
		detail, err := fn(ctx)
		d := s.policy.Decide(err, attempt, time.Now())
		res := demoResult{decision: d, attempts: attempt + 1, detail: detail, retried: retried}
		switch {
		case d.Action == retry.ActionSucceed:
			res.outcome = "sent"
			return res
		case d.Action == retry.ActionRetry && d.Ambiguous && !deduped:
			res.outcome = "unknown"
			res.detail = "ambiguous failure, not retried: no dedupe key (" + d.Meaning + ")"
			return res
		case d.Action == retry.ActionRetry:
			wait := min(d.Delay, s.maxWait)
			why := d.Meaning
			if d.Code != 0 {
				why = fmt.Sprintf("%d %s", d.Code, d.Meaning)
			}
			retried = append(retried, why)
			s.log.Debug("retrying", zap.Int("errcode", d.Code), zap.String("class", d.Class.String()),
				zap.Int("attempt", attempt+1), zap.Duration("delay", d.Delay), zap.Error(err))
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				res.outcome, res.detail = "cancelled", ctx.Err().Error()
				return res
			case <-t.C:
			}
		case d.Action == retry.ActionPause:
			res.outcome, res.detail = "paused", "quota until "+d.Until.Format(time.RFC3339)
			return res
		case d.Action == retry.ActionStopCampaign:
			res.outcome, res.detail = "stopped", d.Meaning
			return res
		default:
			res.outcome, res.detail = "failed", d.Meaning
			return res
		}
	}
}

func (r demoResult) print(w io.Writer, openid, kind string) {
	code := ""
	if r.decision.Code != 0 {
		code = fmt.Sprint(r.decision.Code)
	}
	detail := r.detail
	if len(r.retried) > 0 {
		detail += " (retried after: " + strings.Join(r.retried, "; ") + ")"
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", monitoring.MaskOpenID(openid), kind, r.outcome, code, r.decision.Class, r.attempts, strings.TrimSpace(detail))
}

func readDemoAudience(path string) ([]recipient, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usagef("--%s: %w (run the demo from the repository's root, or `make demo`)", flagDemoAudience, err)
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = 2
	var out []recipient
	for line := 1; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, usagef("%s: %w", path, err)
		}
		if line == 1 && strings.EqualFold(rec[0], "openid") {
			continue
		}
		out = append(out, recipient{openid: strings.TrimSpace(rec[0]), name: strings.TrimSpace(rec[1])})
	}
	if len(out) == 0 {
		return nil, usagef("%s: no recipients", path)
	}
	return out, nil
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
