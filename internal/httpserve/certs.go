package httpserve

import (
	"crypto/tls"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"
)

// certLoader serves a TLS certificate and key from files, loading them
// again when they change. A pair that fails to load is logged once and the
// one in use is kept. Safe for concurrent use.
type certLoader struct {
	certFile, keyFile string
	interval          time.Duration
	log               *zap.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	checked time.Time // when the files were last looked at
	stamp   string    // the files' sizes and times when last loaded or tried
}

func newCertLoader(certFile, keyFile string, interval time.Duration, log *zap.Logger) (*certLoader, error) {
	l := &certLoader{certFile: certFile, keyFile: keyFile, interval: interval, log: log, checked: time.Now()}
	stamp, err := l.stat()
	if err != nil {
		return nil, &CertError{CertFile: certFile, KeyFile: keyFile, Err: err}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, &CertError{CertFile: certFile, KeyFile: keyFile, Err: err}
	}
	l.cert, l.stamp = &cert, stamp
	l.logLoaded("TLS certificate loaded")
	return l, nil
}

// stat is the pair's sizes and modification times: a change of either
// file changes it.
func (l *certLoader) stat() (string, error) {
	c, err := os.Stat(l.certFile)
	if err != nil {
		return "", err
	}
	k, err := os.Stat(l.keyFile)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%d %d %d %d", c.Size(), c.ModTime().UnixNano(), k.Size(), k.ModTime().UnixNano()), nil
}

// getCertificate is tls.Config.GetCertificate.
func (l *certLoader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.checked) >= l.interval {
		l.checked = now
		l.reloadLocked()
	}
	return l.cert, nil
}

// reloadLocked loads the pair if its files changed since the last try.
func (l *certLoader) reloadLocked() {
	stamp, err := l.stat()
	if err != nil {
		stamp = "stat: " + err.Error()
	}
	if stamp == l.stamp {
		return
	}
	l.stamp = stamp
	if err == nil {
		var cert tls.Certificate
		if cert, err = tls.LoadX509KeyPair(l.certFile, l.keyFile); err == nil {
			l.cert = &cert
			l.logLoaded("TLS certificate reloaded")
			return
		}
	}
	// Often the two files were caught between their updates: the next
	// change, once both are written, loads them.
	l.log.Error("reload TLS certificate: keeping the one in use", zap.String("cert_file", l.certFile),
		zap.String("key_file", l.keyFile), zap.Error(err))
}

func (l *certLoader) logLoaded(msg string) {
	fields := []zap.Field{zap.String("cert_file", l.certFile)}
	if leaf := l.cert.Leaf; leaf != nil {
		fields = append(fields, zap.String("subject", leaf.Subject.String()), zap.Strings("dns_names", leaf.DNSNames),
			zap.Time("not_after", leaf.NotAfter))
	}
	l.log.Info(msg, fields...)
}
