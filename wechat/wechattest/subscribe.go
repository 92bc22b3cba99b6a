package wechattest

import "time"

// bizSend serves POST /cgi-bin/message/subscribe/bizsend (wechat-api.md
// §4.1). Checks, in order: empty body 44002; \u escapes or bad UTF-8 40033;
// not a JSON object, a known field of the wrong type or a miniprogram
// without appid 47001 (except data:
// array- or otherwise wrongly shaped data is 40003, as WeChat's moderators
// report); touser missing (including a wrongly cased "toUser") or not an
// openid 40003; template_id empty or not allowed 40037; data (checkData); the
// recipient (Terminal, then RequireFollower 43004). Success has no msgid.
func (s *Server) bizSend(x *exchange, acct *account, now time.Time) outcome {
	if code := checkBody(x.body); code != 0 {
		return outcome{code: code}
	}
	root, err := parseJSON(x.body)
	if err != nil || root.kind != jsonObject {
		x.parsed("", "")
		return outcome{code: 47001}
	}
	f := fieldReader{obj: &root}
	touser, _ := f.str("touser")
	templateID, _ := f.str("template_id")
	f.str("page")
	mp := f.object("miniprogram")
	data := root.field("data")
	x.parsed(touser, "")
	if f.bad {
		return outcome{code: 47001}
	}
	if mp != nil {
		if out := checkMiniProgram(mp); out.code != 0 {
			return out
		}
	}
	if !validOpenID(touser) {
		return outcome{code: 40003}
	}
	tpl, ok := s.subTemplates[templateID]
	if !ok {
		return outcome{code: 40037}
	}
	if out := s.checkData(data, s.set.templateKeywords[tpl], 40003); out.code != 0 {
		return out
	}
	if code := s.recipientCode(acct, touser, 43004); code != 0 {
		return outcome{code: code}
	}
	out := s.deliver(apiBizSend, x, acct, touser, 0, "", tpl, now)
	x.out = appendOK(x.out)
	return out
}
