package api

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/producer"
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

// TestEveryChangeIsAudited: every route of the API that changes state (any
// method but GET) is an action of the audit trail, but the sessions, which
// change no campaign (their start and end are logged).
func TestEveryChangeIsAudited(t *testing.T) {
	t.Parallel()
	s, err := New(Config{Store: &campaigns.Store{}, Producer: &producer.Producer{}, Keys: &KeySet{}})
	require.NoError(t, err)
	notCampaigns := []string{"POST /v1/session", "DELETE /v1/session", "POST /login", "POST /logout"}
	for _, route := range s.Routes() {
		if strings.HasPrefix(route, "GET ") || slices.Contains(notCampaigns, route) {
			continue
		}
		require.Contains(t, auditActions, route, "%s changes state: name its action in auditActions", route)
	}
	for route := range auditActions {
		require.Contains(t, s.Routes(), route, "auditActions names a route the server does not have")
	}
}
