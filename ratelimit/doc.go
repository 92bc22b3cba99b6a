// Package ratelimit holds the token buckets that keep wxmass's sends inside
// WeChat's rate limits across every worker process.
//
// A bucket is named by a key, usually an (account, API) pair such as
// "wx1234567890abcdef:message/template/send", or a campaign. It lives in
// Redis (internal/rdb's rate scripts) and refills by the Redis server's
// clock, so that N processes together never take more than Limit.Rate
// tokens per second plus Limit.Burst in any one-second window.
//
// Processes do not call Redis once per token. In each process a [Limiter]
// runs one leaser goroutine per bucket in use. Callers of [Limiter.Wait]
// queue up by [Priority], then in arrival order; the leaser asks Redis for
// as many tokens as there are callers waiting (at most Config.MaxBatch) and
// hands what it gets to them at once. While the bucket has plenty, it also
// asks for about as many as the process's callers took over the last
// Config.Prefetch (20 ms), which later callers take without waiting for a
// Redis call; such a token is used within Prefetch of its grant or dropped,
// and the bucket's headroom absorbs that delay, so that no stock of tokens
// is ever spent in a bunch later. When Redis grants too few, the
// leaser sleeps until enough are due for the callers still waiting, or for
// Config.MaxPause at most (less the round trip, so that its next call
// reaches the server in time), then asks again; while the bucket keeps up,
// calls are at least Config.BatchWindow apart and later callers share the
// next one. A process thus makes tens of Redis calls per second per busy
// bucket, whatever its send rate, unless the bucket's Burst is smaller than
// what refills in MaxPause: the leaser must then call as often as the bucket
// fills, or tokens would be lost.
//
// Callers that would wait longer than Config.MaxWait get an [*Error] with
// the time after which to come back (asynq's RetryDelayFunc reads it).
// WeChat's signals act on the shared bucket: [Limiter.Slowdown] (errcode
// 45011) cuts the rate of every process and lets it recover over
// Config.SlowdownRecovery; [Limiter.Pause] (45009, the daily quota) stops
// every process until a time or [Limiter.Resume], and callers get a
// [*PausedError] meanwhile. [Limiter.State] reads a bucket for status pages.
//
// A Limiter is safe for concurrent use. Its goroutines start on first use of
// a key, exit after Config.IdleTimeout without callers, and all stop on
// [Limiter.Close]. The package does not import asynq.
package ratelimit
