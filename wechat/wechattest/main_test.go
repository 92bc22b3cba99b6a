package wechattest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testBundle is a started fake on a manual clock with its own HTTP client.
type testBundle struct {
	srv    *Server
	clock  *ManualClock
	client *http.Client
}

// testStart is the manual clock's start: 09:00 in Shanghai.
func testStart() time.Time {
	return time.Date(2026, 3, 10, 9, 0, 0, 0, quotaLocationDefault())
}

// setup starts a fake for cfg on a manual clock (unless cfg has NowFunc).
func setup(t *testing.T, cfg Config) *testBundle {
	t.Helper()
	clock := NewManualClock(testStart())
	if cfg.NowFunc == nil {
		cfg.NowFunc = clock.Now
	}
	srv := Start(t, cfg)
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &testBundle{srv: srv, clock: clock, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// do sends a request and returns the status and raw body.
func (b *testBundle) do(t *testing.T, method, path string, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" || method == http.MethodPost {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, b.srv.URL()+path, rd)
	require.NoError(t, err)
	resp, err := b.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, raw
}

// call sends a request that must answer HTTP 200 JSON and decodes the answer.
func (b *testBundle) call(t *testing.T, method, path string, body string) map[string]any {
	t.Helper()
	status, raw := b.do(t, method, path, body)
	require.Equal(t, http.StatusOK, status, "body %s", raw)
	return decode(t, raw)
}

func (b *testBundle) post(t *testing.T, path, body string) map[string]any {
	t.Helper()
	return b.call(t, http.MethodPost, path, body)
}

func (b *testBundle) get(t *testing.T, path string) map[string]any {
	t.Helper()
	return b.call(t, http.MethodGet, path, "")
}

// decode decodes a JSON object keeping numbers exact.
func decode(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	require.NoError(t, dec.Decode(&m), "body %s", raw)
	return m
}

// num returns the integer member key of m (0 when absent).
func num(t *testing.T, m map[string]any, key string) int64 {
	t.Helper()
	v, ok := m[key]
	if !ok {
		return 0
	}
	n, ok := v.(json.Number)
	require.True(t, ok, "%s is %T in %v", key, v, m)
	i, err := n.Int64()
	require.NoError(t, err)
	return i
}

// errcode returns m's errcode (0 when absent, as in token answers).
func errcode(t *testing.T, m map[string]any) int {
	t.Helper()
	return int(num(t, m, "errcode"))
}

// stableToken gets a normal-mode stable token for appid and secret.
func (b *testBundle) stableToken(t *testing.T, appid, secret string, force bool) map[string]any {
	t.Helper()
	body, err := json.Marshal(map[string]any{"grant_type": "client_credential", "appid": appid, "secret": secret, "force_refresh": force})
	require.NoError(t, err)
	return b.post(t, "/cgi-bin/stable_token", string(body))
}

// token returns a valid stable token of the default account.
func (b *testBundle) token(t *testing.T) string {
	t.Helper()
	m := b.stableToken(t, AppIDDefault, SecretDefault, false)
	require.Zero(t, errcode(t, m), "%v", m)
	tok, _ := m["access_token"].(string)
	require.NotEmpty(t, tok)
	return tok
}

// send posts body to a send API with tok and returns the answer.
func (b *testBundle) send(t *testing.T, api, tok, body string) map[string]any {
	t.Helper()
	return b.post(t, "/cgi-bin/"+api+"?access_token="+url.QueryEscape(tok), body)
}

// mustJSON marshals v without HTML escaping, as clients must.
func mustJSON(t testing.TB, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(v))
	return strings.TrimSpace(buf.String())
}

// openID returns a well-formed openid made from a short tag.
func openID(tag string) string {
	id := "o" + tag + strings.Repeat("A", openIDLen-1-len(tag))
	return id[:openIDLen]
}
