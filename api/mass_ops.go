package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/wechat"
)

// Operations on an account's mass sends (群发) beside the runs:
//
//   - POST /v1/campaigns/{id}/runs/{run}/mass-delete deletes the sent
//     message of a mass run's batches with mass/delete and records each
//     deletion WeChat accepted beside the batch (the ledger keeps the
//     batch's outcome: it was sent).
//   - GET and PUT /v1/accounts/{account}/mass-speed read and set the
//     account's mass-send speed (mass/speed/get and set).
//
// Every call takes a token of the account's mass bucket (60 calls a
// minute for every mass API together) at high priority, as test sends do.

// massDeleteRequest is the body of a mass delete.
type massDeleteRequest struct {
	// Batches are the batches whose message to delete (MassBatchView's
	// batch keys); none: every batch of the run that WeChat accepted.
	Batches []string `json:"batches"`
	// ArticleIdx is the article to delete, 1 to campaigns.MassArticlesMax
	// (an mpnews's), or 0 for the whole message.
	ArticleIdx int `json:"article_idx"`
}

// massDeleteResult is WeChat's answer for one batch.
type massDeleteResult struct {
	Batch   string `json:"batch"`
	MsgID   int64  `json:"msg_id"`
	OK      bool   `json:"ok"`
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
	// Meaning is the errcode rules' meaning of ErrCode, when they have one.
	Meaning string `json:"meaning,omitempty"`
}

// massDeleteAnswer is the answer of a mass delete.
type massDeleteAnswer struct {
	Campaign   string             `json:"campaign"`
	Run        int                `json:"run"`
	ArticleIdx int                `json:"article_idx"`
	Results    []massDeleteResult `json:"results"`
	// OK is true when WeChat deleted every batch's message.
	OK bool `json:"ok"`
}

// massDeleteRun answers POST /v1/campaigns/{id}/runs/{run}/mass-delete.
func (s *Server) massDeleteRun(w http.ResponseWriter, r *http.Request) *Error {
	c, run, e := s.runParams(r)
	if e != nil {
		return e
	}
	var req massDeleteRequest
	if r.ContentLength != 0 {
		if e := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); e != nil {
			return e
		}
	}
	ctx := r.Context()
	if c.Kind != campaigns.KindMass {
		e := apiError(http.StatusConflict, CodeInvalidState, "kind",
			"campaign %s is a %s campaign: only a mass campaign's messages can be deleted (mass/delete)", c.ID, c.Kind)
		e.State = string(c.State)
		return e
	}
	if _, err := s.cfg.Store.Run(ctx, c.ID, run); err != nil {
		return storeError(err)
	}
	if req.ArticleIdx < 0 || req.ArticleIdx > campaigns.MassArticlesMax {
		return apiError(http.StatusUnprocessableEntity, CodeInvalidField, "article_idx",
			"article_idx %d: want 0 (the whole message) or an article of the mpnews, 1 to %d", req.ArticleIdx, campaigns.MassArticlesMax)
	}
	targets, e := s.massDeleteTargets(ctx, c.ID, run, req.Batches)
	if e != nil {
		return e
	}
	if s.cfg.Accounts == nil || s.cfg.WeChat == nil || s.cfg.Limiter == nil {
		return apiError(http.StatusNotImplemented, CodeUnavailable, "", "this server has no WeChat client")
	}
	acct, err := s.cfg.Accounts.Get(c.Account)
	if err != nil {
		return startError(err)
	}
	out := massDeleteAnswer{Campaign: c.ID, Run: run, ArticleIdx: req.ArticleIdx, Results: make([]massDeleteResult, 0, len(targets))}
	ok := 0
	for _, b := range targets {
		res := massDeleteResult{Batch: b.Key, MsgID: b.Submission.MsgID}
		err := s.massWait(ctx, acct)
		if err == nil {
			err = s.cfg.WeChat.MassDelete(ctx, acct.Tokens, b.Submission.MsgID, req.ArticleIdx)
		}
		res.OK, res.ErrCode, res.ErrMsg, res.Meaning = s.callOutcome(err)
		if res.OK {
			// WeChat deleted it: record it even if the client hung up.
			d := campaigns.MassDeletion{At: time.Now(), ArticleIdx: req.ArticleIdx}
			if _, err := s.cfg.Store.RecordMassDeletion(context.WithoutCancel(ctx), c.ID, run, b.Key, d); err != nil {
				return storeError(err)
			}
			ok++
		} else {
			s.log.Warn("mass delete refused", zap.String("campaign_id", c.ID), zap.Int("run", run), zap.String("batch", b.Key),
				zap.Int64("msg_id", b.Submission.MsgID), zap.Int("errcode", res.ErrCode), zap.String("meaning", res.Meaning))
		}
		out.Results = append(out.Results, res)
	}
	noteAuditTargets(ctx, len(targets), ok)
	out.OK = ok == len(targets)
	s.log.Info("mass delete", zap.String("campaign_id", c.ID), zap.Int("run", run), zap.Int("batches", len(targets)),
		zap.Int("deleted", ok), zap.Int("article_idx", req.ArticleIdx))
	writeJSON(w, http.StatusOK, out)
	return nil
}

// massDeleteTargets returns the accepted batches of the run that keys
// name, in that order, or every accepted batch in batch order when keys is
// empty. A key that is not a batch WeChat accepted is refused (422 naming
// batches[i]).
func (s *Server) massDeleteTargets(ctx context.Context, id string, run int, keys []string) ([]campaigns.MassBatchRecord, *Error) {
	recs, err := s.cfg.Store.MassBatches(ctx, id, run)
	if err != nil {
		return nil, storeError(err)
	}
	accepted := make(map[string]campaigns.MassBatchRecord, len(recs))
	var all []campaigns.MassBatchRecord
	for _, b := range recs {
		if b.Submission != nil {
			accepted[b.Key] = b
			all = append(all, b)
		}
	}
	if len(keys) == 0 {
		if len(all) == 0 {
			return nil, apiError(http.StatusUnprocessableEntity, CodeInvalidField, "batches",
				"run %d has no batch WeChat accepted: there is no message to delete", run)
		}
		return all, nil
	}
	runBatches, err := s.cfg.Store.MassRunBatches(ctx, id, run)
	if err != nil {
		return nil, storeError(err)
	}
	out := make([]campaigns.MassBatchRecord, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for i, k := range keys {
		field := "batches[" + strconv.Itoa(i) + "]"
		b, ok := accepted[k]
		switch {
		case seen[k]:
			return nil, apiError(http.StatusUnprocessableEntity, CodeInvalidField, field, "batch %q is listed twice", k)
		case !ok && slices.Contains(runBatches, k):
			return nil, apiError(http.StatusUnprocessableEntity, CodeInvalidField, field,
				"batch %q of run %d has no job WeChat accepted: there is no message to delete", k, run)
		case !ok:
			return nil, apiError(http.StatusUnprocessableEntity, CodeInvalidField, field,
				"run %d has no accepted batch %q: the run's mass view (GET /v1/campaigns/{id}/runs/{run}) lists its batches", run, k)
		}
		seen[k] = true
		out = append(out, b)
	}
	return out, nil
}

// massWait takes a token of acct's mass bucket, at high priority.
func (s *Server) massWait(ctx context.Context, acct *account.Account) error {
	return s.cfg.Limiter.Wait(ctx, acct.BucketKey(campaigns.APIMass), acct.Limit(campaigns.APIMass), ratelimit.PriorityHigh)
}

// callOutcome says what came of a WeChat call made for an operator: ok, or
// WeChat's errcode, errmsg and the errcode rules' meaning, or why the call
// was not made or not answered (errcode 0).
func (s *Server) callOutcome(err error) (ok bool, code int, msg, meaning string) {
	var ae *wechat.APIError
	var re *ratelimit.Error
	var pe *ratelimit.PausedError
	switch {
	case err == nil:
		return true, 0, "ok", ""
	case errors.As(err, &ae):
		_, meaning = s.meaning(ae.Code)
		return false, ae.Code, ae.Msg, meaning
	case errors.As(err, &pe):
		return false, 0, "not sent: the account's use of the API is paused until " + pe.Until.UTC().Format(time.RFC3339), ""
	case errors.As(err, &re):
		return false, 0, "not sent: the account's rate limit is busy; retry after " + re.RetryAfter.Round(time.Second).String(), ""
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false, 0, "not answered: the request ended first", ""
	}
	return false, 0, "not answered: WeChat could not be reached", ""
}

// massSpeedAnswer is an account's mass-send speed.
type massSpeedAnswer struct {
	Account string `json:"account"`
	// Speed is the level, 0 (fastest) to wechat.MassSpeedMax.
	Speed int `json:"speed"`
	// RealSpeed is WeChat's speed in ten thousands of users a minute;
	// absent in the answer of a PUT.
	RealSpeed *int `json:"realspeed,omitempty"`
}

// massSpeedRequest is the body of PUT /v1/accounts/{account}/mass-speed.
type massSpeedRequest struct {
	Speed *int `json:"speed"`
}

// massAccount returns the account of the path, or the error to answer.
func (s *Server) massAccount(r *http.Request) (*account.Account, *Error) {
	if s.cfg.Accounts == nil || s.cfg.WeChat == nil || s.cfg.Limiter == nil {
		return nil, apiError(http.StatusNotImplemented, CodeUnavailable, "", "this server has no WeChat client")
	}
	acct, err := s.cfg.Accounts.Get(r.PathValue("account"))
	if err != nil {
		return nil, apiError(http.StatusNotFound, CodeNotFound, "account", "no account %q", r.PathValue("account"))
	}
	return acct, nil
}

// massCallError is the answer to a mass speed call that failed: 409
// awaiting_confirmation for 89504/89505 (a send to all waits for the
// admin), 502 wechat_error with the errcode and its meaning for other
// errcodes and for no answer, 503 when the mass bucket gave no token.
func (s *Server) massCallError(api string, err error) *Error {
	var ae *wechat.APIError
	var re *ratelimit.Error
	var pe *ratelimit.PausedError
	switch {
	case errors.As(err, &ae) && (ae.Code == 89504 || ae.Code == 89505):
		e := apiError(http.StatusConflict, CodeAwaitingConfirmation, "",
			"%s: WeChat refuses while a send to all waits for the admin's confirmation in the WeChat app (errcode %d): "+
				"confirm or reject it, or wait until it lapses (30 minutes after it was sent), then try again", api, ae.Code)
		e.ErrCode = ae.Code
		return e
	case errors.As(err, &ae):
		e := apiError(http.StatusBadGateway, CodeWeChat, "", "%s: %s", api, ae.Error())
		e.ErrCode = ae.Code
		_, e.Meaning = s.meaning(ae.Code)
		return e
	case errors.As(err, &pe):
		return apiError(http.StatusServiceUnavailable, CodeUnavailable, "",
			"%s: the account's mass API is paused until %s", api, pe.Until.UTC().Format(time.RFC3339))
	case errors.As(err, &re):
		return apiError(http.StatusServiceUnavailable, CodeUnavailable, "",
			"%s: the account's mass rate limit (60 calls a minute) is busy; retry after %s", api, re.RetryAfter.Round(time.Second))
	}
	return apiError(http.StatusBadGateway, CodeWeChat, "", "%s: WeChat could not be reached", api)
}

// getMassSpeed answers GET /v1/accounts/{account}/mass-speed.
func (s *Server) getMassSpeed(w http.ResponseWriter, r *http.Request) *Error {
	acct, e := s.massAccount(r)
	if e != nil {
		return e
	}
	ctx := r.Context()
	err := s.massWait(ctx, acct)
	var sp wechat.MassSpeed
	if err == nil {
		sp, err = s.cfg.WeChat.MassSpeedGet(ctx, acct.Tokens)
	}
	if err != nil {
		return s.massCallError("mass/speed/get", err)
	}
	writeJSON(w, http.StatusOK, massSpeedAnswer{Account: acct.ID, Speed: sp.Speed, RealSpeed: &sp.RealSpeed})
	return nil
}

// setMassSpeed answers PUT /v1/accounts/{account}/mass-speed: the speed is
// checked (0 to wechat.MassSpeedMax) before any call.
func (s *Server) setMassSpeed(w http.ResponseWriter, r *http.Request) *Error {
	var req massSpeedRequest
	if e := decodeJSON(w, r, s.cfg.MaxBodyBytes, &req); e != nil {
		return e
	}
	switch {
	case req.Speed == nil:
		return apiError(http.StatusUnprocessableEntity, CodeInvalidField, "speed", "speed is required: 0 (fastest) to %d", wechat.MassSpeedMax)
	case *req.Speed < 0 || *req.Speed > wechat.MassSpeedMax:
		return apiError(http.StatusUnprocessableEntity, CodeInvalidField, "speed",
			"speed %d: want 0 (fastest, 800,000 users a minute) to %d (slowest, 100,000)", *req.Speed, wechat.MassSpeedMax)
	}
	acct, e := s.massAccount(r)
	if e != nil {
		return e
	}
	ctx := r.Context()
	noteAuditAccount(ctx, acct.ID)
	noteAuditCounts(ctx, auditCount{"speed", *req.Speed})
	err := s.massWait(ctx, acct)
	if err == nil {
		err = s.cfg.WeChat.MassSpeedSet(ctx, acct.Tokens, *req.Speed)
	}
	if err != nil {
		return s.massCallError("mass/speed/set", err)
	}
	s.log.Info("mass speed set", zap.String("account", acct.ID), zap.Int("speed", *req.Speed))
	writeJSON(w, http.StatusOK, massSpeedAnswer{Account: acct.ID, Speed: *req.Speed})
	return nil
}
