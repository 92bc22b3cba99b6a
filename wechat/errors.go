package wechat

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel errors that *APIError values match with errors.Is. They group
// errcodes that callers treat alike.
var (
	// ErrTokenInvalid matches errcodes 40001, 40014 and 42001: the
	// access_token passed to the API is invalid, malformed or expired.
	ErrTokenInvalid = errors.New("wechat: access_token invalid")
	// ErrDailyQuota matches errcode 45009: the account's daily quota for the
	// API is used up.
	ErrDailyQuota = errors.New("wechat: daily api quota reached")
	// ErrMinuteQuota matches errcode 45011: calls are too frequent; retry
	// after the next minute boundary.
	ErrMinuteQuota = errors.New("wechat: api minute quota reached")
	// ErrOutOfWindow matches errcode 45015: the customer-service interaction
	// window with the user is closed.
	ErrOutOfWindow = errors.New("wechat: response out of time limit")
	// ErrSystemBusy matches errcode -1: WeChat is busy; retry later.
	ErrSystemBusy = errors.New("wechat: system busy")
	// ErrTokenConfig matches the errcodes of the token APIs that mean the
	// account's configuration is wrong (appid, appsecret, IP whitelist,
	// frozen secret, admin confirmation). Retrying does not help.
	ErrTokenConfig = errors.New("wechat: token configuration error")
)

// APIError is an answer from WeChat whose errcode is not zero.
//
// Msg is errmsg without its " rid: ..." suffix, which is kept in RID so that
// the request can be looked up with /cgi-bin/openapi/rid/get. API names the
// endpoint that answered, such as "message/template/send".
type APIError struct {
	Code int
	Msg  string
	API  string
	RID  string
}

// Error returns a message naming the API, the errcode, its meaning where known
// and WeChat's errmsg. It never contains the request URL or any credential.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("wechat: ")
	b.WriteString(e.API)
	b.WriteString(": errcode ")
	b.WriteString(strconv.Itoa(e.Code))
	if m := tokenConfigMeaning(e.Code); m != "" && isTokenAPI(e.API) {
		b.WriteString(" (")
		b.WriteString(m)
		b.WriteString(")")
	}
	if e.Msg != "" {
		b.WriteString(": ")
		b.WriteString(e.Msg)
	}
	if e.RID != "" {
		b.WriteString(" (rid ")
		b.WriteString(e.RID)
		b.WriteString(")")
	}
	return b.String()
}

// Is reports whether the errcode belongs to the family of target, one of the
// Err* sentinels of this package.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrTokenInvalid:
		// On the token APIs themselves 40001 means a wrong appsecret.
		return IsTokenInvalidCode(e.Code) && !isTokenAPI(e.API)
	case ErrDailyQuota:
		return e.Code == 45009
	case ErrMinuteQuota:
		return e.Code == 45011
	case ErrOutOfWindow:
		return e.Code == 45015
	case ErrSystemBusy:
		return e.Code == -1
	case ErrTokenConfig:
		return isTokenAPI(e.API) && tokenConfigMeaning(e.Code) != ""
	case ErrMassDuplicate:
		return e.Code == 45065
	}
	return false
}

// IsTokenInvalidCode reports whether code says that the access_token used for
// a call is no longer good (40001, 40014, 42001).
func IsTokenInvalidCode(code int) bool {
	return code == 40001 || code == 40014 || code == 42001
}

// tokenConfigMeaning explains the errcodes of the token APIs that are
// configuration errors. It returns "" for other codes.
func tokenConfigMeaning(code int) string {
	switch code {
	case 40001:
		return "appsecret wrong"
	case 40002:
		return "grant_type wrong"
	case 40013:
		return "appid invalid"
	case 40125:
		return "appsecret invalid"
	case 40164, 61004:
		return "caller IP not in the account's API IP whitelist"
	case 40243:
		return "appsecret frozen"
	case 41002:
		return "appid missing"
	case 41004:
		return "appsecret missing"
	case 89501, 89502, 89503, 89504, 89505:
		return "call from this IP waits for the account admin's confirmation"
	case 89506:
		return "the account admin refused this IP; retry after 24 hours"
	case 89507:
		return "the account admin refused this IP; retry after 1 hour"
	}
	return ""
}

func isTokenAPI(api string) bool { return api == APIStableToken || api == APIToken }

// parseErrmsg splits WeChat's errmsg into the message and the request id it
// carries as a " rid: ..." suffix (older answers use " hint: [...]").
func parseErrmsg(errmsg string) (msg, rid string) {
	if i := strings.LastIndex(errmsg, " rid: "); i >= 0 {
		return strings.TrimSpace(errmsg[:i]), strings.TrimSpace(errmsg[i+len(" rid: "):])
	}
	if i := strings.LastIndex(errmsg, " hint: ["); i >= 0 && strings.HasSuffix(errmsg, "]") {
		return strings.TrimSpace(errmsg[:i]), errmsg[i+len(" hint: [") : len(errmsg)-1]
	}
	return strings.TrimSpace(errmsg), ""
}

// TransportError is a call that got no errcode answer from WeChat: the
// connection failed, timed out or was dropped, the HTTP status was not 200,
// or the body was not the JSON the API answers with.
//
// Sent tells whether the request may have reached WeChat. When Sent is false
// the request was certainly not processed (the connection could not be made
// or the request was not written whole), so any call may be retried at once,
// even one without a dedupe key. When Sent is true the outcome is ambiguous:
// only calls with a dedupe key (template client_msg_id) are safe to repeat.
type TransportError struct {
	API        string
	Host       string
	Sent       bool
	StatusCode int // the HTTP status when it was not 200; 0 otherwise
	Err        error
}

// Error describes the failure without the request URL, whose query string
// holds the access_token.
func (e *TransportError) Error() string {
	var b strings.Builder
	b.WriteString("wechat: ")
	b.WriteString(e.API)
	b.WriteString(": ")
	if e.Sent {
		b.WriteString("ambiguous transport failure")
	} else {
		b.WriteString("request not sent")
	}
	if e.Host != "" {
		b.WriteString(" to ")
		b.WriteString(e.Host)
	}
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": http status %d", e.StatusCode)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying network or decoding error.
func (e *TransportError) Unwrap() error { return e.Err }
