package wechattest

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRecorderChunks(t *testing.T) {
	t.Parallel()
	r := newRecorder()
	acct := &account{Account: Account{AppID: AppIDDefault}}
	at := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	total := 2*recordChunk + 17
	for i := range total {
		r.add(record{api: apiCustomSend, acct: acct, openid: openID(strconv.Itoa(i)), kind: "text", at: at, hash: bodyHash([]byte(strconv.Itoa(i % 10)))})
	}
	require.Equal(t, total, r.count())
	require.Zero(t, r.dups.Load())
	for _, span := range [][2]int{{0, total}, {recordChunk - 1, recordChunk + 1}, {5, 5}, {total - 3, total + 10}, {recordChunk, 2 * recordChunk}} {
		got := r.slice(span[0], span[1])
		want := min(span[1], total) - span[0]
		require.Len(t, got, max(want, 0))
		for i, d := range got {
			require.Equal(t, openID(strconv.Itoa(span[0]+i)), d.OpenID)
			require.Equal(t, "text", d.MsgType)
			require.Equal(t, nameCustomSend, d.API)
		}
	}
	r.add(record{api: apiCustomSend, acct: acct, openid: openID("7"), hash: bodyHash([]byte("7"))})
	require.EqualValues(t, 1, r.dups.Load())
	// The same body to the same user through another API is not a duplicate.
	r.add(record{api: apiBizSend, acct: acct, openid: openID("7"), hash: bodyHash([]byte("7"))})
	require.EqualValues(t, 1, r.dups.Load())
}

func TestDedupeTableSweeps(t *testing.T) {
	t.Parallel()
	d := newDedupeTable(time.Minute)
	at := time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)
	var next int64
	newID := func() int64 { next++; return next }
	for i := range 1000 {
		_, dup := d.claim(dedupeKey{appID: "a", openid: openID(strconv.Itoa(i)), clientMsgID: "c"}, at, newID)
		require.False(t, dup)
	}
	id, dup := d.claim(dedupeKey{appID: "a", openid: openID("5"), clientMsgID: "c"}, at.Add(59*time.Second), newID)
	require.True(t, dup)
	require.EqualValues(t, 6, id)
	// After the window each shard forgets its expired entries on next use.
	later := at.Add(2 * time.Minute)
	for i := range 1000 {
		_, dup := d.claim(dedupeKey{appID: "b", openid: openID(strconv.Itoa(i)), clientMsgID: "c"}, later, newID)
		require.False(t, dup)
	}
	size := 0
	for i := range d.shards {
		size += len(d.shards[i].m)
	}
	require.Equal(t, 1000, size)
}
