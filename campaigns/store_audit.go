package campaigns

import (
	"context"
	"errors"
	"fmt"

	"github.com/wxmass/wxmass/internal/rdb"
)

// The audit trail: who did what to a campaign through the API, kept beside
// the campaign in Redis.

// AuditKeep is how many events a campaign's audit trail keeps: the newest
// ones; older ones are dropped as new ones come. The trail lives as long as
// the campaign does.
const AuditKeep = 1000

// ErrAuditCursor is returned by AuditTrail for a cursor it did not give.
var ErrAuditCursor = errors.New("campaigns: not a cursor of the audit trail")

// AuditEvent is one event of a campaign's audit trail: a state-changing
// request, who made it and what came of it (see rdb.AuditEvent for the
// fields).
type AuditEvent = rdb.AuditEvent

// RecordAudit adds e to the audit trail of campaign e.Campaign, stamped with
// the store's clock when e.At is zero. It reports false, storing nothing,
// when the campaign does not exist (or e.Campaign is not a campaign id), so
// that requests naming no campaign leave nothing in Redis.
func (s *Store) RecordAudit(ctx context.Context, e AuditEvent) (bool, error) {
	if !ValidID(e.Campaign) {
		return false, nil
	}
	if e.At.IsZero() {
		e.At = s.now()
	}
	_, err := s.r.AppendAudit(ctx, e, AuditKeep)
	if errors.Is(err, rdb.ErrCampaignNotFound) {
		return false, nil
	}
	return err == nil, err
}

// AuditTrail returns at most limit events of the campaign's audit trail,
// newest first, from the newest when before is "", else from the one after
// the cursor before. next is the cursor of the following page, "" on the
// last. It returns ErrNotFound for an unknown campaign and ErrAuditCursor
// for a cursor it did not give.
func (s *Store) AuditTrail(ctx context.Context, id, before string, limit int) (events []AuditEvent, next string, err error) {
	if !ValidID(id) {
		return nil, "", fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if limit <= 0 {
		return nil, "", fmt.Errorf("campaigns: audit trail limit must be positive, got %d", limit)
	}
	// One more than asked says whether there is a next page.
	events, err = s.r.AuditEvents(ctx, id, before, int64(limit)+1)
	switch {
	case errors.Is(err, rdb.ErrCampaignNotFound):
		return nil, "", fmt.Errorf("%w: %s", ErrNotFound, id)
	case errors.Is(err, rdb.ErrAuditCursor):
		return nil, "", fmt.Errorf("%w: %q", ErrAuditCursor, before)
	case err != nil:
		return nil, "", err
	}
	if len(events) > limit {
		events = events[:limit]
		next = events[limit-1].ID
	}
	return events, next, nil
}
