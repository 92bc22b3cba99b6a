package wechattest

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// quotaUnlimited is the daily_limit quota/get reports for an API without a
// daily limit. WeChat always has one; reporting 0 would read as "no quota
// left", so the fake reports a number no run reaches.
const quotaUnlimited = math.MaxInt32

// quotaGet serves POST /cgi-bin/openapi/quota/get with body
// {"cgi_path":"/cgi-bin/..."} (wechat-api.md §9.2), for the calling
// account. A cgi_path without the leading "/" answers 76003, one the fake
// does not serve 76021. rate_limit is {PerSecond, 1}, or zeros when the API
// has no per-second limit; component_rate_limit is always zeros.
func (s *Server) quotaGet(x *exchange, acct *account, now time.Time) outcome {
	if len(x.body) == 0 {
		return outcome{code: 44002}
	}
	root, err := parseJSON(x.body)
	if err != nil || root.kind != jsonObject {
		return outcome{code: 47001}
	}
	f := fieldReader{obj: &root}
	cgiPath, _ := f.str("cgi_path")
	if f.bad || cgiPath == "" {
		return outcome{code: 47001}
	}
	if !strings.HasPrefix(cgiPath, "/") {
		return outcome{code: 76003}
	}
	id, ok := apiByPath(cgiPath)
	if !ok {
		return outcome{code: 76021}
	}
	l := acct.limiters[id]
	used := int64(l.usage(now, s.set.loc))
	limit := int64(l.limit.Daily)
	if limit == 0 {
		limit = quotaUnlimited
	}
	var count, refresh int64
	if l.limit.PerSecond > 0 {
		count, refresh = int64(l.limit.PerSecond), 1
	}
	b := append(x.out, `{"errcode":0,"errmsg":"ok","quota":{"daily_limit":`...)
	b = strconv.AppendInt(b, limit, 10)
	b = append(b, `,"used":`...)
	b = strconv.AppendInt(b, used, 10)
	b = append(b, `,"remain":`...)
	b = strconv.AppendInt(b, max(limit-used, 0), 10)
	b = append(b, `},"rate_limit":{"call_count":`...)
	b = strconv.AppendInt(b, count, 10)
	b = append(b, `,"refresh_second":`...)
	b = strconv.AppendInt(b, refresh, 10)
	x.out = append(b, `},"component_rate_limit":{"call_count":0,"refresh_second":0}}`...)
	return outcome{}
}
