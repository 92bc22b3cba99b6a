package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// apiError is the API's error answer (api.Error), as the console reads it.
type apiError struct {
	Status  int          `json:"-"`
	Code    string       `json:"code"`
	Field   string       `json:"field"`
	Message string       `json:"message"`
	State   string       `json:"state"`
	Errors  []fieldError `json:"errors"`
}

// fieldError is one field's problem in an API error.
type fieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message)
}

// answer is the API's answer to a request the console made.
type answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// forwarded are the headers of the browser's request that the API reads
// to decide who asks and whether a browser on another site does: the
// console's request to the API carries them as they came.
var forwarded = []string{"Cookie", "Authorization", "Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Referer",
	"User-Agent", "X-Request-Id", "X-Forwarded-For"}

// call makes the API request method path with body (JSON-encoded unless it
// is an io.Reader, then sent with contentType) on behalf of the browser's
// request r, through the API's handler. A 4xx or 5xx answer is returned
// as an *apiError.
func (c *Console) call(r *http.Request, method, path string, q url.Values, body any, contentType string) (*answer, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case io.Reader:
		rd = b
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd, contentType = bytes.NewReader(raw), "application/json"
	}
	u := path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(r.Context(), method, u, rd)
	if err != nil {
		return nil, err
	}
	for _, h := range forwarded {
		if v := r.Header.Values(h); len(v) > 0 {
			req.Header[h] = v
		}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Host, req.RemoteAddr, req.TLS = r.Host, r.RemoteAddr, r.TLS
	rec := &recorder{header: http.Header{}}
	c.cfg.API.ServeHTTP(rec, req)
	a := &answer{Status: rec.status(), Header: rec.header, Body: rec.body.Bytes()}
	if a.Status >= 400 {
		e := &apiError{Status: a.Status}
		var env struct {
			Error *apiError `json:"error"`
		}
		if json.Unmarshal(a.Body, &env) == nil && env.Error != nil {
			env.Error.Status = a.Status
			e = env.Error
		} else {
			e.Code, e.Message = "internal", http.StatusText(a.Status)
		}
		return a, e
	}
	return a, nil
}

// get reads the API's GET path into out.
func (c *Console) get(r *http.Request, path string, q url.Values, out any) error {
	a, err := c.call(r, http.MethodGet, path, q, nil, "")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(a.Body, out); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

// asAPIError returns err's API error, if it is one.
func asAPIError(err error) (*apiError, bool) {
	var e *apiError
	ok := errors.As(err, &e)
	return e, ok
}

// recorder is the in-memory http.ResponseWriter the API writes the
// console's requests' answers to.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(p)
}

func (r *recorder) status() int {
	if r.code == 0 {
		return http.StatusOK
	}
	return r.code
}

// Flush lets handlers that flush (the CSV export) write to the recorder.
func (r *recorder) Flush() {}
