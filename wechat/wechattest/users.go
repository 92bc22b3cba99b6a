package wechattest

import (
	"strconv"
)

// userGet serves GET /cgi-bin/user/get (wechat-api.md §6.1). It pages
// through acct's follower list in a stable order, PageSize openids a page:
//
//	{"total":N,"count":n,"data":{"openid":[...]},"next_openid":"LAST"}
//
// next_openid is the page's last openid, even on the last page; the call
// after the last page answers {"total":N,"count":0,"next_openid":""}. A
// next_openid that is not a follower answers 40003, except one who
// unfollowed since (Interact): WeChat does not document that case, and the
// fake treats next_openid as the cursor it is, so that a client paging
// while users leave is not failed for it.
func (s *Server) userGet(x *exchange, acct *account, rawQuery string) outcome {
	v, done := s.followersOf(acct)
	defer done()
	start := 0
	if next := queryValue(rawQuery, "next_openid"); next != "" {
		i, ok := v.index(next)
		if !ok {
			return outcome{code: 40003}
		}
		start = i + 1
	}
	x.out = append(x.out, `{"total":`...)
	x.out = strconv.AppendInt(x.out, int64(v.total()), 10)
	if len(v.gone) == 0 {
		end := min(start+s.set.pageSize, v.span())
		x.out = appendPage(x.out, start, end, v.at)
		return outcome{}
	}
	ids := v.page(start, s.set.pageSize)
	x.out = appendPage(x.out, 0, len(ids), func(i int) string { return ids[i] })
	return outcome{}
}

// tagGet serves POST /cgi-bin/user/tag/get with body {"tagid":N,
// "next_openid":"..."} (wechat-api.md §6.2). It pages like userGet, without
// "total". An unknown tag answers 45159, a tagid that is not an integer or a
// body that is not JSON 47001, an unknown next_openid 40003.
func (s *Server) tagGet(x *exchange) outcome {
	if len(x.body) == 0 {
		return outcome{code: 44002}
	}
	root, err := parseJSON(x.body)
	if err != nil || root.kind != jsonObject {
		return outcome{code: 47001}
	}
	f := fieldReader{obj: &root}
	next, _ := f.str("next_openid")
	if f.bad {
		return outcome{code: 47001}
	}
	tv := root.field("tagid")
	if tv == nil || tv.kind != jsonNumber {
		return outcome{code: 47001}
	}
	tagID, err := strconv.ParseInt(tv.s, 10, 64)
	if err != nil {
		return outcome{code: 47001}
	}
	tag := s.tags[tagID]
	if tag == nil {
		return outcome{code: 45159}
	}
	start := 0
	if next != "" {
		i, ok := tag.pos[next]
		if !ok {
			return outcome{code: 40003}
		}
		start = i + 1
	}
	end := min(start+s.set.pageSize, len(tag.members))
	x.out = appendPage(x.out, start, end, func(i int) string { return tag.members[i] })
	return outcome{}
}

// appendPage appends the page [start, end) of a list as
// `,"count":n,"data":{"openid":[...]},"next_openid":"LAST"}`, or
// `,"count":0,"next_openid":""}` when it is empty. When dst is empty the
// page starts the object, with '{' instead of ','.
func appendPage(dst []byte, start, end int, at func(int) string) []byte {
	if len(dst) == 0 {
		dst = append(dst, '{')
	} else {
		dst = append(dst, ',')
	}
	if start >= end {
		return append(dst, `"count":0,"next_openid":""}`...)
	}
	dst = append(dst, `"count":`...)
	dst = strconv.AppendInt(dst, int64(end-start), 10)
	dst = append(dst, `,"data":{"openid":[`...)
	var last string
	for i := start; i < end; i++ {
		if i > start {
			dst = append(dst, ',')
		}
		last = at(i)
		dst = appendJSONString(dst, last)
	}
	dst = append(dst, `]},"next_openid":`...)
	dst = appendJSONString(dst, last)
	return append(dst, '}')
}
