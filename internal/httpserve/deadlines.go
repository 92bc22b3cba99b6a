package httpserve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// ErrHandlerTimeout is the cause (context.Cause) of a request's context
// cancelled because its handler went HandlerTimeout without progress. It
// wraps context.DeadlineExceeded.
var ErrHandlerTimeout = fmt.Errorf("httpserve: the request took too long: %w", context.DeadlineExceeded)

// ErrBodyTimeout is what reading a request's body returns once the body
// is too slow to arrive (BodyTimeout, or UploadMinRate for an upload).
var ErrBodyTimeout = errors.New("httpserve: the request body arrives too slowly")

// writeDeadlineStep is how far, at most, the write deadline may lag behind
// progress (and never more than half the handler timeout): pushing it on
// every Progress call would cost a timer update per row of a stream.
const writeDeadlineStep = time.Second

type exchangeKey struct{}

// exchange holds one request's deadlines while its handler runs.
type exchange struct {
	rc             *http.ResponseController
	start          time.Time
	bodyTimeout    time.Duration
	handlerTimeout time.Duration
	minRate        int64
	cancel         context.CancelCauseFunc

	mu        sync.Mutex
	timer     *time.Timer
	progress  time.Time // of the last progress
	writeSet  time.Time // when the write deadline was last pushed
	done      bool      // the handler returned: rc must not be used
	upload    bool      // the body is an upload (Upload)
	received  int64     // bytes of the body read
	bodyEnded bool      // the body was read to its end
}

// deadlines gives every request its body, handler and write deadlines.
func (s *Server) deadlines(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		ctx, cancel := context.WithCancelCause(r.Context())
		x := &exchange{
			rc: http.NewResponseController(w), start: now, progress: now, writeSet: now,
			bodyTimeout: s.cfg.BodyTimeout, handlerTimeout: s.cfg.HandlerTimeout, minRate: s.cfg.UploadMinRate,
			cancel: cancel,
		}
		_ = x.rc.SetWriteDeadline(now.Add(2 * x.handlerTimeout))
		x.mu.Lock()
		x.timer = time.AfterFunc(x.handlerTimeout, x.expire)
		x.mu.Unlock()
		defer func() {
			x.mu.Lock()
			x.done = true
			x.timer.Stop()
			x.mu.Unlock()
			cancel(nil)
		}()
		r = r.WithContext(context.WithValue(ctx, exchangeKey{}, x))
		// A request without a body has nothing to time out; and setting a
		// read deadline would cut the background read net/http keeps on
		// the connection, which cancels the request's context.
		if r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0 {
			_ = x.rc.SetReadDeadline(now.Add(x.bodyTimeout))
			r.Body = &body{ReadCloser: r.Body, x: x}
		}
		h.ServeHTTP(w, r)
	})
}

// expire cancels the request's context unless the handler made progress
// within HandlerTimeout.
func (x *exchange) expire() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done {
		return
	}
	if left := time.Until(x.progress.Add(x.handlerTimeout)); left > 0 {
		x.timer.Reset(left)
		return
	}
	x.cancel(ErrHandlerTimeout)
}

// progressLocked moves the handler's deadline to HandlerTimeout after now,
// and the answer's write deadline with it.
func (x *exchange) progressLocked(now time.Time) {
	x.progress = now
	if d := now.Sub(x.writeSet); d >= writeDeadlineStep || d >= x.handlerTimeout/2 {
		x.writeSet = now
		_ = x.rc.SetWriteDeadline(now.Add(2 * x.handlerTimeout))
	}
}

// body is a request body that pushes its read deadline while an upload
// arrives, and turns a timeout into ErrBodyTimeout.
type body struct {
	io.ReadCloser
	x *exchange
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	x := b.x
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done || x.bodyEnded {
		return n, err
	}
	x.received += int64(n)
	if n > 0 && x.upload {
		now := time.Now()
		x.progressLocked(now)
		if err == nil {
			_ = x.rc.SetReadDeadline(x.uploadDeadline())
		}
	}
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		// net/http has cleared the read deadline to read ahead on the
		// connection, and cancels the request's context when that read
		// fails: no deadline may be set from now on.
		x.bodyEnded = true
	case errors.As(err, &ne) && ne.Timeout():
		err = fmt.Errorf("%w (%d bytes arrived)", ErrBodyTimeout, x.received)
	}
	return n, err
}

// uploadDeadline is BodyTimeout after the start, and a second more for
// every UploadMinRate bytes received.
func (x *exchange) uploadDeadline() time.Time {
	return x.start.Add(x.bodyTimeout + time.Duration(float64(x.received)/float64(x.minRate)*float64(time.Second)))
}

func exchangeOf(ctx context.Context) *exchange {
	x, _ := ctx.Value(exchangeKey{}).(*exchange)
	return x
}

// Upload returns r's body as a long upload: past BodyTimeout, its data may
// keep arriving as long as it averages UploadMinRate bytes per second from
// the start, and every read that brings data counts as the handler's
// progress (see Progress). Call it before reading the body. For a request
// this package does not serve, it returns r.Body as it is.
func Upload(r *http.Request) io.ReadCloser {
	x := exchangeOf(r.Context())
	if x == nil {
		return r.Body
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.done && !x.bodyEnded && !x.upload {
		x.upload = true
		_ = x.rc.SetReadDeadline(x.uploadDeadline())
	}
	return r.Body
}

// Progress tells the server that the handler of ctx's request is getting
// on, such as a streamed answer that wrote a row: its context is cancelled
// only HandlerTimeout after the last progress, and each write of the
// answer has twice that. It does nothing for a context this package did
// not make. Safe for concurrent use.
func Progress(ctx context.Context) {
	x := exchangeOf(ctx)
	if x == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.done {
		x.progressLocked(time.Now())
	}
}

// Refuse makes the answer to r close the connection, for a request refused
// before its body was read (401, 429, 403): the body is never read, and
// what the client has sent of it is thrown away for at most RefusalDrain
// before the close. Call it before writing the answer.
func Refuse(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Connection", "close")
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	if x := exchangeOf(r.Context()); x != nil {
		x.mu.Lock()
		defer x.mu.Unlock()
		if x.done || x.bodyEnded {
			return
		}
		// Reads of the body would push the deadline no more.
		x.bodyEnded = true
	}
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(RefusalDrain))
}
