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
// Request bodies are size-limited, unknown fields are refused, and
// Idempotency-Key makes a retried create or transactional send safe.
//
// Browsers log in once (the login page at /login, or POST /v1/session) and
// then hold a session cookie (session.go); Basic auth only reads. Every
// state change goes through a CSRF defence (http.CrossOriginProtection: 403
// cross_origin) and takes no body or a JSON one, and every answer carries
// security headers and a Content-Security-Policy (browser.go).
package api
