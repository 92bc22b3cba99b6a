package main

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/internal/tlstest"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// writePair writes a certificate for 127.0.0.1 with serial, signed by ca,
// and its key, over certFile and keyFile; their times are step seconds
// from now.
func writePair(t *testing.T, ca *tlstest.CA, serial int64, certFile, keyFile string, step int) {
	t.Helper()
	certPEM, keyPEM := ca.Issue(t, serial)
	tlstest.Write(t, certFile, keyFile, certPEM, keyPEM, step)
}

// `wxmass serve` with --tls-cert-file and --tls-key-file speaks HTTPS, and
// serves a new certificate written over the files; its per-key limit
// answers 429 with Retry-After.
func TestServeTLSAndKeyLimit(t *testing.T) {
	t.Parallel()
	const key = "tls-test-key-0123456789"
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writePair(t, ca, 10, certFile, keyFile, 0)

	addr := freeAddr(t)
	env := append(redisEnv(t), "WXMASS_APPID="+wechattest.AppIDDefault, "WXMASS_APPSECRET="+wechattest.SecretDefault,
		"WXMASS_WECHAT_BASE_URL=http://127.0.0.1:1", "WXMASS_API_KEYS=ops "+key)
	cmd := exec.Command(binary, "serve", "--listen", addr, "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--api-rate-per-key", "0.01", "--api-burst-per-key", "2")
	cmd.Dir = "../.."
	cmd.Env = env
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, DisableKeepAlives: true,
	}}
	get := func(path string) (*http.Response, []byte, error) {
		req, err := http.NewRequestWithContext(t.Context(), "GET", "https://"+addr+path, nil)
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := client.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res, b, err
	}
	pollUntil(t, 30*time.Second, 20*time.Millisecond, func() bool {
		res, _, err := get("/readyz")
		return err == nil && res.StatusCode == http.StatusOK
	}, "wxmass serve does not answer over TLS: %s", out)

	res, err := http.Get("http://" + addr + "/readyz")
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "no plain HTTP on the TLS port")

	for range 2 {
		res, body, err := get("/v1/campaigns")
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
		require.EqualValues(t, 10, res.TLS.PeerCertificates[0].SerialNumber.Int64())
	}
	res, body, err := get("/v1/campaigns")
	require.NoError(t, err)
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode, "%s", body)
	require.Equal(t, "100", res.Header.Get("Retry-After"))
	var e map[string]map[string]any
	require.NoError(t, json.Unmarshal(body, &e))
	require.Equal(t, api.CodeRateLimited, e["error"]["code"])

	// A new pair over the files: new connections get it within the check
	// interval (5 s).
	writePair(t, ca, 11, certFile, keyFile, 1)
	pollUntil(t, 15*time.Second, 50*time.Millisecond, func() bool {
		res, _, err := get("/healthz")
		return err == nil && res.TLS.PeerCertificates[0].SerialNumber.Int64() == 11
	}, "the new certificate is not served: %s", out)
	require.Contains(t, out.String(), "TLS certificate reloaded")
	require.NotContains(t, out.String(), key)
}
