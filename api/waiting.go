package api

import (
	"context"
	"time"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/ratelimit"
)

// Breakers reads an account's circuit breaker (ratelimit.Breakers).
type Breakers interface {
	State(ctx context.Context, appID string) (ratelimit.BreakerState, error)
}

// Waiting reasons of a live run.
const (
	// waitingReasonUnreachable: the account's circuit breaker is open.
	waitingReasonUnreachable = "wechat_unreachable"
	// waitingReasonQuiet: the account's or the campaign's quiet hours are
	// on.
	waitingReasonQuiet = "quiet_hours"
)

// waitingView says that a live run's sends wait, why, since when and (for
// quiet hours) until when. When a run waits for both, the reason is
// wechat_unreachable: WeChat must answer again, and the quiet hours end,
// before it sends; the breaker's state is the one an operator can act on.
type waitingView struct {
	Reason string     `json:"reason"`
	Since  time.Time  `json:"since"`
	Until  *time.Time `json:"until,omitempty"`
}

// waiting returns the waiting object of run rec of c while it is live, or
// nil when its sends do not wait (or it cannot tell: the status answer
// does not fail for it): first the account's circuit breaker, then the
// quiet hours.
func (s *Server) waiting(ctx context.Context, c *campaigns.Campaign, rec campaigns.RunRecord) *waitingView {
	if s.cfg.Accounts == nil {
		return nil
	}
	a, err := s.cfg.Accounts.Get(c.Account)
	if err != nil {
		return nil
	}
	if s.cfg.Breakers != nil {
		if st, err := s.cfg.Breakers.State(ctx, a.AppID); err == nil && st.Open {
			return &waitingView{Reason: waitingReasonUnreachable, Since: st.Since.UTC()}
		}
	}
	if since, until, ok := quietWait(a, c, rec, s.cfg.Now()); ok {
		until = until.UTC()
		return &waitingView{Reason: waitingReasonQuiet, Since: since.UTC(), Until: &until}
	}
	return nil
}
