// Package reliability is wxmass's reliability suite and its harness: each
// scenario runs real `wxmass worker` processes (the binary built once by
// Main) against a private Redis (one server, a Sentinel deployment or a
// Cluster) and an in-process fake WeChat (wechattest), breaks something
// while a campaign run is under way (workers killed with SIGKILL, Redis
// restarted or failed over, WeChat down, access tokens revoked, an
// account's daily quota used up), and then checks DESIGN.md's invariants from the outcomes stored in Redis
// and from what the fake recorded:
//
//   - the run completed: every recipient has exactly one final outcome, and
//     the run's counters add up to the audience size;
//   - no recipient got the run's message twice (the fake's duplicate count,
//     and one delivery per recipient whose msgid is the one recorded);
//   - the most calls the fake saw in any one-second window per (account,
//     API) is at most the configured rate plus burst;
//
// plus the scenario's own invariants. Each scenario prints one summary line
// (Report), which is also appended to the report file (ReportPath) that
// Main prints at the end of the run.
//
// The scenarios are tests behind the build tag `reliability`, run by `make
// reliability`:
//
//	go test -tags reliability -count=1 -v -timeout 40m ./internal/reliability/
//
// Only the scenarios carry the tag: the harness (and its own quick test)
// does not, so that `make test` builds, vets and tests it, and a change
// elsewhere that breaks it shows there rather than in the next run of the
// suite.
//
// # Writing a scenario
//
// A scenario is a test that starts a private Redis (StartRedis), a fake
// WeChat (StartFake, which also records every call's time and account), a
// Fleet of worker processes on them, Launches a run, Waits for it while its
// Hooks break things (every so often, or once at a share of the run), and
// ends with Check and Report:
//
//	rs := StartRedis(t, redistest.ServerConfig{})
//	fake := StartFake(t, wechattest.Config{})
//	f := StartFleet(t, FleetConfig{RedisURL: rs.URL(), Fake: fake, Workers: 3, Rate: 1000, Burst: 100})
//	run := f.Launch(t, campaigns.KindTemplate, OpenIDs("CRASH", 50000))
//	run.Wait(t, 10*time.Minute, Hook{Every: 3 * time.Second, Do: func(rdb.RunRecord) {
//		f.Kill(t, 1)
//		f.Start(t, 1)
//	}})
//	s := Check(t, run)
//	s.Note("...") // the scenario's own figures
//	Report(t, s)
//
// Later scenarios slot in the same way. Redis Sentinel or Cluster: start
// the topology (redistest.StartSentinel, redistest.StartCluster) and give
// the workers its URL (FleetConfig.RedisURL); the test's own client is
// built from the same URL by internal/redisconn. Several accounts: list
// them in FleetConfig.Accounts (the workers then get an accounts file
// instead of WXMASS_APPID and WXMASS_APPSECRET) and start each run with
// LaunchFor(t, f.Account(t, id), ...); Check then holds each account to its
// own limit (Fake.Peak1s per account and API) and counts only its
// deliveries. Fake.SpendQuota uses up part of an account's daily quota at
// the fake before a run, as another system of the account would.
package reliability
