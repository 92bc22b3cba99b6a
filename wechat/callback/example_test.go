package callback_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/wxmass/wxmass/wechat/callback"
)

// Verify the signature of WeChat's documented URL check (token "AAAAA").
func ExampleSignature() {
	fmt.Println(callback.Signature("AAAAA", "1714036504", "1514711492"))
	// Output: f464b24fc39322e44b38aa78f5edd27bd1441696
}

// Encrypt a reply and decrypt it again, as WeChat would.
func ExampleCrypter() {
	c, err := callback.NewCrypter("abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "wx2c2769f8efd9abc2")
	if err != nil {
		fmt.Println(err)
		return
	}
	enc, err := c.Encrypt([]byte("<xml><Content>hi</Content></xml>"))
	if err != nil {
		fmt.Println(err)
		return
	}
	msg, err := c.Decrypt(enc)
	fmt.Println(string(msg), err)
	// Output: <xml><Content>hi</Content></xml> <nil>
}

// Serve WeChat's URL check and one delivery receipt (in tests the handler
// is served by an httptest.Server; a recorder keeps the example short).
func ExampleHandler() {
	h, err := callback.NewHandler(callback.Config{
		Token:   "AAAAA",
		NowFunc: func() time.Time { return time.Unix(1714036504, 0) },
		OnEvent: func(_ context.Context, e callback.Event) error {
			fmt.Println(e.Event, e.MsgID, e.Delivery, e.Reason)
			return nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/wechat/callback?signature=f464b24fc39322e44b38aa78f5edd27bd1441696&echostr=4375120948345356249&timestamp=1714036504&nonce=1514711492", nil))
	fmt.Println(rec.Code, rec.Body.String())

	query := "signature=" + callback.Signature("AAAAA", "1714036504", "7") + "&timestamp=1714036504&nonce=7"
	body := `<xml><ToUserName><![CDATA[gh_7f083739789a]]></ToUserName><FromUserName><![CDATA[oia2TjuEGTNoeX76QEjQNrcURxG8]]></FromUserName>` +
		`<CreateTime>1714036504</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[TEMPLATESENDJOBFINISH]]></Event>` +
		`<MsgID>200163836</MsgID><Status><![CDATA[failed: user block]]></Status></xml>`
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/wechat/callback?"+query, strings.NewReader(body)))
	fmt.Println(rec.Code, rec.Body.String())
	// Output:
	// 200 4375120948345356249
	// TEMPLATESENDJOBFINISH 200163836 failed user block
	// 200 success
}
