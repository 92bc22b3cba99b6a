package worker

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMaskTaskID(t *testing.T) {
	t.Parallel()
	require.Equal(t, "send:c1:2:oW12…mnop", maskTaskID("send:c1:2:oW1234567890abcdefghijklmnop"))
	require.Equal(t, "send:c1:2:oW12…mnop:rescue", maskTaskID("send:c1:2:oW1234567890abcdefghijklmnop:rescue"))
	require.Equal(t, "expand:c1:2:3", maskTaskID("expand:c1:2:3"))
	require.Equal(t, "", maskTaskID(""))
}
