// Package redistest gives tests a real Redis to talk to without stepping on
// each other or on anything else stored in the same server.
//
// The server comes from TEST_REDIS_URL (scripts/with-redis.sh sets it; the
// default is redis://127.0.0.1:6379). Tests are skipped under -short and fail
// when Redis is unreachable otherwise, so a missing Redis is never a silent
// pass. Every test gets its own key prefix, and its keys are deleted when it
// ends; packages whose code cannot take a prefix (asynq's queues) use their
// own DB number from the constants below. Nothing here ever runs FLUSHALL or
// FLUSHDB: the server may be shared.
//
// Tests that need a Redis of their own (to kill and restart it, to run
// Redis Sentinel or Redis Cluster) start real redis-server processes on
// free ports with StartServer, StartSentinel and StartCluster; those are
// killed when the test ends.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// DB numbers reserved per test package, for code that cannot use a key
// prefix. Redis has 16 databases by default; 0 is left to the operator.
const (
	DBDefault  = 1 // packages whose keys all carry a per-test prefix
	DBProducer = 2
	DBWorker   = 3
	DBAPI      = 4
	DBCmd      = 5
	DBRateTest = 6
	DBCmdRate  = 7  // cmd's test of the rate limit across worker processes
	DBCmdCrash = 8  // cmd's test of killed worker processes
	DBBench    = 9  // `wxmass bench` by default (make bench)
	DBBenchRun = 10 // internal/bench's test of Run, which deletes the asynq queues of its DB
	DBCmdServe = 11 // cmd's test of `wxmass all` through the API
	DBCmdSched = 12 // cmd's test of two `wxmass all` processes firing a schedule
	DBCmdAccts = 13 // cmd's test of several accounts and secret rotation
)

// DBCmdBrowser is the DB of cmd's headless-Chromium test of the CSRF
// defence, which pauses asynq's bulk queue.
const DBCmdBrowser = 14

// DBCmdMass is the DB of cmd's tests of mass campaigns through `wxmass
// all`: TestMassThroughTheAPI (sequential) and TestMassOpsCLI (parallel),
// which never run at the same time.
const DBCmdMass = 15

// URL returns the Redis URL tests use.
func URL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379"
}

// Options returns connection options for db on the test server.
func Options(tb testing.TB, db int) *redis.Options {
	tb.Helper()
	if testing.Short() {
		tb.Skip("needs Redis; skipped under -short")
	}
	opt, err := redis.ParseURL(URL())
	if err != nil {
		tb.Fatalf("TEST_REDIS_URL: %v", err)
	}
	opt.DB = db
	return opt
}

// Client returns a client on db, closed when the test ends. It fails the test
// if Redis does not answer PING.
func Client(tb testing.TB, db int) *redis.Client {
	tb.Helper()
	c := redis.NewClient(Options(tb, db))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		tb.Fatalf("redis at %s does not answer (run the tests through `make test`, or set TEST_REDIS_URL): %v", URL(), err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// Prefix returns a key prefix unique to this test run, such as
// "wxmasstest:TestToken:3f9a1c2e", and deletes every key under it from c's
// database when the test ends.
func Prefix(tb testing.TB, c *redis.Client) string {
	tb.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	name := unsafeChars.ReplaceAllString(tb.Name(), "_")
	if len(name) > 60 {
		name = name[:60]
	}
	p := "wxmasstest:" + name + ":" + hex.EncodeToString(b[:])
	tb.Cleanup(func() { DeletePrefix(tb, c, p) })
	return p
}

// DeletePrefix deletes every key starting with prefix, with SCAN so that the
// server is never blocked.
func DeletePrefix(tb testing.TB, c *redis.Client, prefix string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pattern := strings.NewReplacer("*", `\*`, "?", `\?`, "[", `\[`, "]", `\]`).Replace(prefix) + "*"
	iter := c.Scan(ctx, 0, pattern, 1000).Iterator()
	var batch []string
	flush := func() {
		if len(batch) > 0 {
			if err := c.Unlink(ctx, batch...).Err(); err != nil {
				tb.Errorf("clean up keys %s*: %v", prefix, err)
			}
			batch = batch[:0]
		}
	}
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			flush()
		}
	}
	flush()
	if err := iter.Err(); err != nil {
		tb.Errorf("scan keys %s*: %v", prefix, err)
	}
}
