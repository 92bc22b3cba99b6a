package callback_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat/callback"
)

// receiptXML is a TEMPLATESENDJOBFINISH push as WeChat documents it.
func receiptXML(openid string, msgid int64, status string, createTime int64) string {
	return fmt.Sprintf(`<xml>
  <ToUserName><![CDATA[gh_7f083739789a]]></ToUserName>
  <FromUserName><![CDATA[%s]]></FromUserName>
  <CreateTime>%d</CreateTime>
  <MsgType><![CDATA[event]]></MsgType>
  <Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>
  <MsgID>%d</MsgID>
  <Status><![CDATA[%s]]></Status>
</xml>`, openid, createTime, msgid, status)
}

// TestParseEventReceipt: the documented receipt parses field by field, and
// every spelling of its statuses normalises as §2.6 says.
func TestParseEventReceipt(t *testing.T) {
	t.Parallel()
	e, err := callback.ParseEvent([]byte(receiptXML("oia2TjuEGTNoeX76QEjQNrcURxG8", 200163836, "success", 1395658920)))
	require.NoError(t, err)
	require.Equal(t, callback.Event{
		ToUserName: "gh_7f083739789a", FromUserName: "oia2TjuEGTNoeX76QEjQNrcURxG8", CreateTime: 1395658920,
		MsgType: "event", Event: "TEMPLATESENDJOBFINISH", MsgID: 200163836, Status: "success",
		Delivery: callback.DeliveryDelivered,
	}, e)
	require.True(t, e.IsReceipt())

	for status, want := range map[string]struct {
		d      callback.Delivery
		reason string
	}{
		"success":                            {callback.DeliveryDelivered, ""},
		" Success ":                          {callback.DeliveryDelivered, ""},
		"failed:user block":                  {callback.DeliveryFailed, "user block"},
		"failed: user block":                 {callback.DeliveryFailed, "user block"},
		"FAILED:User  Block":                 {callback.DeliveryFailed, "user block"},
		"failed: system failed":              {callback.DeliveryFailed, "system failed"},
		"failed:system failed":               {callback.DeliveryFailed, "system failed"},
		"failed:freq limit":                  {callback.DeliveryFailed, "freq limit"},
		"failed:  Freq\tLimit ":              {callback.DeliveryFailed, "freq limit"},
		"failed":                             {callback.DeliveryFailed, "unknown"},
		"failed:":                            {callback.DeliveryFailed, "unknown"},
		"failed:" + strings.Repeat("x", 200): {callback.DeliveryFailed, strings.Repeat("x", callback.ReasonMax)},
		"delivered maybe":                    {callback.DeliveryUnknown, ""},
	} {
		e, err := callback.ParseEvent([]byte(receiptXML("o1", 1, status, 1)))
		require.NoError(t, err, status)
		require.Equal(t, status, e.Status, "raw status kept")
		require.Equal(t, want.d, e.Delivery, status)
		require.Equal(t, want.reason, e.Reason, status)
	}
}

// TestParseEventOther: user messages take <MsgId>; events without a msgid
// are keyed by user and time; only receipts get a Delivery.
func TestParseEventOther(t *testing.T) {
	t.Parallel()
	msg, err := callback.ParseEvent([]byte(`<xml><ToUserName><![CDATA[gh_1]]></ToUserName><FromUserName><![CDATA[o1]]></FromUserName><CreateTime>1700000000</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[hi]]></Content><MsgId>1234567890123456</MsgId></xml>`))
	require.NoError(t, err)
	require.Equal(t, int64(1234567890123456), msg.MsgID)
	require.Equal(t, callback.DeliveryNone, msg.Delivery)
	require.Equal(t, "msgid:gh_1:msg:1234567890123456", msg.DedupeKey())

	sub, err := callback.ParseEvent([]byte(`<xml><ToUserName>gh_1</ToUserName><FromUserName>o1</FromUserName><CreateTime>1700000000</CreateTime><MsgType>event</MsgType><Event>subscribe</Event></xml>`))
	require.NoError(t, err)
	require.False(t, sub.IsReceipt())
	require.Equal(t, "ev:gh_1:o1:1700000000:event:subscribe", sub.DedupeKey())

	rcpt, err := callback.ParseEvent([]byte(receiptXML("o1", 77, "success", 1)))
	require.NoError(t, err)
	require.Equal(t, "msgid:gh_7f083739789a:TEMPLATESENDJOBFINISH:77", rcpt.DedupeKey())
}

// TestParseEventErrors: malformed pushes are ErrMalformed errors naming
// the problem.
func TestParseEventErrors(t *testing.T) {
	t.Parallel()
	for body, want := range map[string]string{
		"":                  "empty body",
		"   \n":             "empty body",
		"not xml":           "EOF",
		"<xml><ToUserName>": "unexpected EOF",
		"<root><ToUserName>gh</ToUserName></root>":                                                                                "root element <root>",
		"<xml><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>":                              "missing <ToUserName>",
		"<xml><ToUserName>g</ToUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>":                                  "missing <FromUserName>",
		"<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime></xml>":                           "missing <MsgType>",
		"<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><MsgType>text</MsgType></xml>":                              "missing <CreateTime>",
		"<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><CreateTime>soon</CreateTime><MsgType>text</MsgType></xml>": `<CreateTime> "soon"`,
		"<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><CreateTime>-1</CreateTime><MsgType>text</MsgType></xml>":   `<CreateTime> "-1"`,
		"<xml><ToUserName>g</ToUserName><FromUserName>o</FromUserName><CreateTime>1</CreateTime><MsgType>event</MsgType></xml>":   "without <Event>",
		strings.Replace(receiptXML("o", 5, "success", 1), "<MsgID>5</MsgID>", "", 1):                                              "missing <MsgID>",
		strings.Replace(receiptXML("o", 5, "success", 1), "<MsgID>5</MsgID>", "<MsgID>5x</MsgID>", 1):                             `<MsgID> "5x"`,
		strings.Replace(receiptXML("o", 5, "success", 1), "<MsgID>5</MsgID>", "<MsgID>99999999999999999999</MsgID>", 1):           "<MsgID>",
		receiptXML("o", 5, "", 1):                         "without <Status>",
		receiptXML("o", 5, "success", 1) + "<xml></xml>":  "element <xml> after </xml>",
		receiptXML("o", 5, "success", 1) + "trailing":     "text after </xml>",
		`<?xml version="1.0" encoding="GBK"?><xml></xml>`: "GBK",
	} {
		_, err := callback.ParseEvent([]byte(body))
		require.ErrorIs(t, err, callback.ErrMalformed, "%q", body)
		require.ErrorContains(t, err, want, "%q", body)
	}
	// Comments and whitespace after the document are fine.
	_, err := callback.ParseEvent([]byte(receiptXML("o", 5, "success", 1) + "\n<!-- done -->\n"))
	require.NoError(t, err)
}
