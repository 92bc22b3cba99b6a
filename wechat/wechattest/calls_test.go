package wechattest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// sendCtx posts body to a send API with ctx through client and returns the
// HTTP status, or the error when there was no answer.
func (b *testBundle) sendCtx(ctx context.Context, client *http.Client, api, tok, body string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.srv.URL()+"/cgi-bin/"+api+"?access_token="+tok, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return resp.StatusCode, nil
}

// onlyCall returns the only call the fake recorded.
func onlyCall(t *testing.T, s *Server) Call {
	t.Helper()
	calls := s.Calls()
	require.Len(t, calls, 1, "%+v", calls)
	return calls[0]
}

// awaitCall polls until the only recorded call satisfies cond.
func awaitCall(t *testing.T, s *Server, cond func(Call) bool, msg string) Call {
	t.Helper()
	var last Call
	require.Eventually(t, func() bool {
		calls := s.Calls()
		if len(calls) != 1 {
			return false
		}
		last = calls[0]
		return cond(last)
	}, 10*time.Second, 5*time.Millisecond, msg)
	return last
}

func TestCallAnswers(t *testing.T) {
	t.Parallel()

	t.Run("answered", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		tok := b.token(t)
		u := openID("ans")
		m := b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(u, "cm-ans")))
		require.Zero(t, errcode(t, m))
		// Final as soon as the client has its answer: no waiting.
		require.Equal(t, Call{
			API: nameTemplateSend, AppID: AppIDDefault, OpenID: u, Result: ResultDelivered,
			MsgID: num(t, m, "msgid"), ClientMsgID: "cm-ans", Answer: AnswerAnswered,
			Arrived: testStart(), Ended: testStart(),
		}, onlyCall(t, b.srv))
		st := b.srv.Stats().APIs[nameTemplateSend]
		require.Equal(t, [4]int64{1, 1, 0, 0}, [4]int64{st.Calls, st.Answered, st.Dropped, st.Abandoned})
		// Other APIs count answers too but have no call records.
		require.EqualValues(t, 1, b.srv.Stats().APIs[nameStableToken].Answered)
	})

	t.Run("dropped after the delivery", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Faults: Faults{DropAfterRecord: 1}})
		tok := b.token(t)
		u := openID("drop")
		_, err := b.sendCtx(t.Context(), b.client, nameCustomSend, tok, mustJSON(t, customBody(u, "text", map[string]any{"content": "x"})))
		require.Error(t, err)
		// Recorded before the connection closed: no waiting either.
		c := onlyCall(t, b.srv)
		require.Equal(t, ResultDelivered, c.Result)
		require.Equal(t, AnswerDropped, c.Answer)
		require.Equal(t, u, c.OpenID)
		require.Len(t, b.srv.Deliveries(), 1)
		st := b.srv.Stats().APIs[nameCustomSend]
		require.Equal(t, [3]int64{0, 1, 0}, [3]int64{st.Answered, st.Dropped, st.Abandoned})
	})

	t.Run("abandoned by a client timeout during a slow answer", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Faults: Faults{Slow: 1, SlowDelay: time.Hour}})
		done := make(chan bool, 1)
		hook := func(completed bool) { done <- completed }
		b.srv.slowHook.Store(&hook)
		tok := b.token(t)
		tr := &http.Transport{}
		t.Cleanup(tr.CloseIdleConnections)
		impatient := &http.Client{Transport: tr, Timeout: 50 * time.Millisecond}
		u := openID("slow")
		_, err := b.sendCtx(t.Context(), impatient, nameTemplateSend, tok, mustJSON(t, templateBody(u, "")))
		require.Error(t, err)
		select {
		case completed := <-done:
			require.False(t, completed)
		case <-time.After(10 * time.Second):
			t.Fatal("the slow wait did not end with the client")
		}
		// The hook runs after the call is recorded.
		c := onlyCall(t, b.srv)
		require.Equal(t, ResultDelivered, c.Result)
		require.Equal(t, AnswerAbandoned, c.Answer)
		require.NotZero(t, c.MsgID)
		require.Len(t, b.srv.Deliveries(), 1)
		st := b.srv.Stats().APIs[nameTemplateSend]
		require.Equal(t, [3]int64{0, 0, 1}, [3]int64{st.Answered, st.Dropped, st.Abandoned})
	})

	t.Run("abandoned by a cancel during the latency wait", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Faults: Faults{Latency: time.Hour}})
		tok := b.token(t)
		u := openID("lat")
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		sent := make(chan error, 1)
		go func() {
			_, err := b.sendCtx(ctx, b.client, nameBizSend, tok, mustJSON(t, bizBody(u)))
			sent <- err
		}()
		// In flight, handled and waiting: the record shows the delivery.
		c := awaitCall(t, b.srv, func(c Call) bool { return c.Result == ResultDelivered }, "call in its latency wait")
		require.Equal(t, AnswerInFlight, c.Answer)
		require.Zero(t, c.Ended)
		require.Equal(t, u, c.OpenID)
		st := b.srv.Stats().APIs[nameBizSend]
		require.Equal(t, [4]int64{1, 0, 0, 0}, [4]int64{st.Calls, st.Answered, st.Dropped, st.Abandoned})

		cancel() // The client goes away: its transport closes the connection.
		require.ErrorIs(t, <-sent, context.Canceled)
		c = awaitCall(t, b.srv, func(c Call) bool { return c.Answer != AnswerInFlight }, "call ended")
		require.Equal(t, AnswerAbandoned, c.Answer)
		require.Equal(t, testStart(), c.Ended)
		require.Len(t, b.srv.Deliveries(), 1)
		require.EqualValues(t, 1, b.srv.Stats().APIs[nameBizSend].Abandoned)
	})

	t.Run("abandoned by a closed connection, as of a killed client", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Faults: Faults{Latency: time.Hour}})
		tok := b.token(t)
		u := openID("kill")
		conn, err := net.Dial("tcp", strings.TrimPrefix(b.srv.URL(), "http://"))
		require.NoError(t, err)
		body := mustJSON(t, templateBody(u, "cm-k"))
		_, err = fmt.Fprintf(conn, "POST /cgi-bin/%s?access_token=%s HTTP/1.1\r\nHost: fake\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
			nameTemplateSend, tok, len(body), body)
		require.NoError(t, err)
		awaitCall(t, b.srv, func(c Call) bool { return c.Result == ResultDelivered }, "call in its latency wait")
		require.NoError(t, conn.Close())
		c := awaitCall(t, b.srv, func(c Call) bool { return c.Answer != AnswerInFlight }, "call ended")
		require.Equal(t, AnswerAbandoned, c.Answer)
		require.Equal(t, "cm-k", c.ClientMsgID)
	})

	t.Run("http 5xx answered", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Faults: Faults{HTTP5xx: 1}})
		tok := b.token(t)
		u := openID("5xx")
		status, err := b.sendCtx(t.Context(), b.client, nameTemplateSend, tok, mustJSON(t, templateBody(u, "cm-5")))
		require.NoError(t, err)
		c := onlyCall(t, b.srv)
		require.Equal(t, Call{
			API: nameTemplateSend, AppID: AppIDDefault, OpenID: u, Result: ResultHTTP5xx, Status: status,
			ClientMsgID: "cm-5", Answer: AnswerAnswered, Arrived: testStart(), Ended: testStart(),
		}, c)
		require.Contains(t, []int{http.StatusBadGateway, http.StatusServiceUnavailable}, c.Status)
		require.Empty(t, b.srv.Deliveries())
		require.EqualValues(t, 1, b.srv.Stats().APIs[nameTemplateSend].Answered)
	})

	t.Run("deduped retry", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{})
		tok := b.token(t)
		u := openID("dup")
		first := num(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(u, "cm-d"))), "msgid")
		again := num(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(u, "cm-d"))), "msgid")
		require.Equal(t, first, again)
		calls := b.srv.Calls()
		require.Len(t, calls, 2)
		require.Equal(t, ResultDelivered, calls[0].Result)
		require.Equal(t, ResultDeduped, calls[1].Result)
		require.Equal(t, first, calls[1].MsgID)
		require.Equal(t, "cm-d", calls[1].ClientMsgID)
		require.Equal(t, AnswerAnswered, calls[1].Answer)
		require.Len(t, b.srv.Deliveries(), 1)
	})
}

// TestCallRefusals checks the record of calls answered with an errcode: the
// account is "" exactly when the token is refused, and touser is read from
// the body even when the handler never parsed it.
func TestCallRefusals(t *testing.T) {
	t.Parallel()
	blocked := openID("blk")
	b := setup(t, Config{
		Terminal: map[string]int{blocked: 43101},
		Limits:   map[string]Limit{nameCustomSend: {PerSecond: 1}},
	})
	tok := b.token(t)
	u := openID("ref")
	text := func(to string) string { return mustJSON(t, customBody(to, "text", map[string]any{"content": "x"})) }
	escaped := strings.Replace(mustJSON(t, bizBody(u)), `"data"`, `"note":"\u0041","data"`, 1)

	steps := []struct {
		name   string
		faults Faults
		method string
		api    string
		tok    string
		body   string
		want   Call // API, Answer and times are filled in
	}{
		{"token malformed", Faults{}, http.MethodPost, nameTemplateSend, "bad", mustJSON(t, templateBody(u, "c1")),
			Call{OpenID: u, Result: ResultRefused, Errcode: 40014, ClientMsgID: "c1"}},
		{"terminal", Faults{}, http.MethodPost, nameCustomSend, tok, text(blocked),
			Call{AppID: AppIDDefault, OpenID: blocked, Result: ResultRefused, Errcode: 43101}},
		{"per-second limit", Faults{}, http.MethodPost, nameCustomSend, tok, text(u),
			Call{AppID: AppIDDefault, OpenID: u, Result: ResultRefused, Errcode: 45011}},
		{"escape before parsing", Faults{}, http.MethodPost, nameBizSend, tok, escaped,
			Call{AppID: AppIDDefault, OpenID: u, Result: ResultRefused, Errcode: 40033}},
		{"wrong method", Faults{}, http.MethodGet, nameBizSend, tok, "",
			Call{AppID: AppIDDefault, Result: ResultRefused, Errcode: 43002}},
		{"not an object", Faults{}, http.MethodPost, nameTemplateSend, tok, `[1]`,
			Call{AppID: AppIDDefault, Result: ResultRefused, Errcode: 47001}},
		{"touser not a string", Faults{}, http.MethodPost, nameTemplateSend, tok, `{"touser":1,"client_msg_id":"c7"}`,
			Call{AppID: AppIDDefault, Result: ResultRefused, Errcode: 47001, ClientMsgID: "c7"}},
		{"system error", Faults{SystemError: 1}, http.MethodPost, nameTemplateSend, tok, mustJSON(t, templateBody(u, "c8")),
			Call{AppID: AppIDDefault, OpenID: u, Result: ResultRefused, Errcode: -1, ClientMsgID: "c8"}},
		{"tokens invalidated", Faults{InvalidateTokens: 1}, http.MethodPost, nameBizSend, tok, mustJSON(t, bizBody(u)),
			Call{OpenID: u, Result: ResultRefused, Errcode: 40001}},
	}
	var want []Call
	for _, st := range steps {
		require.NoError(t, b.srv.SetFaults(st.faults))
		status, raw := b.do(t, st.method, "/cgi-bin/"+st.api+"?access_token="+st.tok, st.body)
		require.Equal(t, http.StatusOK, status, st.name)
		require.Equal(t, st.want.Errcode, errcode(t, decode(t, raw)), st.name)
		c := st.want
		c.API, c.Answer, c.Arrived, c.Ended = st.api, AnswerAnswered, testStart(), testStart()
		want = append(want, c)
	}
	require.Equal(t, want, b.srv.Calls())
	require.Empty(t, b.srv.Deliveries())
}

func TestCallsEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tok := b.token(t)
	require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(openID("e1"), "cm-e")))))
	require.Equal(t, 40003, errcode(t, b.send(t, nameCustomSend, tok, mustJSON(t, customBody("nobody", "text", map[string]any{"content": "x"})))))

	// A third call waits in flight while the endpoint is read.
	require.NoError(t, b.srv.SetFaults(Faults{Latency: time.Hour}))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		_, err := b.sendCtx(ctx, b.client, nameBizSend, tok, mustJSON(t, bizBody(openID("e3"))))
		sent <- err
	}()
	require.Eventually(t, func() bool {
		calls := b.srv.Calls()
		return len(calls) == 3 && calls[2].Result == ResultDelivered
	}, 10*time.Second, 5*time.Millisecond)

	status, raw := b.do(t, http.MethodGet, "/fake/calls", "")
	require.Equal(t, http.StatusOK, status)
	lines := bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n"))
	require.Len(t, lines, 3)
	require.Contains(t, string(lines[2]), `"answer":"in_flight"`)
	require.NotContains(t, string(lines[2]), `"ended"`)

	var got []Call
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		var c Call
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&c))
		got = append(got, c)
	}
	want := b.srv.Calls()
	require.Len(t, got, len(want))
	for i := range want {
		require.True(t, want[i].Arrived.Equal(got[i].Arrived))
		require.True(t, want[i].Ended.Equal(got[i].Ended))
		got[i].Arrived, got[i].Ended = want[i].Arrived, want[i].Ended
	}
	require.Equal(t, want, got)
	require.Equal(t, "nobody", got[1].OpenID)
	require.Equal(t, 40003, got[1].Errcode)

	var first map[string]any
	require.NoError(t, json.Unmarshal(lines[0], &first))
	require.Equal(t, map[string]any{
		"api": nameTemplateSend, "app_id": AppIDDefault, "openid": openID("e1"), "result": "delivered",
		"msgid": first["msgid"], "client_msg_id": "cm-e", "answer": "answered",
		"arrived": "2026-03-10T09:00:00+08:00", "ended": "2026-03-10T09:00:00+08:00",
	}, first)

	cancel()
	require.Error(t, <-sent)
	require.Eventually(t, func() bool { return b.srv.Calls()[2].Answer == AnswerAbandoned }, 10*time.Second, 5*time.Millisecond)

	status, _ = b.do(t, http.MethodPost, "/fake/calls", "")
	require.Equal(t, http.StatusMethodNotAllowed, status)
}

// TestCallStatsAddUp checks that every ended call is counted once in
// Answered, Dropped or Abandoned, over a mix of faults.
func TestCallStatsAddUp(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Seed: 7, Faults: Faults{SystemError: 0.2, HTTP5xx: 0.2, DropAfterRecord: 0.2}})
	tok := b.token(t)
	for i := range 40 {
		_, _ = b.sendCtx(t.Context(), b.client, nameTemplateSend, tok, mustJSON(t, templateBody(openID("m"+strconv.Itoa(i)), "")))
	}
	st := b.srv.Stats().APIs[nameTemplateSend]
	require.EqualValues(t, 40, st.Calls)
	require.Equal(t, st.Calls, st.Answered+st.Dropped+st.Abandoned)
	require.Equal(t, st.Faults.DropAfterRecord, st.Dropped)
	require.Positive(t, st.Dropped)
	require.Zero(t, st.Abandoned)

	counts := map[CallAnswer]int64{}
	for _, c := range b.srv.Calls() {
		counts[c.Answer]++
	}
	require.Equal(t, map[CallAnswer]int64{AnswerAnswered: st.Answered, AnswerDropped: st.Dropped}, counts)
}
