package wechattest

import (
	"time"
)

// This file holds what the three send APIs (template/send, custom/send and
// subscribe/bizsend) share: data validation, recipient checks and recording.

// checkData validates the data object of a template or subscribe send.
// shapeCode is the errcode for data of the wrong JSON shape: 47001 on
// template/send, 40003 on bizsend (where WeChat reports array-shaped data
// that way). Missing or empty data, a keyword outside the template's
// TemplateKeywords, a missing keyword and a value that breaks its keyword's
// rule answer 47003 "argument invalid! data.<key>.value invalid", naming the
// first bad key in body order.
func (s *Server) checkData(data *jsonValue, keywords []string, shapeCode int) outcome {
	if data == nil {
		return outcome{code: 47003, msg: "argument invalid! data is empty"}
	}
	if data.kind != jsonObject {
		return outcome{code: shapeCode}
	}
	// Shape first: WeChat decodes the whole body before judging values.
	for i := range data.fields {
		v := &data.fields[i].val
		if v.kind != jsonObject {
			return outcome{code: shapeCode}
		}
		f := fieldReader{obj: v}
		f.str("value")
		f.str("color") // Ignored since 2023-05-04, but must be a string.
		if f.bad {
			return outcome{code: shapeCode}
		}
	}
	if len(data.fields) == 0 {
		return outcome{code: 47003, msg: "argument invalid! data is empty"}
	}
	for i := range data.fields {
		key := data.fields[i].key
		value, _ := (&fieldReader{obj: &data.fields[i].val}).str("value")
		if !validKeywordKey(key) || !validKeywordValue(key, value) || (keywords != nil && !containsString(keywords, key)) {
			return invalidKeyword(key)
		}
	}
	for _, k := range keywords {
		if data.field(k) == nil {
			return invalidKeyword(k)
		}
	}
	return outcome{}
}

func invalidKeyword(key string) outcome {
	return outcome{code: 47003, msg: "argument invalid! data." + key + ".value invalid"}
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// recipientCode returns the errcode a send to openid gets before delivery:
// its Config.Terminal code, or notFollower when Config.RequireFollower is set
// and openid does not follow the account.
func (s *Server) recipientCode(openid string, notFollower int) int {
	if code, ok := s.set.terminal[openid]; ok {
		return code
	}
	if s.set.requireFollower && !s.followers.contains(openid) {
		return notFollower
	}
	return 0
}

// nextMsgID returns a new msgid, increasing from msgIDBase.
func (s *Server) nextMsgID() int64 { return s.msgIDBase + s.msgIDSeq.Add(1) }

// deliver records an accepted delivery of api. kind is the template id or
// msgtype, a string owned by the server rather than the request.
func (s *Server) deliver(api apiID, x *exchange, acct *account, openid string, msgid int64, clientMsgID, kind string, now time.Time) outcome {
	s.rec.add(record{
		api:         api,
		acct:        acct,
		openid:      openid,
		msgid:       msgid,
		clientMsgID: clientMsgID,
		kind:        kind,
		at:          now,
		hash:        bodyHash(x.body),
	})
	return outcome{accepted: true, msgid: msgid}
}

// appendOK appends {"errcode":0,"errmsg":"ok"}.
func appendOK(dst []byte) []byte {
	return append(dst, `{"errcode":0,"errmsg":"ok"}`...)
}
