package wechattest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/wxmass/wxmass/wechat/wechattest"
)

// Serve the fake with Run, as the fakewechat command does, fetch a stable
// token and send a template message to a generated follower.
func ExampleServer_Run() {
	clock := wechattest.NewManualClock(time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC))
	srv, err := wechattest.New(wechattest.Config{Followers: 3, NowFunc: clock.Now})
	if err != nil {
		fmt.Println(err)
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	tr := &http.Transport{}
	client := &http.Client{Transport: tr}

	post := func(path, body string) map[string]any {
		resp, err := client.Post(base+path, "application/json", strings.NewReader(body))
		if err != nil {
			return map[string]any{"error": err.Error()}
		}
		defer resp.Body.Close()
		var m map[string]any
		dec := json.NewDecoder(resp.Body)
		dec.UseNumber()
		_ = dec.Decode(&m)
		return m
	}

	tok := post("/cgi-bin/stable_token", `{"grant_type":"client_credential","appid":"`+wechattest.AppIDDefault+
		`","secret":"`+wechattest.SecretDefault+`"}`)
	fmt.Println("expires_in:", tok["expires_in"])

	openid := srv.FollowerOpenIDs()[0]
	sent := post("/cgi-bin/message/template/send?access_token="+tok["access_token"].(string),
		`{"touser":"`+openid+`","template_id":"TPL_ORDER_SHIPPED","data":{"thing1":{"value":"您的订单已发货"}}}`)
	fmt.Println("errcode:", sent["errcode"], "errmsg:", sent["errmsg"])

	bad := post("/cgi-bin/message/template/send?access_token="+tok["access_token"].(string),
		`{"touser":"`+openid+`","template_id":"TPL_ORDER_SHIPPED","data":{"thing1":{"value":"line one\nline two"}}}`)
	fmt.Println("errcode:", bad["errcode"])

	st := srv.Stats()
	fmt.Println("deliveries:", st.Deliveries, "47003 answers:", st.APIs["message/template/send"].Errors[47003])

	tr.CloseIdleConnections()
	stop()
	fmt.Println("run:", <-done)
	// Output:
	// expires_in: 7200
	// errcode: 0 errmsg: ok
	// errcode: 47003
	// deliveries: 1 47003 answers: 1
	// run: <nil>
}
