// Package wechattest is a strict, fast, fault-injecting fake of the WeChat
// Official Account server API, served over real HTTP.
//
// Tests start it in-process with Start, which wraps an httptest.Server; the
// `wxmass fakewechat` command serves it with Server.Run. Either way the fake
// is an http.Handler that answers like api.weixin.qq.com: HTTP 200 with a JSON
// body, {"errcode":N,"errmsg":"... rid: xxxxxxxx-xxxxxxxx-xxxxxxxx"} for
// errors and the documented success bodies otherwise.
//
// # Endpoints
//
// Below /cgi-bin/ the fake serves stable_token, token, message/template/send,
// message/custom/send, message/subscribe/bizsend, user/get, user/tag/get and
// openapi/quota/get. Every other /cgi-bin/ path answers HTTP 404. Below
// /fake/ it serves control and report endpoints that are not part of WeChat:
//
//	GET  /fake/stats              Stats as JSON
//	GET  /fake/deliveries         every accepted delivery, one JSON object a line;
//	                              ?openid=... only that user's (DeliveriesTo)
//	GET  /fake/calls              every send call (Call), one JSON object a line
//	POST /fake/invalidate-tokens  Server.InvalidateTokens
//	POST /fake/reset-quotas       Server.ResetQuotas
//	GET  /fake/faults             the current Faults as JSON
//	POST /fake/faults             Server.SetFaults with a JSON Faults body
//	GET  /fake/templates          {"template_ids":[...]}: template/send's allow-list
//	POST /fake/templates          Server.SetTemplateIDs with such a body
//	GET  /fake/mass-jobs          MassJobs as JSON
//	POST /fake/mass-confirm       Server.ConfirmMass with {"msg_id":N,"confirm":true}
//	POST /fake/terminal           Server.SetTerminal with {"openid":"...","errcode":43117}
//	                              (errcode 0 lifts the openid's code)
//	POST /fake/receipt-status     Server.SetReceiptStatus with
//	                              {"openid":"...","status":"failed:user block"}
//	                              (status "" restores the default)
//	POST /fake/interact           Server.Interact, or with "push":true
//	                              Server.PushInteraction, with {"app_id":"...",
//	                              "openid":"...","kind":"message|click|follow|
//	                              scan|unfollow","at":"RFC 3339","push":true};
//	                              app_id defaults to the first account, at to
//	                              now; a push the callback refuses answers 502
//
// The control endpoints that take a body read it strictly (one JSON object,
// exact keys, no unknown or duplicate ones) and answer 400 with
// {"error":"..."} naming the bad field.
//
// # Strictness
//
// A fake that accepts what WeChat rejects proves nothing, so request bodies
// are parsed by a parser of the package's own (not the wechat client's
// types): keys match exactly and case-sensitively, duplicate keys and wrong
// JSON types are errors, \u escapes are refused with 40033 and template
// keyword values are checked against WeChat's per-keyword rules (47003).
// Where WeChat's behaviour is not documented the fake chooses the stricter
// answer and says so in the doc comment of the rule.
//
// # Time
//
// All time comes from Config.NowFunc, so tests drive token expiry, the
// client_msg_id window, daily quota resets and the one-second windows with a
// ManualClock instead of sleeping. Config.TimeScale shortens WeChat's
// documented durations (token lifetime, overlap, dedupe window) for demos.
// The waits of Faults.SlowDelay and Faults.Latency are in real time: they
// hold real connections open.
//
// # Receipts
//
// With Config.Callback set, the fake pushes a TEMPLATESENDJOBFINISH receipt
// for every template message it accepts to the callback URL, signed and
// (in safe and compatible modes) encrypted like WeChat's, in the background
// with bounded concurrency and WeChat's retries. PushReceipt pushes one by
// hand and LastReceipt returns the last signed request, so that tests can
// replay it. Stop waits for pushes in flight.
//
// # Users
//
// Users act at run time as they do on WeChat. SetTerminal (or POST
// /fake/terminal) gives an openid the errcode every send API answers for it
// (43004 unfollowed, 48002 blocked, 43101 refused, 40003 invalid, 43117 sent
// to too often...), as Config.Terminal does. SetReceiptStatus (or POST
// /fake/receipt-status) sets the Status of an openid's next receipts, such
// as "failed:user block" or "failed:freq limit". Interact records a user's
// message, menu click, follow, QR scan or unfollow, and PushInteraction (or
// POST /fake/interact) also pushes it to the callback as WeChat's text
// message or subscribe, SCAN, CLICK or unsubscribe event. A follow adds the
// user to the account's followers (user/get, RequireFollower) and an
// unfollow removes them. With Config.CSWindow, custom/send accepts a user's
// messages only inside the customer-service window their interactions open
// (a message: 48 hours, 5 messages; a click, follow or scan: a minute, 3
// messages), answering 45015 outside it and 45047 when it is used up;
// CSWindow reports it. DeliveriesTo returns one user's deliveries.
//
// # Calls
//
// Deliveries are what reached WeChat; Calls are what each send call's client
// can have learnt about it. Every call of a send API gets a record (Call):
// its account and touser, what the fake did (delivered, deduped, refused
// with an errcode, HTTP 5xx) and how the answer went: answered, dropped by
// the DropAfterRecord fault, or abandoned because the client went away
// first (a client timeout during a Slow or Latency wait, a killed client, a
// failed write). A test can thus check that a message its client reports
// "unknown" had a call whose answer the client never read; Faults.Latency
// holds calls in flight long enough to kill a client during them, and
// SetTemplateIDs (or POST /fake/templates) makes template/send answer 40037
// from the next call on.
//
// # API names
//
// Stats, Deliveries, Calls and Config.Limits name an API by its path below
// /cgi-bin/, such as "message/template/send". These are the same strings as
// the API* constants of package wechat.
package wechattest
