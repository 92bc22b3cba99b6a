package httpserve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Defaults of Config.
const (
	HeaderTimeoutDefault      = 10 * time.Second
	BodyTimeoutDefault        = 30 * time.Second
	UploadMinRateDefault      = 32 << 10 // bytes per second
	HandlerTimeoutDefault     = time.Minute
	IdleTimeoutDefault        = 2 * time.Minute
	MaxHeaderBytesDefault     = 64 << 10
	MaxConnsPerAddressDefault = 64
	MaxConnsDefault           = 4096
	CertCheckIntervalDefault  = 5 * time.Second
)

// RefusalDrain is how long the server keeps reading, to throw it away, the
// body of a request refused with Refuse before the connection is closed:
// long enough for a client that sent its whole body to read the answer
// before the close (a close with unread data resets the connection, which
// can lose the answer), too short for a slow client to hold anything.
const RefusalDrain = time.Second

// Config configures the server. The zero value of every field but Addr
// takes the default named after it; a negative connection limit is no
// limit.
type Config struct {
	// Addr is the TCP address to listen on, such as ":8080" (every
	// interface) or "127.0.0.1:8080".
	Addr string
	// HeaderTimeout bounds the TLS handshake and the request's headers
	// (HeaderTimeoutDefault).
	HeaderTimeout time.Duration
	// BodyTimeout bounds the request's body from the start of its handler
	// (BodyTimeoutDefault).
	BodyTimeout time.Duration
	// UploadMinRate is the average rate, in bytes per second, at which an
	// upload must arrive once BodyTimeout has passed
	// (UploadMinRateDefault).
	UploadMinRate int64
	// HandlerTimeout is how long a handler may go without progress before
	// its context is cancelled; the answer then has as long again to be
	// written (HandlerTimeoutDefault).
	HandlerTimeout time.Duration
	// IdleTimeout closes a connection that sends no new request for that
	// long (IdleTimeoutDefault).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers
	// (MaxHeaderBytesDefault).
	MaxHeaderBytes int
	// MaxConnsPerAddress is how many connections one client address may
	// have open; one more is closed at once (MaxConnsPerAddressDefault).
	MaxConnsPerAddress int
	// MaxConns is how many connections may be open in all; more wait in
	// the kernel's backlog (MaxConnsDefault).
	MaxConns int
	// TLSCertFile and TLSKeyFile are PEM files of a certificate (with its
	// chain) and its key; both or neither. With them the server speaks
	// TLS (and HTTP/2), and loads the pair again when the files change.
	TLSCertFile, TLSKeyFile string
	// CertCheckInterval is how often, at most, the TLS files are checked
	// for a change; a check happens during a handshake
	// (CertCheckIntervalDefault).
	CertCheckInterval time.Duration
	// Logger logs connections refused over a limit, certificate reloads
	// and net/http's errors.
	Logger *zap.Logger
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HeaderTimeout, HeaderTimeoutDefault)
	def(&c.BodyTimeout, BodyTimeoutDefault)
	def(&c.HandlerTimeout, HandlerTimeoutDefault)
	def(&c.IdleTimeout, IdleTimeoutDefault)
	def(&c.CertCheckInterval, CertCheckIntervalDefault)
	if c.UploadMinRate <= 0 {
		c.UploadMinRate = UploadMinRateDefault
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = MaxHeaderBytesDefault
	}
	if c.MaxConnsPerAddress == 0 {
		c.MaxConnsPerAddress = MaxConnsPerAddressDefault
	}
	if c.MaxConns == 0 {
		c.MaxConns = MaxConnsDefault
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return c
}

// ErrTLSPair is returned by Listen when only one of TLSCertFile and
// TLSKeyFile is set.
var ErrTLSPair = errors.New("httpserve: a TLS certificate file and key file go together: set both or neither")

// CertError is a TLS certificate and key that cannot be loaded.
type CertError struct {
	CertFile, KeyFile string
	Err               error
}

func (e *CertError) Error() string {
	return fmt.Sprintf("httpserve: TLS certificate %s and key %s: %v", e.CertFile, e.KeyFile, e.Err)
}

func (e *CertError) Unwrap() error { return e.Err }

// Server is a listening HTTP server. Serve serves it until Shutdown.
type Server struct {
	cfg   Config
	hs    *http.Server
	ln    net.Listener
	certs *certLoader
}

// Listen loads the TLS pair if there is one, listens on cfg.Addr and
// returns the server that will serve h there. It returns ErrTLSPair, a
// *CertError, or the listener's error.
func Listen(cfg Config, h http.Handler) (*Server, error) {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return nil, ErrTLSPair
	}
	var tlsConfig *tls.Config
	if cfg.TLSCertFile != "" {
		certs, err := newCertLoader(cfg.TLSCertFile, cfg.TLSKeyFile, cfg.CertCheckInterval, cfg.Logger)
		if err != nil {
			return nil, err
		}
		s.certs = certs
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.getCertificate}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("httpserve: %w", err)
	}
	s.ln = newLimitListener(ln, cfg.MaxConnsPerAddress, cfg.MaxConns, cfg.Logger)
	s.hs = &http.Server{
		Handler:           s.deadlines(h),
		ReadHeaderTimeout: cfg.HeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		TLSConfig:         tlsConfig,
		ErrorLog:          zap.NewStdLog(cfg.Logger),
	}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// TLS reports whether the server speaks TLS.
func (s *Server) TLS() bool { return s.certs != nil }

// Serve serves connections until Shutdown, then returns
// http.ErrServerClosed; or returns the listener's error.
func (s *Server) Serve() error {
	if s.certs != nil {
		return s.hs.ServeTLS(s.ln, "", "")
	}
	return s.hs.Serve(s.ln)
}

// Shutdown stops listening, closes idle connections and waits for the
// requests in flight until ctx ends (see http.Server.Shutdown). It is safe
// to call without Serve, to close the listener.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.hs.Shutdown(ctx)
	// Shutdown closes only the listeners Serve tracks.
	if cerr := s.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
		err = cerr
	}
	return err
}
