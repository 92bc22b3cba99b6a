package httpserve_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxmass/wxmass/internal/httpserve"
	"github.com/wxmass/wxmass/internal/tlstest"
)

// serial is the serial number of the certificate a new TLS connection to
// addr is shown. Safe to call from any goroutine.
func serial(ca *tlstest.CA, addr string) (int64, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, DisableKeepAlives: true,
	}}
	res, err := c.Get("https://" + addr + "/")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	return res.TLS.PeerCertificates[0].SerialNumber.Int64(), nil
}

// serialIs reports whether a new connection is shown the certificate of
// serial want.
func serialIs(ca *tlstest.CA, addr string, want int64) bool {
	got, err := serial(ca, addr)
	return err == nil && got == want
}

// The server speaks TLS with the pair's certificate; a new pair written
// over the files is served to new connections; a bad one is logged and the
// one in use kept.
func TestTLSServesAndReloads(t *testing.T) {
	t.Parallel()
	ca := tlstest.NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	cert1, key1 := ca.Issue(t, 1)
	tlstest.Write(t, certFile, keyFile, cert1, key1, 0)
	core, logs := observer.New(zapcore.InfoLevel)
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = fmt.Fprintf(w, "%s %d", r.Proto, len(b))
	})
	s, addr := serve(t, httpserve.Config{TLSCertFile: certFile, TLSKeyFile: keyFile, CertCheckInterval: time.Millisecond,
		Logger: zap.New(core)}, echo)
	require.True(t, s.TLS())
	require.True(t, serialIs(ca, addr, 1))

	// HTTP/2 is offered; a body arrives through the stream's deadlines.
	h2 := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, ForceAttemptHTTP2: true,
	}}
	res, err := h2.Post("https://"+addr+"/", "text/plain", strings.NewReader(strings.Repeat("x", 100000)))
	require.NoError(t, err)
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	_ = res.Body.Close()
	h2.CloseIdleConnections()
	require.Equal(t, "HTTP/2.0 100000", string(b))

	// Plain HTTP gets no API.
	res, err = clientFrom("127.0.0.1").Get("http://" + addr + "/")
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "net/http's answer to plain HTTP on a TLS port")

	cert2, key2 := ca.Issue(t, 2)
	tlstest.Write(t, certFile, keyFile, cert2, key2, 1)
	require.Eventually(t, func() bool { return serialIs(ca, addr, 2) }, 5*time.Second, 10*time.Millisecond,
		"a new connection gets the new certificate")
	require.Equal(t, 1, logs.FilterMessage("TLS certificate reloaded").Len())

	// A certificate whose key is not beside it yet: the old pair stays.
	cert3, _ := ca.Issue(t, 3)
	tlstest.Write(t, certFile, keyFile, cert3, nil, 2)
	require.Eventually(t, func() bool {
		return serialIs(ca, addr, 2) && logs.FilterMessage("reload TLS certificate: keeping the one in use").Len() == 1
	}, 5*time.Second, 10*time.Millisecond, "the bad pair is logged")
	for range 3 {
		got, err := serial(ca, addr)
		require.NoError(t, err)
		require.EqualValues(t, 2, got, "the pair in use is kept")
	}
	require.Equal(t, 1, logs.FilterMessage("reload TLS certificate: keeping the one in use").Len(), "logged once, not at every check")
	entry := logs.FilterMessage("reload TLS certificate: keeping the one in use").All()[0]
	require.Equal(t, zapcore.ErrorLevel, entry.Level)
	require.Contains(t, entry.ContextMap()["error"], "private key does not match public key")
}

func TestTLSConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, err := httpserve.Listen(httpserve.Config{Addr: "127.0.0.1:0", TLSCertFile: filepath.Join(dir, "c")}, ok)
	require.ErrorIs(t, err, httpserve.ErrTLSPair)
	_, err = httpserve.Listen(httpserve.Config{Addr: "127.0.0.1:0", TLSKeyFile: filepath.Join(dir, "k")}, ok)
	require.ErrorIs(t, err, httpserve.ErrTLSPair)

	_, err = httpserve.Listen(httpserve.Config{Addr: "127.0.0.1:0", TLSCertFile: filepath.Join(dir, "c"), TLSKeyFile: filepath.Join(dir, "k")}, ok)
	var ce *httpserve.CertError
	require.ErrorAs(t, err, &ce)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.Contains(t, err.Error(), filepath.Join(dir, "c"))

	ca := tlstest.NewCA(t)
	cert1, _ := ca.Issue(t, 1)
	_, key2 := ca.Issue(t, 2)
	tlstest.Write(t, filepath.Join(dir, "c"), filepath.Join(dir, "k"), cert1, key2, 0)
	_, err = httpserve.Listen(httpserve.Config{Addr: "127.0.0.1:0", TLSCertFile: filepath.Join(dir, "c"), TLSKeyFile: filepath.Join(dir, "k")}, ok)
	require.ErrorAs(t, err, &ce)
	require.Contains(t, err.Error(), "private key does not match public key")
}
