package api

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/logfield"
)

// The audit trail: every state-changing request is recorded with the name
// of the key that made it, as one "audit" log line and, when it names a
// stored campaign, as an event of that campaign's trail in Redis
// (campaigns.Store.RecordAudit), which GET /v1/campaigns/{id}/events reads;
// when it names one of the server's accounts (/v1/accounts/{account}/...),
// as an event of that account's trail (campaigns.Store.RecordAccountAudit,
// keyed by its appid), which GET /v1/accounts/{account}/events reads.

// auditActions names the action of each state-changing route, by the
// pattern route() registers it with. A route not listed is not audited:
// list every new route that changes anything.
var auditActions = map[string]string{
	"POST /v1/campaigns":                                  "create",
	"PUT /v1/campaigns/{id}":                              "update",
	"DELETE /v1/campaigns/{id}":                           "delete",
	"PUT /v1/campaigns/{id}/audience":                     "upload",
	"POST /v1/campaigns/{id}/start":                       "start",
	"POST /v1/campaigns/{id}/schedule":                    "schedule",
	"POST /v1/campaigns/{id}/unschedule":                  "unschedule",
	"POST /v1/campaigns/{id}/pause":                       "pause",
	"POST /v1/campaigns/{id}/resume":                      "resume",
	"POST /v1/campaigns/{id}/cancel":                      "cancel",
	"POST /v1/campaigns/{id}/test":                        "test",
	"POST /v1/campaigns/{id}/runs/{run}/retry":            "retry",
	"POST /v1/campaigns/{id}/runs/{run}/report-link":      "report-link",
	"POST /v1/campaigns/{id}/runs/{run}/mass-delete":      "mass_delete",
	"POST /v1/messages":                                   "send",
	"POST /v1/media":                                      "upload-media",
	"PUT /v1/accounts/{account}/mass-speed":               "mass_speed",
	"POST /v1/accounts/{account}/suppressions":            "suppress_add",
	"DELETE /v1/accounts/{account}/suppressions/{openid}": "suppress_remove",
	"PUT /v1/accounts/{account}/suppressions/import":      "suppress_import",
}

// auditTimeout bounds the write of one audit event, which outlives a client
// that hangs up: the action it records has happened.
const auditTimeout = 5 * time.Second

// auditNote is what a handler tells the audit trail about its request: the
// campaign and run it created (a create, a start, a retry, a send), and the
// error code of an error answer it wrote itself.
type auditNote struct {
	campaign string
	run      int
	code     string
	// targets and targetsOK are a test send's counts (targets, and those
	// WeChat accepted) or a mass delete's (batches, and those deleted).
	targets, targetsOK int
	// account is the account an account's request named (its id).
	account string
	// counts are what a request on an account changed (a suppression
	// list's added, updated, removed, bad lines; the mass speed set),
	// logged and stored by name in this order.
	counts []auditCount
	// openid is the user a request on one user named; it is logged and
	// stored masked.
	openid string
}

// auditCount is one count of an audit log line.
type auditCount struct {
	name string
	n    int
}

type auditNoteKey struct{}

// noteAudit tells the audit trail of the request of ctx the campaign and
// the run (0 for none) it created. It does nothing outside an audited
// request.
func noteAudit(ctx context.Context, campaign string, run int) {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		n.campaign, n.run = campaign, run
	}
}

// noteAuditTargets tells the audit trail of a test send how many targets
// it had and how many WeChat accepted, or of a mass delete how many
// batches it named and how many WeChat deleted.
func noteAuditTargets(ctx context.Context, targets, ok int) {
	if n, ok2 := ctx.Value(auditNoteKey{}).(*auditNote); ok2 {
		n.targets, n.targetsOK = targets, ok
	}
}

// noteAuditAccount tells the audit trail the account (its id) of a request
// on an account rather than a campaign; the log line names it.
func noteAuditAccount(ctx context.Context, account string) {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		n.account = account
	}
}

// noteAuditCounts tells the audit trail what a request on an account
// changed, as name and count pairs (such as "added", 3).
func noteAuditCounts(ctx context.Context, counts ...auditCount) {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		n.counts = counts
	}
}

// noteAuditOpenID tells the audit trail the user a request named; the log
// line shows it masked.
func noteAuditOpenID(ctx context.Context, openid string) {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		n.openid = openid
	}
}

// noteAuditCode tells the audit trail the error code of an error answer the
// handler wrote itself rather than returned.
func noteAuditCode(ctx context.Context, code string) {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		n.code = code
	}
}

// audited returns h, recorded in the audit trail if pattern is one of
// auditActions. It runs behind the key check, so the request has its
// Principal.
func (s *Server) audited(pattern string, h handler) handler {
	action, ok := auditActions[pattern]
	if !ok {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) *Error {
		// The campaign and run of the path, until the handler says
		// otherwise: a retry names the run it retries, and notes the run
		// it starts.
		note := &auditNote{campaign: r.PathValue("id")}
		if run, err := strconv.Atoi(r.PathValue("run")); err == nil && run > 0 {
			note.run = run
		}
		r = r.WithContext(context.WithValue(r.Context(), auditNoteKey{}, note))
		sw := &statusWriter{ResponseWriter: w}
		e := h(sw, r)
		status, code := sw.status, note.code
		if e != nil {
			// handle() writes it once this returns.
			status, code = e.status, e.Code
		}
		if status == 0 {
			status = http.StatusOK
		}
		s.audit(r, action, note, status, code, sw.Header().Get("Idempotent-Replayed") == "true")
		return e
	}
}

// audit logs one request and stores it in its campaign's trail, or in its
// account's.
func (s *Server) audit(r *http.Request, action string, note *auditNote, status int, code string, replayed bool) {
	p, _ := PrincipalFrom(r.Context())
	e := campaigns.AuditEvent{
		Key: p.Key, Via: p.Via, Action: action, Campaign: note.campaign, Run: note.run, Status: status, Code: code,
		Remote: remoteIP(r), RequestID: RequestIDFrom(r.Context()), Targets: note.targets, TargetsOK: note.targetsOK,
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditTimeout)
	defer cancel()
	var stored bool
	var err error
	if name := r.PathValue("account"); name != "" {
		stored, err = s.auditAccount(ctx, name, note, e)
	} else {
		stored, err = s.cfg.Store.RecordAudit(ctx, e)
	}
	fields := []zap.Field{zap.String("action", action), zap.String("key", e.Key), zap.String("via", e.Via)}
	if e.Campaign != "" {
		fields = append(fields, zap.String("campaign_id", e.Campaign))
	}
	if e.Run != 0 {
		fields = append(fields, zap.Int("run", e.Run))
	}
	if note.account != "" {
		fields = append(fields, zap.String("account", note.account))
	}
	if note.openid != "" {
		fields = append(fields, logfield.OpenID(note.openid))
	}
	for _, c := range note.counts {
		fields = append(fields, zap.Int(c.name, c.n))
	}
	fields = append(fields, zap.Int("status", status))
	if code != "" {
		fields = append(fields, zap.String("code", code))
	}
	if replayed {
		fields = append(fields, zap.Bool("replayed", true))
	}
	if note.targets != 0 {
		fields = append(fields, zap.Int("targets", note.targets), zap.Int("targets_ok", note.targetsOK))
	}
	fields = append(fields, zap.String("remote", e.Remote), zap.String("request_id", e.RequestID), zap.Bool("stored", stored))
	s.log.Info("audit", fields...)
	if err != nil {
		s.log.Warn("audit event not stored", zap.String("request_id", e.RequestID), zap.String("campaign_id", e.Campaign),
			zap.String("account", note.account), zap.Error(err))
	}
}

// auditAccount stores e, a request on the account the path names (by id
// or appid), in that account's trail with the note's openid and counts,
// and names the account in the note for the log line. It stores nothing,
// reporting false, for a name that is none of the server's accounts.
func (s *Server) auditAccount(ctx context.Context, name string, note *auditNote, e campaigns.AuditEvent) (bool, error) {
	if s.cfg.Accounts == nil {
		return false, nil
	}
	a, err := s.cfg.Accounts.Get(name)
	if err != nil {
		return false, nil
	}
	note.account = a.ID
	e.Account, e.OpenID = a.ID, note.openid
	for _, c := range note.counts {
		e.Counts = append(e.Counts, campaigns.AuditCount{Name: c.name, N: c.n})
	}
	if err := s.cfg.Store.RecordAccountAudit(ctx, a.AppID, e); err != nil {
		return false, err
	}
	return true, nil
}

// remoteIP is the address of the client (the TCP peer: a proxy in front
// of wxmass shows as itself).
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// statusWriter remembers the status of the answer. Unwrap keeps
// http.ResponseController (Flush, deadlines) working through it.
// (http.MaxBytesReader cannot see through it to tell the server to close
// the connection after an oversized body; the server then drains a little
// of the rest and closes it anyway.)
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// RequestIDHeader carries a request's id, in requests and answers.
const RequestIDHeader = "X-Request-Id"

// saneRequestID is what an incoming X-Request-Id may be to be kept: up to
// 128 characters of letters, digits and . _ : / + = @ - (UUIDs, base64,
// the ids proxies make).
var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}$`)

type requestIDKey struct{}

// withRequestID gives the request its id: the client's X-Request-Id when it
// is sane, else a new random one. The answer carries it in X-Request-Id.
func withRequestID(w http.ResponseWriter, r *http.Request) *http.Request {
	id := r.Header.Get(RequestIDHeader)
	if !saneRequestID.MatchString(id) {
		id = rand.Text()
	}
	w.Header().Set(RequestIDHeader, id)
	return r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id))
}

// RequestIDFrom returns the id of the request of ctx ("" outside one).
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// eventView is an audit event as GET /v1/campaigns/{id}/events and GET
// /v1/accounts/{account}/events show it.
type eventView struct {
	// At is when it happened, RFC 3339 in UTC with milliseconds.
	At  string `json:"at"`
	Key string `json:"key"`
	Via string `json:"via"`
	// Action is create, update, upload, start, schedule, unschedule,
	// pause, resume, cancel, retry, send, report-link, test or
	// mass_delete; on an account, mass_speed, suppress_add,
	// suppress_remove or suppress_import.
	Action string `json:"action"`
	// Campaign is the campaign of a campaign's event, Account the account
	// (its id) of an account's: one of them is set.
	Campaign string `json:"campaign,omitempty"`
	Account  string `json:"account,omitempty"`
	// Run is the run the request created (start, retry, send) or named
	// (report-link, a refused retry).
	Run    int    `json:"run,omitempty"`
	Status int    `json:"status"`
	Code   string `json:"code,omitempty"`
	Remote string `json:"remote"`
	// RequestID is the X-Request-Id of the request and its answer.
	RequestID string `json:"request_id"`
	// Targets and TargetsOK are, for a test send that was made, how many
	// targets it had and how many WeChat accepted (never who they were);
	// for a mass delete, how many batches it named and how many WeChat
	// deleted.
	Targets   *int `json:"targets,omitempty"`
	TargetsOK *int `json:"targets_ok,omitempty"`
	// OpenID is the user a request on one user named (a suppression
	// list's remove, or add of one user), masked as the log masks it.
	OpenID string `json:"openid,omitempty"`
	// Counts are what a request on an account changed, by name: added,
	// updated, removed, bad (a suppression list's users and bad lines),
	// speed (the mass-send speed set).
	Counts map[string]int `json:"counts,omitempty"`
}

// newEventView is ev as the events endpoints show it.
func newEventView(ev campaigns.AuditEvent) eventView {
	v := eventView{
		At: ev.At.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Key: ev.Key, Via: ev.Via, Action: ev.Action,
		Campaign: ev.Campaign, Account: ev.Account, Run: ev.Run, Status: ev.Status, Code: ev.Code, Remote: ev.Remote,
		RequestID: ev.RequestID, OpenID: ev.OpenID,
	}
	if ev.Targets != 0 {
		v.Targets, v.TargetsOK = &ev.Targets, &ev.TargetsOK
	}
	if len(ev.Counts) > 0 {
		v.Counts = make(map[string]int, len(ev.Counts))
		for _, c := range ev.Counts {
			v.Counts[c.Name] = c.N
		}
	}
	return v
}

// eventsAnswer is a page of an audit trail, newest first.
type eventsAnswer struct {
	Events []eventView `json:"events"`
	// NextBefore is the ?before= of the next (older) page, absent on the
	// last.
	NextBefore string `json:"next_before,omitempty"`
}

// listEvents answers GET /v1/campaigns/{id}/events: the campaign's audit
// trail, newest first, ?limit= (1..200, 50) at a time, older pages by
// ?before=.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) *Error {
	return writeEvents(w, r, func(before string, limit int) ([]campaigns.AuditEvent, string, error) {
		return s.cfg.Store.AuditTrail(r.Context(), r.PathValue("id"), before, limit)
	})
}

// listAccountEvents answers GET /v1/accounts/{account}/events: the
// account's audit trail (its suppression list's changes, its mass-send
// speed's), paged as a campaign's; 404 naming account for one this server
// does not send for.
func (s *Server) listAccountEvents(w http.ResponseWriter, r *http.Request) *Error {
	a, e := s.suppressAccount(r)
	if e != nil {
		return e
	}
	return writeEvents(w, r, func(before string, limit int) ([]campaigns.AuditEvent, string, error) {
		return s.cfg.Store.AccountAuditTrail(r.Context(), a.AppID, before, limit)
	})
}

// writeEvents answers a request for a page of an audit trail, which read
// reads: ?limit= (1..200, 50) events, newest first, older pages by
// ?before=.
func writeEvents(w http.ResponseWriter, r *http.Request, read func(before string, limit int) ([]campaigns.AuditEvent, string, error)) *Error {
	q := r.URL.Query()
	limit, e := intParam(q.Get("limit"), "limit", ListLimitDefault, 1, ListLimitMax)
	if e != nil {
		return e
	}
	before := q.Get("before")
	events, next, err := read(before, limit)
	if errors.Is(err, campaigns.ErrAuditCursor) {
		return apiError(http.StatusBadRequest, CodeInvalidField, "before", "before must be the next_before of an earlier page, got %q", before)
	}
	if err != nil {
		return storeError(err)
	}
	out := eventsAnswer{Events: make([]eventView, 0, len(events)), NextBefore: next}
	for _, ev := range events {
		out.Events = append(out.Events, newEventView(ev))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
