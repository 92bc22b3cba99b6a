package monitoring_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/monitoring"
)

// TestMonitorSecurityHeaders: asynqmon's page and files carry nosniff,
// X-Frame-Options DENY, Referrer-Policy no-referrer and a CSP that allows
// exactly the page's inline scripts (by hash, which differs between the
// read-only and the writable UI) and its own script files, and is never
// framed. (cmd/wxmass TestBrowserCSRF checks in Chromium that the UI runs
// under it with no violation.)
func TestMonitorSecurityHeaders(t *testing.T) {
	t.Parallel()
	policies := map[bool]string{}
	for _, writable := range []bool{false, true} {
		// No request here reaches Redis: the page and its files are
		// asynqmon's own.
		mon, closeMon := monitoring.NewMonitor(asynq.RedisClientOpt{Addr: "127.0.0.1:1"}, writable)
		t.Cleanup(func() { _ = closeMon() })
		get := func(path string) *httptest.ResponseRecorder {
			rec := httptest.NewRecorder()
			mon.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			require.Equal(t, http.StatusOK, rec.Code, path)
			require.Equal(t, "nosniff", rec.Header().Get("X-Content-Type-Options"))
			require.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"))
			require.Equal(t, "no-referrer", rec.Header().Get("Referrer-Policy"))
			return rec
		}
		page := get(monitoring.MonitorPath + "/")
		csp := page.Header().Get("Content-Security-Policy")
		policies[writable] = csp
		for _, d := range []string{"default-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "form-action 'self'", "object-src 'none'"} {
			require.Contains(t, csp, d)
		}
		scriptSrc := regexp.MustCompile(`script-src ([^;]*)`).FindStringSubmatch(csp)[1]
		require.NotContains(t, scriptSrc, "unsafe", "no inline script but asynqmon's own two")
		inline := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindAllStringSubmatch(page.Body.String(), -1)
		require.Len(t, inline, 2, "asynqmon's settings and webpack's loader")
		for _, m := range inline {
			sum := sha256.Sum256([]byte(m[1]))
			require.Contains(t, scriptSrc, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
		}
		require.Len(t, strings.Fields(scriptSrc), 3, "'self' and the two hashes")
		// Its script files are served as JavaScript, which nosniff needs.
		files := regexp.MustCompile(`<script src="([^"]+)"`).FindAllStringSubmatch(page.Body.String(), -1)
		require.NotEmpty(t, files)
		for _, f := range files {
			js := get(f[1])
			require.True(t, strings.HasPrefix(js.Header().Get("Content-Type"), "application/javascript"), f[1])
		}
	}
	require.NotEqual(t, policies[false], policies[true], "the settings script differs, and so does its hash")
}
