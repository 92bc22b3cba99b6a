package task

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIDs(t *testing.T) {
	t.Parallel()
	require.Equal(t, "launch:c1:2", LaunchID("c1", 2))
	require.Equal(t, "expand:c1:2:7", ExpandID("c1", 2, 7))
	require.Equal(t, "send:c1:2:oABC", SendID("c1", 2, "oABC"))
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	s := Send{Run: Run{Campaign: "c1", Run: 3}, OpenID: "o1"}
	got, err := DecodeSend(EncodeSend(s))
	require.NoError(t, err)
	require.Equal(t, s, got)
	require.Equal(t, "c1 3 o1", string(EncodeSend(s)))
	// Payloads queued by earlier versions are JSON.
	got, err = DecodeSend(Encode(s))
	require.NoError(t, err)
	require.Equal(t, s, got)
	e := Expand{Run: Run{Campaign: "c1", Run: 3}, Chunk: 4}
	ge, err := DecodeExpand(Encode(e))
	require.NoError(t, err)
	require.Equal(t, e, ge)
	r, err := DecodeRun(Encode(Run{Campaign: "c", Run: 1}))
	require.NoError(t, err)
	require.Equal(t, Run{Campaign: "c", Run: 1}, r)
}

func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	for _, b := range []string{``, `{}`, `{"c":"x"}`, `{"c":"x","r":0,"o":"o"}`, `{"c":"","r":1,"o":"o"}`, `[`,
		`c1 1`, `c1 x o1`, `c1 0 o1`, ` 1 o1`, `c1 1 `, `c1 1 o 1`, `c1  1 o1`, `{"c":"c 1","r":1,"o":"o"}`} {
		_, err := DecodeSend([]byte(b))
		require.Error(t, err, b)
	}
	_, err := DecodeExpand([]byte(`{"c":"x","r":1,"k":-1}`))
	require.Error(t, err)
	_, err = DecodeRun([]byte(`{"c":"x"}`))
	require.Error(t, err)
}

// FuzzDecodeSend: task payloads come from Redis, which anything may write.
func FuzzDecodeSend(f *testing.F) {
	f.Add([]byte(`{"c":"c1","r":1,"o":"o1"}`))
	f.Add([]byte(`c1 1 o1`))
	f.Add([]byte(`{"c":"c1","r":1,"k":2}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSend(b)
		if err == nil && (s.Campaign == "" || s.Run.Run <= 0 || s.OpenID == "") {
			t.Fatalf("accepted %+v", s)
		}
		if err == nil && b[0] != '{' {
			if again, err := DecodeSend(EncodeSend(s)); err != nil || again != s {
				t.Fatalf("%q decoded to %+v, which does not round-trip: %+v, %v", b, s, again, err)
			}
		}
		e, err := DecodeExpand(b)
		if err == nil && (e.Campaign == "" || e.Run.Run <= 0 || e.Chunk < 0) {
			t.Fatalf("accepted %+v", e)
		}
	})
}
