package secret_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxmass/wxmass/internal/secret"
)

const value = "s3cr3t-appsecret-value"

func TestStringNeverPrintsValue(t *testing.T) {
	t.Parallel()
	s := secret.New(value)
	outs := []string{
		s.String(),
		fmt.Sprintf("%s %v %+v %#v %q %x %X %d", s, s, s, s, s, s, s, s),
		fmt.Sprint(s),
		fmt.Sprintf("%v", struct{ S secret.String }{s}),
		fmt.Sprintf("%+v", &struct{ S secret.String }{s}),
	}
	j, err := json.Marshal(map[string]any{"s": s})
	require.NoError(t, err)
	outs = append(outs, string(j))

	core, logs := observer.New(zap.DebugLevel)
	zap.New(core).Info("msg", zap.Any("s", s), zap.Stringer("t", s), zap.Reflect("r", struct{ S secret.String }{s}))
	for _, e := range logs.All() {
		for k, v := range e.ContextMap() {
			outs = append(outs, k+"="+fmt.Sprint(v))
		}
	}
	for _, o := range outs {
		require.NotContains(t, o, value)
	}
	require.Equal(t, value, s.Reveal())
}

func TestEmpty(t *testing.T) {
	t.Parallel()
	var s secret.String
	require.True(t, s.IsZero())
	require.Equal(t, "", s.String())
}

func TestFromFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(p, []byte("  "+value+"\n"), 0o600))
	s, err := secret.FromFile(p)
	require.NoError(t, err)
	require.Equal(t, value, s.Reveal())

	empty := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
	_, err = secret.FromFile(empty)
	require.ErrorContains(t, err, "empty")

	_, err = secret.FromFile(filepath.Join(dir, "missing"))
	require.Error(t, err)
	require.False(t, strings.Contains(err.Error(), value))
}
