package wechattest

import (
	"net/url"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// openIDs returns the data.openid list of a page.
func openIDs(t *testing.T, m map[string]any) []string {
	t.Helper()
	data, ok := m["data"].(map[string]any)
	if !ok {
		return nil
	}
	var out []string
	for _, v := range data["openid"].([]any) {
		out = append(out, v.(string))
	}
	return out
}

func TestUserGetPaging(t *testing.T) {
	t.Parallel()
	extra := []string{openID("extra1"), openID("extra2")}
	b := setup(t, Config{Followers: 23, FollowerIDs: extra, PageSize: 10, Seed: 7})
	tok := b.token(t)
	all := b.srv.FollowerOpenIDs()
	require.Len(t, all, 25)
	require.Equal(t, extra, all[23:])

	var got []string
	next := ""
	pages := 0
	for {
		path := "/cgi-bin/user/get?access_token=" + url.QueryEscape(tok)
		if next != "" {
			path += "&next_openid=" + url.QueryEscape(next)
		}
		m := b.get(t, path)
		require.Zero(t, errcode(t, m), "%v", m)
		require.EqualValues(t, 25, num(t, m, "total"))
		count := num(t, m, "count")
		ids := openIDs(t, m)
		require.Len(t, ids, int(count))
		if count == 0 {
			require.Equal(t, "", m["next_openid"])
			require.NotContains(t, m, "data")
			break
		}
		require.Equal(t, ids[len(ids)-1], m["next_openid"])
		got = append(got, ids...)
		next = m["next_openid"].(string)
		pages++
	}
	require.Equal(t, 3, pages)
	require.Equal(t, all, got)

	// The order is stable.
	first := b.get(t, "/cgi-bin/user/get?access_token="+url.QueryEscape(tok))
	require.Equal(t, all[:10], openIDs(t, first))

	m := b.get(t, "/cgi-bin/user/get?access_token="+url.QueryEscape(tok)+"&next_openid="+openID("nobody"))
	require.Equal(t, 40003, errcode(t, m))
	m = b.post(t, "/cgi-bin/user/get?access_token="+url.QueryEscape(tok), "")
	require.Equal(t, 43001, errcode(t, m))
}

func TestUserGetEmpty(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	m := b.get(t, "/cgi-bin/user/get?access_token="+b.token(t))
	require.Equal(t, map[string]any{"total": m["total"], "count": m["count"], "next_openid": ""}, m)
	require.Zero(t, num(t, m, "total"))
	require.Zero(t, num(t, m, "count"))
}

func TestTagGetPaging(t *testing.T) {
	t.Parallel()
	var members []string
	for i := range 7 {
		members = append(members, openID("tag"+strconv.Itoa(i)))
	}
	b := setup(t, Config{Tags: map[int64][]string{134: members, 2: {}}, PageSize: 3})
	tok := b.token(t)
	page := func(tag, next string) map[string]any {
		return b.send(t, nameTagGet, tok, `{"tagid":`+tag+`,"next_openid":"`+next+`"}`)
	}

	var got []string
	next := ""
	calls := 0
	for {
		m := page("134", next)
		calls++
		require.Zero(t, errcode(t, m), "%v", m)
		require.NotContains(t, m, "total")
		ids := openIDs(t, m)
		if num(t, m, "count") == 0 {
			require.Empty(t, ids)
			break
		}
		// next_openid is the last openid even on the last page.
		require.Equal(t, ids[len(ids)-1], m["next_openid"])
		got = append(got, ids...)
		next = m["next_openid"].(string)
	}
	require.Equal(t, members, got)
	require.Equal(t, 4, calls)

	require.Zero(t, num(t, page("2", ""), "count"))
	require.Equal(t, 45159, errcode(t, page("999", "")))
	require.Equal(t, 40003, errcode(t, page("134", openID("nobody"))))
	require.Equal(t, 47001, errcode(t, b.send(t, nameTagGet, tok, `{"tagid":"134"}`)))
	require.Equal(t, 47001, errcode(t, b.send(t, nameTagGet, tok, `{"tagid":1.5}`)))
	require.Equal(t, 47001, errcode(t, b.send(t, nameTagGet, tok, `{"next_openid":""}`)))
	require.Equal(t, 44002, errcode(t, b.send(t, nameTagGet, tok, ``)))
	require.Equal(t, 43002, errcode(t, b.get(t, "/cgi-bin/user/tag/get?access_token="+tok)))
}
