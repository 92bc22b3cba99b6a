package worker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat"
)

// Defaults of Config's mass settings.
const (
	MassPollAfterDefault    = 10 * time.Minute
	MassPollIntervalDefault = 5 * time.Minute
)

// HandleMassSend is the asynq handler of a mass run's batches. A batch is
// one job at WeChat: mass/send of up to 10,000 openids, or mass/sendall
// to all followers or a tag. Its path:
//
//  1. The batch's record (one round trip): a result already there gives
//     the batch its outcome; a job already accepted is awaited (3).
//  2. The account's mass rate token (60 a minute over every mass API),
//     the attempt (campaigns.Store.BeginAttempt, which ends a batch
//     unknown if an answer was lost and the 23-hour clientmsgid window
//     passed), and the call with the batch's clientmsgid. An answer
//     45065 (the clientmsgid has a job: an earlier try was accepted and
//     its answer lost) is that job. The accepted job is recorded
//     (campaigns.Store.AcceptMass) with the mass messages it counts for
//     its users.
//  3. The task comes back, without using a retry, until the job's result
//     is in: a MASSSENDJOBFINISH push records it through the callback
//     receiver; without one, mass/get is asked MassPollAfter after the
//     submission and every MassPollInterval after that. The result is the
//     batch's outcome: sent (with WeChat's counts, or none from mass/get),
//     or failed (class mass: not confirmed by the admin, content review).
func (w *Worker) HandleMassSend(ctx context.Context, t *asynq.Task) error {
	p, v, st, acct, err := w.sendTask(ctx, t)
	if err != nil {
		return err
	}
	id, run, key := p.Campaign, p.Run.Run, p.OpenID
	b, err := w.store.MassBatch(ctx, id, run, key)
	if err != nil {
		return err
	}
	switch {
	case b.Result != nil:
		return w.finishMass(ctx, v, run, key, *b.Result)
	case b.Submission != nil:
		return w.awaitMass(ctx, v, acct, run, key, *b.Submission)
	}
	bucket := acct.BucketKey(account.APIMass)
	tokened := false
	switch campaigns.State(st.state) {
	case campaigns.StatePaused:
		return &retry.Wait{After: w.cfg.PauseRecheck, Reason: "run paused"}
	case campaigns.StateCompleted:
		return nil
	case campaigns.StateRunning:
		if !v.started.IsZero() && w.cfg.NowFunc().After(v.started.Add(w.cfg.RunDeadline)) {
			w.stop(ctx, v, acct.ID, "run deadline passed before every batch could be sent")
			break
		}
		if err := w.limiter.WaitWithin(ctx, bucket, acct.Limit(account.APIMass), ratelimit.PriorityLow, w.cfg.BulkRateWait); err != nil {
			return err
		}
		tokened = true
	}
	bg, err := w.store.BeginAttempt(ctx, v.c, run, key, false, !tokened)
	if err != nil {
		return err
	}
	if done, err := w.afterBegin(v, run, bg); done {
		return err
	}

	cmid := campaigns.MassClientMsgID(id, bg.ClientMsgRun, key)
	openids, err := w.massRecipients(ctx, v, key)
	if err != nil {
		return w.later(ctx, v, run, key, false, err)
	}
	if key != campaigns.MassBatchAll && key != campaigns.MassBatchTag && len(openids) < campaigns.MassBatchMin {
		return w.record(ctx, v, run, key, campaigns.Outcome{Status: campaigns.OutcomeFailed, Class: retry.ClassMessage.String(),
			Detail: fmt.Sprintf("a batch of %d openid: mass/send needs at least %d", len(openids), campaigns.MassBatchMin)})
	}
	start := time.Now()
	res, sendErr := w.sendMass(ctx, v, acct, key, openids, cmid)
	w.cfg.Metrics.SendDuration(acct.ID, string(v.c.Kind), time.Since(start))
	var dup *wechat.MassDuplicateError
	if errors.As(sendErr, &dup) {
		res, sendErr = wechat.MassResult{MsgID: dup.MsgID, MsgDataID: dup.MsgDataID}, nil
	}
	if sendErr == nil {
		w.breaker.reset(acct.AppID)
		return w.acceptMass(ctx, v, acct, run, key, cmid, res, openids, dup != nil)
	}

	retried, _ := asynq.GetRetryCount(ctx)
	d := w.policy.Decide(sendErr, retried, w.cfg.NowFunc())
	lost := massAnswerLost(sendErr)
	if ctx.Err() == nil {
		outage := outageFailure(d)
		tripped := w.breaker.observe(acct.AppID, outage, w.cfg.BreakerThreshold)
		if outage {
			if open, until := w.outage(ctx, acct, tripped, d.Meaning); open {
				// Parked until WeChat answers; a lost answer is resolved
				// by the clientmsgid when it goes again.
				return w.later(ctx, v, run, key, lost, &ratelimit.PausedError{Key: bucket, Until: until, Reason: ratelimit.PauseOutage})
			}
		}
	}
	if invalidMedia(sendErr, v) {
		// A media_id (material, draft) WeChat does not know any more:
		// upload it again and send again.
		if again := w.mediaRetry(ctx, v, acct, key); again != nil {
			return w.later(ctx, v, run, key, false, again)
		}
	}
	if d.Action == retry.ActionRetry {
		if d.Code == 45011 || d.Code == 45066 {
			// The per-minute limit, or the same clientmsgid too soon
			// after a failed job ("retry after a minute"): come back
			// without using a retry.
			return w.later(ctx, v, run, key, lost, &retry.Wait{After: max(d.Delay, time.Second), Reason: fmt.Sprintf("errcode %d: %s", d.Code, d.Meaning)})
		}
		// Sent again with the same clientmsgid: a job WeChat accepted is
		// answered 45065, never made twice.
		return w.retryOrGiveUp(ctx, v, run, key, d, lost, sendErr)
	}
	// 45028 (no mass quota left) pauses the account's mass bucket.
	return w.decided(ctx, v, acct, bucket, run, key, d, lost, sendErr)
}

// massRecipients returns the openids of a batch to a list (none for all
// or a tag).
func (w *Worker) massRecipients(ctx context.Context, v *runView, key string) ([]string, error) {
	if key == campaigns.MassBatchAll || key == campaigns.MassBatchTag {
		return nil, nil
	}
	b, err := campaigns.ParseMassBatch(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	return w.store.MassRecipients(ctx, v.c.ID, b)
}

// sendMass makes the batch's call.
func (w *Worker) sendMass(ctx context.Context, v *runView, acct *account.Account, key string, openids []string, cmid string) (wechat.MassResult, error) {
	m, err := v.msg.RenderMass(cmid)
	if err != nil {
		return wechat.MassResult{}, err
	}
	switch key {
	case campaigns.MassBatchAll:
		return w.wechat.MassSendAll(ctx, acct.Tokens, wechat.MassFilter{IsToAll: true}, m)
	case campaigns.MassBatchTag:
		return w.wechat.MassSendAll(ctx, acct.Tokens, wechat.MassFilter{TagID: v.c.Audience.TagID}, m)
	}
	return w.wechat.MassSend(ctx, acct.Tokens, openids, m)
}

// massAnswerLost reports whether err leaves open that a mass send call
// reached WeChat while its answer was not read.
func massAnswerLost(err error) bool {
	var te *wechat.TransportError
	return errors.As(err, &te) && te.Sent && strings.HasPrefix(te.API, "message/mass/send")
}

// acceptMass records the batch's accepted job, counts the mass message
// for its users (once, by the try that recorded it) and awaits the result.
func (w *Worker) acceptMass(ctx context.Context, v *runView, acct *account.Account, run int, key, cmid string, res wechat.MassResult, openids []string, dup bool) error {
	now := w.cfg.NowFunc()
	sub := campaigns.MassSubmission{ClientMsgID: cmid, MsgID: res.MsgID, MsgDataID: res.MsgDataID,
		Recipients: int64(len(openids)), Submitted: now, Duplicate: dup}
	if key == campaigns.MassBatchAll && acct.Mass.Protection {
		sub.ConfirmBy = now.Add(campaigns.MassConfirmWindow)
	}
	fresh, stored, err := w.store.AcceptMass(ctx, v.c, run, key, acct.AppID, sub)
	if err != nil {
		// The task's retry calls again: WeChat answers 45065 with this job.
		return err
	}
	log := w.log.With(zap.String("campaign_id", v.c.ID), zap.Int("run", run), zap.String("batch", key), zap.Int64("msg_id", stored.MsgID))
	if fresh {
		// A send to a tag counts for nobody: wxmass does not know its
		// members without fetching them.
		if key != campaigns.MassBatchTag {
			if err := w.store.CountMassReceived(ctx, acct.AppID, acct.Mass.Subscription(), openids, now); err != nil {
				log.Warn("count the batch's mass messages", zap.Error(err))
			}
		}
		log.Info("mass batch accepted", zap.Bool("duplicate", dup), zap.Int("recipients", len(openids)), zap.Bool("awaits_confirmation", !stored.ConfirmBy.IsZero()))
	}
	return w.awaitMass(ctx, v, acct, run, key, stored)
}

// awaitMass asks mass/get for an accepted job's status when its push is
// late, and comes back until the result is in.
func (w *Worker) awaitMass(ctx context.Context, v *runView, acct *account.Account, run int, key string, sub campaigns.MassSubmission) error {
	if res, ok, err := w.store.EarlyMassResult(ctx, acct.AppID, sub.MsgID); err != nil {
		return err
	} else if ok {
		return w.finishMass(ctx, v, run, key, res)
	}
	now := w.cfg.NowFunc()
	if since := now.Sub(sub.Submitted); since < w.cfg.MassPollAfter {
		return &retry.Wait{After: w.cfg.MassPollAfter - since, Reason: "awaiting the mass job's result"}
	}
	if !v.started.IsZero() && now.After(v.started.Add(w.cfg.RunDeadline)) {
		return w.finishMass(ctx, v, run, key, campaigns.MassResult{Status: campaigns.MassUnknown, Via: campaigns.MassViaPoll, At: now,
			Meaning: "accepted by WeChat, but no result came by the run's deadline: WeChat may have sent it"})
	}
	bucket := acct.BucketKey(account.APIMass)
	if err := w.limiter.WaitWithin(ctx, bucket, acct.Limit(account.APIMass), ratelimit.PriorityLow, w.cfg.BulkRateWait); err != nil {
		return err
	}
	status, err := w.wechat.MassGet(ctx, acct.Tokens, sub.MsgID)
	if err != nil {
		w.log.Debug("mass/get", zap.String("campaign_id", v.c.ID), zap.Int("run", run), zap.String("batch", key), zap.Error(err))
		return &retry.Wait{After: w.cfg.MassPollInterval, Reason: "mass/get failed: " + firstLine(err.Error())}
	}
	res := campaigns.MassResult{WeChatStatus: status, Via: campaigns.MassViaPoll, At: now}
	switch status {
	case wechat.MassStatusSuccess:
		res.Status = campaigns.MassSent
	case wechat.MassStatusDelete:
		res.Status = campaigns.MassDeleted
	case wechat.MassStatusFail:
		res.Status = campaigns.MassFailed
		if !sub.ConfirmBy.IsZero() {
			res.Meaning = "not confirmed by an admin within 30 minutes (API mass-send protection), or refused"
		}
	default:
		return &retry.Wait{After: w.cfg.MassPollInterval, Reason: "mass job " + status}
	}
	return w.finishMass(ctx, v, run, key, res)
}

// finishMass gives a batch its outcome from its result.
func (w *Worker) finishMass(ctx context.Context, v *runView, run int, key string, res campaigns.MassResult) error {
	stored, rec, err := w.store.FinishMass(ctx, v.c, run, key, res)
	if err != nil {
		return err
	}
	if stored {
		w.log.Info("mass batch finished", zap.String("campaign_id", v.c.ID), zap.Int("run", run), zap.String("batch", key),
			zap.String("status", res.Status), zap.String("via", res.Via))
	}
	w.recorded(v, run, campaigns.MassOutcome(res), rec)
	return nil
}
