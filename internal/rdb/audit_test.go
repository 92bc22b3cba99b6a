package rdb_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/rdb"
)

func TestAudit(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	at := time.UnixMilli(1732500000123).UTC()

	// No campaign, no stream: an id that names nothing leaves no key.
	_, err := r.AppendAudit(ctx, rdb.AuditEvent{Campaign: "c1", Action: "pause", At: at}, 10)
	require.ErrorIs(t, err, rdb.ErrCampaignNotFound)
	n, err := r.Client().Exists(ctx, r.Keys().Audit("c1")).Result()
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = r.AuditEvents(ctx, "c1", "", 10)
	require.ErrorIs(t, err, rdb.ErrCampaignNotFound)

	require.NoError(t, r.CreateCampaign(ctx, "c1", []byte(`{}`), "draft", timeNow()))
	events, err := r.AuditEvents(ctx, "c1", "", 10)
	require.NoError(t, err)
	require.Empty(t, events, "a campaign without events has an empty trail")

	first := rdb.AuditEvent{At: at, Key: "alice", Via: "bearer", Action: "start", Campaign: "c1", Run: 1, Status: 202,
		Remote: "127.0.0.1", RequestID: "req-1"}
	id, err := r.AppendAudit(ctx, first, 3)
	require.NoError(t, err)
	second := rdb.AuditEvent{At: at.Add(time.Second), Key: "bob", Via: "basic", Action: "pause", Campaign: "c1", Status: 409,
		Code: "invalid_state", Remote: "::1", RequestID: "req-2"}
	_, err = r.AppendAudit(ctx, second, 3)
	require.NoError(t, err)
	events, err = r.AuditEvents(ctx, "c1", "", 10)
	require.NoError(t, err)
	require.Len(t, events, 2)
	first.ID = id
	require.Equal(t, first, events[1], "every field comes back")
	second.ID = events[0].ID
	require.Equal(t, second, events[0], "newest first; no run and a code")

	// Capped: the newest 3 stay.
	for i := range 4 {
		_, err = r.AppendAudit(ctx, rdb.AuditEvent{At: at, Action: fmt.Sprint("a", i), Campaign: "c1", Status: 200}, 3)
		require.NoError(t, err)
	}
	events, err = r.AuditEvents(ctx, "c1", "", 10)
	require.NoError(t, err)
	require.Len(t, events, 3)
	require.Equal(t, []string{"a3", "a2", "a1"}, []string{events[0].Action, events[1].Action, events[2].Action})

	// Paging: before is exclusive.
	page, err := r.AuditEvents(ctx, "c1", "", 2)
	require.NoError(t, err)
	require.Len(t, page, 2)
	rest, err := r.AuditEvents(ctx, "c1", page[1].ID, 2)
	require.NoError(t, err)
	require.Len(t, rest, 1)
	require.Equal(t, "a1", rest[0].Action)
	none, err := r.AuditEvents(ctx, "c1", rest[0].ID, 2)
	require.NoError(t, err)
	require.Empty(t, none)

	for _, bad := range []string{"x", "1-", "-1", "1-2-3", "(1-0", "+", "1732500000000"} {
		_, err := r.AuditEvents(ctx, "c1", bad, 2)
		require.ErrorIs(t, err, rdb.ErrAuditCursor, bad)
	}
	_, err = r.AppendAudit(ctx, first, 0)
	require.Error(t, err)
}
