package rdb

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrAuditCursor is returned for a cursor that is not the id of a stream
// entry ("ms-seq").
var ErrAuditCursor = errors.New("rdb: not an audit cursor")

// AuditEvent is one entry of a campaign's audit trail: who did what to it,
// and what came of it.
type AuditEvent struct {
	// ID is the entry's stream id ("ms-seq", by the Redis clock), set by
	// AppendAudit; entries are ordered by it, and it is the cursor of
	// AuditEvents.
	ID string
	// At is when the request was made (millisecond precision is kept).
	At time.Time
	// Key is the name of the API key that made the request, and Via how it
	// proved it (bearer, basic, session).
	Key string
	Via string
	// Action names the request: create, update, upload, start, schedule,
	// unschedule, pause, resume, cancel, retry, send, report-link.
	Action   string
	Campaign string
	// Run is the run the request created or named, 0 for none.
	Run int
	// Status is the HTTP status of the answer; Code the API's error code
	// when it refused ("" on success).
	Status int
	Code   string
	// Remote is the client's address (IP, no port).
	Remote string
	// RequestID is the request's X-Request-Id.
	RequestID string
}

// Field names of an audit entry.
const (
	auditAt        = "at" // Unix ms
	auditKey       = "key"
	auditVia       = "via"
	auditAction    = "action"
	auditRun       = "run"
	auditStatus    = "status"
	auditCode      = "code"
	auditRemote    = "remote"
	auditRequestID = "request_id"
)

// appendAudit adds an entry to a campaign's audit stream, keeping only the
// newest ones, if the campaign exists: no stream is made for an id that
// names no campaign.
//
// KEYS[1] campaign hash, KEYS[2] audit stream. ARGV[1] how many entries to
// keep, ARGV[2..] field, value pairs.
// Returns the entry's id, or false (nil) when the campaign does not exist.
var appendAudit = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
local args = {'XADD', KEYS[2], 'MAXLEN', ARGV[1], '*'}
for i = 2, #ARGV do
  args[#args + 1] = ARGV[i]
end
return redis.call(unpack(args))
`)

// AppendAudit adds e to the audit stream of e.Campaign, which keeps the
// newest keep entries (exactly: older ones are trimmed as new ones come).
// It returns the entry's id, or ErrCampaignNotFound (and stores nothing)
// when the campaign does not exist.
func (r *RDB) AppendAudit(ctx context.Context, e AuditEvent, keep int) (string, error) {
	if keep <= 0 {
		return "", fmt.Errorf("append audit: keep must be positive, got %d", keep)
	}
	args := []any{keep, auditAt, e.At.UnixMilli(), auditKey, e.Key, auditVia, e.Via, auditAction, e.Action,
		auditStatus, e.Status, auditRemote, e.Remote, auditRequestID, e.RequestID}
	if e.Run != 0 {
		args = append(args, auditRun, e.Run)
	}
	if e.Code != "" {
		args = append(args, auditCode, e.Code)
	}
	id, err := appendAudit.Run(ctx, r.c, []string{r.keys.Campaign(e.Campaign), r.keys.Audit(e.Campaign)}, args...).Text()
	if errors.Is(err, redis.Nil) {
		return "", ErrCampaignNotFound
	}
	if err != nil {
		return "", fmt.Errorf("append audit: %w", err)
	}
	return id, nil
}

// auditCursor is the form of a stream id.
var auditCursor = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// AuditEvents returns at most limit entries of the campaign's audit trail,
// newest first: the newest ones when before is "", else those older than the
// entry whose id is before. It returns ErrCampaignNotFound for a campaign
// that does not exist and ErrAuditCursor for a before that is not an entry
// id.
func (r *RDB) AuditEvents(ctx context.Context, campaign, before string, limit int64) ([]AuditEvent, error) {
	end := "+"
	if before != "" {
		if !auditCursor.MatchString(before) {
			return nil, ErrAuditCursor
		}
		end = "(" + before
	}
	pipe := r.c.Pipeline()
	exists := pipe.Exists(ctx, r.keys.Campaign(campaign))
	rng := pipe.XRevRangeN(ctx, r.keys.Audit(campaign), end, "-", limit)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read audit: %w", err)
	}
	if exists.Val() == 0 {
		return nil, ErrCampaignNotFound
	}
	out := make([]AuditEvent, 0, len(rng.Val()))
	for _, m := range rng.Val() {
		out = append(out, decodeAudit(campaign, m))
	}
	return out, nil
}

func decodeAudit(campaign string, m redis.XMessage) AuditEvent {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	num := func(k string) int64 { n, _ := strconv.ParseInt(str(k), 10, 64); return n }
	return AuditEvent{
		ID: m.ID, At: time.UnixMilli(num(auditAt)).UTC(), Key: str(auditKey), Via: str(auditVia), Action: str(auditAction),
		Campaign: campaign, Run: int(num(auditRun)), Status: int(num(auditStatus)), Code: str(auditCode),
		Remote: str(auditRemote), RequestID: str(auditRequestID),
	}
}
