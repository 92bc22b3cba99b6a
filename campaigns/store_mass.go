package campaigns

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/wxmass/wxmass/internal/rdb"
)

// Records of mass batches; see internal/rdb's mass.go.
type (
	// MassSubmission is what wxmass knows of a batch once WeChat accepted
	// its job.
	MassSubmission = rdb.MassSubmission
	// MassResult is a batch's result, pushed (MASSSENDJOBFINISH) or polled
	// (mass/get).
	MassResult = rdb.MassResult
	// MassBatchRecord is one batch of a mass run as stored.
	MassBatchRecord = rdb.MassBatchRecord
	// MassDeletion records that a batch's sent message (or one of its
	// articles) was deleted with mass/delete.
	MassDeletion = rdb.MassDeletion
)

// ErrMassBatchNotAccepted is returned by RecordMassDeletion for a batch
// whose job WeChat has not accepted.
var ErrMassBatchNotAccepted = errors.New("campaigns: mass batch not accepted")

// Statuses of MassResult.
const (
	MassSent         = "sent"
	MassFailed       = "failed"
	MassReviewFailed = "review_failed"
	MassDeleted      = "deleted"
	MassUnknown      = "unknown"
)

// Ways a MassResult came.
const (
	MassViaPush = "push"
	MassViaPoll = "poll"
)

// ClassMass is the class of a batch whose job WeChat failed: not confirmed
// by the admin in time, or failed content review (Code the review code).
const ClassMass = "mass"

// MassDedupeWindow is how long after a batch's first try a try with the
// same clientmsgid is still answered 45065 with the job WeChat has: WeChat
// remembers a clientmsgid for 24 hours (wechat-api.md §5.3); an hour is
// kept for clock skew. A batch whose answer was lost and that could not be
// tried again within it ends unknown.
const MassDedupeWindow = 23 * time.Hour

// MassConfirmWindow is how long a send to all on an account with API
// mass-send protection waits for an admin's confirmation (wechat-api.md
// §5.4).
const MassConfirmWindow = 30 * time.Minute

// Per-user mass caps (wechat-api.md §5.4): 4 a calendar month on a service
// account, 1 a day on a subscription account, in China's time.
const (
	MassMonthlyCap = 4
	MassDailyCap   = 1
)

// ChinaTime is Asia/Shanghai (UTC+8, no daylight saving since 1991): WeChat
// counts calendar months and days in it.
var ChinaTime = time.FixedZone("Asia/Shanghai", 8*60*60)

// MassPeriod returns the period a mass message sent at now counts in, the
// cap of that period and how long its count is worth keeping.
func MassPeriod(subscription bool, now time.Time) (period string, limit int64, keep time.Duration) {
	t := now.In(ChinaTime)
	if subscription {
		return t.Format("2006-01-02"), MassDailyCap, 48 * time.Hour
	}
	return t.Format("2006-01"), MassMonthlyCap, 32 * 24 * time.Hour
}

// AcceptMass records that WeChat accepted a batch's job (see
// rdb.AcceptMass). It reports whether this call recorded it; if not, the
// submission returned is the one recorded before.
func (s *Store) AcceptMass(ctx context.Context, c *Campaign, run int, batch, appID string, sub MassSubmission) (bool, MassSubmission, error) {
	ok, stored, err := s.r.AcceptMass(ctx, c.ID, run, batch, appID, s.ledger.Proc, sub)
	return ok, stored, runErr(c.ID, run, err)
}

// MassBatch reads one batch of a mass run.
func (s *Store) MassBatch(ctx context.Context, id string, run int, batch string) (MassBatchRecord, error) {
	b, err := s.r.MassBatch(ctx, id, run, batch)
	return b, runErr(id, run, err)
}

// MassBatches reads the batches of a mass run that WeChat accepted, in
// batch order.
func (s *Store) MassBatches(ctx context.Context, id string, run int) ([]MassBatchRecord, error) {
	bs, err := s.r.MassBatchRecords(ctx, id, run)
	if err != nil {
		return nil, runErr(id, run, err)
	}
	slices.SortFunc(bs, func(a, b MassBatchRecord) int { return cmp.Compare(massOrder(a.Key), massOrder(b.Key)) })
	return bs, nil
}

func massOrder(key string) int {
	if b, err := ParseMassBatch(key); err == nil {
		return b.Index
	}
	return -1
}

// MassArticlesMax is the highest article_idx of mass/delete: an mpnews
// holds at most 8 articles (1-based; 0 deletes the whole message).
const MassArticlesMax = 8

// RecordMassDeletion records that WeChat deleted the message of an
// accepted batch of a mass run (article d.ArticleIdx, or all of it with
// 0). The batch's outcome in the ledger stays as it is: it was sent. A
// deletion of the whole message is kept over a later one of an article.
// It reports whether d was stored, and returns ErrMassBatchNotAccepted for
// a batch without an accepted job.
func (s *Store) RecordMassDeletion(ctx context.Context, id string, run int, batch string, d MassDeletion) (bool, error) {
	ok, err := s.r.RecordMassDeletion(ctx, id, run, batch, d)
	if errors.Is(err, rdb.ErrMassBatchNotAccepted) {
		return false, fmt.Errorf("%w: %s of run %d of %s", ErrMassBatchNotAccepted, batch, run, id)
	}
	return ok, err
}

// FinishMass stores a batch's result (the first to come stays) and gives
// the batch its outcome in the ledger: sent when the job was sent (or sent
// and since deleted), failed (class mass) when WeChat failed it. It
// reports whether this call stored the result.
func (s *Store) FinishMass(ctx context.Context, c *Campaign, run int, batch string, res MassResult) (bool, Recorded, error) {
	ok, rec, err := s.r.FinishMass(ctx, c.ID, run, batch, DoneState(c), res, MassOutcome(res))
	return ok, rec, runErr(c.ID, run, err)
}

// MassOutcome is the ledger outcome of a batch's result. The msg_id is
// not in it: the msgid index is the template receipts'.
func MassOutcome(res MassResult) Outcome {
	switch res.Status {
	case MassSent, MassDeleted:
		return Outcome{Status: OutcomeSent, Detail: MassDetail(res)}
	case MassReviewFailed:
		return Outcome{Status: OutcomeFailed, Code: res.ReviewCode, Class: ClassMass, Detail: MassDetail(res)}
	case MassUnknown:
		return Outcome{Status: OutcomeUnknown, Detail: MassDetail(res)}
	default:
		return Outcome{Status: OutcomeFailed, Class: ClassMass, Detail: MassDetail(res)}
	}
}

// MassDetail says what a batch's result means, in a line.
func MassDetail(res MassResult) string {
	var d string
	switch res.Status {
	case MassSent:
		d = "job sent"
	case MassDeleted:
		d = "job sent, then deleted"
	case MassReviewFailed:
		d = "content review failed: err(" + strconv.Itoa(res.ReviewCode) + ")"
		if res.Meaning != "" {
			d += " " + res.Meaning
		}
	case MassFailed:
		d = "job failed"
		if res.Meaning != "" {
			d += ": " + res.Meaning
		}
	default:
		d = res.Meaning
		if d == "" {
			d = "WeChat's status " + strconv.Quote(res.WeChatStatus)
		}
	}
	switch {
	case res.Status == MassUnknown:
	case res.HasCounts:
		d += fmt.Sprintf(" (total %d, after filtering %d, sent %d, errors %d)", res.TotalCount, res.FilterCount, res.SentCount, res.ErrorCount)
	default:
		d += " (by mass/get, which gives no counts)"
	}
	return d
}

// MassPushResult is the result a MASSSENDJOBFINISH push gives: status is
// one of the Mass* statuses (callback.NormalizeMassStatus's results map to
// them), meaning the review code's meaning.
func MassPushResult(status, wechatStatus string, review int, meaning string, total, filter, sent, errs int64, at time.Time) MassResult {
	return MassResult{Status: status, WeChatStatus: wechatStatus, ReviewCode: review, Meaning: meaning, HasCounts: true,
		TotalCount: total, FilterCount: filter, SentCount: sent, ErrorCount: errs, Via: MassViaPush, At: at}
}

// ErrUnknownMassJob is returned by FinishMassPush for a msg_id that no
// batch of this account's runs has (or whose index entry expired).
var ErrUnknownMassJob = errors.New("campaigns: unknown mass job")

// FinishMassPush gives the batch of a pushed MASSSENDJOBFINISH its result
// and outcome. It returns the campaign and run, and ErrUnknownMassJob for a
// msg_id wxmass does not know.
func (s *Store) FinishMassPush(ctx context.Context, appID string, msgID int64, res MassResult) (string, int, Recorded, error) {
	id, run, batch, ok, err := s.r.LookupMassMsgID(ctx, appID, msgID)
	if err != nil {
		return "", 0, Recorded{}, err
	}
	if !ok {
		// Its batch may not know it yet: the send's answer was lost, and
		// the retry that learns the msg_id (45065) comes later and
		// finds this (EarlyMassResult).
		if err := s.r.KeepEarlyMassResult(ctx, appID, msgID, res, MassDedupeWindow); err != nil {
			return "", 0, Recorded{}, err
		}
		return "", 0, Recorded{}, fmt.Errorf("%w: msg_id %d (kept, in case its batch records it later)", ErrUnknownMassJob, msgID)
	}
	c, err := s.Get(ctx, id)
	if err != nil {
		return id, run, Recorded{}, err
	}
	_, rec, err := s.FinishMass(ctx, c, run, batch, res)
	return id, run, rec, err
}

// EarlyMassResult returns the pushed result of a job that came before its
// batch recorded the job (FinishMassPush keeps it), if any.
func (s *Store) EarlyMassResult(ctx context.Context, appID string, msgID int64) (MassResult, bool, error) {
	return s.r.EarlyMassResult(ctx, appID, msgID)
}

// LookupMass finds the batch of a mass job by its msg_id.
func (s *Store) LookupMass(ctx context.Context, appID string, msgID int64) (id string, run int, batch string, ok bool, err error) {
	return s.r.LookupMassMsgID(ctx, appID, msgID)
}

// CountMassReceived counts one more mass message, sent at now, for each
// of openids (none: a send to all, which counts for everyone).
func (s *Store) CountMassReceived(ctx context.Context, appID string, subscription bool, openids []string, now time.Time) error {
	period, _, keep := MassPeriod(subscription, now)
	return s.r.CountMassReceived(ctx, appID, period, openids, keep)
}

// MassCapped counts the openids that got their period's cap of mass
// messages already (by wxmass's count), so that WeChat will filter them.
func (s *Store) MassCapped(ctx context.Context, appID string, subscription bool, openids []string, now time.Time) (int64, error) {
	period, limit, _ := MassPeriod(subscription, now)
	counts, _, err := s.r.MassReceived(ctx, appID, period, openids)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, c := range counts {
		if c >= limit {
			n++
		}
	}
	return n, nil
}

// MassCappedAll reports whether sends to all already reached the period's
// cap, so that WeChat will filter every user.
func (s *Store) MassCappedAll(ctx context.Context, appID string, subscription bool, now time.Time) (bool, error) {
	period, limit, _ := MassPeriod(subscription, now)
	_, all, err := s.r.MassReceived(ctx, appID, period, nil)
	return all >= limit, err
}

// MassCappedEveryone is RunRecord.MassCapped of a send to all (or a tag)
// made when sends to all reached the period's cap already: WeChat filters
// every user.
const MassCappedEveryone = -2

// SetMassCapped records how many recipients of a mass run wxmass expected
// WeChat to filter (MassCapped at launch).
func (s *Store) SetMassCapped(ctx context.Context, id string, run int, n int64) error {
	return runErr(id, run, s.r.SetRunField(ctx, id, run, "mass_capped", strconv.FormatInt(n, 10)))
}

// LaunchMass sizes a mass run: its "recipients" are its batches, listed
// in the run's own audience list (one batch, MassBatchAll or MassBatchTag,
// for a send to all or to a tag; MassBatches of the campaign's list
// otherwise). A crash part way starts it over. It returns the number of
// openids of a list (0 for all or a tag), the batches and the state the
// run finished in ("" unless its list was empty).
func (s *Store) LaunchMass(ctx context.Context, c *Campaign, run int) (int64, []string, string, error) {
	var n int64
	var keys []string
	switch c.Audience.Source {
	case SourceFollowers:
		keys = []string{MassBatchAll}
	case SourceTag:
		keys = []string{MassBatchTag}
	default:
		var err error
		if n, err = s.r.AudienceLen(ctx, c.ID); err != nil {
			return 0, nil, "", err
		}
		for _, b := range MassBatches(n) {
			keys = append(keys, b.Key())
		}
	}
	if err := s.r.ResetRunAudience(ctx, c.ID, run); err != nil {
		return 0, nil, "", err
	}
	if err := s.r.AppendRunAudience(ctx, c.ID, run, keys); err != nil {
		return 0, nil, "", err
	}
	fin, err := s.SetRunSize(ctx, c, run, int64(len(keys)))
	return n, keys, fin, err
}

// AudienceLen returns the number of openids of a campaign's own audience
// (inline or uploaded).
func (s *Store) AudienceLen(ctx context.Context, id string) (int64, error) {
	return s.r.AudienceLen(ctx, id)
}

// MassRunBatches returns the keys of every batch of a mass run, accepted
// or not, in batch order (none once the run's audience snapshot was
// archived).
func (s *Store) MassRunBatches(ctx context.Context, id string, run int) ([]string, error) {
	return s.r.AudienceRange(ctx, s.r.Keys().RunAudience(id, run), 0, -1)
}

// MassRecipients returns the openids of a batch of a mass run to a list.
func (s *Store) MassRecipients(ctx context.Context, id string, b MassBatch) ([]string, error) {
	return s.r.AudienceRange(ctx, s.r.Keys().Audience(id), b.From, b.To-1)
}
