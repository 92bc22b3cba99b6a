package retry_test

import (
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat"
)

func ExamplePolicy_Decide() {
	// A fixed jitter source makes the delays reproducible; production
	// leaves Rand nil.
	p, err := retry.New(retry.Config{Rand: func() float64 { return 0.5 }})
	if err != nil {
		log.Fatal(err)
	}
	shanghai := time.FixedZone("CST", 8*60*60)
	now := time.Date(2026, 3, 10, 21, 30, 15, 0, shanghai)

	outcomes := []error{
		nil,
		&wechat.APIError{Code: 43004, API: wechat.APITemplateSend},
		&wechat.APIError{Code: -1, API: wechat.APITemplateSend},
		&wechat.APIError{Code: 45011, API: wechat.APITemplateSend},
		&wechat.APIError{Code: 40037, API: wechat.APITemplateSend},
		&wechat.APIError{Code: 45009, API: wechat.APITemplateSend},
		&wechat.TransportError{API: wechat.APITemplateSend, Sent: true, StatusCode: 502},
		&wechat.APIError{Code: 12345, API: wechat.APITemplateSend},
	}
	for _, err := range outcomes {
		d := p.Decide(err, 1, now)
		switch d.Action {
		case retry.ActionRetry:
			fmt.Printf("%-9s %-5d %s after %s (ambiguous %t, unknown %t): %s\n", d.Class, d.Code, d.Action, d.Delay, d.Ambiguous, d.Unknown, d.Meaning)
		case retry.ActionPause:
			fmt.Printf("%-9s %-5d %s until %s: %s\n", d.Class, d.Code, d.Action, d.Until.Format(time.DateTime), d.Meaning)
		default:
			fmt.Printf("%-9s %-5d %s: %s\n", d.Class, d.Code, d.Action, d.Meaning)
		}
	}
	// Output:
	// ok        0     succeed: ok
	// recipient 43004 fail: user unfollowed
	// retry     -1    retry after 2s (ambiguous false, unknown false): system busy
	// retry     45011 retry after 46.5s (ambiguous false, unknown false): per-minute api quota reached
	// fatal     40037 stop_campaign: invalid template_id
	// quota     45009 pause until 2026-03-11 00:00:00: daily api quota reached
	// retry     0     retry after 2s (ambiguous true, unknown false): http status 502
	// unknown   12345 retry after 2s (ambiguous false, unknown true): unknown errcode 12345
}

func ExampleLoadRules() {
	const file = `
- code: 43117
  class: retry
  delay: 2h
  max_attempts: 3
  meaning: per-user frequency limit
`
	rules, err := retry.LoadRules(strings.NewReader(file))
	if err != nil {
		log.Fatal(err)
	}
	p, err := retry.New(retry.Config{Rules: rules})
	if err != nil {
		log.Fatal(err)
	}
	r, _ := p.Rule(43117)
	fmt.Println(r.Class, r.Delay, r.MaxAttempts, r.Meaning)

	_, err = retry.LoadRules(strings.NewReader("- code: 43117\n  class: retyr\n"))
	var re *retry.RuleError
	if errors.As(err, &re) {
		fmt.Println(re.Line, re.Field)
	}
	fmt.Println(err)
	// Output:
	// retry 2h0m0s 3 per-user frequency limit
	// 2 class
	// retry: rules: line 2: class "retyr" is not one of ok, refresh_token, retry, recipient, message, fatal, quota, rest
}
