//go:build reliability

package reliability

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestSentinelFailover: a 20,000-recipient run on Redis Sentinel (a
// primary, a replica, three sentinels; the workers and the test use the
// redis-sentinel:// URL), three worker processes at 500/s. Twice during the
// run the primary changes:
//
//  1. at a third of the run the primary is killed with SIGKILL. The
//     sentinels notice within about a second and promote the replica. What
//     the old primary acknowledged but had not yet sent to the replica is
//     lost (replication is asynchronous): outcomes, counters, task
//     acknowledgements. The killed node then comes back, empty, as a
//     replica of the new primary;
//  2. at two thirds, a planned failover (SENTINEL FAILOVER) moves the
//     primary back to it. The old primary takes writes until the clients
//     hear of the change, and they are lost when it becomes a replica.
//
// The workers must follow the primary on their own (go-redis's failover
// clients ask the sentinels), never exit, subscribe to the events channel
// again, and the run complete with one outcome per recipient. A send whose
// outcome was lost is made again with the same client_msg_id, which the fake
// answers from its dedupe window: nobody gets the message twice. A task
// whose acknowledgement was lost (or could not be written) stays active
// until asynq's recoverer takes it back, a minute or two later. And since a
// worker's connections (its own, and each asynq server's) follow the new
// primary a few milliseconds apart, a recipient's outcome can go to the old
// primary while its task's acknowledgement goes to the new one: it has then
// neither task nor outcome, until the reconciler queues them again (worker.Config.StallTimeout,
// ReconcileInterval).
func TestSentinelFailover(t *testing.T) {
	const (
		n       = 20000
		workers = 3
		rate    = 500
	)
	begin := time.Now()
	sen := redistest.StartSentinel(t)
	fake := StartFake(t, wechattest.Config{})
	f := StartFleet(t, FleetConfig{RedisURL: sen.URL(), Fake: fake, Workers: workers, Rate: rate, Burst: rate / 10})
	run := f.Launch(t, campaigns.KindTemplate, OpenIDs("SENTINEL", n))

	type change struct {
		how         string
		at          int64 // settled on the primary just before
		survived    int64 // settled on the replica, once the primary was dead (kill only)
		from, to    string
		start       time.Time
		promoted    time.Duration    // until every sentinel reported the new primary
		subscribed  time.Duration    // until every worker listened to the events channel again
		subscribers map[string]int64 // then: the subscribers by node
	}
	var changes []*change
	ctx := context.Background()
	settled := func(c redis.UniversalClient) int64 {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		rec, err := rdb.New(c, f.Config().Prefix).GetRun(cctx, run.Campaign, run.Number)
		require.NoError(t, err)
		return rec.Settled()
	}
	// Every worker subscribes to the events channel (state changes
	// announced by the API); its subscription must come back on a node that
	// hears what the primary publishes: the primary, or a replica in sync,
	// where PUBLISH arrives by replication.
	events := f.RDB().Keys().Events()
	resubscribed := func(c *change) {
		var where map[string]int64
		pollUntil(t, 30*time.Second, 50*time.Millisecond, func() bool {
			where = map[string]int64{}
			total := int64(0)
			for _, addr := range []string{c.to, sentinelReplica(t, sen)} {
				nc := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
				cctx, cancel := context.WithTimeout(ctx, time.Second)
				m, err := nc.PubSubNumSub(cctx, events).Result()
				cancel()
				_ = nc.Close()
				if err == nil {
					where[addr] = m[events]
					total += m[events]
				}
			}
			return total >= workers
		}, "the workers did not subscribe to %s again (subscribers by node: %v)", events, where)
		c.subscribed = time.Since(c.start)
		c.subscribers = where
	}

	rec := run.Wait(t, 8*time.Minute,
		Hook{At: 1.0 / 3, Do: func(rdb.RunRecord) {
			c := &change{how: "kill -9 of the primary", from: sen.Primary(t)}
			replica := sentinelReplica(t, sen)
			rc := redis.NewClient(&redis.Options{Addr: replica, MaxRetries: -1})
			defer rc.Close()
			pc := redis.NewClient(&redis.Options{Addr: c.from, MaxRetries: -1})
			defer pc.Close()
			c.at = settled(pc)
			c.start = time.Now()
			sen.KillPrimary(t)
			// The replica no longer hears from the primary: what it holds
			// is what the deployment keeps.
			c.survived = settled(rc)
			c.to = sen.WaitPrimaryChange(t, c.from)
			c.promoted = time.Since(c.start)
			require.Equal(t, replica, c.to, "the sentinels promoted the replica")
			resubscribed(c)
			changes = append(changes, c)
			t.Logf("%s %s at %d/%d settled (%d on the replica): %s primary after %s, workers subscribed again after %s (%v)",
				c.how, c.from, c.at, n, c.survived, c.to, c.promoted.Round(time.Millisecond), c.subscribed.Round(time.Millisecond), c.subscribers)
			sen.Rejoin(t, c.from)
			t.Logf("%s back as a replica %s after the kill", c.from, time.Since(c.start).Round(time.Millisecond))
		}},
		Hook{At: 2.0 / 3, Do: func(rdb.RunRecord) {
			c := &change{how: "planned failover", from: sen.Primary(t)}
			c.at = settled(f.RDB().Client())
			c.start = time.Now()
			c.to = sen.Failover(t)
			c.promoted = time.Since(c.start)
			resubscribed(c)
			changes = append(changes, c)
			t.Logf("%s at %d/%d settled: %s to %s after %s, workers subscribed after %s (%v)",
				c.how, c.at, n, c.from, c.to, c.promoted.Round(time.Millisecond), c.subscribed.Round(time.Millisecond), c.subscribers)
		}},
	)

	s := Check(t, run)
	assert.EqualValues(t, n, rec.Counters[rdb.OutcomeSent], "every recipient was sent")
	require.Len(t, changes, 2, "the primary changed twice during the run")
	api := run.Kind.API()
	for _, c := range changes {
		// The fake's view of the downtime: the longest stretch without a
		// send from a second before the change until well after it.
		at, gap := fake.LongestGap(run.Account.AppID, api, c.start.Add(-time.Second), c.start.Add(c.subscribed+10*time.Second))
		lost := ""
		if c.how != "planned failover" {
			lost = fmt.Sprintf(" (%d on the replica once it was dead)", c.survived)
		}
		s.Note("%s at %d settled%s: new primary in %s, resubscribed in %s, longest stretch without a send %s from %s",
			c.how, c.at, lost, c.promoted.Round(100*time.Millisecond), c.subscribed.Round(100*time.Millisecond),
			gap.Round(10*time.Millisecond), offset(at.Sub(c.start)))
	}
	// The tail: tasks whose acknowledgement a primary change lost (or whose
	// write failed while there was none) stay active in asynq until its
	// recoverer takes them back: a lease expired 30 s ago, looked for every
	// minute.
	at, gap := fake.LongestGap(run.Account.AppID, api, run.Started, run.Finished)
	s.Note("longest stretch without a send in the run %s from %s, then %d sends (tasks left active until asynq's recoverer, or without a task until the reconciler)",
		gap.Round(100*time.Millisecond), offset(at.Sub(run.Started)), fake.Calls(run.Account.AppID, api, at.Add(gap), run.Finished.Add(time.Second)))
	st := fake.Stats().APIs[api]
	s.Note("%d template calls, %d answered from the client_msg_id window", st.Calls, st.Deduped)
	if k := f.CountLog("run without progress: queued its lost tasks again"); k > 0 {
		s.Note("reconciled %d times (recipients left without an outcome or a task queued again)", k)
	}
	s.Note("%d failed reads of the run", run.PollErrors)
	s.Elapsed = time.Since(begin)
	Report(t, s)
}

// sentinelReplica returns the address of the deployment's one replica, as
// the first sentinel lists it.
func sentinelReplica(tb testing.TB, sen *redistest.Sentinel) string {
	tb.Helper()
	sc := redis.NewSentinelClient(&redis.Options{Addr: sen.Addrs()[0]})
	defer sc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	replicas, err := sc.Replicas(ctx, redistest.SentinelMaster).Result()
	require.NoError(tb, err)
	require.Len(tb, replicas, 1, "one replica: %v", replicas)
	return net.JoinHostPort(replicas[0]["ip"], replicas[0]["port"])
}

// offset formats a time relative to an event: "+1.2s", "-400ms".
func offset(d time.Duration) string {
	d = d.Round(100 * time.Millisecond)
	if d < 0 {
		return d.String()
	}
	return "+" + d.String()
}
