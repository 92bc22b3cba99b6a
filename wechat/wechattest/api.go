package wechattest

import (
	"net/http"
	"strings"
)

// apiID enumerates the WeChat APIs that the fake serves. Per-API state lives
// in arrays indexed by apiID so that the hot path needs no map lookups.
type apiID uint8

const (
	apiStableToken apiID = iota
	apiToken
	apiTemplateSend
	apiCustomSend
	apiBizSend
	apiUserGet
	apiTagGet
	apiQuotaGet
	apiCallbackIP
	apiCount
)

// The API names, equal to the API* constants of package wechat. The fake does
// not import package wechat: it shares nothing with the client it tests.
const (
	nameStableToken  = "stable_token"
	nameToken        = "token"
	nameTemplateSend = "message/template/send"
	nameCustomSend   = "message/custom/send"
	nameBizSend      = "message/subscribe/bizsend"
	nameUserGet      = "user/get"
	nameTagGet       = "user/tag/get"
	nameQuotaGet     = "openapi/quota/get"
	nameCallbackIP   = "getcallbackip"
)

// cgiPrefix is the path prefix of every WeChat API.
const cgiPrefix = "/cgi-bin/"

func (id apiID) name() string {
	switch id {
	case apiStableToken:
		return nameStableToken
	case apiToken:
		return nameToken
	case apiTemplateSend:
		return nameTemplateSend
	case apiCustomSend:
		return nameCustomSend
	case apiBizSend:
		return nameBizSend
	case apiUserGet:
		return nameUserGet
	case apiTagGet:
		return nameTagGet
	case apiQuotaGet:
		return nameQuotaGet
	case apiCallbackIP:
		return nameCallbackIP
	}
	return ""
}

// method is the HTTP method the API requires.
func (id apiID) method() string {
	if id == apiToken || id == apiUserGet || id == apiCallbackIP {
		return http.MethodGet
	}
	return http.MethodPost
}

// isSend reports whether the API delivers a message to a user. Faults are
// injected into these APIs only.
func (id apiID) isSend() bool {
	return id == apiTemplateSend || id == apiCustomSend || id == apiBizSend
}

// apiByName maps an API name such as "message/template/send" to its apiID.
func apiByName(name string) (apiID, bool) {
	for id := apiID(0); id < apiCount; id++ {
		if id.name() == name {
			return id, true
		}
	}
	return 0, false
}

// apiByPath maps a request path such as "/cgi-bin/user/get" to its apiID.
func apiByPath(path string) (apiID, bool) {
	name, ok := strings.CutPrefix(path, cgiPrefix)
	if !ok {
		return 0, false
	}
	return apiByName(name)
}

// apiNames lists every API name in apiID order.
func apiNames() []string {
	names := make([]string, apiCount)
	for id := apiID(0); id < apiCount; id++ {
		names[id] = id.name()
	}
	return names
}
