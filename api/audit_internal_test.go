package api

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStatusWriter: the audit's writer remembers the answer's status (not
// an informational one before it), and http.ResponseController reaches the
// server's writer through it.
func TestStatusWriter(t *testing.T) {
	t.Parallel()
	got := make(chan int, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w}
		sw.Header().Set("Link", "</r.css>; rel=preload")
		sw.WriteHeader(http.StatusEarlyHints)
		sw.WriteHeader(http.StatusConflict)
		_, _ = sw.Write([]byte("x"))
		if err := http.NewResponseController(sw).Flush(); err != nil {
			got <- -1
			return
		}
		got <- sw.status
	}))
	t.Cleanup(hs.Close)
	res, err := hs.Client().Get(hs.URL)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusConflict, res.StatusCode)
	require.Equal(t, http.StatusConflict, <-got, "the final status, and Flush worked")

	w := &statusWriter{ResponseWriter: httptest.NewRecorder()}
	_, err = w.Write([]byte("x"))
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, w.status, "a body without a header is a 200")
}

func TestSaneRequestID(t *testing.T) {
	t.Parallel()
	for _, id := range []string{"a", "op-42.create", "0f8fad5b-d9cb-469f-a165-70867728950e", "YWJj+/==", "trace@host:1"} {
		require.True(t, saneRequestID.MatchString(id), id)
	}
	for _, id := range []string{"", "-x", "has space", "new\nline", "quote\"", "xé", string(make([]byte, 129))} {
		require.False(t, saneRequestID.MatchString(id), id)
	}
}
