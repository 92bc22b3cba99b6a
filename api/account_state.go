package api

import (
	"context"
	"time"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat"
)

// What GET /v1/accounts says of an account's sending now: its circuit
// breaker (Config.Breakers) and the pauses of its rate-limit buckets
// (Config.Limiter): a 45009 quota pause until the daily reset, or an
// outage pause while the breaker is open.

// circuitView is an account's circuit breaker.
type circuitView struct {
	// Open is true while WeChat is unreachable for the account: its sends
	// wait.
	Open bool `json:"open"`
	// Since is when it opened, absent when closed.
	Since *time.Time `json:"since,omitempty"`
	// Probes counts the failed probes since it opened.
	Probes int `json:"probes"`
}

// pauseView is a bucket of an account that grants nothing until Until.
type pauseView struct {
	// API is the send API (message/template/send, ..., message/mass for
	// every mass API).
	API string `json:"api"`
	// Reason is quota (WeChat's daily quota ran out: 45009, 45028) or
	// outage (the circuit breaker is open).
	Reason string    `json:"reason"`
	Until  time.Time `json:"until"`
}

// pausableAPIs are the buckets whose pauses GET /v1/accounts shows.
var pausableAPIs = []string{wechat.APITemplateSend, wechat.APICustomSend, wechat.APIBizSend, account.APIMass}

// accountCircuit returns a's circuit breaker, nil when the server reads
// none.
func (s *Server) accountCircuit(ctx context.Context, a *account.Account) (*circuitView, error) {
	if s.cfg.Breakers == nil {
		return nil, nil
	}
	st, err := s.cfg.Breakers.State(ctx, a.AppID)
	if err != nil {
		return nil, err
	}
	v := &circuitView{Open: st.Open, Probes: st.Probes}
	if st.Open && !st.Since.IsZero() {
		since := st.Since.UTC()
		v.Since = &since
	}
	return v, nil
}

// accountPauses returns the paused buckets of a, none when the server
// has no limiter.
func (s *Server) accountPauses(ctx context.Context, a *account.Account) ([]pauseView, error) {
	if s.cfg.Limiter == nil {
		return nil, nil
	}
	var out []pauseView
	for _, api := range pausableAPIs {
		st, err := s.cfg.Limiter.State(ctx, a.BucketKey(api))
		if err != nil {
			return nil, err
		}
		switch {
		case st.PausedUntil.After(st.At):
			out = append(out, pauseView{API: api, Reason: string(ratelimit.PauseQuota), Until: st.PausedUntil.UTC()})
		case st.OutageUntil.After(st.At):
			out = append(out, pauseView{API: api, Reason: string(ratelimit.PauseOutage), Until: st.OutageUntil.UTC()})
		}
	}
	return out, nil
}
