package wechattest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// callbackIPAnswer is the body of getcallbackip (wechat-api.md §7.5).
const callbackIPAnswer = `{"ip_list":["101.226.103.0/25","101.226.62.0/26","101.226.233.128/25"]}`

// SetDown makes every API (the token APIs and getcallbackip included) answer
// the HTTP status (such as 503, with an HTML body, as WeChat's front-end
// proxies do when WeChat is down) instead of handling the call, until
// SetDown(0). Such answers are counted in the API's Faults.HTTP5xx. It
// returns an error for a status that is neither 0 nor in [500, 599].
func (s *Server) SetDown(status int) error {
	if status != 0 && (status < 500 || status > 599) {
		return fmt.Errorf("wechattest: down status %d is not a 5xx", status)
	}
	s.down.Store(int32(status))
	return nil
}

// Link serves a Server on a TCP address that a test can cut (the listener
// and every connection closed: clients get "connection refused", as in a
// network cut or a firewall rejecting the path to WeChat) and restore on
// the same address. It is safe for concurrent use.
type Link struct {
	h      http.Handler
	addr   string
	ctx    context.Context
	cancel context.CancelFunc

	mu  sync.Mutex
	srv *http.Server // nil while cut
}

// NewLink serves h on a new Link on 127.0.0.1 until Close.
func NewLink(h http.Handler) (*Link, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("wechattest: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Link{h: h, addr: ln.Addr().String(), ctx: ctx, cancel: cancel}
	l.serve(ln)
	return l, nil
}

// URL is the link's base URL, such as "http://127.0.0.1:43521".
func (l *Link) URL() string { return "http://" + l.addr }

// Close cuts the link for good and ends the contexts of requests in
// flight.
func (l *Link) Close() {
	l.cancel()
	l.Cut()
}

// StartLink serves a new Server for the test on a Link on 127.0.0.1. In
// tb.Cleanup it stops the Server and closes the link. It fails the test
// when cfg is invalid or the address cannot be listened on.
func StartLink(tb testing.TB, cfg Config) (*Server, *Link) {
	tb.Helper()
	s, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	l, err := NewLink(s)
	if err != nil {
		tb.Fatal(err)
	}
	s.setURL(l.URL())
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), ShutdownTimeoutDefault)
		defer scancel()
		if err := s.Stop(sctx); err != nil {
			tb.Error(err)
		}
		l.Close()
	})
	return s, l
}

func (l *Link) serve(ln net.Listener) {
	srv := &http.Server{
		Handler:           l.h,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return l.ctx },
	}
	l.srv = srv
	go func() { _ = srv.Serve(ln) }()
}

// Cut closes the listener and every connection at once: calls in flight
// fail, and new ones are refused until Restore. Cutting a cut link does
// nothing.
func (l *Link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.srv != nil {
		_ = l.srv.Close()
		l.srv = nil
	}
}

// Restore listens again on the link's address and serves. Restoring a link
// that is not cut does nothing. Listening can fail for a while when the
// system has given the port to another socket; Restore then retries until
// ctx ends.
func (l *Link) Restore(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.srv != nil {
		return nil
	}
	for {
		ln, err := net.Listen("tcp", l.addr)
		if err == nil {
			l.serve(ln)
			return nil
		}
		t := time.NewTimer(10 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
	}
}
