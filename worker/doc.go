// Package worker holds the asynq handlers that send: for each recipient it
// checks the run's state (cached for about a second, and dropped at once
// when a state change is announced), skips recipients that already have an
// outcome, takes a token from the account's global rate limit, gets the
// shared access token, renders the message, calls WeChat, classifies the
// answer with retry.Policy and records the final outcome together with the
// run's counters.
//
// Throttling and pauses go back to the queue without using up a task's
// retries (asynq's IsFailure); a campaign-fatal errcode stops the run for
// every worker; a daily-quota errcode pauses the account's use of that API
// until the quota resets, which a prober notices through quota/get.
package worker
