package callback_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat/callback"
)

// massXML is the documented MASSSENDJOBFINISH sample (wechat-api.md §5.6),
// with the originality-check elements.
const massXML = `<xml>
  <ToUserName><![CDATA[gh_4d00ed8d6399]]></ToUserName>
  <FromUserName><![CDATA[oV5CrjpxgaGXNHIQigzNlgLTnwic]]></FromUserName>
  <CreateTime>1650896441</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[MASSSENDJOBFINISH]]></Event>
  <MsgID>1000000003</MsgID>
  <Status><![CDATA[%s]]></Status>
  <TotalCount>4</TotalCount>
  <FilterCount>3</FilterCount>
  <SentCount>2</SentCount>
  <ErrorCount>1</ErrorCount>
  <CopyrightCheckResult><Count>0</Count><ResultList></ResultList><CheckState>0</CheckState></CopyrightCheckResult>
  <ArticleUrlResult><Count>1</Count><ResultList><item><ArticleIdx>1</ArticleIdx>
    <ArticleUrl><![CDATA[http://mp.weixin.qq.com/s/x]]></ArticleUrl></item></ResultList></ArticleUrlResult>
</xml>`

func massSample(status string) []byte {
	return []byte(strings.Replace(massXML, "%s", status, 1))
}

// TestParseMassSendJobFinish: the documented event parses with its counts,
// and each documented Status maps to its result and review code.
func TestParseMassSendJobFinish(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		status string
		result string
		code   int
	}{
		{"send success", callback.MassSent, 0},
		{"send fail", callback.MassFailed, 0},
		{"err(20001)", callback.MassReviewFailed, 20001},
		{"err(10001)", callback.MassReviewFailed, 10001},
		{"err(x)", callback.MassUnknown, 0},
		{"queued", callback.MassUnknown, 0},
	} {
		e, err := callback.ParseEvent(massSample(c.status))
		require.NoError(t, err, c.status)
		require.Equal(t, callback.EventMassSendJobFinish, e.Event)
		require.EqualValues(t, 1000000003, e.MsgID)
		require.Equal(t, c.status, e.Status)
		require.False(t, e.IsReceipt(), "not a template receipt")
		require.Equal(t, callback.MassOutcome{Result: c.result, ReviewCode: c.code, TotalCount: 4, FilterCount: 3, SentCount: 2, ErrorCount: 1}, e.Mass, c.status)
	}
	require.Equal(t, "suspected politics", callback.ReviewMeaning(20001))
	require.Empty(t, callback.ReviewMeaning(1))

	for name, body := range map[string]string{
		"no MsgID":       `<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>MASSSENDJOBFINISH</Event><Status>send success</Status></xml>`,
		"no Status":      `<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>MASSSENDJOBFINISH</Event><MsgID>1</MsgID></xml>`,
		"negative count": `<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>MASSSENDJOBFINISH</Event><MsgID>1</MsgID><Status>send success</Status><SentCount>-1</SentCount></xml>`,
	} {
		_, err := callback.ParseEvent([]byte(body))
		require.ErrorIs(t, err, callback.ErrMalformed, name)
	}
}

// FuzzParseMassSendJobFinish: no input panics the decoder, and an accepted
// MASSSENDJOBFINISH has a known result, non-negative counts and a review
// code exactly when the result is a review failure; other events carry no
// mass outcome.
func FuzzParseMassSendJobFinish(f *testing.F) {
	for _, s := range []string{"send success", "send fail", "err(20001)", "err(0)", "err(99999999999)", "]]>", ""} {
		f.Add(massSample(s))
	}
	f.Add([]byte(`<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType><Event>MASSSENDJOBFINISH</Event><MsgID>1</MsgID><Status>x</Status><TotalCount>99999999999999999999</TotalCount></xml>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, err := callback.ParseEvent(body)
		if err != nil {
			if e != (callback.Event{}) {
				t.Fatalf("error %v with a non-zero event %+v", err, e)
			}
			return
		}
		m := e.Mass
		if e.Event != callback.EventMassSendJobFinish || e.MsgType != callback.MsgTypeEvent {
			if m != (callback.MassOutcome{}) {
				t.Fatalf("mass outcome %+v on event %q", m, e.Event)
			}
			return
		}
		switch m.Result {
		case callback.MassSent, callback.MassFailed, callback.MassReviewFailed, callback.MassUnknown:
		default:
			t.Fatalf("result %q", m.Result)
		}
		if (m.ReviewCode != 0) != (m.Result == callback.MassReviewFailed) || m.ReviewCode < 0 {
			t.Fatalf("review code %d with result %q", m.ReviewCode, m.Result)
		}
		if m.TotalCount < 0 || m.FilterCount < 0 || m.SentCount < 0 || m.ErrorCount < 0 || e.MsgID < 0 {
			t.Fatalf("negative count in %+v", m)
		}
	})
}
