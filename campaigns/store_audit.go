package campaigns

import (
	"context"
	"errors"
	"fmt"

	"github.com/wxmass/wxmass/internal/logfield"
	"github.com/wxmass/wxmass/internal/rdb"
)

// The audit trails: who did what to a campaign, or to an account (its
// suppression list, its mass-send speed), through the API, kept beside the
// campaign or the account in Redis.

// AuditKeep is how many events an audit trail, a campaign's or an
// account's, keeps: the newest ones; older ones are dropped as new ones
// come. A campaign's trail lives as long as the campaign does, an
// account's as long as Redis keeps it.
const AuditKeep = 1000

// ErrAuditCursor is returned by AuditTrail for a cursor it did not give.
var ErrAuditCursor = errors.New("campaigns: not a cursor of the audit trail")

// AuditEvent is one event of an audit trail: a state-changing request, who
// made it and what came of it (see rdb.AuditEvent for the fields).
type AuditEvent = rdb.AuditEvent

// AuditCount is one count of an audit event (see rdb.AuditCount).
type AuditCount = rdb.AuditCount

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

// RecordAccountAudit adds e to the audit trail of the account whose appid
// is appID, stamped with the store's clock when e.At is zero, with
// e.OpenID masked (logfield.MaskOpenID): the trail never holds a raw
// openid. The caller checks that the account is one it sends for: the
// trail is made by its first event.
func (s *Store) RecordAccountAudit(ctx context.Context, appID string, e AuditEvent) error {
	if e.At.IsZero() {
		e.At = s.now()
	}
	if e.OpenID != "" {
		e.OpenID = logfield.MaskOpenID(e.OpenID)
	}
	e.Campaign = ""
	_, err := s.r.AppendAccountAudit(ctx, appID, e, AuditKeep)
	return err
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
	return auditPage(before, limit, func(n int64) ([]AuditEvent, error) {
		events, err := s.r.AuditEvents(ctx, id, before, n)
		if errors.Is(err, rdb.ErrCampaignNotFound) {
			return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
		}
		return events, err
	})
}

// AccountAuditTrail returns at most limit events of the audit trail of the
// account whose appid is appID, newest first, paged as AuditTrail's: an
// account without events has an empty trail. It returns ErrAuditCursor for
// a cursor it did not give.
func (s *Store) AccountAuditTrail(ctx context.Context, appID, before string, limit int) (events []AuditEvent, next string, err error) {
	if appID == "" {
		return nil, "", errors.New("campaigns: account audit trail: empty appid")
	}
	return auditPage(before, limit, func(n int64) ([]AuditEvent, error) {
		return s.r.AccountAuditEvents(ctx, appID, before, n)
	})
}

// auditPage reads a page of limit events of a trail with read, which reads
// at most n events after before, and the cursor of the next page.
func auditPage(before string, limit int, read func(n int64) ([]AuditEvent, error)) (events []AuditEvent, next string, err error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("campaigns: audit trail limit must be positive, got %d", limit)
	}
	// One more than asked says whether there is a next page.
	events, err = read(int64(limit) + 1)
	switch {
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
