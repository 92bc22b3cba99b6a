// Package layers holds the test of wxmass's import direction (see
// layers_test.go): the composition root (cmd) imports the services (api,
// producer, worker), which import the accounts (account), which import the
// domain packages (campaigns, wechat, ratelimit, retry, monitoring), which
// import the leaves under internal/. Runs and outcomes are reached only
// through campaigns.Store: no service imports internal/rdb. The domain
// packages never import asynq. Harnesses (tests' helpers, the benchmark and
// the reliability suite) may import anything, and nothing imports them.
package layers
