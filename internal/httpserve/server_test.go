package httpserve_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/wxmass/wxmass/internal/httpserve"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// serve starts a server on 127.0.0.1 and returns its address; it stops
// with the test.
func serve(t *testing.T, cfg httpserve.Config, h http.Handler) (*httpserve.Server, string) {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	s, err := httpserve.Listen(cfg, h)
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, s.Shutdown(ctx))
		require.ErrorIs(t, <-served, http.ErrServerClosed)
	})
	return s, s.Addr().String()
}

// dial connects to addr from the loopback address local (127.0.0.1,
// 127.0.0.2, ...), so that tests can play several client addresses.
func dial(t *testing.T, local, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := d.DialContext(t.Context(), "tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// clientFrom is an HTTP client whose connections come from local.
func clientFrom(local string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// get sends a GET on c and reads its answer; it fails on no answer.
func get(t *testing.T, c net.Conn, br *bufio.Reader) *http.Response {
	t.Helper()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	res, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, res.Body)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	return res
}

// drip writes one byte of s to c every period until s is written, c fails
// or stop closes, and then closes done.
func drip(c net.Conn, s string, period time.Duration, stop <-chan struct{}) (done <-chan struct{}) {
	d := make(chan struct{})
	go func() {
		defer close(d)
		tick := time.NewTicker(period)
		defer tick.Stop()
		for i := 0; i < len(s); i++ {
			if _, err := io.WriteString(c, s[i:i+1]); err != nil {
				return
			}
			select {
			case <-tick.C:
			case <-stop:
				return
			}
		}
	}()
	return d
}

// ended waits until the server answers on c or closes it, at most limit
// after start; it returns the first line of the answer ("" when closed
// without one) and when it ended. Safe to call from any goroutine.
func ended(c net.Conn, start time.Time, limit time.Duration) (string, time.Duration, error) {
	if err := c.SetReadDeadline(start.Add(limit)); err != nil {
		return "", 0, err
	}
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err == nil {
		// Answered: the connection must then close.
		if _, err = io.Copy(io.Discard, br); isTimeout(err) {
			return "", 0, fmt.Errorf("answered %q but still open %s after the start", line, limit)
		}
		return strings.TrimSpace(line), time.Since(start), nil
	}
	if isTimeout(err) {
		return "", 0, fmt.Errorf("neither answered nor closed %s after the start", limit)
	}
	return "", time.Since(start), nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

var ok = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })

func TestAddressKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"192.0.2.7:5555":                "192.0.2.7",
		"[::ffff:192.0.2.7]:5555":       "192.0.2.7",
		"[2001:db8:1:2:3:4:5:6]:443":    "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443":    "2001:db8:1:2::/64",
		"[fe80::1%eth0]:80":             "fe80::/64",
		"@unix":                         "@unix",
		"[2001:db8:1:3:3:4:5:6]:443":    "2001:db8:1:3::/64",
		"[2001:db8:1:2:3:4:5:6%x]:1234": "2001:db8:1:2::/64",
	} {
		require.Equal(t, want, httpserve.AddressKey(in), in)
	}
}

// A client that sends its headers a byte at a time is cut HeaderTimeout
// after it connected, without an answer.
func TestSlowHeadersAreCut(t *testing.T) {
	t.Parallel()
	const timeout = 400 * time.Millisecond
	_, addr := serve(t, httpserve.Config{HeaderTimeout: timeout}, ok)
	stop := make(chan struct{})
	defer close(stop)
	type result struct {
		line string
		took time.Duration
		err  error
	}
	results := make(chan result, 20)
	for range 20 {
		c := dial(t, "127.0.0.1", addr)
		start := time.Now()
		drip(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "+strings.Repeat("a", 1000)+"\r\n\r\n", 50*time.Millisecond, stop)
		go func() {
			line, took, err := ended(c, start, 5*time.Second)
			results <- result{line, took, err}
		}()
	}
	for range 20 {
		r := <-results
		require.NoError(t, r.err)
		require.True(t, r.line == "" || strings.HasPrefix(r.line, "HTTP/1.1 400 "), "cut, at most with net/http's 400: %q", r.line)
		require.GreaterOrEqual(t, r.took, timeout-50*time.Millisecond, "not before the header timeout")
		require.Less(t, r.took, timeout+2*time.Second, "soon after the header timeout")
	}
}

// A body that does not arrive within BodyTimeout fails to read with
// ErrBodyTimeout, whatever its declared length.
func TestSlowBodyIsCut(t *testing.T) {
	t.Parallel()
	const timeout = 400 * time.Millisecond
	readErr := make(chan error, 1)
	_, addr := serve(t, httpserve.Config{BodyTimeout: timeout}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		readErr <- err
		http.Error(w, "too slow", http.StatusRequestTimeout)
	}))
	c := dial(t, "127.0.0.1", addr)
	start := time.Now()
	_, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n")
	require.NoError(t, err)
	stop := make(chan struct{})
	defer close(stop)
	drip(c, strings.Repeat("x", 200000), 50*time.Millisecond, stop)
	line, took, err := ended(c, start, 5*time.Second)
	require.NoError(t, err)
	require.ErrorIs(t, <-readErr, httpserve.ErrBodyTimeout)
	require.Contains(t, line, "408", "the handler answered after the timeout")
	require.GreaterOrEqual(t, took, timeout-50*time.Millisecond)
	require.Less(t, took, timeout+2*time.Second)
}

// An upload may take longer than BodyTimeout while its data keeps arriving
// at UploadMinRate, and keeps its handler's context alive meanwhile; an
// upload slower than that, and a body that is no upload, are cut.
func TestUploadMayTakeLongerWhileDataArrives(t *testing.T) {
	t.Parallel()
	const bodyTimeout = 300 * time.Millisecond
	type outcome struct {
		n      int
		err    error
		ctxErr error
	}
	outcomes := make(chan outcome, 1)
	_, addr := serve(t, httpserve.Config{BodyTimeout: bodyTimeout, HandlerTimeout: 400 * time.Millisecond, UploadMinRate: 1000},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body := r.Body
			if r.URL.Path == "/upload" {
				body = httpserve.Upload(r)
			}
			b, err := io.ReadAll(body)
			outcomes <- outcome{len(b), err, r.Context().Err()}
			if err != nil {
				w.WriteHeader(http.StatusRequestTimeout)
				return
			}
			_, _ = fmt.Fprint(w, len(b))
		}))
	send := func(t *testing.T, path string, chunk, chunks int) (outcome, string, time.Duration) {
		t.Helper()
		c := dial(t, "127.0.0.1", addr)
		start := time.Now()
		_, err := fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n", path, chunk*chunks)
		require.NoError(t, err)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for range chunks {
				if _, err := c.Write(make([]byte, chunk)); err != nil {
					return
				}
				select {
				case <-tick.C:
				case <-stop:
					return
				}
			}
		}()
		line, took, err := ended(c, start, 10*time.Second)
		require.NoError(t, err)
		return <-outcomes, line, took
	}
	t.Run("fast enough", func(t *testing.T) {
		// 2,000 bytes a second for 1.2 s: four times the body timeout and
		// three times the handler timeout.
		o, line, took := send(t, "/upload", 100, 25)
		require.NoError(t, o.err)
		require.NoError(t, o.ctxErr, "the handler's context lives while data arrives")
		require.Equal(t, 2500, o.n)
		require.Contains(t, line, "200")
		require.Greater(t, took, 3*bodyTimeout)
	})
	t.Run("too slow", func(t *testing.T) {
		// 200 bytes a second: the deadline (0.3 s + 1 s per 1,000 bytes)
		// passes at about 0.375 s.
		o, line, took := send(t, "/upload", 10, 250)
		require.ErrorIs(t, o.err, httpserve.ErrBodyTimeout)
		require.Contains(t, line, "408")
		require.Less(t, took, 2*time.Second)
	})
	t.Run("not an upload", func(t *testing.T) {
		o, line, took := send(t, "/json", 100, 25)
		require.ErrorIs(t, o.err, httpserve.ErrBodyTimeout)
		require.Contains(t, line, "408")
		require.Less(t, took, bodyTimeout+time.Second)
	})
}

// A handler's context is cancelled HandlerTimeout after its last progress;
// a stream that calls Progress goes on past it.
func TestHandlerTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	type outcome struct {
		rows  int
		cause error
		took  time.Duration
	}
	outcomes := make(chan outcome, 1)
	_, addr := serve(t, httpserve.Config{HandlerTimeout: timeout}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		ctx := r.Context()
		rc := http.NewResponseController(w)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		rows := 0
		for ; rows < 20; rows++ {
			select {
			case <-ctx.Done():
				outcomes <- outcome{rows, context.Cause(ctx), time.Since(start)}
				return
			case <-tick.C:
			}
			_, _ = fmt.Fprintf(w, "row %d\n", rows)
			_ = rc.Flush()
			if r.URL.Query().Has("progress") {
				httpserve.Progress(ctx)
			}
		}
		outcomes <- outcome{rows, context.Cause(ctx), time.Since(start)}
	}))
	t.Run("no progress", func(t *testing.T) {
		res, err := clientFrom("127.0.0.1").Get("http://" + addr + "/")
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		o := <-outcomes
		require.ErrorIs(t, o.cause, httpserve.ErrHandlerTimeout)
		require.ErrorIs(t, o.cause, context.DeadlineExceeded)
		require.Less(t, o.rows, 20)
		require.GreaterOrEqual(t, o.took, timeout-50*time.Millisecond)
		require.Less(t, o.took, timeout+2*time.Second)
	})
	t.Run("progress", func(t *testing.T) {
		res, err := clientFrom("127.0.0.1").Get("http://" + addr + "/?progress")
		require.NoError(t, err)
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		_ = res.Body.Close()
		o := <-outcomes
		require.NoError(t, o.cause, "the stream went on")
		require.Equal(t, 20, o.rows)
		require.Equal(t, 20, strings.Count(string(b), "row "), "the client got every row")
		require.Greater(t, o.took, 2*timeout)
	})
}

// Refuse answers at once and closes the connection: the body a client goes
// on sending is never read, nor waited for beyond RefusalDrain, although
// the body timeout is long.
func TestRefuseClosesWithoutReadingTheBody(t *testing.T) {
	t.Parallel()
	_, addr := serve(t, httpserve.Config{BodyTimeout: time.Minute}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpserve.Refuse(w, r)
		http.Error(w, "no", http.StatusUnauthorized)
	}))
	c := dial(t, "127.0.0.1", addr)
	start := time.Now()
	_, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n\r\n")
	require.NoError(t, err)
	stop := make(chan struct{})
	defer close(stop)
	drip(c, strings.Repeat("x", 200000), 50*time.Millisecond, stop)

	require.NoError(t, c.SetReadDeadline(start.Add(5*time.Second)))
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.True(t, res.Close, "Connection: close")
	_, err = io.Copy(io.Discard, br)
	require.False(t, isTimeout(err), "the connection closes")
	require.Less(t, time.Since(start), httpserve.RefusalDrain+2*time.Second)
}

// A client address's connection over MaxConnsPerAddress (64 by default) is
// closed at once; other addresses are served; a closed connection gives
// its place back.
func TestConnectionLimitPerAddress(t *testing.T) {
	t.Parallel()
	_, addr := serve(t, httpserve.Config{}, ok)
	held := make([]net.Conn, httpserve.MaxConnsPerAddressDefault)
	for i := range held {
		held[i] = dial(t, "127.0.0.1", addr)
		require.Equal(t, http.StatusOK, get(t, held[i], bufio.NewReader(held[i])).StatusCode, "connection %d", i+1)
	}
	over := dial(t, "127.0.0.1", addr)
	start := time.Now()
	_, _ = io.WriteString(over, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	line, took, err := ended(over, start, 5*time.Second)
	require.NoError(t, err)
	require.Empty(t, line, "the 65th connection is closed without an answer")
	require.Less(t, took, 2*time.Second, "at once")

	other := dial(t, "127.0.0.2", addr)
	require.Equal(t, http.StatusOK, get(t, other, bufio.NewReader(other)).StatusCode, "another address is served")

	require.NoError(t, held[0].Close())
	require.Eventually(t, func() bool {
		res, err := clientFrom("127.0.0.1").Get("http://" + addr + "/")
		if err != nil {
			return false
		}
		_ = res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, 5*time.Second, 20*time.Millisecond, "a closed connection frees its place")
}

// Past MaxConns open connections a new one waits, and is served once one
// closes.
func TestTotalConnectionLimit(t *testing.T) {
	t.Parallel()
	_, addr := serve(t, httpserve.Config{MaxConns: 3, MaxConnsPerAddress: -1}, ok)
	held := make([]net.Conn, 3)
	for i := range held {
		held[i] = dial(t, "127.0.0.1", addr)
		require.Equal(t, http.StatusOK, get(t, held[i], bufio.NewReader(held[i])).StatusCode)
	}
	waiting := dial(t, "127.0.0.2", addr)
	_, err := io.WriteString(waiting, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	br := bufio.NewReader(waiting)
	require.NoError(t, waiting.SetReadDeadline(time.Now().Add(300*time.Millisecond)))
	_, err = br.Peek(1)
	require.True(t, isTimeout(err), "no answer while 3 connections are open: %v", err)

	require.NoError(t, held[0].Close())
	require.NoError(t, waiting.SetReadDeadline(time.Now().Add(5*time.Second)))
	res, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "served once a place is free")
}

// The body timeout bounds the body only: a handler that works past it,
// after reading its body or with none, keeps its context (net/http reads
// ahead on the connection once the body is read, at once when there is
// none, and cancels the request's context when that read fails).
func TestBodyTimeoutEndsWithTheBody(t *testing.T) {
	t.Parallel()
	const bodyTimeout = 200 * time.Millisecond
	ctxErrs := make(chan error, 1)
	_, addr := serve(t, httpserve.Config{BodyTimeout: bodyTimeout}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 {
			_, _ = io.Copy(io.Discard, r.Body)
		}
		// Work for three body timeouts.
		work := time.NewTimer(3 * bodyTimeout)
		defer work.Stop()
		select {
		case <-work.C:
		case <-r.Context().Done():
		}
		ctxErrs <- r.Context().Err()
	}))
	// A client that keeps its connection open, as most do (one that sends
	// Connection: close gets no read ahead after its body).
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for _, body := range []string{"", "a small body"} {
		req, err := http.NewRequestWithContext(t.Context(), "POST", "http://"+addr+"/", strings.NewReader(body))
		require.NoError(t, err)
		if body == "" {
			req.Body = http.NoBody
		}
		res, err := client.Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
		require.NoError(t, <-ctxErrs, "body %q: the context lives past the body timeout", body)
	}
}

// Headers over MaxHeaderBytes (64 KiB by default) get 431; a connection
// idle for IdleTimeout after its last answer is closed.
func TestHeaderSizeAndIdleTimeout(t *testing.T) {
	t.Parallel()
	const idle = 300 * time.Millisecond
	_, addr := serve(t, httpserve.Config{IdleTimeout: idle}, ok)

	req, err := http.NewRequestWithContext(t.Context(), "GET", "http://"+addr+"/", nil)
	require.NoError(t, err)
	req.Header.Set("X-Big", strings.Repeat("a", httpserve.MaxHeaderBytesDefault+8<<10))
	res, err := clientFrom("127.0.0.1").Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, res.StatusCode)
	req.Header.Set("X-Big", strings.Repeat("a", httpserve.MaxHeaderBytesDefault-8<<10))
	res, err = clientFrom("127.0.0.1").Do(req)
	require.NoError(t, err)
	_ = res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	c := dial(t, "127.0.0.1", addr)
	br := bufio.NewReader(c)
	require.Equal(t, http.StatusOK, get(t, c, br).StatusCode)
	start := time.Now()
	require.NoError(t, c.SetReadDeadline(start.Add(5*time.Second)))
	_, err = br.ReadByte()
	require.ErrorIs(t, err, io.EOF, "closed by the server")
	require.GreaterOrEqual(t, time.Since(start), idle-50*time.Millisecond)
	require.Less(t, time.Since(start), idle+2*time.Second)
}
