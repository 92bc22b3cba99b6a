package rdb

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrAuditCursor is returned for a cursor that is not the id of a stream
// entry ("ms-seq").
var ErrAuditCursor = errors.New("rdb: not an audit cursor")

// AuditEvent is one entry of an audit trail, a campaign's or an account's:
// who did what to it, and what came of it.
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
	// unschedule, pause, resume, cancel, retry, send, report-link, test;
	// on an account, mass_speed, suppress_add, suppress_remove,
	// suppress_import.
	Action string
	// Campaign is the campaign of a campaign's trail (the stream's, not
	// stored in the entry); "" in an account's trail.
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
	// Targets and TargetsOK are, for a test send, how many targets it had
	// and how many WeChat accepted; both 0 for other actions. The targets
	// themselves are never recorded.
	Targets   int
	TargetsOK int
	// Account is the account (its id, as the API names it) of a request
	// on an account; "" for none.
	Account string
	// OpenID is the user a request on one user named, as the caller gives
	// it: callers store it masked (campaigns.Store.RecordAccountAudit
	// does), never the raw openid. "" for none.
	OpenID string
	// Counts are what the request changed, by name, in the order given
	// (such as added 3, updated 0); nil for none.
	Counts []AuditCount
}

// AuditCount is one count of an audit event: a name (lowercase letters and
// '_', at most 32) and a number.
type AuditCount struct {
	Name string
	N    int
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
	auditTargets   = "targets"
	auditTargetsOK = "targets_ok"
	auditAccount   = "account"
	auditOpenID    = "openid"
	auditCounts    = "counts" // "name=n,name=n"
)

// auditCountName is what the name of an AuditCount may be.
var auditCountName = regexp.MustCompile(`^[a-z][a-z_]{0,31}$`)

// appendAudit adds an entry to an audit stream, keeping only the newest
// ones; with a second key, only if that key exists: no stream is made for
// an id that names no campaign.
//
// KEYS[1] audit stream, KEYS[2] (optional) the key that must exist (the
// campaign hash). ARGV[1] how many entries to keep, ARGV[2..] field, value
// pairs.
// Returns the entry's id, or false (nil) when KEYS[2] does not exist.
var appendAudit = redis.NewScript(`
if #KEYS > 1 and redis.call('EXISTS', KEYS[2]) == 0 then
  return false
end
local args = {'XADD', KEYS[1], 'MAXLEN', ARGV[1], '*'}
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
	id, err := r.appendAudit(ctx, []string{r.keys.Audit(e.Campaign), r.keys.Campaign(e.Campaign)}, e, keep)
	if errors.Is(err, redis.Nil) {
		return "", ErrCampaignNotFound
	}
	return id, err
}

// AppendAccountAudit adds e to the audit stream of the account whose appid
// is appID, which keeps the newest keep entries as AppendAudit's does. The
// stream is made by the first entry: the caller checks that the account is
// one of its own. e.Campaign is not stored. It returns the entry's id.
func (r *RDB) AppendAccountAudit(ctx context.Context, appID string, e AuditEvent, keep int) (string, error) {
	if appID == "" {
		return "", errors.New("append account audit: empty appid")
	}
	return r.appendAudit(ctx, []string{r.keys.AccountAudit(appID)}, e, keep)
}

// appendAudit runs the appendAudit script on keys with e's fields: it
// returns redis.Nil when the key that must exist does not.
func (r *RDB) appendAudit(ctx context.Context, keys []string, e AuditEvent, keep int) (string, error) {
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
	if e.Targets != 0 {
		args = append(args, auditTargets, e.Targets, auditTargetsOK, e.TargetsOK)
	}
	if e.Account != "" {
		args = append(args, auditAccount, e.Account)
	}
	if e.OpenID != "" {
		args = append(args, auditOpenID, e.OpenID)
	}
	if len(e.Counts) > 0 {
		counts := make([]string, len(e.Counts))
		for i, c := range e.Counts {
			if !auditCountName.MatchString(c.Name) {
				return "", fmt.Errorf("append audit: count %d: name %q: want 1 to 32 lowercase letters and '_'", i, c.Name)
			}
			counts[i] = c.Name + "=" + strconv.Itoa(c.N)
		}
		args = append(args, auditCounts, strings.Join(counts, ","))
	}
	id, err := appendAudit.Run(ctx, r.c, keys, args...).Text()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("append audit: %w", err)
	}
	return id, err
}

// auditCursor is the form of a stream id.
var auditCursor = regexp.MustCompile(`^[0-9]{1,20}-[0-9]{1,20}$`)

// AuditEvents returns at most limit entries of the campaign's audit trail,
// newest first: the newest ones when before is "", else those older than the
// entry whose id is before. It returns ErrCampaignNotFound for a campaign
// that does not exist and ErrAuditCursor for a before that is not an entry
// id.
func (r *RDB) AuditEvents(ctx context.Context, campaign, before string, limit int64) ([]AuditEvent, error) {
	events, exists, err := r.auditEvents(ctx, r.keys.Audit(campaign), r.keys.Campaign(campaign), before, limit)
	if err != nil {
		return nil, err
	}
	if !exists {
		return nil, ErrCampaignNotFound
	}
	for i := range events {
		events[i].Campaign = campaign
	}
	return events, nil
}

// AccountAuditEvents returns at most limit entries of the audit trail of
// the account whose appid is appID, newest first, as AuditEvents does; an
// account without a trail has none. It returns ErrAuditCursor for a before
// that is not an entry id.
func (r *RDB) AccountAuditEvents(ctx context.Context, appID, before string, limit int64) ([]AuditEvent, error) {
	events, _, err := r.auditEvents(ctx, r.keys.AccountAudit(appID), "", before, limit)
	return events, err
}

// auditEvents reads at most limit entries of stream, newest first, older
// than before unless it is "", and whether the key guard exists (true when
// guard is "").
func (r *RDB) auditEvents(ctx context.Context, stream, guard, before string, limit int64) ([]AuditEvent, bool, error) {
	end := "+"
	if before != "" {
		if !auditCursor.MatchString(before) {
			return nil, false, ErrAuditCursor
		}
		end = "(" + before
	}
	pipe := r.c.Pipeline()
	var exists *redis.IntCmd
	if guard != "" {
		exists = pipe.Exists(ctx, guard)
	}
	rng := pipe.XRevRangeN(ctx, stream, end, "-", limit)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, false, fmt.Errorf("read audit: %w", err)
	}
	if exists != nil && exists.Val() == 0 {
		return nil, false, nil
	}
	out := make([]AuditEvent, 0, len(rng.Val()))
	for _, m := range rng.Val() {
		out = append(out, decodeAudit(m))
	}
	return out, true, nil
}

func decodeAudit(m redis.XMessage) AuditEvent {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	num := func(k string) int64 { n, _ := strconv.ParseInt(str(k), 10, 64); return n }
	e := AuditEvent{
		ID: m.ID, At: time.UnixMilli(num(auditAt)).UTC(), Key: str(auditKey), Via: str(auditVia), Action: str(auditAction),
		Run: int(num(auditRun)), Status: int(num(auditStatus)), Code: str(auditCode),
		Remote: str(auditRemote), RequestID: str(auditRequestID), Targets: int(num(auditTargets)), TargetsOK: int(num(auditTargetsOK)),
		Account: str(auditAccount), OpenID: str(auditOpenID),
	}
	if counts := str(auditCounts); counts != "" {
		for _, c := range strings.Split(counts, ",") {
			name, n, _ := strings.Cut(c, "=")
			v, err := strconv.Atoi(n)
			if err != nil {
				continue // not written by appendAudit
			}
			e.Counts = append(e.Counts, AuditCount{Name: name, N: v})
		}
	}
	return e
}
