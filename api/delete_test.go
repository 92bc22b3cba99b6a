package api_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/internal/rdb"
)

// keysOf returns the keys under the bundle's prefix that name id.
func (b *testBundle) keysOf(t *testing.T, id string) []string {
	t.Helper()
	ctx := t.Context()
	var out []string
	iter := b.rdb.Client().Scan(ctx, 0, b.prefix+":*", 1000).Iterator()
	for iter.Next(ctx) {
		if strings.Contains(iter.Val(), id) {
			out = append(out, iter.Val())
		}
	}
	require.NoError(t, iter.Err())
	slices.Sort(out) // SCAN's order changes when the keyspace rehashes
	return out
}

// deleteCampaign sends DELETE /v1/campaigns/{id} with key and returns the
// answer's status and body.
func (b *testBundle) deleteCampaign(t *testing.T, id, key string) (int, string) {
	t.Helper()
	res := b.send(t, "DELETE", "/v1/campaigns/"+id, "", "", as(key)...)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(raw)
}

// TestDeleteCampaign: DELETE /v1/campaigns/{id} refuses a live campaign
// (running, stopping) with 409 naming the state and deletes nothing; once
// the run has settled it answers 204 and no key of the campaign is left,
// the list no longer has it, another campaign is untouched, and the delete
// is in the audit log (not in a trail, which is gone). Unknown campaigns
// and a second delete are 404; without a valid key, 401.
func TestDeleteCampaign(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zapcore.InfoLevel)
	b := setup(t, func(c *api.Config) {
		ks := &api.KeySet{}
		require.NoError(t, ks.Add(testKey))
		require.NoError(t, ks.AddNamed("alice", aliceKey))
		require.NoError(t, ks.AddNamed("bob", bobKey))
		c.Keys = ks
		c.Logger = zap.New(core)
	})
	ctx := t.Context()
	other := b.startCustom(t)
	id := b.startCustom(t, rdb.Settle{OpenID: "oTX0000000000000000000000001", Outcome: rdb.Outcome{Status: rdb.OutcomeSent}})
	otherKeys := b.keysOf(t, other)
	require.NotEmpty(t, otherKeys)

	status, raw := b.deleteCampaign(t, id, aliceKey)
	require.Equal(t, http.StatusConflict, status, raw)
	require.Contains(t, raw, `"code":"`+api.CodeInvalidState+`"`)
	require.Contains(t, raw, `"state":"running"`)
	require.Equal(t, http.StatusOK, b.json(t, "GET", "/v1/campaigns/"+id, "").status, "a refused delete deletes nothing")

	require.Equal(t, http.StatusOK, b.json(t, "POST", "/v1/campaigns/"+id+"/cancel", "").status)
	status, raw = b.deleteCampaign(t, id, aliceKey)
	require.Equal(t, http.StatusConflict, status, raw)
	require.Contains(t, raw, `"state":"stopping"`)

	// The settle task's work: the run ends cancelled.
	c, err := b.store.Get(ctx, id)
	require.NoError(t, err)
	_, err = b.store.SettleStopped(ctx, c, 1)
	require.NoError(t, err)
	require.Equal(t, "cancelled", b.json(t, "GET", "/v1/campaigns/"+id, "").body["state"])
	require.NotEmpty(t, b.keysOf(t, id))

	status, raw = b.deleteCampaign(t, id, bobKey)
	require.Equal(t, http.StatusNoContent, status, raw)
	require.Empty(t, raw)
	require.Empty(t, b.keysOf(t, id), "every key of the campaign is gone")
	require.Equal(t, otherKeys, b.keysOf(t, other), "the other campaign keeps its keys")

	a := b.json(t, "GET", "/v1/campaigns/"+id, "")
	require.Equal(t, http.StatusNotFound, a.status)
	a = b.json(t, "GET", "/v1/campaigns", "")
	require.Equal(t, http.StatusOK, a.status)
	require.Contains(t, a.raw, other)
	require.NotContains(t, a.raw, id)

	status, raw = b.deleteCampaign(t, id, aliceKey)
	require.Equal(t, http.StatusNotFound, status, raw)
	require.Contains(t, raw, `"code":"`+api.CodeNotFound+`"`)
	status, _ = b.deleteCampaign(t, "cnotthere0000", aliceKey)
	require.Equal(t, http.StatusNotFound, status)
	status, _ = b.deleteCampaign(t, other, "wrong-key-0123456789abcdef")
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, otherKeys, b.keysOf(t, other))

	var deletes []map[string]any
	for _, l := range logs.FilterMessage("audit").All() {
		if m := l.ContextMap(); m["action"] == "delete" && m["campaign_id"] == id {
			deletes = append(deletes, m)
		}
	}
	require.Len(t, deletes, 4, "two refused, the delete, the second delete")
	done := deletes[2]
	require.Equal(t, "bob", done["key"])
	require.EqualValues(t, http.StatusNoContent, done["status"])
	require.Equal(t, false, done["stored"], "the trail is gone with the campaign")
	require.Equal(t, true, deletes[0]["stored"], "a refused delete is in the campaign's trail")
}
