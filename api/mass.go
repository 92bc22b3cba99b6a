package api

import (
	"context"
	"time"

	"github.com/wxmass/wxmass/campaigns"
)

// massView is what a mass run's status and report show: its batches and
// the counts WeChat gave for each. A mass send has no per-recipient outcome
// beyond its batch: WeChat reports how many of a batch it sent, filtered
// and failed, not who.
type massView struct {
	Note string `json:"note"`
	// Batches lists the batches WeChat accepted, in order; the others are
	// still to be sent (the run's size is the number of batches).
	Batches []massBatchView `json:"batches"`
	// Totals add up the counts of the batches whose push came.
	Totals massTotals `json:"totals"`
	// CappedAtLaunch is how many recipients had their month's (a
	// subscription account's day's) mass messages already by wxmass's
	// count when the run launched, so WeChat filters them; "all" when
	// sends to all reached the cap. Absent when not counted.
	CappedAtLaunch any `json:"capped_at_launch,omitempty"`
}

type massBatchView struct {
	Batch       string `json:"batch"`
	Recipients  int64  `json:"recipients,omitempty"`
	ClientMsgID string `json:"clientmsgid"`
	MsgID       int64  `json:"msg_id"`
	MsgDataID   int64  `json:"msg_data_id,omitempty"`
	// Duplicate: a retry was answered 45065 with this job (an earlier
	// try's answer was lost); it is one send.
	Duplicate bool      `json:"duplicate,omitempty"`
	Submitted time.Time `json:"submitted"`
	// State is awaiting_confirmation (a send to all on an account with
	// API mass-send protection, until an admin confirms it in the WeChat
	// app or ConfirmBy passes), sending, or the result's status.
	State     string                `json:"state"`
	ConfirmBy *time.Time            `json:"confirm_by,omitempty"`
	Result    *campaigns.MassResult `json:"result,omitempty"`
	// DeletedAt is when an operator deleted the batch's sent message
	// (POST .../mass-delete), and DeletedArticleIdx the article deleted
	// (absent: the whole message). The batch's state and outcome stay:
	// it was sent.
	DeletedAt         *time.Time `json:"deleted_at,omitempty"`
	DeletedArticleIdx int        `json:"deleted_article_idx,omitempty"`
}

type massTotals struct {
	TotalCount  int64 `json:"total_count"`
	FilterCount int64 `json:"filter_count"`
	// Filtered is TotalCount - FilterCount: users WeChat left out (over
	// their monthly mass messages, refusing them, filters).
	Filtered   int64 `json:"filtered"`
	SentCount  int64 `json:"sent_count"`
	ErrorCount int64 `json:"error_count"`
}

// massNote is massView.Note.
const massNote = "a mass send has no per-recipient outcome: WeChat reports each batch's counts (total, after filtering, sent, errors), not who"

// mass returns the mass view of a run of c, or nil for other kinds.
func (s *Server) mass(ctx context.Context, c *campaigns.Campaign, run int, capped int64) (*massView, error) {
	if c.Kind != campaigns.KindMass {
		return nil, nil
	}
	bs, err := s.cfg.Store.MassBatches(ctx, c.ID, run)
	if err != nil {
		return nil, err
	}
	v := &massView{Note: massNote, Batches: make([]massBatchView, 0, len(bs))}
	switch {
	case capped == campaigns.MassCappedEveryone:
		v.CappedAtLaunch = "all"
	case capped >= 0:
		v.CappedAtLaunch = capped
	}
	now := time.Now()
	for _, b := range bs {
		if b.Submission == nil {
			continue
		}
		sub := b.Submission
		bv := massBatchView{Batch: b.Key, Recipients: sub.Recipients, ClientMsgID: sub.ClientMsgID, MsgID: sub.MsgID,
			MsgDataID: sub.MsgDataID, Duplicate: sub.Duplicate, Submitted: sub.Submitted, State: "sending", Result: b.Result}
		if !sub.ConfirmBy.IsZero() {
			bv.ConfirmBy = &sub.ConfirmBy
			if b.Result == nil && now.Before(sub.ConfirmBy) {
				bv.State = "awaiting_confirmation"
			}
		}
		if d := b.Deleted; d != nil {
			bv.DeletedAt, bv.DeletedArticleIdx = &d.At, d.ArticleIdx
		}
		if r := b.Result; r != nil {
			bv.State = r.Status
			if r.HasCounts {
				v.Totals.TotalCount += r.TotalCount
				v.Totals.FilterCount += r.FilterCount
				v.Totals.SentCount += r.SentCount
				v.Totals.ErrorCount += r.ErrorCount
			}
		}
		v.Batches = append(v.Batches, bv)
	}
	v.Totals.Filtered = v.Totals.TotalCount - v.Totals.FilterCount
	return v, nil
}
