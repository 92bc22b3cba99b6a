package monitoring_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/monitoring"
)

func TestNewLogger(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := monitoring.NewLogger(monitoring.LoggerConfig{Level: "warn", Format: "json", Output: &buf})
	require.NoError(t, err)
	log.Info("hidden")
	log.Warn("shown", monitoring.OpenID("oia2TjuEGTNoeX76QEjQNrcURxG8"))
	require.NoError(t, log.Sync())

	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &line))
	require.Equal(t, "shown", line["msg"])
	require.Equal(t, "oia2…RxG8", line["openid"])
	require.NotContains(t, buf.String(), "hidden")
	require.NotContains(t, buf.String(), "TjuEGTNoeX76QEjQNrcU")
}

func TestNewLoggerBadConfig(t *testing.T) {
	t.Parallel()
	_, err := monitoring.NewLogger(monitoring.LoggerConfig{Level: "loud"})
	require.ErrorContains(t, err, `log level "loud"`)
	_, err = monitoring.NewLogger(monitoring.LoggerConfig{Format: "xml"})
	require.ErrorContains(t, err, `log format "xml"`)
}

func TestMaskOpenID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                             "",
		"short":                        "*****",
		"o6_bmjrPTlm6_2sgVt7hMZOPfL2M": "o6_b…fL2M",
	} {
		require.Equal(t, want, monitoring.MaskOpenID(in), in)
	}
}
