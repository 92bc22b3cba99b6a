package wechat

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseErrmsg(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, msg, rid string }{
		{"invalid credential, access_token is invalid or not latest rid: 64dd8871-484ffffb-57f8d5ab", "invalid credential, access_token is invalid or not latest", "64dd8871-484ffffb-57f8d5ab"},
		{"argument invalid! data.thing22.value invalid rid: 5f1b-1", "argument invalid! data.thing22.value invalid", "5f1b-1"},
		{"system error hint: [KXnB_a0231vr21]", "system error", "KXnB_a0231vr21"},
		{"ok", "ok", ""},
		{"", "", ""},
		{" rid: x", "", "x"},
		{"a rid: b rid: c", "a rid: b", "c"},
	}
	for _, tt := range tests {
		msg, rid := parseErrmsg(tt.in)
		require.Equal(t, tt.msg, msg, tt.in)
		require.Equal(t, tt.rid, rid, tt.in)
	}
}

func TestAPIErrorIs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code   int
		api    string
		target error
		want   bool
	}{
		{40001, APITemplateSend, ErrTokenInvalid, true},
		{40014, APICustomSend, ErrTokenInvalid, true},
		{42001, APIUserGet, ErrTokenInvalid, true},
		{40001, APIStableToken, ErrTokenInvalid, false}, // wrong secret on the token API
		{40001, APIToken, ErrTokenConfig, true},
		{40125, APIStableToken, ErrTokenConfig, true},
		{40164, APIStableToken, ErrTokenConfig, true},
		{61004, APIToken, ErrTokenConfig, true},
		{40243, APIStableToken, ErrTokenConfig, true},
		{89503, APIStableToken, ErrTokenConfig, true},
		{40164, APITemplateSend, ErrTokenConfig, false},
		{-1, APIStableToken, ErrTokenConfig, false},
		{45009, APITemplateSend, ErrDailyQuota, true},
		{45011, APITemplateSend, ErrMinuteQuota, true},
		{45015, APICustomSend, ErrOutOfWindow, true},
		{-1, APITemplateSend, ErrSystemBusy, true},
		{43004, APITemplateSend, ErrTokenInvalid, false},
	}
	for _, tt := range tests {
		err := fmt.Errorf("wrapped: %w", &APIError{Code: tt.code, API: tt.api})
		require.Equal(t, tt.want, errors.Is(err, tt.target), "%d %s %v", tt.code, tt.api, tt.target)
	}
}

func TestAPIErrorMessage(t *testing.T) {
	t.Parallel()
	e := &APIError{Code: 40164, Msg: "invalid ip 1.2.3.4, not in whitelist", API: APIStableToken, RID: "r-1"}
	require.Equal(t, "wechat: stable_token: errcode 40164 (caller IP not in the account's API IP whitelist): invalid ip 1.2.3.4, not in whitelist (rid r-1)", e.Error())
	e = &APIError{Code: 43004, Msg: "require subscribe", API: APITemplateSend}
	require.Equal(t, "wechat: message/template/send: errcode 43004: require subscribe", e.Error())
}

func TestTransportErrorMessage(t *testing.T) {
	t.Parallel()
	inner := errors.New("connection refused")
	e := &TransportError{API: APICustomSend, Host: "api.weixin.qq.com", Err: inner}
	require.Equal(t, "wechat: message/custom/send: request not sent to api.weixin.qq.com: connection refused", e.Error())
	require.ErrorIs(t, e, inner)
	e = &TransportError{API: APITemplateSend, Host: "h", Sent: true, StatusCode: 502}
	require.Equal(t, "wechat: message/template/send: ambiguous transport failure to h: http status 502", e.Error())
}

// TestMassDuplicateIs: 45065 is recognisable as "already sent", from the
// bare *APIError and from the *MassDuplicateError that carries the msg_id.
func TestMassDuplicateIs(t *testing.T) {
	t.Parallel()
	ae := &APIError{Code: 45065, Msg: "clientmsgid exist", API: APIMassSend}
	require.ErrorIs(t, ae, ErrMassDuplicate)
	var err error = &MassDuplicateError{MsgID: 1000000007, Err: ae}
	require.ErrorIs(t, err, ErrMassDuplicate)
	var got *APIError
	require.ErrorAs(t, err, &got)
	require.Equal(t, 45065, got.Code)
	require.Contains(t, err.Error(), "existing msg_id 1000000007")
	require.NotErrorIs(t, &APIError{Code: 45066, API: APIMassSend}, ErrMassDuplicate)
}
