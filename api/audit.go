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
)

// The audit trail: every state-changing request is recorded with the name
// of the key that made it, as one "audit" log line and, when it names a
// stored campaign, as an event of that campaign's trail in Redis
// (campaigns.Store.RecordAudit), which GET /v1/campaigns/{id}/events reads.

// auditActions names the action of each state-changing route, by the
// pattern route() registers it with. A route not listed is not audited:
// list every new route that changes anything.
var auditActions = map[string]string{
	"POST /v1/campaigns":                             "create",
	"PUT /v1/campaigns/{id}":                         "update",
	"DELETE /v1/campaigns/{id}":                      "delete",
	"PUT /v1/campaigns/{id}/audience":                "upload",
	"POST /v1/campaigns/{id}/start":                  "start",
	"POST /v1/campaigns/{id}/schedule":               "schedule",
	"POST /v1/campaigns/{id}/unschedule":             "unschedule",
	"POST /v1/campaigns/{id}/pause":                  "pause",
	"POST /v1/campaigns/{id}/resume":                 "resume",
	"POST /v1/campaigns/{id}/cancel":                 "cancel",
	"POST /v1/campaigns/{id}/runs/{run}/retry":       "retry",
	"POST /v1/campaigns/{id}/runs/{run}/report-link": "report-link",
	"POST /v1/messages":                              "send",
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

// audit logs one request and stores it in its campaign's trail.
func (s *Server) audit(r *http.Request, action string, note *auditNote, status int, code string, replayed bool) {
	p, _ := PrincipalFrom(r.Context())
	e := campaigns.AuditEvent{
		Key: p.Key, Via: p.Via, Action: action, Campaign: note.campaign, Run: note.run, Status: status, Code: code,
		Remote: remoteIP(r), RequestID: RequestIDFrom(r.Context()),
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditTimeout)
	defer cancel()
	stored, err := s.cfg.Store.RecordAudit(ctx, e)
	fields := []zap.Field{zap.String("action", action), zap.String("key", e.Key), zap.String("via", e.Via)}
	if e.Campaign != "" {
		fields = append(fields, zap.String("campaign_id", e.Campaign))
	}
	if e.Run != 0 {
		fields = append(fields, zap.Int("run", e.Run))
	}
	fields = append(fields, zap.Int("status", status))
	if code != "" {
		fields = append(fields, zap.String("code", code))
	}
	if replayed {
		fields = append(fields, zap.Bool("replayed", true))
	}
	fields = append(fields, zap.String("remote", e.Remote), zap.String("request_id", e.RequestID), zap.Bool("stored", stored))
	s.log.Info("audit", fields...)
	if err != nil {
		s.log.Warn("audit event not stored", zap.String("request_id", e.RequestID), zap.String("campaign_id", e.Campaign), zap.Error(err))
	}
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

// eventView is an audit event as GET /v1/campaigns/{id}/events shows it.
type eventView struct {
	// At is when it happened, RFC 3339 in UTC with milliseconds.
	At  string `json:"at"`
	Key string `json:"key"`
	Via string `json:"via"`
	// Action is create, update, upload, start, schedule, unschedule,
	// pause, resume, cancel, retry, send or report-link.
	Action   string `json:"action"`
	Campaign string `json:"campaign"`
	// Run is the run the request created (start, retry, send) or named
	// (report-link, a refused retry).
	Run    int    `json:"run,omitempty"`
	Status int    `json:"status"`
	Code   string `json:"code,omitempty"`
	Remote string `json:"remote"`
	// RequestID is the X-Request-Id of the request and its answer.
	RequestID string `json:"request_id"`
}

// eventsAnswer is a page of a campaign's audit trail, newest first.
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
	q := r.URL.Query()
	limit, e := intParam(q.Get("limit"), "limit", ListLimitDefault, 1, ListLimitMax)
	if e != nil {
		return e
	}
	before := q.Get("before")
	events, next, err := s.cfg.Store.AuditTrail(r.Context(), r.PathValue("id"), before, limit)
	if errors.Is(err, campaigns.ErrAuditCursor) {
		return apiError(http.StatusBadRequest, CodeInvalidField, "before", "before must be the next_before of an earlier page, got %q", before)
	}
	if err != nil {
		return storeError(err)
	}
	out := eventsAnswer{Events: make([]eventView, 0, len(events)), NextBefore: next}
	for _, ev := range events {
		out.Events = append(out.Events, eventView{
			At: ev.At.UTC().Format("2006-01-02T15:04:05.000Z07:00"), Key: ev.Key, Via: ev.Via, Action: ev.Action,
			Campaign: ev.Campaign, Run: ev.Run, Status: ev.Status, Code: ev.Code, Remote: ev.Remote, RequestID: ev.RequestID,
		})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
