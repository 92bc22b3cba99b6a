package wechattest

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestFaultHTTP5xx(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Faults: Faults{HTTP5xx: 1}, Seed: 3})
	tok := b.token(t) // Token APIs get no faults.
	statuses := map[int]int{}
	for i := range 20 {
		status, raw := b.do(t, http.MethodPost, "/cgi-bin/message/template/send?access_token="+tok, mustJSON(t, templateBody(openID("f"+strconv.Itoa(i)), "")))
		statuses[status]++
		require.False(t, json.Valid(raw), "%s", raw)
	}
	require.Equal(t, 20, statuses[http.StatusBadGateway]+statuses[http.StatusServiceUnavailable])
	require.NotZero(t, statuses[http.StatusBadGateway])
	require.NotZero(t, statuses[http.StatusServiceUnavailable])
	require.Empty(t, b.srv.Deliveries())
	st := b.srv.Stats().APIs[nameTemplateSend]
	require.EqualValues(t, 20, st.Faults.HTTP5xx)
	require.EqualValues(t, 20, st.Calls)
	require.Zero(t, st.OK)
}

func TestFaultSystemError(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Faults: Faults{SystemError: 1}})
	tok := b.token(t)
	m := b.send(t, nameCustomSend, tok, mustJSON(t, customBody(openID("sys"), "text", map[string]any{"content": "x"})))
	require.Equal(t, -1, errcode(t, m))
	require.Contains(t, m["errmsg"], "system error rid: ")
	// -1 comes after the token check.
	require.Equal(t, 40001, errcode(t, b.send(t, nameCustomSend, strings.Repeat("x", 40), "{}")))
	require.Empty(t, b.srv.Deliveries())
	st := b.srv.Stats().APIs[nameCustomSend]
	require.EqualValues(t, 1, st.Faults.SystemError)
	require.EqualValues(t, map[int]int64{-1: 1, 40001: 1}, st.Errors)
}

// outcomes sends n template messages one at a time and describes each
// answer: an HTTP status or an errcode.
func outcomes(t *testing.T, cfg Config, n int) []string {
	t.Helper()
	b := setup(t, cfg)
	tok := b.token(t)
	var out []string
	for i := range n {
		status, raw := b.do(t, http.MethodPost, "/cgi-bin/message/template/send?access_token="+tok, mustJSON(t, templateBody(openID("s"+strconv.Itoa(i)), "")))
		if status != http.StatusOK {
			out = append(out, "http "+strconv.Itoa(status))
			continue
		}
		out = append(out, "errcode "+strconv.Itoa(errcode(t, decode(t, raw))))
	}
	return out
}

func TestFaultsRepeatWithSeed(t *testing.T) {
	t.Parallel()
	cfg := Config{Faults: Faults{SystemError: 0.3, HTTP5xx: 0.2}, Seed: 1}
	first := outcomes(t, cfg, 60)
	require.Equal(t, first, outcomes(t, cfg, 60))
	cfg.Seed = 2
	require.NotEqual(t, first, outcomes(t, cfg, 60))

	counts := map[string]int{}
	for _, o := range first {
		counts[o]++
	}
	require.Greater(t, counts["errcode -1"], 3, "%v", counts)
	require.Greater(t, counts["errcode 0"], 10, "%v", counts)
	require.Greater(t, counts["http 502"]+counts["http 503"], 3, "%v", counts)
}

func TestFaultDropAfterRecord(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Faults: Faults{DropAfterRecord: 1}})
	tok := b.token(t)
	u := openID("drop")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.srv.URL()+"/cgi-bin/message/template/send?access_token="+tok,
		strings.NewReader(mustJSON(t, templateBody(u, "cm-1"))))
	require.NoError(t, err)
	resp, err := b.client.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.Error(t, err, "the connection must close without an answer")
	require.True(t, errors.Is(err, io.EOF) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset"), "%v", err)

	// The message was delivered all the same: the ambiguous case.
	ds := b.srv.Deliveries()
	require.Len(t, ds, 1)
	require.Equal(t, u, ds[0].OpenID)
	st := b.srv.Stats().APIs[nameTemplateSend]
	require.EqualValues(t, 1, st.Faults.DropAfterRecord)
	require.EqualValues(t, 1, st.Accepted)

	// A retry with the same client_msg_id is deduped once faults stop.
	require.NoError(t, b.srv.SetFaults(Faults{}))
	m := b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(u, "cm-1")))
	require.Zero(t, errcode(t, m))
	require.Equal(t, ds[0].MsgID, num(t, m, "msgid"))
	require.Len(t, b.srv.Deliveries(), 1)
}

func TestFaultSlowHonoursContext(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Faults: Faults{Slow: 1, SlowDelay: time.Hour}})
	done := make(chan bool, 1)
	hook := func(completed bool) { done <- completed }
	b.srv.slowHook.Store(&hook)
	tok := b.token(t)

	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.srv.URL()+"/cgi-bin/message/template/send?access_token="+tok,
		strings.NewReader(mustJSON(t, templateBody(openID("slow"), ""))))
	require.NoError(t, err)
	resp, err := b.client.Do(req)
	if err == nil {
		resp.Body.Close()
	}
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// The handler gives up as soon as the client is gone, not after an hour.
	select {
	case completed := <-done:
		require.False(t, completed)
	case <-time.After(10 * time.Second):
		t.Fatal("slow handler did not honour the request context")
	}
	st := b.srv.Stats().APIs[nameTemplateSend]
	require.EqualValues(t, 1, st.Faults.Slow)
	// It was handled before the wait, so it was delivered.
	require.Len(t, b.srv.Deliveries(), 1)
}

func TestFaultSlowAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Faults: Faults{Slow: 1, SlowDelay: time.Millisecond}})
	done := make(chan bool, 1)
	hook := func(completed bool) { done <- completed }
	b.srv.slowHook.Store(&hook)
	m := b.send(t, nameTemplateSend, b.token(t), mustJSON(t, templateBody(openID("slow"), "")))
	require.Zero(t, errcode(t, m))
	require.True(t, <-done)
}

func TestFaultInvalidateTokens(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Faults: Faults{InvalidateTokens: 1}})
	tok := b.token(t)
	m := b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(openID("inv"), "")))
	require.Equal(t, 40001, errcode(t, m))
	require.NoError(t, b.srv.SetFaults(Faults{}))
	require.Equal(t, 40001, b.tokenCode(t, tok))
	fresh := b.token(t)
	require.NotEqual(t, tok, fresh)
	require.Zero(t, errcode(t, b.send(t, nameTemplateSend, fresh, mustJSON(t, templateBody(openID("inv"), "")))))
	require.EqualValues(t, 1, b.srv.Stats().APIs[nameTemplateSend].Faults.InvalidateTokens)
}

func TestSetFaults(t *testing.T) {
	t.Parallel()
	s, err := New(Config{})
	require.NoError(t, err)
	require.NoError(t, s.SetFaults(Faults{Slow: 0.5}))
	require.Equal(t, Faults{Slow: 0.5, SlowDelay: SlowDelayDefault}, s.Faults())
	require.EqualError(t, s.SetFaults(Faults{HTTP5xx: 1.5}), "wechattest: Faults.HTTP5xx: rate 1.5 is not in [0, 1]")
	require.EqualError(t, s.SetFaults(Faults{SlowDelay: -time.Second}), "wechattest: Faults.SlowDelay: -1s is negative")
	require.EqualError(t, s.SetFaults(Faults{Latency: -time.Millisecond}), "wechattest: Faults.Latency: -1ms is negative")
	require.Equal(t, Faults{Slow: 0.5, SlowDelay: SlowDelayDefault}, s.Faults())

	_, err = New(Config{Faults: Faults{DropAfterRecord: -0.1}})
	require.EqualError(t, err, "wechattest: Config.Faults.DropAfterRecord: rate -0.1 is not in [0, 1]")
}

func TestFaultsJSON(t *testing.T) {
	t.Parallel()
	f := Faults{SystemError: 0.1, HTTP5xx: 0.2, DropAfterRecord: 0.3, Slow: 0.4, SlowDelay: 1500 * time.Millisecond, InvalidateTokens: 0.5, Latency: 40 * time.Millisecond}
	raw, err := json.Marshal(f)
	require.NoError(t, err)
	require.JSONEq(t, `{"system_error":0.1,"http_5xx":0.2,"drop_after_record":0.3,"slow":0.4,"slow_delay":"1.5s","invalidate_tokens":0.5,"latency":"40ms"}`, string(raw))
	var back Faults
	require.NoError(t, json.Unmarshal(raw, &back))
	require.Equal(t, f, back)
	require.ErrorContains(t, json.Unmarshal([]byte(`{"slow_dely":"1s"}`), &back), `unknown field "slow_dely"`)
	require.ErrorContains(t, json.Unmarshal([]byte(`{"slow_delay":"soon"}`), &back), "slow_delay")
	require.ErrorContains(t, json.Unmarshal([]byte(`{"latency":"soon"}`), &back), "latency")
}

// TestFaultLatency checks that send answers (a success, an errcode, a wrong
// method and a 5xx) come no sooner than Latency.
func TestFaultLatency(t *testing.T) {
	t.Parallel()
	const latency = 30 * time.Millisecond
	b := setup(t, Config{Faults: Faults{Latency: latency}})
	tok := b.token(t)
	elapsed := func(f func()) time.Duration {
		start := time.Now()
		f()
		return time.Since(start)
	}
	require.GreaterOrEqual(t, elapsed(func() {
		require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(openID("lat"), "")))))
	}), latency)
	require.GreaterOrEqual(t, elapsed(func() {
		require.Equal(t, 40003, errcode(t, b.send(t, nameCustomSend, tok, mustJSON(t, customBody("nobody", "text", map[string]any{"content": "x"})))))
	}), latency)
	require.GreaterOrEqual(t, elapsed(func() {
		require.Equal(t, 43002, errcode(t, b.get(t, "/cgi-bin/"+nameBizSend+"?access_token="+tok)))
	}), latency)
	require.NoError(t, b.srv.SetFaults(Faults{HTTP5xx: 1, Latency: latency}))
	require.GreaterOrEqual(t, elapsed(func() {
		status, _ := b.do(t, http.MethodPost, "/cgi-bin/"+nameTemplateSend+"?access_token="+tok, mustJSON(t, templateBody(openID("lat"), "")))
		require.Contains(t, []int{http.StatusBadGateway, http.StatusServiceUnavailable}, status)
	}), latency)
	require.Equal(t, Faults{HTTP5xx: 1, Latency: latency}, b.srv.Faults())
}
