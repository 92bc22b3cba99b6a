package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/wxmass/wxmass/api"
)

// Every request of this package's tests goes through client, which checks
// it and its answer against the OpenAPI document (api.OpenAPI): the path,
// the method, the parameters, the body, the status, the content type and
// the answer's body and headers. A mismatch fails the test that sent the
// request. A test that sends a request outside the contract on purpose (bad
// JSON, an unknown field, a wrong content type, no key) marks it with the
// pseudo-header invalid and a reason: such a request must fail the
// request's check (else the mark is stale, or the document too loose), and
// its answer is checked all the same.

// invalid is a pseudo-header for the test helpers: header pairs
// (invalid, "why") mark a request as deliberately outside the contract. It
// is never sent (a header name cannot hold parentheses).
const invalid = "(deliberately invalid)"

// notAPI marks a request to a handler mounted beside the API (Config.Mount),
// which the contract does not describe: it is not checked.
const notAPI = "(not the API)"

// beyondSchema marks, like invalid, a request deliberately outside the
// contract, by a rule JSON Schema cannot state or that a schema validator
// does not see (a name given twice, invalid UTF-8, a name in another
// case): such a request need not fail the check.
const beyondSchema = "(deliberately invalid, maybe beyond JSON Schema)"

// client is the one HTTP client of this package's tests.
var client = &http.Client{Transport: &contractTransport{base: http.DefaultTransport}}

// reporter is where a mismatch is reported: the test, or a recorder in the
// tests of the checks themselves.
type reporter interface {
	Helper()
	Errorf(format string, args ...any)
}

// check says how client checks a request: it travels in the request's
// context.
type check struct {
	r reporter
	// bad is why the request is deliberately outside the contract, or "".
	bad string
	// loose: the contract may take it all the same (beyondSchema).
	loose bool
	// skip: not the API's (notAPI).
	skip bool
	// c is the contract to check against; nil is the package's.
	c *contract
}

type checkKey struct{}

// checked returns the context of a request that client checks, reporting
// to t, and header without the invalid pseudo-header, whose value marks
// the request as deliberately invalid.
func checked(t testing.TB, header ...string) (context.Context, []string) {
	return withCheck(t.Context(), &check{r: t}, header)
}

func withCheck(ctx context.Context, chk *check, header []string) (context.Context, []string) {
	var rest []string
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == notAPI {
			chk.skip = true
			continue
		}
		if header[i] == invalid || header[i] == beyondSchema {
			chk.bad, chk.loose = header[i+1], header[i] == beyondSchema
			continue
		}
		rest = append(rest, header[i], header[i+1])
	}
	return context.WithValue(ctx, checkKey{}, chk), rest
}

// contract is a compiled OpenAPI document. kin-openapi routes requests
// and checks their parameters, credentials, statuses and headers; the
// bodies are checked here, against JSON Schemas compiled once each (the
// validator of kin-openapi compiles a schema again for every value).
type contract struct {
	doc    *openapi3.T
	router routers.Router
	opts   *openapi3filter.Options

	mu       sync.Mutex // guards compiler and compiled
	compiler *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema
}

// contractURL names the document as a JSON Schema resource.
const contractURL = "https://wxmass.invalid/openapi.json"

// loadContract loads and compiles api.OpenAPI once for the package.
var loadContract = sync.OnceValues(func() (*contract, error) { return newContract(api.OpenAPI()) })

// newContract loads, validates and compiles an OpenAPI document: it must
// be valid OpenAPI 3.1, its references must resolve and its examples must
// match their schemas.
func newContract(raw []byte) (*contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("openapi %q: want 3.1", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		return nil, fmt.Errorf("validate: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	// The whole document is one JSON Schema resource, so that each schema
	// in it is compiled where it stands and its references resolve.
	whole, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	compiler := jsonschema.NewCompiler()
	compiler.DefaultDraft(jsonschema.Draft2020)
	compiler.AssertFormat() // date-time is a constraint, not a note
	if err := compiler.AddResource(contractURL, whole); err != nil {
		return nil, err
	}
	return &contract{doc: doc, router: router, compiler: compiler, compiled: map[string]*jsonschema.Schema{},
		opts: &openapi3filter.Options{
			// An answer whose status the document does not list is a
			// mismatch.
			IncludeResponseStatus: true,
			SkipSettingDefaults:   true,
			AuthenticationFunc:    credentialsPresent,
			ExcludeRequestBody:    true, // checked by checkBody
			ExcludeResponseBody:   true,
		}}, nil
}

// pointer is the JSON pointer of a location in the document, as a URL
// fragment ("#/paths/~1v1~1campaigns/post").
func pointer(tokens ...string) string {
	var b strings.Builder
	b.WriteString("#")
	for _, tok := range tokens {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
		b.WriteString("/" + url.PathEscape(tok))
	}
	return b.String()
}

// schema returns the schema at ptr, compiled on its first use.
func (c *contract) schema(ptr string) (*jsonschema.Schema, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.compiled[ptr]; ok {
		return s, nil
	}
	s, err := c.compiler.Compile(contractURL + ptr)
	if err != nil {
		return nil, err
	}
	c.compiled[ptr] = s
	return s, nil
}

// checkBody checks a body against the media type of content that its
// Content-Type names; at is the location of content's owner (a request
// body or a response) in the document.
func (c *contract) checkBody(at string, content openapi3.Content, h http.Header, body []byte) error {
	ct := h.Get("Content-Type")
	mt := content.Get(ct)
	if mt == nil {
		return fmt.Errorf("content type %q is not one of %s", ct, strings.Join(slices.Sorted(maps.Keys(content)), ", "))
	}
	if mt.Schema == nil {
		return nil
	}
	var key string
	for k, v := range content {
		if v == mt {
			key = k
		}
	}
	sch, err := c.schema(at + pointer("content", key, "schema")[1:])
	if err != nil {
		return fmt.Errorf("compile the schema of %s: %w", key, err)
	}
	var v any = string(body)
	if strings.HasPrefix(key, "multipart/form-data") {
		if v, err = multipartObject(ct, body); err != nil {
			return err
		}
	}
	if strings.HasPrefix(key, "application/json") {
		if !json.Valid(body) {
			return errors.New("the body is not one JSON value")
		}
		if v, err = jsonschema.UnmarshalJSON(bytes.NewReader(body)); err != nil {
			return err
		}
	}
	return sch.Validate(v)
}

// multipartObject reads a multipart/form-data body as the object its
// schema describes: each part's name to its content, as a string.
func multipartObject(ct string, body []byte) (map[string]any, error) {
	_, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("multipart: %w", err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			return nil, fmt.Errorf("multipart: %w", err)
		}
		out[p.FormName()] = string(b)
	}
}

// credentialsPresent checks that a request carries the credentials of a
// security scheme; whether they are valid is the server's business (and a
// 401 answer the contract's).
func credentialsPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	s := in.SecurityScheme
	switch {
	case s.Type == "http" && strings.EqualFold(s.Scheme, "bearer"):
		scheme, key, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
		if ok && strings.EqualFold(scheme, "bearer") && strings.TrimSpace(key) != "" {
			return nil
		}
	case s.Type == "http" && strings.EqualFold(s.Scheme, "basic"):
		if _, pass, ok := r.BasicAuth(); ok && pass != "" {
			return nil
		}
	case s.Type == "apiKey" && s.In == "cookie":
		if c, err := r.Cookie(s.Name); err == nil && c.Value != "" {
			return nil
		}
	}
	return fmt.Errorf("no %s credentials", in.SecuritySchemeName)
}

// contractTransport checks each request and its answer against the
// contract named by the request's context.
type contractTransport struct{ base http.RoundTripper }

func (ct *contractTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	chk, ok := req.Context().Value(checkKey{}).(*check)
	if !ok {
		return nil, errors.New("contract: the request's context names no test to report to: build it with checked(t)")
	}
	if chk.skip {
		return ct.base.RoundTrip(req)
	}
	c := chk.c
	if c == nil {
		var err error
		if c, err = loadContract(); err != nil {
			return nil, fmt.Errorf("contract: %w", err)
		}
	}
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	// The validator reads the body and may change the request: it gets a
	// copy of its own.
	vreq := req.Clone(req.Context())
	vreq.Body = io.NopCloser(bytes.NewReader(body))
	in := c.checkRequest(chk, vreq, body)

	out := req.Clone(req.Context())
	out.Body = http.NoBody // as NewRequest makes it, so that the length is known
	if len(body) > 0 {
		out.Body = io.NopCloser(bytes.NewReader(body))
	}
	res, err := ct.base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(raw))
	c.checkResponse(chk, req, in, res, raw)
	return res, nil
}

// checkRequest checks a request and returns its validation input, nil when
// the contract has no operation for it.
func (c *contract) checkRequest(chk *check, req *http.Request, body []byte) *openapi3filter.RequestValidationInput {
	chk.r.Helper()
	what := req.Method + " " + req.URL.RequestURI()
	route, params, err := c.router.FindRoute(req)
	if err != nil {
		if chk.bad == "" {
			chk.r.Errorf("contract: request %s: %v", what, err)
		}
		return nil
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: c.opts}
	err = openapi3filter.ValidateRequest(req.Context(), in)
	if rb := route.Operation.RequestBody; err == nil {
		switch {
		case rb == nil && len(body) > 0:
			err = errors.New("the operation takes no body")
		case rb == nil:
		case len(body) == 0 && rb.Value.Required:
			err = errors.New("the operation needs a body")
		case len(body) > 0:
			at := rb.Ref
			if at == "" {
				at = pointer("paths", route.Path, strings.ToLower(req.Method), "requestBody")
			}
			if err = c.checkBody(at, rb.Value.Content, req.Header, body); err != nil {
				err = fmt.Errorf("body: %w", err)
			}
		}
	}
	switch {
	case err != nil && chk.bad == "":
		chk.r.Errorf("contract: request %s breaks the contract: %s", what, shortError(err))
	case err == nil && chk.bad != "" && !chk.loose:
		chk.r.Errorf("contract: request %s is marked deliberately invalid (%s), but the contract takes it: drop the mark, or make the document refuse it", what, chk.bad)
	}
	return in
}

// checkResponse checks an answer against the operation of its request, or,
// for a request the contract has no operation for, against the error shape.
func (c *contract) checkResponse(chk *check, req *http.Request, in *openapi3filter.RequestValidationInput, res *http.Response, raw []byte) {
	chk.r.Helper()
	what := fmt.Sprintf("answer %d to %s %s", res.StatusCode, req.Method, req.URL.RequestURI())
	if in == nil {
		if err := c.checkError(res, raw); err != nil {
			chk.r.Errorf("contract: %s (a path or method the document does not describe): %s\nbody: %s", what, err, clip(raw))
		}
		return
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Body: io.NopCloser(bytes.NewReader(raw)), Options: c.opts}
	err := openapi3filter.ValidateResponse(req.Context(), out)
	if err == nil {
		key := strconv.Itoa(res.StatusCode)
		r := in.Route.Operation.Responses.Value(key)
		if r == nil {
			key, r = "default", in.Route.Operation.Responses.Default()
		}
		at := r.Ref
		if at == "" {
			at = pointer("paths", in.Route.Path, strings.ToLower(req.Method), "responses", key)
		}
		switch {
		case len(r.Value.Content) == 0 && len(raw) > 0:
			err = errors.New("the answer has a body, and the document describes none")
		case len(r.Value.Content) > 0:
			if err = c.checkBody(at, r.Value.Content, res.Header, raw); err != nil {
				err = fmt.Errorf("body: %w", err)
			}
		}
	}
	if err != nil {
		chk.r.Errorf("contract: %s breaks the contract: %s\nbody: %s", what, shortError(err), clip(raw))
	}
}

// checkError checks that an answer is an error in the documented shape.
func (c *contract) checkError(res *http.Response, raw []byte) error {
	if res.StatusCode < 400 {
		return fmt.Errorf("status %d is not an error", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return fmt.Errorf("content type %q is not JSON", ct)
	}
	sch, err := c.schema(pointer("components", "schemas", "Error"))
	if err != nil {
		return err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

// shortError is a validator's error without the schema and value dumps
// that follow its first lines.
func shortError(err error) string {
	s := err.Error()
	if i := strings.Index(s, "\nSchema:"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

func clip(b []byte) string {
	if len(b) > 600 {
		return string(b[:600]) + "..."
	}
	return string(b)
}
