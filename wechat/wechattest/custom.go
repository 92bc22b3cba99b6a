package wechattest

import (
	"time"
	"unicode/utf8"
)

// Customer-service payload limits.
const (
	// textContentMax is the longest text content in bytes; longer is 45002.
	textContentMax = 2048
	// newsArticlesMax is how many articles a news message may hold since
	// 2018-10-12; more is 45008.
	newsArticlesMax = 1
	// menuItemsMax and menuItemContentMax bound msgmenu (45098, 45099).
	// WeChat does not document them; these are the fake's choices.
	menuItemsMax       = 10
	menuItemContentMax = 256
)

// customMsgType returns the canonical name of a customer-service msgtype the
// fake accepts: text, image, voice, video, music, news, mpnews,
// mpnewsarticle, msgmenu, wxcard and miniprogrampage. "link" exists only for
// mini programs and is refused like any other name.
func customMsgType(t string) (string, bool) {
	switch t {
	case "text":
		return "text", true
	case "image":
		return "image", true
	case "voice":
		return "voice", true
	case "video":
		return "video", true
	case "music":
		return "music", true
	case "news":
		return "news", true
	case "mpnews":
		return "mpnews", true
	case "mpnewsarticle":
		return "mpnewsarticle", true
	case "msgmenu":
		return "msgmenu", true
	case "wxcard":
		return "wxcard", true
	case "miniprogrampage":
		return "miniprogrampage", true
	}
	return "", false
}

// customSend serves POST /cgi-bin/message/custom/send (wechat-api.md §3.2).
// Checks, in order: empty body 44002; \u escapes or bad UTF-8 40033; not a
// JSON object or a known field of the wrong type 47001; touser not an openid
// 40003; msgtype missing or unknown 40008; the payload named by msgtype
// missing, not an object, or without a required field 47001; text over
// 2048 bytes 45002, more than one news article 45008, msgmenu limits
// 45098/45099; a media_id, thumb_media_id or article_id not allowed 40007;
// customservice.kf_account not allowed 61452; the recipient (Terminal, then
// RequireFollower 45015); with Config.CSWindow, the customer-service window
// (45015 outside any window, 45047 when its messages are used up; an
// accepted send uses one). Success has no msgid.
func (s *Server) customSend(x *exchange, acct *account, now time.Time) outcome {
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
	msgtype, _ := f.str("msgtype")
	cs := f.object("customservice")
	x.parsed(touser, "")
	if f.bad {
		return outcome{code: 47001}
	}
	var kf string
	if cs != nil {
		cf := fieldReader{obj: cs}
		kf, _ = cf.str("kf_account")
		if cf.bad {
			return outcome{code: 47001}
		}
	}
	if !validOpenID(touser) {
		return outcome{code: 40003}
	}
	mt, ok := customMsgType(msgtype)
	if !ok {
		return outcome{code: 40008}
	}
	payload := root.field(mt)
	if payload == nil || payload.kind != jsonObject {
		return outcome{code: 47001}
	}
	out, mediaID := s.checkCustomPayload(mt, payload, acct.AppID, now)
	if out.code != 0 {
		return out
	}
	if cs != nil && !s.kfAllowed(kf) {
		return outcome{code: 61452}
	}
	if code := s.recipientCode(acct, touser, 45015); code != 0 {
		return outcome{code: code}
	}
	if s.set.csWindow {
		if code := s.cs.take(csKey{appID: acct.AppID, openid: touser}, now); code != 0 {
			return outcome{code: code}
		}
	}
	out = s.deliverMedia(apiCustomSend, x, acct, touser, 0, "", mt, mediaID, now)
	x.out = appendOK(x.out)
	return out
}

// checkCustomPayload checks the payload object of msgtype mt, sent by
// appID at now. It returns the payload's media_id too (for image, voice,
// video and mpnews), for the record. A media id of the fake's media store
// (uploaded with media/upload or material/add_material) must be the
// account's, live (not expired) and, for an image or voice message, of
// that kind; any other id must be in Config.MediaIDs when that is set.
func (s *Server) checkCustomPayload(mt string, p *jsonValue, appID string, now time.Time) (outcome, string) {
	f := fieldReader{obj: p}
	var (
		required []string // string fields that must not be empty
		media    []string // the media ids to check
	)
	switch mt {
	case "text":
		content, _ := f.str("content")
		if f.bad || content == "" {
			return outcome{code: 47001}, ""
		}
		if len(content) > textContentMax {
			return outcome{code: 45002}, ""
		}
		return outcome{}, ""
	case "image", "voice", "mpnews":
		id, _ := f.str("media_id")
		required, media = []string{id}, []string{id}
	case "mpnewsarticle":
		id, _ := f.str("article_id")
		required, media = []string{id}, []string{id}
	case "video":
		id, _ := f.str("media_id")
		thumb, _ := f.str("thumb_media_id")
		f.str("title")
		f.str("description")
		required, media = []string{id, thumb}, []string{id, thumb}
	case "music":
		u, _ := f.str("musicurl")
		hq, _ := f.str("hqmusicurl")
		thumb, _ := f.str("thumb_media_id")
		f.str("title")
		f.str("description")
		required, media = []string{u, hq, thumb}, []string{thumb}
	case "miniprogrampage":
		title, _ := f.str("title")
		appid, _ := f.str("appid")
		page, _ := f.str("pagepath")
		thumb, _ := f.str("thumb_media_id")
		required, media = []string{title, appid, page, thumb}, []string{thumb}
	case "wxcard":
		id, _ := f.str("card_id")
		required = []string{id}
	case "news":
		return checkNews(&f), ""
	case "msgmenu":
		return checkMenu(&f), ""
	}
	if f.bad {
		return outcome{code: 47001}, ""
	}
	for _, v := range required {
		if v == "" {
			return outcome{code: 47001}, ""
		}
	}
	kind := ""
	if mt == "image" || mt == "voice" {
		kind = mt
	}
	for _, id := range media {
		if code := s.checkCustomMedia(appID, id, kind, now); code != 0 {
			return outcome{code: code}, ""
		}
	}
	if mt == "image" || mt == "voice" || mt == "video" || mt == "mpnews" {
		return outcome{}, media[0]
	}
	return outcome{}, ""
}

// checkCustomMedia answers 40007 for a media id of a customer-service
// message the fake does not take: one of its media store that belongs to
// another account, has expired or (kind set) is of another kind; or one
// outside it that Config.MediaIDs, when set, does not list.
func (s *Server) checkCustomMedia(appID, id, kind string, now time.Time) int {
	s.mass.mu.Lock()
	e := s.mass.media[id]
	s.mass.mu.Unlock()
	if e == nil {
		if s.mediaIDs != nil && !s.mediaIDs[id] {
			return 40007
		}
		return 0
	}
	if e.appID != appID || (kind != "" && e.kind != kind) || (!e.expires.IsZero() && !now.Before(e.expires)) {
		return 40007
	}
	return 0
}

// checkNews checks {"articles":[{"title","description","url","picurl"}]}:
// exactly one article with a title and a url.
func checkNews(f *fieldReader) outcome {
	arts := f.array("articles")
	if f.bad || arts == nil {
		return outcome{code: 47001}
	}
	for i := range arts.elems {
		a := &arts.elems[i]
		if a.kind != jsonObject {
			return outcome{code: 47001}
		}
		af := fieldReader{obj: a}
		title, _ := af.str("title")
		u, _ := af.str("url")
		af.str("description")
		af.str("picurl")
		if af.bad || title == "" || u == "" {
			return outcome{code: 47001}
		}
	}
	switch n := len(arts.elems); {
	case n == 0:
		return outcome{code: 47001}
	case n > newsArticlesMax:
		return outcome{code: 45008}
	}
	return outcome{}
}

// checkMenu checks {"head_content","list":[{"id","content"}],"tail_content"}.
func checkMenu(f *fieldReader) outcome {
	f.str("head_content")
	f.str("tail_content")
	list := f.array("list")
	if f.bad || list == nil || len(list.elems) == 0 {
		return outcome{code: 47001}
	}
	for i := range list.elems {
		it := &list.elems[i]
		if it.kind != jsonObject {
			return outcome{code: 47001}
		}
		itf := fieldReader{obj: it}
		id, _ := itf.str("id")
		content, _ := itf.str("content")
		if itf.bad || id == "" || content == "" {
			return outcome{code: 47001}
		}
	}
	if len(list.elems) > menuItemsMax {
		return outcome{code: 45098}
	}
	for i := range list.elems {
		content, _ := (&fieldReader{obj: &list.elems[i]}).str("content")
		if len(content) > menuItemContentMax || !utf8.ValidString(content) {
			return outcome{code: 45099}
		}
	}
	return outcome{}
}

// kfAllowed reports whether kf may send: it is in Config.KFAccounts, or that
// list is empty and kf looks like name@domain.
func (s *Server) kfAllowed(kf string) bool {
	if s.kfAccounts != nil {
		return s.kfAccounts[kf]
	}
	return validKFAccount(kf)
}
