// Package api is wxmass's HTTP API, versioned under /v1: campaigns (create,
// list, get, update a draft, upload an audience, start, pause, resume,
// cancel), their runs (live status), and transactional sends, plus /healthz
// and /readyz.
//
// Every endpoint but the health checks needs an API key, sent as
// "Authorization: Bearer <key>". Keys are kept as SHA-256 digests and
// compared in constant time (see KeySet). Every error is one JSON shape:
//
//	{"error": {"code": "invalid_field", "message": "...", "field": "template.data.thing1"}}
//
// with, for a campaign that fails validation, every problem in "errors".
// Request bodies are size-limited and read strictly (exact field names,
// each once, valid UTF-8, JSON types in errors: see decodeStrict), query
// parameters an endpoint does not take or that are given twice are
// refused, and Idempotency-Key makes a retried create or transactional
// send safe.
//
// The contract of the API is the OpenAPI 3.1 document openapi.yaml, built in
// and served as JSON at GET /v1/openapi.json (see OpenAPI); the package's
// tests check every request and answer against it.
//
// Requests are limited per key and per client address, and failed
// authentications per address (Limits); over a limit the answer is 429
// with Retry-After. A request refused before its body is read (401, 429)
// closes its connection without reading the body (httpserve.Refuse).
//
// Browsers log in once (the login page at /login, or POST /v1/session) and
// then hold a session cookie (session.go); Basic auth only reads. Every
// state change goes through a CSRF defence (http.CrossOriginProtection: 403
// cross_origin) and takes no body or a JSON one, and every answer carries
// security headers and a Content-Security-Policy (browser.go).
package api
