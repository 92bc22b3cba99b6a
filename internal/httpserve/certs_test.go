package httpserve_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
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
)

// testCA signs certificates for 127.0.0.1.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "wxmass test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// issue returns the PEM of a certificate for 127.0.0.1 with serial, and of
// its key.
func (ca *testCA) issue(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "wxmass"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// write replaces the pair's files, their times a step later than before so
// that the change shows whatever the file system's time resolution.
func write(t *testing.T, certFile, keyFile string, certPEM, keyPEM []byte, step int) {
	t.Helper()
	at := time.Now().Add(time.Duration(step) * time.Second)
	for f, b := range map[string][]byte{certFile: certPEM, keyFile: keyPEM} {
		if b == nil {
			continue
		}
		require.NoError(t, os.WriteFile(f+".new", b, 0o600))
		require.NoError(t, os.Chtimes(f+".new", at, at))
		require.NoError(t, os.Rename(f+".new", f))
	}
}

// serial is the serial number of the certificate a new TLS connection to
// addr is shown. Safe to call from any goroutine.
func serial(ca *testCA, addr string) (int64, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool}, DisableKeepAlives: true,
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
func serialIs(ca *testCA, addr string, want int64) bool {
	got, err := serial(ca, addr)
	return err == nil && got == want
}

// The server speaks TLS with the pair's certificate; a new pair written
// over the files is served to new connections; a bad one is logged and the
// one in use kept.
func TestTLSServesAndReloads(t *testing.T) {
	t.Parallel()
	ca := newCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	cert1, key1 := ca.issue(t, 1)
	write(t, certFile, keyFile, cert1, key1, 0)
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
		TLSClientConfig: &tls.Config{RootCAs: ca.pool}, ForceAttemptHTTP2: true,
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

	cert2, key2 := ca.issue(t, 2)
	write(t, certFile, keyFile, cert2, key2, 1)
	require.Eventually(t, func() bool { return serialIs(ca, addr, 2) }, 5*time.Second, 10*time.Millisecond,
		"a new connection gets the new certificate")
	require.Equal(t, 1, logs.FilterMessage("TLS certificate reloaded").Len())

	// A certificate whose key is not beside it yet: the old pair stays.
	cert3, _ := ca.issue(t, 3)
	write(t, certFile, keyFile, cert3, nil, 2)
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

	ca := newCA(t)
	cert1, _ := ca.issue(t, 1)
	_, key2 := ca.issue(t, 2)
	write(t, filepath.Join(dir, "c"), filepath.Join(dir, "k"), cert1, key2, 0)
	_, err = httpserve.Listen(httpserve.Config{Addr: "127.0.0.1:0", TLSCertFile: filepath.Join(dir, "c"), TLSKeyFile: filepath.Join(dir, "k")}, ok)
	require.ErrorAs(t, err, &ce)
	require.Contains(t, err.Error(), "private key does not match public key")
}
