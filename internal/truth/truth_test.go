package truth_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/truth"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// record is a fake's record written by hand.
type record struct {
	deliveries []wechattest.Delivery
	calls      []wechattest.Call
}

func (r record) Deliveries() []wechattest.Delivery { return r.deliveries }
func (r record) Calls() []wechattest.Call          { return r.calls }

const api, app = "message/template/send", "wxapp"

func delivery(openid string, msgid int64) wechattest.Delivery {
	return wechattest.Delivery{API: api, AppID: app, OpenID: openid, MsgID: msgid}
}

func call(openid string, answer wechattest.CallAnswer) wechattest.Call {
	return wechattest.Call{API: api, AppID: app, OpenID: openid, Result: wechattest.ResultDelivered, Answer: answer}
}

func run(n int, outcomes map[string]campaigns.Outcome) truth.Run {
	return truth.Run{Campaign: "c1", Number: n, Outcomes: outcomes, Attempts: map[string]campaigns.Attempt{}}
}

func TestCheck(t *testing.T) {
	t.Parallel()
	opt := truth.Options{API: api, AppID: app}
	sent := func(msgid int64) campaigns.Outcome {
		return campaigns.Outcome{Status: campaigns.OutcomeSent, MsgID: msgid}
	}
	status := func(s string) campaigns.Outcome { return campaigns.Outcome{Status: s} }

	t.Run("Truthful", func(t *testing.T) {
		t.Parallel()
		// A 5xx the fake answered before it knew the account (a revoked
		// token) has no AppID, and still counts for its openid.
		fiveXX := wechattest.Call{API: api, OpenID: "w", Result: wechattest.ResultHTTP5xx, Answer: wechattest.AnswerAnswered}
		rec := record{
			deliveries: []wechattest.Delivery{delivery("a", 1), delivery("u", 2), delivery("other", 9)},
			calls: []wechattest.Call{call("a", wechattest.AnswerAnswered), call("u", wechattest.AnswerDropped), call("v", wechattest.AnswerAbandoned),
				fiveXX},
		}
		r1 := run(1, map[string]campaigns.Outcome{"a": sent(1), "u": status(campaigns.OutcomeUnknown), "v": status(campaigns.OutcomeUnknown),
			"w": status(campaigns.OutcomeUnknown), "s": status(campaigns.OutcomeSkipped), "f": {Status: campaigns.OutcomeFailed, Code: 43004}})
		// A retry of the skipped and the unknown v delivers them once.
		rec.deliveries = append(rec.deliveries, delivery("s", 3), delivery("v", 4))
		r2 := run(2, map[string]campaigns.Outcome{"s": sent(3), "v": sent(4)})
		rep := truth.Check(rec, opt, r1, r2)
		require.Zero(t, rep.ViolationCount, rep.Violations)
		require.Equal(t, 6, rep.Recipients)
		require.Equal(t, 4, rep.Delivered)
		require.Equal(t, 3, rep.Unknown)
		require.Equal(t, 2, rep.UnknownDelivered, "u in run 1, v in run 2")
	})

	for _, tc := range []struct {
		name string
		rec  record
		runs []truth.Run
		want string
	}{
		{"DeliveredTwice", record{deliveries: []wechattest.Delivery{delivery("a", 1), delivery("a", 2)}},
			[]truth.Run{run(1, map[string]campaigns.Outcome{"a": sent(1)})}, "a delivered 2 times"},
		{"SentNeverDelivered", record{},
			[]truth.Run{run(1, map[string]campaigns.Outcome{"a": sent(1)})}, "a reported sent but never delivered"},
		{"WrongMsgID", record{deliveries: []wechattest.Delivery{delivery("a", 1)}},
			[]truth.Run{run(1, map[string]campaigns.Outcome{"a": sent(7)})}, "a reported sent with msgid 7"},
		{"SkippedButDelivered", record{deliveries: []wechattest.Delivery{delivery("a", 1)}},
			[]truth.Run{run(1, map[string]campaigns.Outcome{"a": status(campaigns.OutcomeSkipped)})}, "a delivered but reported run 1 skipped"},
		{"FailedButDelivered", record{deliveries: []wechattest.Delivery{delivery("a", 1)}},
			[]truth.Run{run(1, map[string]campaigns.Outcome{"a": {Status: campaigns.OutcomeFailed, Code: 40037}})}, "a delivered but reported run 1 failed"},
		{"SentInTwoRuns", record{deliveries: []wechattest.Delivery{delivery("a", 1)}},
			[]truth.Run{run(1, map[string]campaigns.Outcome{"a": sent(1)}), run(2, map[string]campaigns.Outcome{"a": sent(1)})}, "a reported sent 2 times"},
		{"UnknownWithEveryAnswerRead", record{calls: []wechattest.Call{call("a", wechattest.AnswerAnswered)}},
			[]truth.Run{run(1, map[string]campaigns.Outcome{"a": status(campaigns.OutcomeUnknown)})}, "a reported unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep := truth.Check(tc.rec, opt, tc.runs...)
			require.Equal(t, 1, rep.ViolationCount, rep.Violations)
			require.Contains(t, rep.Violations[0], tc.want)
		})
	}

	t.Run("UnknownByAKill", func(t *testing.T) {
		t.Parallel()
		r1 := run(1, map[string]campaigns.Outcome{"a": status(campaigns.OutcomeUnknown)})
		r1.Attempts["a"] = campaigns.Attempt{N: 1, Proc: "host:42"}
		killed := truth.Options{API: api, AppID: app, Killed: func(p string) bool { return p == "host:42" }}
		rep := truth.Check(record{}, killed, r1)
		require.Zero(t, rep.ViolationCount, rep.Violations)
		require.Equal(t, 1, rep.UnknownByKill)
		require.Equal(t, 1, truth.Check(record{}, opt, r1).ViolationCount, "no kill: no excuse")
	})
}
