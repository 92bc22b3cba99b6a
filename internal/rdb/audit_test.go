package rdb_test

import (
	"fmt"
	"strings"
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

// TestAccountAudit: an account's trail is a stream of its own under the
// account's hash tag, made by its first entry, with the account, the
// masked openid and the counts of each event; it is capped and paged as a
// campaign's trail is, and the two never mix.
func TestAccountAudit(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	at := time.UnixMilli(1732500000123).UTC()
	const appID = "wx00000000000acct1"

	require.Equal(t, strings.TrimSuffix(r.Keys().Suppressed(appID), ":sup")+":audit", r.Keys().AccountAudit(appID),
		"beside the account's other keys, under its hash tag")
	require.Contains(t, r.Keys().AccountAudit(appID), "{acct:"+appID+"}")

	events, err := r.AccountAuditEvents(ctx, appID, "", 10)
	require.NoError(t, err)
	require.Empty(t, events, "an account without events has an empty trail")

	add := rdb.AuditEvent{At: at, Key: "alice", Via: "bearer", Action: "suppress_add", Account: "shop", Status: 200,
		Remote: "127.0.0.1", RequestID: "req-1", OpenID: "oSUP…0001",
		Counts: []rdb.AuditCount{{Name: "added", N: 1}, {Name: "updated", N: 0}}}
	id, err := r.AppendAccountAudit(ctx, appID, add, 3)
	require.NoError(t, err)
	imp := rdb.AuditEvent{At: at.Add(time.Second), Key: "bob", Via: "basic", Action: "suppress_import", Account: "shop",
		Status: 422, Code: "invalid_field", Remote: "::1", RequestID: "req-2",
		Counts: []rdb.AuditCount{{Name: "updated", N: 7}, {Name: "added", N: 12}, {Name: "bad", N: 1}}}
	_, err = r.AppendAccountAudit(ctx, appID, imp, 3)
	require.NoError(t, err)
	events, err = r.AccountAuditEvents(ctx, appID, "", 10)
	require.NoError(t, err)
	require.Len(t, events, 2)
	add.ID = id
	require.Equal(t, add, events[1], "every field comes back")
	imp.ID = events[0].ID
	require.Equal(t, imp, events[0], "newest first; the counts in their order")

	// The trail is the account's alone: another account's and a
	// campaign's of the same name are apart.
	other, err := r.AccountAuditEvents(ctx, "wx00000000000acct2", "", 10)
	require.NoError(t, err)
	require.Empty(t, other)
	n, err := r.Client().Exists(ctx, r.Keys().Audit(appID)).Result()
	require.NoError(t, err)
	require.Zero(t, n)

	// Capped and paged as a campaign's trail.
	for i := range 4 {
		_, err = r.AppendAccountAudit(ctx, appID, rdb.AuditEvent{At: at, Action: fmt.Sprint("a", i), Status: 200}, 3)
		require.NoError(t, err)
	}
	events, err = r.AccountAuditEvents(ctx, appID, "", 10)
	require.NoError(t, err)
	require.Equal(t, []string{"a3", "a2", "a1"}, []string{events[0].Action, events[1].Action, events[2].Action})
	require.Nil(t, events[0].Counts, "no counts, none back")
	page, err := r.AccountAuditEvents(ctx, appID, "", 2)
	require.NoError(t, err)
	require.Len(t, page, 2)
	rest, err := r.AccountAuditEvents(ctx, appID, page[1].ID, 2)
	require.NoError(t, err)
	require.Len(t, rest, 1)
	require.Equal(t, "a1", rest[0].Action)
	_, err = r.AccountAuditEvents(ctx, appID, "x", 2)
	require.ErrorIs(t, err, rdb.ErrAuditCursor)

	// Bad input stores nothing.
	for _, bad := range []struct {
		name  string
		appID string
		e     rdb.AuditEvent
		keep  int
	}{
		{"no appid", "", add, 3},
		{"keep 0", appID, add, 0},
		{"a count name with a comma", appID, rdb.AuditEvent{Action: "x", Counts: []rdb.AuditCount{{Name: "a,b=1", N: 1}}}, 3},
		{"an empty count name", appID, rdb.AuditEvent{Action: "x", Counts: []rdb.AuditCount{{N: 1}}}, 3},
	} {
		_, err := r.AppendAccountAudit(ctx, bad.appID, bad.e, bad.keep)
		require.Error(t, err, bad.name)
		if bad.e.Action == "x" {
			require.ErrorContains(t, err, fmt.Sprintf("name %q", bad.e.Counts[0].Name), "the error names the bad name")
		}
	}
	events, err = r.AccountAuditEvents(ctx, appID, "", 10)
	require.NoError(t, err)
	require.Len(t, events, 3, "nothing was stored by bad input")
}
