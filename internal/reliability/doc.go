// Package reliability is wxmass's reliability suite and its harness: each
// scenario runs real `wxmass worker` processes (the binary built once by
// Main) against a private redis-server and an in-process fake WeChat
// (wechattest), breaks something while a campaign run is under way (workers
// killed with SIGKILL, Redis restarted, WeChat down, access tokens revoked),
// and then checks DESIGN.md's invariants from the outcomes stored in Redis
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
// the topology, give the workers its URL (FleetConfig.RedisURL) and the test
// its client (FleetConfig.NewClient). Several accounts: configure the
// workers with an accounts file through FleetConfig.Env and start each run
// with LaunchFor, naming its account and limit; Check then holds each
// account to its own limit (Fake.Peak1s per account and API) and counts
// only its deliveries.
package reliability
