package campaigns

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/wxmass/wxmass/internal/rdb"
)

// UpdateResult says what Update did to the stored audience.
type UpdateResult struct {
	// AudienceReplaced: an inline audience was stored from the update.
	AudienceReplaced bool `json:"audience_replaced"`
	// AudienceCleared: the uploaded audience was dropped, because the
	// audience source or the message's variables changed; upload again.
	AudienceCleared bool `json:"audience_cleared"`
}

// Update replaces a draft campaign's definition with c, validated like a
// new one; c.ID names the campaign, and its state and times are the
// store's. An inline audience replaces the stored one in the same step as
// the document. An uploaded file audience is kept if the update keeps a
// file audience whose message uses the same variables; otherwise it is
// dropped (UpdateResult says so). Nothing changes unless the campaign is
// still a draft when the update is stored.
func (s *Store) Update(ctx context.Context, c *Campaign) (UpdateResult, error) {
	if err := c.ValidateAt(s.now()); err != nil {
		return UpdateResult{}, err
	}
	c.Schedule = c.Schedule.withDefaults()
	old, err := s.Get(ctx, c.ID)
	if err != nil {
		return UpdateResult{}, err
	}
	if old.State != StateDraft {
		return UpdateResult{}, &StateError{Op: "update", State: old.State}
	}
	c.State, c.CreatedAt, c.UpdatedAt = StateDraft, old.CreatedAt, s.now().UTC()
	// The test record is kept: TestCurrent compares its digest with the
	// new message's.
	c.TestedAt, c.TestedDigest = old.TestedAt, old.TestedDigest
	doc, err := json.Marshal(c)
	if err != nil {
		return UpdateResult{}, fmt.Errorf("campaigns: encode: %w", err)
	}
	var res UpdateResult
	keep := false
	if c.Audience.Source == SourceFile && old.Audience.Source == SourceFile {
		oldMsg, err1 := old.Compile()
		newMsg, err2 := c.Compile()
		keep = err1 == nil && err2 == nil && slices.Equal(oldMsg.Variables(), newMsg.Variables())
	}
	if keep {
		return res, s.stateErr("update", c.ID, s.r.UpdateCampaign(ctx, c.ID, doc, "", string(StateDraft)))
	}
	// Stage the new audience (none but an inline one), then swap it in
	// with the document in one step.
	if err := s.r.DropStagedAudience(ctx, c.ID); err != nil {
		return UpdateResult{}, err
	}
	if c.Audience.Source == SourceInline {
		for i := 0; i < len(c.Audience.OpenIDs); i += inlineBatch {
			part := c.Audience.OpenIDs[i:min(i+inlineBatch, len(c.Audience.OpenIDs))]
			entries := make([]rdb.AudienceEntry, len(part))
			for j, o := range part {
				entries[j] = rdb.AudienceEntry{OpenID: o}
			}
			if _, _, err := s.r.AppendAudienceStaging(ctx, c.ID, entries, string(StateDraft)); err != nil {
				_ = s.r.DropStagedAudience(context.WithoutCancel(ctx), c.ID)
				return UpdateResult{}, s.stateErr("update", c.ID, err)
			}
		}
		res.AudienceReplaced = true
	} else {
		n, err := s.r.AudienceLen(ctx, c.ID)
		if err != nil {
			return UpdateResult{}, err
		}
		res.AudienceCleared = n > 0
	}
	if err := s.r.CommitAudience(ctx, c.ID, doc, string(StateDraft)); err != nil {
		return UpdateResult{}, s.stateErr("update", c.ID, err)
	}
	return res, nil
}
