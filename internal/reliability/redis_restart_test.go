//go:build reliability

package reliability

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestRedisRestartedMidRun: a 20,000-recipient run on a Redis with AOF on
// (appendonly yes, appendfsync everysec) that is stopped three times while
// the run is under way, each time for 3 s:
//
//  1. at a quarter of the run, with a clean SHUTDOWN (which writes and
//     fsyncs the whole AOF);
//  2. at half, with SIGKILL. Redis writes the AOF before it answers, so a
//     killed server loses nothing it acknowledged; the page cache keeps it;
//  3. at three quarters, with SIGKILL and then the AOF cut back to its
//     length of a second before: what a host crash loses with appendfsync
//     everysec. Outcomes, task acknowledgements, dequeues, rate-limit and
//     token state of that second are gone, while the workers remember
//     having done it.
//
// The workers must ride it out on their own (reconnect, subscribe to the
// events channel again) and the run complete with one outcome per
// recipient. A send whose outcome was lost is made again with the same
// client_msg_id, which the fake answers from its dedupe window, with the
// msgid of the first delivery: nobody gets the message twice.
func TestRedisRestartedMidRun(t *testing.T) {
	const (
		n        = 20000
		workers  = 3
		downtime = 3 * time.Second
		lose     = time.Second // what the third stop loses
	)
	begin := time.Now()
	// No AOF rewrite during the run, so that the incremental file whose
	// tail the third stop cuts stays the same file.
	rs := StartRedis(t, redistest.ServerConfig{AOF: true, Args: []string{"--auto-aof-rewrite-percentage", "0"}})
	fake := StartFake(t, wechattest.Config{})
	f := StartFleet(t, FleetConfig{RedisURL: rs.URL(), Fake: fake, Workers: workers, Rate: 1000, Burst: 100})
	run := f.Launch(t, campaigns.KindTemplate, OpenIDs("REDIS", n))

	type outage struct {
		how        string
		at         int64 // settled when Redis went down
		lost       int64 // AOF bytes cut
		down, up   time.Time
		subscribed time.Duration // from up until every worker listened to the events channel again
	}
	var (
		outages []*outage
		cur     *outage
		sizes   []AOFSize // the AOF's length every 100 ms while Redis is up
	)
	stop := func(how string, do func() int64) func(rdb.RunRecord) {
		return func(rec rdb.RunRecord) {
			require.Nil(t, cur, "Redis is already down")
			o := &outage{how: how, at: rec.Settled(), down: time.Now()}
			o.lost = do()
			cur = o
			outages = append(outages, o)
			t.Logf("redis stopped (%s) at %d/%d settled", how, rec.Settled(), rec.Size)
		}
	}
	events := f.RDB().Keys().Events()
	restart := func() {
		rs.Restart(t)
		cur.up = time.Now()
		// Every worker subscribes to the events channel (state changes
		// announced by the API); its subscription must come back.
		pollUntil(t, 30*time.Second, 50*time.Millisecond, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			m, err := f.RDB().Client().PubSubNumSub(ctx, events).Result()
			return err == nil && m[events] >= workers
		}, "the workers did not subscribe to %s again after the restart", events)
		cur.subscribed = time.Since(cur.up)
		t.Logf("redis up again after %s; workers subscribed again %s later", cur.up.Sub(cur.down).Round(time.Millisecond), cur.subscribed.Round(time.Millisecond))
		cur, sizes = nil, nil
	}
	rec := run.Wait(t, 8*time.Minute,
		Hook{At: 0.25, Do: stop("SHUTDOWN", func() int64 { ShutdownRedis(t, rs); return 0 })},
		Hook{At: 0.50, Do: stop("kill -9", func() int64 { rs.Kill(t); return 0 })},
		Hook{At: 0.75, Do: stop("kill -9, last 1s of AOF lost", func() int64 {
			rs.Kill(t)
			var back AOFSize
			for _, s := range sizes {
				if time.Since(s.At) >= lose {
					back = s
				}
			}
			require.NotEmpty(t, back.File, "no AOF length sampled a second before the kill")
			return TruncateAOF(t, rs, back)
		})},
		Hook{Every: 100 * time.Millisecond, Do: func(rdb.RunRecord) {
			if cur == nil {
				s, err := ReadAOFSize(rs)
				require.NoError(t, err)
				sizes = append(sizes, s)
				return
			}
			if time.Since(cur.down) >= downtime {
				restart()
			}
		}},
	)

	s := Check(t, run)
	assert.EqualValues(t, n, rec.Counters[rdb.OutcomeSent], "every recipient was sent")
	require.Len(t, outages, 3, "Redis was stopped three times during the run")
	for _, o := range outages {
		assert.False(t, o.up.IsZero(), "redis was restarted after %s", o.how)
		note := ""
		if o.lost > 0 {
			note = ", " + byteSize(o.lost) + " of AOF cut"
		}
		s.Note("%s at %d settled%s, down %s, resubscribed +%s", o.how, o.at, note, o.up.Sub(o.down).Round(100*time.Millisecond), o.subscribed.Round(100*time.Millisecond))
	}
	st := fake.Stats().APIs[run.Kind.API()]
	s.Note("%d template calls, %d answered from the client_msg_id window", st.Calls, st.Deduped)
	s.Note("%d failed reads of the run while Redis was down", run.PollErrors)
	s.Elapsed = time.Since(begin)
	Report(t, s)
}
