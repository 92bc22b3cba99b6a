package api

import (
	"errors"
	"net/http"

	"github.com/wxmass/wxmass/wechat"
)

// quotaAnswer is an account's quotas, per send API, from WeChat's
// quota/get.
type quotaAnswer struct {
	Account string                      `json:"account"`
	APIs    map[string]wechat.QuotaInfo `json:"apis"`
}

func (s *Server) getQuota(w http.ResponseWriter, r *http.Request) *Error {
	if s.cfg.Accounts == nil || s.cfg.WeChat == nil {
		return apiError(http.StatusNotImplemented, CodeUnavailable, "", "this server has no WeChat client")
	}
	acct, err := s.cfg.Accounts.Get(r.PathValue("appid"))
	if err != nil {
		return apiError(http.StatusNotFound, CodeNotFound, "appid", "no such account")
	}
	out := quotaAnswer{Account: acct.AppID, APIs: map[string]wechat.QuotaInfo{}}
	for _, api := range []string{wechat.APITemplateSend, wechat.APICustomSend, wechat.APIBizSend} {
		q, err := s.cfg.WeChat.QuotaGet(r.Context(), acct.Tokens, "/cgi-bin/"+api)
		var ae *wechat.APIError
		switch {
		case errors.As(err, &ae):
			// WeChat's answer, which names no secret.
			return apiError(http.StatusBadGateway, CodeWeChat, "", "quota/get for %s: %s", api, ae.Error())
		case err != nil:
			return apiError(http.StatusBadGateway, CodeWeChat, "", "quota/get for %s: WeChat could not be reached", api)
		}
		out.APIs[api] = q
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
