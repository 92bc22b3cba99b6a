package api

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCSVCell(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"": "", "x": "x", "=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@A1": "'@A1", "\tx": "'\tx", "\r=x": "'\r=x",
		"a=b": "a=b", " =1": " =1", "'=1": "'=1", "中=1": "中=1",
	} {
		require.Equal(t, want, csvCell(in), "%q", in)
	}
}
