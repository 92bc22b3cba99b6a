package retry

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestClassString(t *testing.T) {
	t.Parallel()

	tests := []struct {
		class Class
		name  string
	}{
		{ClassOK, "ok"},
		{ClassRefreshToken, "refresh_token"},
		{ClassRetry, "retry"},
		{ClassRecipient, "recipient"},
		{ClassMessage, "message"},
		{ClassFatal, "fatal"},
		{ClassQuota, "quota"},
		{ClassUnknown, "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.name, tt.class.String())

			got, err := ParseClass(tt.name)
			require.NoError(t, err)
			require.Equal(t, tt.class, got)

			b, err := json.Marshal(tt.class)
			require.NoError(t, err)
			require.JSONEq(t, `"`+tt.name+`"`, string(b))
			var back Class
			require.NoError(t, json.Unmarshal(b, &back))
			require.Equal(t, tt.class, back)
		})
	}
}

func TestClassZeroIsUnknown(t *testing.T) {
	t.Parallel()

	var c Class
	require.Equal(t, ClassUnknown, c)
}

func TestClassInvalid(t *testing.T) {
	t.Parallel()

	require.Equal(t, "class(42)", Class(42).String())
	require.Equal(t, "class(-1)", Class(-1).String())
	_, err := Class(42).MarshalText()
	require.Error(t, err)

	_, err = ParseClass("retyr")
	require.EqualError(t, err, `retry: class "retyr" is not one of ok, refresh_token, retry, recipient, message, fatal, quota, rest, unknown`)
	_, err = ParseClass("OK")
	require.Error(t, err, "names are case-sensitive")

	var c Class
	require.Error(t, c.UnmarshalText([]byte("nope")))
}

func TestActionString(t *testing.T) {
	t.Parallel()

	tests := []struct {
		action Action
		name   string
	}{
		{ActionSucceed, "succeed"},
		{ActionRetry, "retry"},
		{ActionFail, "fail"},
		{ActionStopCampaign, "stop_campaign"},
		{ActionPause, "pause"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.name, tt.action.String())
			b, err := tt.action.MarshalText()
			require.NoError(t, err)
			require.Equal(t, tt.name, string(b))
		})
	}

	require.Equal(t, "action(0)", Action(0).String())
	_, err := Action(0).MarshalText()
	require.Error(t, err)
}

func TestDelayKindString(t *testing.T) {
	t.Parallel()

	require.Equal(t, "none", DelayNone.String())
	require.Equal(t, "exponential", DelayExponential.String())
	require.Equal(t, "next_minute", DelayNextMinute.String())
	require.Equal(t, "fixed", DelayFixed.String())
	require.Equal(t, "quota_reset", DelayQuotaReset.String())
	require.Equal(t, "delay_kind(7)", DelayKind(7).String())
}
