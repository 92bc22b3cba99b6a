package rdb_test

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/rdb"
)

// TestClaimPush: a request's first claim wins; the same body again is
// busy while processing, done once settled done, first again once
// released; another body is a replay in every state, also after a release;
// the claim lives ttl under the prefix.
func TestClaimPush(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	claim := func(key, digest string) string {
		t.Helper()
		got, err := r.ClaimPush(ctx, key, digest, time.Minute, time.Minute)
		require.NoError(t, err)
		return got
	}
	require.Equal(t, rdb.PushFirst, claim("k1", "aa"))
	require.Equal(t, rdb.PushBusy, claim("k1", "aa"), "processing")
	require.Equal(t, rdb.PushReplay, claim("k1", "bb"), "another body while processing")
	require.NoError(t, r.SettlePush(ctx, "k1", "bb", false), "another digest settles nothing")
	require.Equal(t, rdb.PushBusy, claim("k1", "aa"))

	require.NoError(t, r.SettlePush(ctx, "k1", "aa", false))
	require.Equal(t, rdb.PushReplay, claim("k1", "bb"), "another body after a release")
	require.Equal(t, rdb.PushFirst, claim("k1", "aa"), "the same body after a release: WeChat's retry")
	require.NoError(t, r.SettlePush(ctx, "k1", "aa", true))
	require.Equal(t, rdb.PushDone, claim("k1", "aa"))
	require.Equal(t, rdb.PushReplay, claim("k1", "bb"), "another body after the processing")
	require.NoError(t, r.SettlePush(ctx, "k1", "aa", false), "a done claim is not released again")
	require.Equal(t, rdb.PushDone, claim("k1", "aa"))

	ttl, err := r.Client().PTTL(ctx, r.Keys().PushClaim("k1")).Result()
	require.NoError(t, err)
	require.Greater(t, ttl, 50*time.Second)
	require.LessOrEqual(t, ttl, time.Minute, "settling keeps the ttl")
	require.Contains(t, r.Keys().PushClaim("k1"), r.Keys().Prefix+":cbreq:")

	require.NoError(t, r.SettlePush(ctx, "nothing", "aa", true), "settling a missing claim is no error")
	for _, bad := range []struct {
		digest     string
		ttl, lease time.Duration
	}{{"", time.Minute, time.Second}, {"a|b", time.Minute, time.Second}, {"aa", 0, time.Second}, {"aa", time.Minute, 0}} {
		_, err := r.ClaimPush(ctx, "k2", bad.digest, bad.ttl, bad.lease)
		require.Error(t, err, "%+v", bad)
	}
}

// TestClaimPushLeaseAndTTL: a claim whose processing lease ran out (its
// process died) is taken over by the same body and still refuses another;
// the whole claim expires after ttl.
func TestClaimPushLeaseAndTTL(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	got, err := r.ClaimPush(ctx, "lease", "aa", time.Minute, 100*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, rdb.PushFirst, got)
	require.Eventually(t, func() bool {
		got, err := r.ClaimPush(ctx, "lease", "aa", time.Minute, time.Minute)
		require.NoError(t, err)
		return got == rdb.PushFirst
	}, 5*time.Second, 20*time.Millisecond, "the lease runs out")
	got, err = r.ClaimPush(ctx, "lease", "bb", time.Minute, time.Minute)
	require.NoError(t, err)
	require.Equal(t, rdb.PushReplay, got)

	got, err = r.ClaimPush(ctx, "short", "aa", 100*time.Millisecond, time.Minute)
	require.NoError(t, err)
	require.Equal(t, rdb.PushFirst, got)
	require.Eventually(t, func() bool {
		got, err := r.ClaimPush(ctx, "short", "bb", time.Minute, time.Minute)
		require.NoError(t, err)
		return got == rdb.PushFirst
	}, 5*time.Second, 20*time.Millisecond, "the claim expires")
}

// TestClaimPushConcurrent: of many racing claims of one request, one is
// first; the others are busy (same body) or replays (other bodies).
func TestClaimPushConcurrent(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	const n = 40
	answers := make(chan string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			digest := "same"
			if i%2 == 1 {
				digest = "other"
			}
			got, err := r.ClaimPush(ctx, "race", digest, time.Minute, time.Minute)
			require.NoError(t, err)
			answers <- digest + ":" + got
		})
	}
	wg.Wait()
	close(answers)
	count := map[string]int{}
	firsts := 0
	for a := range answers {
		count[a]++
		if a == "same:"+rdb.PushFirst || a == "other:"+rdb.PushFirst {
			firsts++
		}
	}
	require.Equal(t, 1, firsts, "%v", count)
	require.Equal(t, n/2-1, count["same:"+rdb.PushBusy]+count["other:"+rdb.PushBusy], "%v", count)
	require.Equal(t, n/2, count["same:"+rdb.PushReplay]+count["other:"+rdb.PushReplay], "%v", count)
}
