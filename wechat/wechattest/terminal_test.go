package wechattest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat/callback"
)

// TestErrmsgsOfRecipientCodes: the errcodes a user can cause answer
// WeChat's errmsg (wechat-api.md §8.2).
func TestErrmsgsOfRecipientCodes(t *testing.T) {
	t.Parallel()
	for code, msg := range map[int]string{
		43117: "Sending messages to this openid too frequently,please try later",
		43004: "require subscribe",
		48002: "user block receive message",
		43101: "user refuse to accept the msg",
		40003: "invalid openid",
		45015: "response out of time limit or subscription is canceled",
		45047: "out of response count limit",
	} {
		require.Equal(t, msg, errmsg(code), "errcode %d", code)
	}
}

// sendAll sends a valid body to u on each of the three send APIs and
// returns the answers by API.
func (b *testBundle) sendAll(t *testing.T, tok, u string) map[string]map[string]any {
	t.Helper()
	return map[string]map[string]any{
		nameTemplateSend: b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(u, ""))),
		nameCustomSend:   b.sendText(t, tok, u),
		nameBizSend:      b.send(t, nameBizSend, tok, mustJSON(t, bizBody(u))),
	}
}

// TestSetTerminal: SetTerminal and POST /fake/terminal make all three send
// APIs answer the code for the openid from the next call on, delivering
// nothing; 0 lifts it, also a code of Config.Terminal.
func TestSetTerminal(t *testing.T) {
	t.Parallel()
	u, fromConfig := openID("term"), openID("cfgterm")
	b := setup(t, Config{Terminal: map[string]int{fromConfig: 43101}})
	tok := b.token(t)

	require.NoError(t, b.srv.SetTerminal(u, 43117))
	for api, m := range b.sendAll(t, tok, u) {
		requireErr(t, m, 43117, api)
	}
	require.Empty(t, b.srv.DeliveriesTo(u), "refused calls are not deliveries")
	require.Equal(t, map[string]int{u: 43117, fromConfig: 43101}, b.srv.Terminal())

	require.NoError(t, b.srv.SetTerminal(u, 0))
	for api, m := range b.sendAll(t, tok, u) {
		require.Zero(t, errcode(t, m), "%s %v", api, m)
	}
	require.Len(t, b.srv.DeliveriesTo(u), 3)

	require.Equal(t, map[string]any{"ok": true}, b.post(t, "/fake/terminal", `{"openid":"`+u+`","errcode":48002}`))
	for api, m := range b.sendAll(t, tok, u) {
		requireErr(t, m, 48002, api)
	}
	b.post(t, "/fake/terminal", `{"openid":"`+u+`","errcode":0}`)
	require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(u, "")))))

	requireErr(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(fromConfig, ""))), 43101)
	b.post(t, "/fake/terminal", `{"errcode":0,"openid":"`+fromConfig+`"}`)
	require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(fromConfig, "")))))
	require.Empty(t, b.srv.Terminal())

	require.ErrorContains(t, b.srv.SetTerminal("o-short", 43004), `terminal openid "o-short": not an openid`)
	require.NoError(t, b.srv.SetTerminal(u, 0), "lifting a code that is not there")
}

// TestSetTerminalConcurrent: codes change safely while sends read them
// (run with -race).
func TestSetTerminalConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tok := b.token(t)
	var wg sync.WaitGroup
	for i := range 4 {
		u := openID("cc" + strconv.Itoa(i))
		wg.Go(func() {
			for j := range 20 {
				require.NoError(t, b.srv.SetTerminal(u, (j%2)*43117))
			}
		})
		wg.Go(func() {
			for range 20 {
				code := errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(u, ""))))
				require.Contains(t, []int{0, 43117}, code)
			}
		})
	}
	wg.Wait()
}

// TestSetReceiptStatus: SetReceiptStatus and POST /fake/receipt-status set
// the Status of the next receipts of an openid, over Callback.Blocked; ""
// restores the default.
func TestSetReceiptStatus(t *testing.T) {
	t.Parallel()
	clock := NewManualClock(testStart())
	rcv := startReceiver(t, callback.Config{NowFunc: clock.Now})
	u, blocked := openID("rs"), openID("rsblk")
	b := setup(t, Config{NowFunc: clock.Now, Callback: Callback{URL: rcv.srv.URL, Token: cbToken, Blocked: []string{blocked}}})
	tok := b.token(t)
	receipt := func(openid string) callback.Event {
		t.Helper()
		msgid := b.sendTemplate(t, tok, openid, "")
		e := rcv.next(t)
		require.Equal(t, msgid, e.MsgID)
		require.Equal(t, openid, e.FromUserName)
		return e
	}

	require.Equal(t, StatusSuccess, receipt(u).Status)
	require.NoError(t, b.srv.SetReceiptStatus(u, StatusUserBlock))
	e := receipt(u)
	require.Equal(t, StatusUserBlock, e.Status)
	require.Equal(t, callback.ReasonUserBlock, e.Reason)

	require.Equal(t, map[string]any{"ok": true}, b.post(t, "/fake/receipt-status", `{"openid":"`+u+`","status":"failed:freq limit"}`))
	e = receipt(u)
	require.Equal(t, "failed:freq limit", e.Status)
	require.Equal(t, callback.DeliveryFailed, e.Delivery)
	require.Equal(t, "freq limit", e.Reason)

	b.post(t, "/fake/receipt-status", `{"openid":"`+u+`","status":""}`)
	require.Equal(t, StatusSuccess, receipt(u).Status)

	require.Equal(t, StatusUserBlock, receipt(blocked).Status)
	require.NoError(t, b.srv.SetReceiptStatus(blocked, StatusSuccess))
	require.Equal(t, StatusSuccess, receipt(blocked).Status)
	require.NoError(t, b.srv.SetReceiptStatus(blocked, ""))
	require.Equal(t, StatusUserBlock, receipt(blocked).Status)

	require.ErrorContains(t, b.srv.SetReceiptStatus("x", StatusSuccess), `receipt openid "x": not an openid`)
	none := setup(t, Config{})
	require.ErrorIs(t, none.srv.SetReceiptStatus(u, StatusUserBlock), ErrNoCallback)
	status, raw := none.do(t, http.MethodPost, "/fake/receipt-status", `{"openid":"`+u+`","status":"success"}`)
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, decode(t, raw)["error"], "no Callback.URL")
}

// TestDeliveriesTo: DeliveriesTo and GET /fake/deliveries?openid= return
// one user's deliveries of every API and account, with the fake-clock time.
func TestDeliveriesTo(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tok := b.token(t)
	u, other := openID("dto"), openID("dtother")
	b.sendAll(t, tok, u)
	b.sendAll(t, tok, other)
	at := b.clock.Advance(3 * time.Second)
	require.Zero(t, errcode(t, b.sendText(t, tok, u)))

	ds := b.srv.DeliveriesTo(u)
	require.Len(t, ds, 4)
	apis := []string{}
	for _, d := range ds {
		require.Equal(t, u, d.OpenID)
		require.Equal(t, AppIDDefault, d.AppID)
		apis = append(apis, d.API)
	}
	require.ElementsMatch(t, []string{nameTemplateSend, nameCustomSend, nameBizSend, nameCustomSend}, apis)
	require.Equal(t, testStart(), ds[0].Time)
	require.Equal(t, at, ds[3].Time)
	require.Empty(t, b.srv.DeliveriesTo(openID("nobody")))

	status, raw := b.do(t, http.MethodGet, "/fake/deliveries?openid="+u, "")
	require.Equal(t, http.StatusOK, status)
	var got []Delivery
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var d Delivery
		require.NoError(t, json.Unmarshal(sc.Bytes(), &d))
		got = append(got, d)
	}
	require.Len(t, got, 4)
	for i := range got {
		require.True(t, ds[i].Time.Equal(got[i].Time))
		got[i].Time = ds[i].Time
	}
	require.Equal(t, ds, got)

	status, raw = b.do(t, http.MethodGet, "/fake/deliveries?openid=nope", "")
	require.Equal(t, http.StatusBadRequest, status)
	require.Contains(t, decode(t, raw)["error"], `openid: "nope" is not an openid`)
}
