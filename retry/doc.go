// Package retry decides what a sender does after each WeChat call.
//
// A [Policy] maps the outcome of a call (nil, a *wechat.APIError, a
// *wechat.TransportError or any other error) and the attempt number to a
// [Decision]: the errcode's [Class] and the [Action] to take now, with the
// delay before a retry or the time a pause ends.
//
// The classes follow wechat-api.md §8.2:
//
//   - ok: the call succeeded (errcode 0, or 45065 "clientmsgid exist").
//   - refresh_token: the access_token was rejected (40001, 40014, 42001).
//     The client has already refreshed it and retried once; the policy
//     retries a little later, then stops the campaign.
//   - retry: a transient failure (-1, 45011, 45066, transport errors); retry
//     with backoff until the rule's MaxAttempts, then fail the recipient.
//   - recipient: terminal for this recipient (unfollowed, blocked, window
//     closed); record failed, no retry.
//   - message: terminal for this message or payload (a bug or bad content);
//     record failed, no retry.
//   - fatal: stop the whole campaign and alert a human (bad configuration,
//     banned template, account sanctions).
//   - quota: pause this account's use of the API until the daily quota
//     resets; nothing is recorded as failed.
//   - unknown: an errcode without a rule, or an error the policy cannot
//     place; retried a few times, then failed, and always counted.
//
// The default table ([DefaultRules]) is data: one [Rule] per errcode.
// Operators override or extend it without a rebuild through a YAML file
// read by [LoadRules] and passed in [Config].Rules.
//
// The package starts no goroutines, and its only I/O is reading the rules
// file handed to LoadRules and, in New, the zone database for the quota
// reset zone. Time is passed in explicitly and the jitter source is
// injectable, so decisions are reproducible in tests. It does not import asynq: the worker adapts a
// Decision to asynq's SkipRetry, RetryDelayFunc and IsFailure.
package retry
