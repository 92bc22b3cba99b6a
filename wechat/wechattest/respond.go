package wechattest

import (
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"
)

// contentTypeJSON is the Content-Type WeChat answers its APIs with.
const contentTypeJSON = "application/json; encoding=utf-8"

// errmsg is WeChat's English errmsg for an errcode, without the rid suffix.
// The texts are those listed in wechat-api.md (from WxJava's tables and
// WeChat's common errcode page); codes it does not list get a short text of
// the same style.
func errmsg(code int) string {
	switch code {
	case -1:
		return "system error"
	case 40001:
		return "invalid credential, access_token is invalid or not latest"
	case 40002:
		return "invalid grant_type"
	case 40003:
		return "invalid openid"
	case 40007:
		return "invalid media_id"
	case 40008:
		return "invalid message type"
	case 40013:
		return "invalid appid"
	case 40014:
		return "invalid access_token"
	case 40033:
		return `invalid charset. please check your request, if include \uxxxx will create fail!`
	case 40036:
		return "invalid template_id size"
	case 40037:
		return "invalid template_id"
	case 40125:
		return "invalid appsecret"
	case 40164:
		return "invalid ip 127.0.0.1 ipv6 ::ffff:127.0.0.1, not in whitelist"
	case 40243:
		return "appsecret is frozen"
	case 41001:
		return "access_token missing"
	case 41002:
		return "appid missing"
	case 41004:
		return "appsecret missing"
	case 42001:
		return "access_token expired"
	case 43001:
		return "require GET method"
	case 43002:
		return "require POST method"
	case 43004:
		return "require subscribe"
	case 43019:
		return "require remove blacklist"
	case 43101:
		return "user refuse to accept the msg"
	case 43116:
		return "This template_id is banned"
	case 43117:
		return "Sending messages to this openid too frequently,please try later"
	case 44002:
		return "empty post data"
	case 45002:
		return "content size out of limit"
	case 45008:
		return "article size out of limit"
	case 45009:
		return "reach max api daily quota limit"
	case 45011:
		return "api minute-quota reach limit must slower retry next minute"
	case 45015:
		return "response out of time limit or subscription is canceled"
	case 45047:
		return "out of response count limit"
	case 45067:
		return "clientmsgid size out of limit"
	case 45098:
		return "msgmenu list size is out of limit"
	case 45099:
		return "msgmenu item content size is out of limit"
	case 45159:
		return "invalid tag id"
	case 46004:
		return "user no exist"
	case 47001:
		return "data format error"
	case 47003:
		return "argument invalid!"
	case 48001:
		return "api unauthorized"
	case 48002:
		return "user block receive message"
	case 48004:
		return "api forbidden for irregularities, view detail on mp.weixin.qq.com"
	case 50002:
		return "user limited"
	case 61004:
		return "access clientip is not registered, not in ip-white-list"
	case 61452:
		return "invalid kf_account"
	case 76003:
		return "invalid cgi_path, it must start with /"
	case 76021:
		return "cgi_path not found, please check"
	case 89503:
		return "此次调用需要管理员确认，请耐心等候"
	case 89506:
		return "该IP调用求请求已被公众号管理员拒绝，请24小时后再试，建议调用前与管理员沟通确认"
	case 89507:
		return "该IP调用求请求已被公众号管理员拒绝，请1小时后再试，建议调用前与管理员沟通确认"
	}
	return "errcode " + strconv.Itoa(code)
}

// appendError appends WeChat's error body for code to dst. msg replaces the
// default errmsg when not empty; the rid suffix is always added.
func (s *Server) appendError(dst []byte, code int, msg string, now time.Time) []byte {
	if msg == "" {
		msg = errmsg(code)
	}
	dst = append(dst, `{"errcode":`...)
	dst = strconv.AppendInt(dst, int64(code), 10)
	dst = append(dst, `,"errmsg":"`...)
	dst = appendJSONStringBody(dst, msg)
	dst = append(dst, " rid: "...)
	dst = s.appendRID(dst, now)
	return append(dst, `"}`...)
}

// appendRID appends a request id shaped like WeChat's ("64dd8871-484ffffb-
// 57f8d5ab"): the hex Unix time, a per-server salt and a sequence number.
func (s *Server) appendRID(dst []byte, now time.Time) []byte {
	dst = appendHex32(dst, uint32(now.Unix()))
	dst = append(dst, '-')
	dst = appendHex32(dst, s.ridSalt)
	dst = append(dst, '-')
	return appendHex32(dst, s.ridSeq.Add(1))
}

func appendHex32(dst []byte, v uint32) []byte {
	const digits = "0123456789abcdef"
	for shift := 28; shift >= 0; shift -= 4 {
		dst = append(dst, digits[(v>>uint(shift))&0xf])
	}
	return dst
}

// appendJSONString appends s as a quoted JSON string. Non-ASCII text is
// written as raw UTF-8, like WeChat does.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	dst = appendJSONStringBody(dst, s)
	return append(dst, '"')
}

// appendJSONStringBody appends s escaped for use inside a JSON string.
func appendJSONStringBody(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
			i++
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			i++
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

// writeBody writes a complete JSON answer with HTTP 200. An error means the
// client went away.
func writeBody(w http.ResponseWriter, body []byte) error {
	h := w.Header()
	h["Content-Type"] = []string{contentTypeJSON}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(body)
	return err
}

// write5xx answers like a failing front-end proxy: a 502 or 503 status with
// an HTML body that is not WeChat's JSON. An error means the client went
// away.
func write5xx(w http.ResponseWriter, status int) error {
	body := "<html>\r\n<head><title>" + strconv.Itoa(status) + " " + http.StatusText(status) +
		"</title></head>\r\n<body>\r\n<center><h1>" + strconv.Itoa(status) + " " + http.StatusText(status) +
		"</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, err := io.WriteString(w, body)
	return err
}
