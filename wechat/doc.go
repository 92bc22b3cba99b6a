// Package wechat is a client of the WeChat Official Account server API for
// mass sending: template messages, customer-service messages, subscribe
// notifications, follower and tag paging, quota queries and the two
// access_token APIs.
//
// A Client is account-agnostic and safe for concurrent use: it owns the HTTP
// transport (sized for hundreds of concurrent sends), the base URLs with
// failover, and JSON encoding as raw UTF-8 with HTML escaping off. Calls that
// need an access_token take a TokenSource; TokenCache is the one shared by
// all processes through Redis. When WeChat answers 40001, 40014 or 42001 the
// client asks the TokenSource to invalidate that exact token (a no-op if a
// fresh one is already stored), takes the new token and retries once.
//
// Every answer with a non-zero errcode is returned as *APIError. A call that
// got no errcode answer is returned as *TransportError, whose Sent field says
// whether the request may have reached WeChat. Neither ever contains the
// request URL, the access_token or the appsecret.
package wechat
