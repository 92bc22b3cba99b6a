package wechattest

import (
	"strconv"
	"time"
)

// clientMsgIDMax is the longest client_msg_id, in bytes. WeChat documents
// 64 bytes (45067) for the clientmsgid of mass sends; for template sends the
// limit is undocumented and the fake applies the same one.
const clientMsgIDMax = 64

// templateSend serves POST /cgi-bin/message/template/send (wechat-api.md
// §2.2). Checks, in order: empty body 44002; \u escapes or bad UTF-8 40033;
// not a JSON object, a known field of the wrong JSON type or a miniprogram
// without appid 47001; touser missing (including a wrongly cased "toUser")
// or not an openid 40003; template_id empty 40036 or not allowed 40037;
// client_msg_id too long 45067; data (checkData); the recipient (Terminal,
// then RequireFollower 43004). Unknown top-level keys are ignored, as WeChat
// ignores the retired color and topcolor. A client_msg_id already used for
// the same openid within the dedupe window answers success with the first
// send's msgid and delivers nothing; WeChat does not document this answer,
// and success with the same msgid is the reading the client relies on.
func (s *Server) templateSend(x *exchange, acct *account, now time.Time) outcome {
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
	f.str("url")
	mp := f.object("miniprogram")
	clientMsgID, _ := f.str("client_msg_id")
	f.str("color")
	f.str("topcolor")
	data := root.field("data")
	x.parsed(touser, clientMsgID)
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
	if templateID == "" {
		return outcome{code: 40036}
	}
	tpl, ok := s.templates.Load().canon[templateID]
	if !ok {
		return outcome{code: 40037}
	}
	if len(clientMsgID) > clientMsgIDMax {
		return outcome{code: 45067}
	}
	if out := s.checkData(data, s.set.templateKeywords[tpl], 47001); out.code != 0 {
		return out
	}
	if code := s.recipientCode(acct, touser, 43004); code != 0 {
		return outcome{code: code}
	}

	var msgid int64
	if clientMsgID != "" {
		var dup bool
		msgid, dup = s.dedupe.claim(dedupeKey{appID: acct.AppID, openid: touser, clientMsgID: clientMsgID}, now, s.nextMsgID)
		if dup {
			x.out = appendMsgID(x.out, msgid)
			return outcome{deduped: true, msgid: msgid}
		}
	} else {
		msgid = s.nextMsgID()
	}
	out := s.deliver(apiTemplateSend, x, acct, touser, msgid, clientMsgID, tpl, now)
	if s.pusher != nil {
		s.pusher.enqueue(acct.AppID, touser, msgid)
	}
	x.out = appendMsgID(x.out, msgid)
	return out
}

// checkMiniProgram checks a miniprogram object: appid is a non-empty string
// and pagepath, if present, a string.
func checkMiniProgram(mp *jsonValue) outcome {
	f := fieldReader{obj: mp}
	appid, _ := f.str("appid")
	f.str("pagepath")
	if f.bad || appid == "" {
		return outcome{code: 47001}
	}
	return outcome{}
}

// appendMsgID appends template/send's success body.
func appendMsgID(dst []byte, msgid int64) []byte {
	dst = append(dst, `{"errcode":0,"errmsg":"ok","msgid":`...)
	dst = strconv.AppendInt(dst, msgid, 10)
	return append(dst, '}')
}
