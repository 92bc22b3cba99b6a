package wechattest

import (
	"fmt"
	"maps"
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

// recipientCode returns the errcode a send from acct to openid gets before
// delivery: its terminal code (Config.Terminal as changed by SetTerminal),
// or notFollower when Config.RequireFollower is set and openid does not
// follow the account.
func (s *Server) recipientCode(acct *account, openid string, notFollower int) int {
	if code, ok := (*s.terminal.Load())[openid]; ok {
		return code
	}
	if s.set.requireFollower && !s.isFollower(acct, openid) {
		return notFollower
	}
	return 0
}

// SetTerminal makes every send API answer errcode code for openid from the
// next call on, as Config.Terminal does: template/send, custom/send and
// subscribe/bizsend (and mass jobs, which count the user as an error)
// check it after the body is found valid, and a refused call delivers
// nothing. Code 0 lifts openid's code, including one from Config.Terminal.
// Typical codes are 43004 (unfollowed), 48002 (blocked the account), 43101
// (refused), 40003 (invalid openid) and 43117 (sent to too often). It
// returns an error, and changes nothing, when openid is not an openid. It
// is safe for concurrent use with sends, which read the codes through an
// atomic pointer.
func (s *Server) SetTerminal(openid string, code int) error {
	if !validOpenID(openid) {
		return fmt.Errorf("wechattest: terminal openid %q: not an openid (o and 27 of [A-Za-z0-9_-])", openid)
	}
	s.terminalMu.Lock()
	defer s.terminalMu.Unlock()
	cur := *s.terminal.Load()
	if old, ok := cur[openid]; (ok && old == code) || (!ok && code == 0) {
		return nil
	}
	next := maps.Clone(cur)
	if next == nil {
		next = make(map[string]int, 1)
	}
	if code == 0 {
		delete(next, openid)
	} else {
		next[openid] = code
	}
	s.terminal.Store(&next)
	return nil
}

// Terminal returns a copy of the current terminal errcodes by openid.
func (s *Server) Terminal() map[string]int {
	m := maps.Clone(*s.terminal.Load())
	if m == nil {
		m = map[string]int{}
	}
	return m
}

// nextMsgID returns a new msgid, increasing from msgIDBase.
func (s *Server) nextMsgID() int64 { return s.msgIDBase + s.msgIDSeq.Add(1) }

// deliver records an accepted delivery of api. kind is the template id or
// msgtype, a string owned by the server rather than the request.
func (s *Server) deliver(api apiID, x *exchange, acct *account, openid string, msgid int64, clientMsgID, kind string, now time.Time) outcome {
	return s.deliverMedia(api, x, acct, openid, msgid, clientMsgID, kind, "", now)
}

// deliverMedia is deliver with the message's media_id, if it has one.
func (s *Server) deliverMedia(api apiID, x *exchange, acct *account, openid string, msgid int64, clientMsgID, kind, mediaID string, now time.Time) outcome {
	s.rec.add(record{
		media:       mediaID,
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
