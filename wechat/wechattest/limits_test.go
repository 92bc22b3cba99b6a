package wechattest

import (
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPerSecondLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Limits: map[string]Limit{nameTemplateSend: {PerSecond: 3}}})
	tok := b.token(t)
	body := mustJSON(t, templateBody(openID("rate"), ""))
	send := func() int { return errcode(t, b.send(t, nameTemplateSend, tok, body)) }

	// Three calls spread over 0.9 s fill the window.
	require.Zero(t, send())
	b.clock.Advance(400 * time.Millisecond)
	require.Zero(t, send())
	b.clock.Advance(500 * time.Millisecond)
	require.Zero(t, send())
	m := b.send(t, nameTemplateSend, tok, body)
	require.Equal(t, 45011, errcode(t, m))
	require.Contains(t, m["errmsg"], "api minute-quota reach limit must slower retry next minute rid: ")
	// The window slides: one second after the first call, one more fits.
	b.clock.Advance(100 * time.Millisecond)
	require.Zero(t, send())
	require.Equal(t, 45011, send())
	b.clock.Advance(400 * time.Millisecond)
	require.Zero(t, send())

	st := b.srv.Stats().APIs[nameTemplateSend]
	require.EqualValues(t, 2, st.Errors[45011])
	require.EqualValues(t, 5, st.Accepted)
	// Refused calls are received too: five calls in [0.4 s, 1.4 s).
	require.Equal(t, 5, st.Peak1s)
	// Other APIs are not limited.
	require.Zero(t, b.tokenCode(t, tok))
}

func TestDailyLimitMidnightReset(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Limits: map[string]Limit{nameCustomSend: {Daily: 2}}})
	// 23:59:59 in Shanghai, 15:59:59 UTC.
	b.clock.Set(time.Date(2026, 3, 10, 15, 59, 59, 0, time.UTC))
	tok := b.token(t)
	body := mustJSON(t, customBody(openID("daily"), "text", map[string]any{"content": "x"}))
	send := func() int { return errcode(t, b.send(t, nameCustomSend, tok, body)) }

	require.Zero(t, send())
	require.Zero(t, send())
	m := b.send(t, nameCustomSend, tok, body)
	require.Equal(t, 45009, errcode(t, m))
	require.Contains(t, m["errmsg"], "reach max api daily quota limit rid: ")
	quota := b.send(t, nameQuotaGet, tok, `{"cgi_path":"/cgi-bin/message/custom/send"}`)
	require.Equal(t, map[string]any{"daily_limit": jsonNum(2), "used": jsonNum(2), "remain": jsonNum(0)}, quota["quota"])

	// Midnight in Shanghai resets the count.
	b.clock.Advance(time.Second)
	require.Zero(t, send())
	require.Zero(t, send())
	require.Equal(t, 45009, send())

	// So does ResetQuotas.
	b.srv.ResetQuotas()
	require.Zero(t, send())
	require.EqualValues(t, 2, b.srv.Stats().APIs[nameCustomSend].Errors[45009])
}

func TestDailyLimitOtherLocation(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Limits: map[string]Limit{nameBizSend: {Daily: 1}}, QuotaLocation: time.UTC})
	b.clock.Set(time.Date(2026, 3, 10, 16, 30, 0, 0, time.UTC)) // After Shanghai's midnight.
	tok := b.token(t)
	body := mustJSON(t, bizBody(openID("utc")))
	require.Zero(t, errcode(t, b.send(t, nameBizSend, tok, body)))
	b.clock.Set(time.Date(2026, 3, 10, 23, 59, 0, 0, time.UTC))
	tok = b.token(t)
	require.Equal(t, 45009, errcode(t, b.send(t, nameBizSend, tok, body)))
	b.clock.Set(time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC))
	require.Zero(t, errcode(t, b.send(t, nameBizSend, tok, body)))
}

func TestTokenAPILimit(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Limits: map[string]Limit{nameToken: {Daily: 1}}})
	require.Zero(t, errcode(t, b.get(t, plainTokenPath(AppIDDefault, SecretDefault))))
	require.Equal(t, 45009, errcode(t, b.get(t, plainTokenPath(AppIDDefault, SecretDefault))))
}

// jsonNum is n as decode returns it.
func jsonNum(n int64) any { return json.Number(strconv.FormatInt(n, 10)) }

func TestQuotaGet(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Limits: map[string]Limit{nameTemplateSend: {PerSecond: 50, Daily: 1000}}})
	tok := b.token(t)
	require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok, mustJSON(t, templateBody(openID("q"), "")))))

	m := b.send(t, nameQuotaGet, tok, `{"cgi_path":"/cgi-bin/message/template/send"}`)
	require.Zero(t, errcode(t, m))
	require.Equal(t, "ok", m["errmsg"])
	require.Equal(t, map[string]any{"daily_limit": jsonNum(1000), "used": jsonNum(1), "remain": jsonNum(999)}, m["quota"])
	require.Equal(t, map[string]any{"call_count": jsonNum(50), "refresh_second": jsonNum(1)}, m["rate_limit"])
	require.Equal(t, map[string]any{"call_count": jsonNum(0), "refresh_second": jsonNum(0)}, m["component_rate_limit"])

	m = b.send(t, nameQuotaGet, tok, `{"cgi_path":"/cgi-bin/user/get"}`)
	require.Equal(t, map[string]any{"daily_limit": jsonNum(quotaUnlimited), "used": jsonNum(0), "remain": jsonNum(quotaUnlimited)}, m["quota"])
	require.Equal(t, map[string]any{"call_count": jsonNum(0), "refresh_second": jsonNum(0)}, m["rate_limit"])

	require.Equal(t, 76003, errcode(t, b.send(t, nameQuotaGet, tok, `{"cgi_path":"cgi-bin/user/get"}`)))
	require.Equal(t, 76021, errcode(t, b.send(t, nameQuotaGet, tok, `{"cgi_path":"/cgi-bin/menu/create"}`)))
	require.Equal(t, 47001, errcode(t, b.send(t, nameQuotaGet, tok, `{"cgi_path":7}`)))
	require.Equal(t, 47001, errcode(t, b.send(t, nameQuotaGet, tok, `{}`)))
}
