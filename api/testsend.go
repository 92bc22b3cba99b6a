package api

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/logfield"
	"github.com/wxmass/wxmass/ratelimit"
)

// Test sends: POST /v1/campaigns/{id}/test sends the campaign's message to
// a few test targets, outside any run: no run, outcome, counter or quota
// counter of the campaign changes. Each call takes a token of the
// account's bucket for its API, at high priority, so that tests and runs
// together stay inside WeChat's limits.

// testRequest is the body of a test send.
type testRequest struct {
	// To are the test openids.
	To []string `json:"to"`
	// WXNames are WeChat IDs (微信号), for mass previews only.
	WXNames []string `json:"wxnames"`
	// As is the audience recipient whose variables the message is
	// rendered with (default: the first one with variables).
	As string `json:"as"`
}

// testResult is WeChat's answer for one target.
type testResult struct {
	To      string `json:"to,omitempty"`
	WXName  string `json:"wxname,omitempty"`
	OK      bool   `json:"ok"`
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
	// Meaning is the retry policy's meaning of ErrCode, when it has one.
	Meaning string `json:"meaning,omitempty"`
}

// testAnswer is the answer of a test send.
type testAnswer struct {
	Campaign string `json:"campaign"`
	// As is the recipient whose variables were used, if any.
	As      string       `json:"as,omitempty"`
	Results []testResult `json:"results"`
	// OK is true when every target's send was accepted; the campaign then
	// records the test (TestedAt, and the digest of its message).
	OK       bool       `json:"ok"`
	TestedAt *time.Time `json:"tested_at,omitempty"`
}

// testStates are the states in which a campaign takes test sends: not
// while a run sends (running) or winds down (stopping), whose sends share
// the account's rate and whose report an operator reads then.
var testStates = []campaigns.State{campaigns.StateDraft, campaigns.StateScheduled, campaigns.StateCompleted,
	campaigns.StatePaused, campaigns.StateFailed, campaigns.StateCancelled}

// testSend answers POST /v1/campaigns/{id}/test.
func (s *Server) testSend(w http.ResponseWriter, r *http.Request) *Error {
	var req testRequest
	if e := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); e != nil {
		return e
	}
	if s.cfg.Accounts == nil || s.cfg.WeChat == nil || s.cfg.Limiter == nil {
		return apiError(http.StatusNotImplemented, CodeUnavailable, "", "this server has no WeChat client")
	}
	ctx := r.Context()
	c, err := s.cfg.Store.Get(ctx, r.PathValue("id"))
	if err != nil {
		return storeError(err)
	}
	if !stateIn(c.State, testStates) {
		e := apiError(http.StatusConflict, CodeInvalidState, "state",
			"cannot send a test of a campaign that is %s: pause it, or wait until its run ends", c.State)
		e.State = string(c.State)
		return e
	}
	if e := checkTestTargets(c, &req); e != nil {
		return e
	}
	msg, err := c.Compile()
	if err != nil {
		return storeError(err)
	}
	acct, err := s.cfg.Accounts.Get(c.Account)
	if err != nil {
		return startError(err)
	}
	// Stored files go to WeChat through the same cache as the run's
	// sends: uploaded once per account, then reused by the run.
	if !msg.MediaResolved() {
		if s.cfg.MediaCache == nil {
			return apiError(http.StatusNotImplemented, CodeUnavailable, "", "this server has no media cache to upload the message's files")
		}
		if msg, _, err = s.cfg.MediaCache.ResolveMessage(ctx, acct, msg); err != nil {
			return apiError(http.StatusBadGateway, CodeWeChat, string(c.Kind), "upload the message's files: %v", err)
		}
	}
	as, vars, err := s.cfg.Store.TestVariables(ctx, c, msg, req.As)
	switch {
	case errors.Is(err, campaigns.ErrTestAs):
		return apiError(http.StatusUnprocessableEntity, CodeInvalidField, "as", "%s", strings.TrimPrefix(err.Error(), "campaigns: test recipient: "))
	case errors.Is(err, campaigns.ErrEmptyAudience):
		return apiError(http.StatusConflict, CodeNoAudience, "audience",
			"%s: the test renders the message with an audience recipient's variables (PUT /v1/campaigns/{id}/audience)", strings.TrimPrefix(err.Error(), "campaigns: "))
	case err != nil:
		return storeError(err)
	}
	// Render every target's message before any call: a message that does
	// not render sends nothing.
	sends := make([]func(context.Context) error, 0, len(req.To)+len(req.WXNames))
	out := testAnswer{Campaign: c.ID, As: as, Results: make([]testResult, 0, cap(sends))}
	for i, to := range req.To {
		send, err := s.testCall(msg, acct, to, "", vars)
		if err != nil {
			return renderError(err, "to["+strconv.Itoa(i)+"]")
		}
		sends = append(sends, send)
		out.Results = append(out.Results, testResult{To: to})
	}
	for i, name := range req.WXNames {
		send, err := s.testCall(msg, acct, "", name, vars)
		if err != nil {
			return renderError(err, "wxnames["+strconv.Itoa(i)+"]")
		}
		sends = append(sends, send)
		out.Results = append(out.Results, testResult{WXName: name})
	}
	api := msg.Kind().API()
	ok := 0
	for i, send := range sends {
		res := &out.Results[i]
		err := s.cfg.Limiter.Wait(ctx, acct.BucketKey(api), acct.Limit(api), ratelimit.PriorityHigh)
		if err == nil {
			err = send(ctx)
		}
		s.testResult(res, err)
		if res.OK {
			ok++
			continue
		}
		target := res.WXName
		if res.To != "" {
			target = logfield.MaskOpenID(res.To)
		}
		s.log.Warn("test send refused", zap.String("campaign_id", c.ID), zap.String("target", target), zap.Int("errcode", res.ErrCode),
			zap.String("meaning", res.Meaning))
	}
	noteAuditTargets(ctx, len(sends), ok)
	out.OK = ok == len(sends)
	if out.OK {
		// The digest of the message that was sent: an update made in the
		// meantime is not covered by this test.
		at, err := s.cfg.Store.RecordTest(context.WithoutCancel(ctx), c.ID, c.MessageDigest())
		if err != nil {
			return storeError(err)
		}
		out.TestedAt = &at
	}
	s.log.Info("test send", zap.String("campaign_id", c.ID), zap.Int("targets", len(sends)), zap.Int("ok", ok))
	writeJSON(w, http.StatusOK, out)
	return nil
}

// stateIn reports whether st is one of states.
func stateIn(st campaigns.State, states []campaigns.State) bool {
	for _, x := range states {
		if x == st {
			return true
		}
	}
	return false
}

// checkTestTargets checks the targets of a test of c: 1 to
// campaigns.TestTargetsMax in all, valid openids, WeChat IDs only for a
// mass campaign, none twice.
func checkTestTargets(c *campaigns.Campaign, req *testRequest) *Error {
	n := len(req.To) + len(req.WXNames)
	switch {
	case len(req.WXNames) > 0 && c.Kind != campaigns.KindMass:
		return apiError(http.StatusUnprocessableEntity, CodeInvalidField, "wxnames",
			"WeChat IDs take only a mass campaign's previews (mass/preview); a %s campaign's test goes to openids (to)", c.Kind)
	case n < campaigns.TestTargetsMin:
		return apiError(http.StatusUnprocessableEntity, CodeInvalidField, "to", "at least one test target is required: to (openids) or, for mass, wxnames")
	case n > campaigns.TestTargetsMax:
		field := "to"
		if len(req.WXNames) > 0 {
			field = "wxnames"
		}
		return apiError(http.StatusUnprocessableEntity, CodeInvalidField, field, "%d test targets, at most %d", n, campaigns.TestTargetsMax)
	}
	seen := make(map[string]bool, n)
	for i, o := range req.To {
		field := "to[" + strconv.Itoa(i) + "]"
		switch {
		case !campaigns.ValidOpenID(o):
			return apiError(http.StatusUnprocessableEntity, CodeInvalidField, field, "%q is not an openid: 20 to 64 letters, digits, _ and -", o)
		case seen["o:"+o]:
			return apiError(http.StatusUnprocessableEntity, CodeInvalidField, field, "%s is listed twice", o)
		}
		seen["o:"+o] = true
	}
	for i, name := range req.WXNames {
		field := "wxnames[" + strconv.Itoa(i) + "]"
		switch {
		case !validWXName(name):
			return apiError(http.StatusUnprocessableEntity, CodeInvalidField, field,
				"%q is not a WeChat ID: 6 to 20 letters, digits, _ and -, beginning with a letter", name)
		case seen["w:"+name]:
			return apiError(http.StatusUnprocessableEntity, CodeInvalidField, field, "%s is listed twice", name)
		}
		seen["w:"+name] = true
	}
	return nil
}

// validWXName reports whether s has the form of a WeChat ID (微信号): 6 to
// 20 ASCII letters, digits, '_' and '-', beginning with a letter.
func validWXName(s string) bool {
	if len(s) < 6 || len(s) > 20 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if i == 0 && !letter || !letter && !(c >= '0' && c <= '9') && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// testCall renders msg for one target, an openid (to) or, for mass, a
// WeChat ID (wxname), and returns the call that sends it.
func (s *Server) testCall(msg *campaigns.Message, acct *account.Account, to, wxname string, vars map[string]string) (func(context.Context) error, error) {
	wc, ts := s.cfg.WeChat, acct.Tokens
	switch msg.Kind() {
	case campaigns.KindTemplate:
		m, err := msg.RenderTemplate(to, vars, campaigns.TestClientMsgID())
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) error { _, err := wc.SendTemplate(ctx, ts, m); return err }, nil
	case campaigns.KindCustom:
		m, err := msg.RenderCustom(to, vars)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) error { return wc.SendCustom(ctx, ts, m) }, nil
	case campaigns.KindSubscribe:
		m, err := msg.RenderSubscribe(to, vars)
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) error { return wc.SendSubscribe(ctx, ts, m) }, nil
	case campaigns.KindMass:
		// A preview has no clientmsgid: WeChat dedupes only mass jobs.
		m, err := msg.RenderMass("")
		if err != nil {
			return nil, err
		}
		return func(ctx context.Context) error { return wc.MassPreview(ctx, ts, to, wxname, m) }, nil
	}
	return nil, errors.New("api: test send of an unknown kind " + string(msg.Kind()))
}

// renderError is the answer to a message that does not render for a test
// target.
func renderError(err error, field string) *Error {
	var mv *campaigns.MissingVariableError
	if errors.As(err, &mv) {
		return apiError(http.StatusUnprocessableEntity, CodeInvalidField, "as", "%s", strings.TrimPrefix(mv.Error(), "campaigns: "))
	}
	return apiError(http.StatusInternalServerError, CodeInternal, field, "render the test message: %s", err.Error())
}

// testResult fills res from the answer to its call: WeChat's errcode and
// errmsg, the policy's meaning, or what kept the call from being made.
func (s *Server) testResult(res *testResult, err error) {
	res.OK, res.ErrCode, res.ErrMsg, res.Meaning = s.callOutcome(err)
}
