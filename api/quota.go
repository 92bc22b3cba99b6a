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
	AppID   string                      `json:"appid"`
	APIs    map[string]wechat.QuotaInfo `json:"apis"`
}

// accountView is an account as GET /v1/accounts shows it: never a secret.
type accountView struct {
	ID      string               `json:"id"`
	AppID   string               `json:"appid"`
	Limits  map[string]limitView `json:"limits"`
	Default bool                 `json:"default"`
	// Protection is the account's audience protection and the size of
	// its suppression list (protection.go).
	Protection accountProtectionView `json:"protection"`
	// TimeZone is the account's time zone (the accounts file's
	// time_zone).
	TimeZone string `json:"time_zone"`
	// Circuit is the account's circuit breaker, absent when the server
	// reads none; Paused its paused buckets, absent when none is paused
	// (or the server has no rate limiter) (account_state.go).
	Circuit *circuitView `json:"circuit,omitempty"`
	Paused  []pauseView  `json:"paused,omitempty"`
}

type limitView struct {
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
}

// listAccounts lists the accounts this server sends for, with the rate
// limits and the protection in force, the time zone, the circuit breaker
// and the paused buckets.
func (s *Server) listAccounts(w http.ResponseWriter, r *http.Request) *Error {
	if s.cfg.Accounts == nil {
		return apiError(http.StatusNotImplemented, CodeUnavailable, "", "this server has no accounts")
	}
	out := []accountView{}
	for _, a := range s.cfg.Accounts.All() {
		v := accountView{ID: a.ID, AppID: a.AppID, Default: a.ID == s.cfg.Accounts.Default(), Limits: map[string]limitView{},
			TimeZone: a.TimeZone().String()}
		for _, api := range []string{wechat.APITemplateSend, wechat.APICustomSend, wechat.APIBizSend} {
			l := a.Limit(api)
			v.Limits[api] = limitView{Rate: l.Rate, Burst: l.Burst}
		}
		var err error
		if v.Protection, err = s.accountProtection(r.Context(), a); err != nil {
			return storeError(err)
		}
		if v.Circuit, err = s.accountCircuit(r.Context(), a); err != nil {
			return storeError(err)
		}
		if v.Paused, err = s.accountPauses(r.Context(), a); err != nil {
			return storeError(err)
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": out})
	return nil
}

func (s *Server) getQuota(w http.ResponseWriter, r *http.Request) *Error {
	if s.cfg.Accounts == nil || s.cfg.WeChat == nil {
		return apiError(http.StatusNotImplemented, CodeUnavailable, "", "this server has no WeChat client")
	}
	acct, err := s.cfg.Accounts.Get(r.PathValue("account"))
	if err != nil {
		return apiError(http.StatusNotFound, CodeNotFound, "account", "no account %q", r.PathValue("account"))
	}
	out := quotaAnswer{Account: acct.ID, AppID: acct.AppID, APIs: map[string]wechat.QuotaInfo{}}
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
