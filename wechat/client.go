package wechat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wxmass/wxmass/internal/secret"
)

// Defaults of the client's options.
const (
	BaseURLDefault         = "https://api.weixin.qq.com"
	TimeoutDefault         = 10 * time.Second
	DialTimeoutDefault     = 3 * time.Second
	MaxConnsPerHostDefault = 512
	FailbackAfterDefault   = time.Minute
	// MaxResponseBytes bounds how much of an answer is read: a user/get page
	// of 10,000 openids is about 320 KB.
	MaxResponseBytes = 4 << 20
)

// TokenSource gives the access_token of one account.
//
// Token returns a token valid now. Invalidate is told that token failed with
// an invalid-token errcode; it must discard it only if it is still the
// current one (compare-and-refresh), so that a caller holding an old token
// never throws away a fresh one. Both honour ctx and are safe for concurrent
// use.
type TokenSource interface {
	Token(ctx context.Context) (string, error)
	Invalidate(ctx context.Context, failed string) error
}

// Client calls the WeChat API. Create it with New; it is safe for
// concurrent use by any number of goroutines and accounts.
type Client struct {
	http          *http.Client
	bases         []string
	failbackAfter time.Duration
	now           func() time.Time

	cur        atomic.Int32 // index into bases of the base in use
	switchedAt atomic.Int64 // unix nanos of the last failover
}

// Option configures a Client.
type Option func(*Client)

// WithBaseURLs sets the base URLs: the first is used, the others are failed
// over to, in order, when a request cannot be sent to the current one (a
// connect failure, never an errcode). The default is BaseURLDefault alone;
// api2.weixin.qq.com is WeChat's disaster-recovery domain.
func WithBaseURLs(urls ...string) Option {
	return func(c *Client) {
		c.bases = c.bases[:0]
		for _, u := range urls {
			c.bases = append(c.bases, strings.TrimRight(u, "/"))
		}
	}
}

// WithHTTPClient replaces the HTTP client. Its Timeout bounds each call.
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithTimeout sets the bound on one HTTP call (TimeoutDefault).
func WithTimeout(d time.Duration) Option { return func(c *Client) { c.http.Timeout = d } }

// WithFailbackAfter sets how long the client keeps using a fail-over base
// URL before it tries the first one again (FailbackAfterDefault).
func WithFailbackAfter(d time.Duration) Option { return func(c *Client) { c.failbackAfter = d } }

// WithClock sets the clock used for failback timing (tests).
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// NewTransport returns the HTTP transport New uses: explicit dial, TLS and
// header timeouts, and idle connections kept for maxConnsPerHost concurrent
// sends per host.
func NewTransport(maxConnsPerHost int) *http.Transport {
	if maxConnsPerHost <= 0 {
		maxConnsPerHost = MaxConnsPerHostDefault
	}
	d := &net.Dialer{Timeout: DialTimeoutDefault, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   DialTimeoutDefault,
		ResponseHeaderTimeout: TimeoutDefault,
		ExpectContinueTimeout: time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          2 * maxConnsPerHost,
		MaxIdleConnsPerHost:   maxConnsPerHost,
		MaxConnsPerHost:       maxConnsPerHost,
	}
}

// New returns a Client.
func New(opts ...Option) *Client {
	c := &Client{
		http:          &http.Client{Transport: NewTransport(0), Timeout: TimeoutDefault},
		bases:         []string{BaseURLDefault},
		failbackAfter: FailbackAfterDefault,
		now:           time.Now,
	}
	for _, o := range opts {
		o(c)
	}
	if len(c.bases) == 0 {
		c.bases = []string{BaseURLDefault}
	}
	return c
}

// BaseURL returns the base URL calls go to now.
func (c *Client) BaseURL() string { return c.bases[c.base()] }

// base returns the index of the base URL to use, failing back to the first
// after failbackAfter.
func (c *Client) base() int {
	i := int(c.cur.Load())
	if i != 0 && c.now().UnixNano()-c.switchedAt.Load() > int64(c.failbackAfter) {
		c.cur.CompareAndSwap(int32(i), 0)
		return 0
	}
	return i
}

// failover moves from base i to the next one, if no other goroutine moved
// already.
func (c *Client) failover(i int) {
	next := (i + 1) % len(c.bases)
	if c.cur.CompareAndSwap(int32(i), int32(next)) {
		c.switchedAt.Store(c.now().UnixNano())
	}
}

// envelope is the part every answer has.
type envelope struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

func (e *envelope) err(api string) error {
	if e.ErrCode == 0 {
		return nil
	}
	msg, rid := parseErrmsg(e.ErrMsg)
	return &APIError{Code: e.ErrCode, Msg: msg, API: api, RID: rid}
}

// answer is implemented by every decoded answer.
type answer interface {
	apiErr(api string) error
}

func (e *envelope) apiErr(api string) error { return e.err(api) }

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encode writes v as JSON with raw UTF-8 and without HTML escaping: WeChat
// rejects \uXXXX escapes (40033), and template URLs carry '&'.
func encode(buf *bytes.Buffer, v any) error {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	// Encode appends a newline; WeChat does not need it.
	buf.Truncate(buf.Len() - 1)
	return nil
}

// call performs one API call: method on path with query (which must not yet
// hold the access_token) and the JSON body of in (nil for none), decoding
// the answer into out. token is "" for the token APIs.
func (c *Client) call(ctx context.Context, api, method, path, query, token string, in any, out answer) error {
	var body []byte
	if in != nil {
		buf := bufPool.Get().(*bytes.Buffer)
		buf.Reset()
		defer bufPool.Put(buf)
		if err := encode(buf, in); err != nil {
			return fmt.Errorf("wechat: %s: encode request: %w", api, err)
		}
		body = buf.Bytes()
	}
	return c.callBody(ctx, api, method, path, query, token, "application/json; charset=utf-8", body, out)
}

// callBody is call with a ready body of contentType (nil for none).
func (c *Client) callBody(ctx context.Context, api, method, path, query, token, contentType string, body []byte, out answer) error {
	for tries := 0; ; tries++ {
		i := c.base()
		err := c.do(ctx, api, method, c.bases[i], path, query, token, contentType, body, out)
		var te *TransportError
		if errors.As(err, &te) && !te.Sent && ctx.Err() == nil && tries+1 < len(c.bases) {
			// The request certainly did not reach this host: try the next.
			c.failover(i)
			continue
		}
		return err
	}
}

// sendState records, through httptrace, whether a request was written whole.
type sendState struct{ wrote atomic.Bool }

func (s *sendState) wroteRequest(info httptrace.WroteRequestInfo) {
	if info.Err == nil {
		s.wrote.Store(true)
	}
}

func (c *Client) do(ctx context.Context, api, method, base, path, query, token, contentType string, body []byte, out answer) error {
	u := base + path
	if token != "" {
		if query != "" {
			query += "&"
		}
		query += "access_token=" + url.QueryEscape(token)
	}
	if query != "" {
		u += "?" + query
	}
	var st sendState
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteRequest: st.wroteRequest})
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("wechat: %s: new request: %w", api, scrub(err))
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	host := req.URL.Host
	resp, err := c.http.Do(req)
	if err != nil {
		return &TransportError{API: api, Host: host, Sent: st.wrote.Load(), Err: scrub(err)}
	}
	defer resp.Body.Close()

	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return &TransportError{API: api, Host: host, Sent: true, Err: fmt.Errorf("read answer: %w", scrub(err))}
	}
	if resp.StatusCode != http.StatusOK {
		return &TransportError{API: api, Host: host, Sent: true, StatusCode: resp.StatusCode}
	}
	if buf.Len() > MaxResponseBytes {
		return &TransportError{API: api, Host: host, Sent: true, Err: fmt.Errorf("answer over %d bytes", MaxResponseBytes)}
	}
	if err := decode(buf.Bytes(), out); err != nil {
		return &TransportError{API: api, Host: host, Sent: true, Err: err}
	}
	return out.apiErr(api)
}

// ErrBadAnswer is wrapped by a TransportError whose answer was not the JSON
// object the API answers with.
var ErrBadAnswer = errors.New("wechat: answer is not a JSON object")

// decode parses an answer. It rejects anything that is not one JSON object,
// so that an HTML error page from a proxy is a transport failure.
func decode(b []byte, out answer) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return ErrBadAnswer
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%w: %w", ErrBadAnswer, err)
	}
	return nil
}

// scrub removes the request URL from err: net/http's *url.Error prints it, and
// its query holds the access_token or the appsecret.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("%s: timeout: %w", strings.ToLower(ue.Op), ue.Err)
		}
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

// tokenCall gets a token from ts, then calls fn with it; if WeChat says the
// token is invalid it invalidates that token and calls fn once more with a
// fresh one.
func tokenCall(ctx context.Context, ts TokenSource, fn func(token string) error) error {
	tok, err := ts.Token(ctx)
	if err != nil {
		return err
	}
	err = fn(tok)
	if !errors.Is(err, ErrTokenInvalid) {
		return err
	}
	if ierr := ts.Invalidate(ctx, tok); ierr != nil {
		return errors.Join(err, ierr)
	}
	tok, terr := ts.Token(ctx)
	if terr != nil {
		return errors.Join(err, terr)
	}
	return fn(tok)
}

// secretQuery builds the plain token API's query.
func secretQuery(appID string, s secret.String) string {
	return "grant_type=client_credential&appid=" + url.QueryEscape(appID) + "&secret=" + url.QueryEscape(s.Reveal())
}

// CloseIdleConnections closes the idle connections of the client's
// transport, for a clean shutdown.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }
