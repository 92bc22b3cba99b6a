package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/httpserve"
	"github.com/wxmass/wxmass/internal/media"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
	"github.com/wxmass/wxmass/retry"
	"github.com/wxmass/wxmass/wechat"
)

// Defaults of Config.
const (
	MaxBodyBytesDefault   = 1 << 20   // 1 MiB
	MaxUploadBytesDefault = 512 << 20 // 512 MiB
	IdempotencyTTLDefault = 24 * time.Hour
	ListLimitDefault      = 50
	ListLimitMax          = 200
)

// Config configures a Server. Store, Producer and Keys are required;
// zero values of the others take the defaults named after them.
type Config struct {
	Store    *campaigns.Store
	Producer *producer.Producer
	// Keys are the accepted API keys.
	Keys *KeySet
	// Policy gives errcodes their class and meaning in reports; nil leaves
	// them out.
	Policy *retry.Policy
	// Accounts and WeChat answer the quota endpoint; without them it
	// answers 501.
	Accounts *account.Registry
	WeChat   *wechat.Client
	// Limiter gives test sends (POST /v1/campaigns/{id}/test) their rate
	// tokens from the accounts' buckets; without it, with Accounts and
	// WeChat, test sends answer 501.
	Limiter *ratelimit.Limiter
	// MaxBodyBytes bounds a JSON request body (MaxBodyBytesDefault).
	MaxBodyBytes int64
	// MaxUploadBytes bounds an uploaded audience file
	// (MaxUploadBytesDefault).
	MaxUploadBytes int64
	// IdempotencyTTL is how long an Idempotency-Key is remembered
	// (IdempotencyTTLDefault).
	IdempotencyTTL time.Duration
	// Mount are more handlers served behind the same API key, by path
	// pattern (such as "/metrics" or "/monitoring/"), for operators' tools.
	// Their state changes get the API's CSRF defence and body rules
	// (browser.go).
	Mount map[string]http.Handler
	// SessionTTL is how long a browser session lasts (SessionTTLDefault).
	SessionTTL time.Duration
	// Now reads the time for sessions' expiry (time.Now).
	Now func() time.Time
	// Limits are the request limits per key and per address (limits.go);
	// the zero Limits limits nothing.
	Limits Limits
	// Breakers read the accounts' circuit breakers, for the waiting
	// object of a run's status (with Accounts); nil shows none.
	Breakers Breakers
	// Media stores the files campaigns refer to (POST /v1/media); nil
	// answers 501 there and refuses campaigns that refer to files.
	Media *media.Store
	// MediaCache uploads the files of a message a test send sends (nil:
	// such test sends are refused).
	MediaCache *media.Cache
	// Metrics counts the users operators add to suppression lists; nil
	// counts nothing.
	Metrics SuppressionMetrics
	Logger  *zap.Logger
}

// Server is the HTTP API. It is an http.Handler, safe for concurrent use.
type Server struct {
	cfg Config
	mux *routeMux
	// root is mux behind the CSRF defence.
	root http.Handler
	log  *zap.Logger
	lim  *limits
}

// New returns the API server.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Producer == nil || cfg.Keys == nil {
		return nil, errors.New("api: Store, Producer and Keys are required")
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = MaxBodyBytesDefault
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = MaxUploadBytesDefault
	}
	if cfg.IdempotencyTTL <= 0 {
		cfg.IdempotencyTTL = IdempotencyTTLDefault
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = SessionTTLDefault
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	lim, err := newLimits(cfg.Limits)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, mux: newRouteMux(), log: cfg.Logger, lim: lim}
	s.root = newCrossOriginProtection().Handler(s.mux)
	s.routes()
	return s, nil
}

func (s *Server) routes() {
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	// The contract needs no key: clients read it before they have one.
	s.mux.HandleFunc("GET /v1/openapi.json", s.serveOpenAPI)
	// Signed links carry their own authorization.
	s.mux.HandleFunc("GET /reports/{id}/{run}", s.openReportLink)
	s.sessionRoutes()
	allow := map[string][]string{"/v1/openapi.json": {"GET"}}
	route := func(method, path string, h handler) {
		s.handle(method+" "+path, besideLiterals(path, allow, s.audited(method+" "+path, h)))
		allow[path] = append(allow[path], method)
	}
	route("POST", "/v1/campaigns", s.createCampaign)
	route("GET", "/v1/campaigns", s.listCampaigns)
	route("GET", "/v1/campaigns/{id}", s.getCampaign)
	route("PUT", "/v1/campaigns/{id}", s.updateCampaign)
	route("DELETE", "/v1/campaigns/{id}", s.deleteCampaign)
	route("PUT", "/v1/campaigns/{id}/audience", s.uploadAudience)
	route("POST", "/v1/campaigns/{id}/start", s.startCampaign)
	route("POST", "/v1/campaigns/{id}/pause", s.control((*campaigns.Store).Pause))
	route("POST", "/v1/campaigns/{id}/resume", s.control((*campaigns.Store).Resume))
	route("POST", "/v1/campaigns/{id}/cancel", s.control(func(_ *campaigns.Store, ctx context.Context, id string) error {
		return s.cfg.Producer.Cancel(ctx, id)
	}))
	route("POST", "/v1/campaigns/{id}/schedule", s.scheduleCampaign)
	route("POST", "/v1/campaigns/{id}/unschedule", s.unscheduleCampaign)
	route("POST", "/v1/campaigns/{id}/test", s.testSend)
	route("GET", "/v1/campaigns/{id}/events", s.listEvents)
	route("GET", "/v1/campaigns/{id}/runs/{run}", s.getRun)
	route("GET", "/v1/campaigns/{id}/runs/{run}/report", s.getReport)
	route("GET", "/v1/campaigns/{id}/runs/{run}/report.html", s.getReportPage)
	route("POST", "/v1/campaigns/{id}/runs/{run}/report-link", s.createReportLink)
	route("GET", "/v1/campaigns/{id}/runs/{run}/outcomes.csv", s.exportOutcomes)
	route("POST", "/v1/campaigns/{id}/runs/{run}/retry", s.retryRun)
	route("POST", "/v1/campaigns/{id}/runs/{run}/mass-delete", s.massDeleteRun)
	route("POST", "/v1/messages", s.sendTransactional)
	route("POST", "/v1/media", s.uploadMedia)
	route("GET", "/v1/media", s.listMedia)
	route("GET", "/v1/media/{id}", s.getMedia)
	route("GET", "/v1/accounts", s.listAccounts)
	route("GET", "/v1/accounts/{account}/quota", s.getQuota)
	route("GET", "/v1/accounts/{account}/mass-speed", s.getMassSpeed)
	route("PUT", "/v1/accounts/{account}/mass-speed", s.setMassSpeed)
	route("GET", "/v1/accounts/{account}/events", s.listAccountEvents)
	route("GET", "/v1/accounts/{account}/suppressions", s.listSuppressions)
	route("POST", "/v1/accounts/{account}/suppressions", s.addSuppressions)
	route("GET", "/v1/accounts/{account}/suppressions/{openid}", s.getSuppression)
	route("DELETE", "/v1/accounts/{account}/suppressions/{openid}", s.deleteSuppression)
	route("PUT", "/v1/accounts/{account}/suppressions/import", s.importSuppressions)
	route("GET", "/v1/accounts/{account}/suppressions/export", s.exportSuppressions)
	// Other methods on those paths, and other paths, get the API's error
	// shape rather than the mux's plain text.
	for path, methods := range allow {
		if besideWildcard(path, allow) {
			continue // routes.go: the wildcard's fallback answers it
		}
		s.handle(path, besideLiterals(path, allow, func(w http.ResponseWriter, r *http.Request) *Error {
			return methodNotAllowed(w, r, path, methods)
		}))
	}
	for pattern, h := range s.cfg.Mount {
		s.handle(pattern, func(w http.ResponseWriter, r *http.Request) *Error {
			h.ServeHTTP(w, r)
			return nil
		})
	}
	s.handle("/v1/", func(w http.ResponseWriter, r *http.Request) *Error {
		return apiError(http.StatusNotFound, CodeNotFound, "", "no endpoint %s %s", r.Method, r.URL.Path)
	})
}

// handler is an endpoint: it writes its answer, or returns the error to
// answer with.
type handler func(w http.ResponseWriter, r *http.Request) *Error

// handle registers h behind the API-key check.
func (s *Server) handle(pattern string, h handler) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if !s.admitAddress(w, r) {
			return
		}
		// The key, a browser session, or Basic for reading; and the
		// browser rules (browser.go).
		p, ok := s.admit(w, r)
		if !ok {
			return
		}
		if !s.admitKey(w, r, p) {
			return
		}
		r = r.WithContext(withPrincipal(r.Context(), p))
		e := checkQuery(pattern, r) // query.go
		if e == nil {
			e = h(w, r)
		}
		if e != nil {
			if e.status >= 500 {
				s.log.Error("api request failed", zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.String("error", e.Message))
			}
			writeError(w, e)
		}
	})
}

// authenticate checks the request's API key: "Authorization: Bearer
// <key>" (the scheme in any case), or Basic auth with the key as the
// password (any user name), which admit lets only read.
func (s *Server) authenticate(r *http.Request) (Principal, bool) {
	if _, key, ok := r.BasicAuth(); ok {
		name, ok := s.cfg.Keys.Lookup(key)
		return Principal{Key: name, Via: ViaBasic}, ok
	}
	scheme, key, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, false
	}
	name, ok := s.cfg.Keys.Lookup(strings.TrimSpace(key))
	return Principal{Key: name, Via: ViaBearer}, ok
}

// ServeHTTP implements http.Handler. A panic in a handler is answered with
// a 500 and logged without the request body.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("api panic", zap.String("path", r.URL.Path), zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			writeError(w, apiError(http.StatusInternalServerError, CodeInternal, "", "internal error"))
		}
	}()
	setSecurityHeaders(w.Header())
	r = withRequestID(w, r)
	s.root.ServeHTTP(w, r)
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.cfg.Store.Ping(ctx); err != nil {
		writeError(w, apiError(http.StatusServiceUnavailable, CodeUnavailable, "", "redis does not answer"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// storeError maps the store's errors to the API's.
func storeError(err error) *Error {
	var se *campaigns.StateError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, campaigns.ErrNotFound):
		return apiError(http.StatusNotFound, CodeNotFound, "id", "no such campaign")
	case errors.Is(err, campaigns.ErrRunNotFound):
		return apiError(http.StatusNotFound, CodeNotFound, "run", "no such run")
	case errors.Is(err, campaigns.ErrEmptyAudience):
		return apiError(http.StatusConflict, CodeInvalidState, "audience", "%s", strings.TrimPrefix(err.Error(), "campaigns: "))
	case errors.Is(err, account.ErrUnknown):
		e := apiError(http.StatusUnprocessableEntity, CodeInvalidCampaign, "account", "the campaign's account is not configured in this wxmass")
		e.Errors = []campaigns.FieldError{{Field: "account", Message: e.Message}}
		return e
	case errors.Is(err, campaigns.ErrRecipientsExpired):
		return apiError(http.StatusGone, CodeRecipientsExpired, "run", "the run's per-recipient data has passed the retention and was deleted; its report (the summary) is kept")
	case errors.Is(err, campaigns.ErrNoArchive):
		return apiError(http.StatusServiceUnavailable, CodeUnavailable, "run", "the run is archived and this server has no archive configured (--archive-url)")
	case errors.Is(err, campaigns.ErrRunNotSettled):
		return apiError(http.StatusConflict, CodeRunNotSettled, "run", "%s", strings.TrimPrefix(err.Error(), "campaigns: "))
	case errors.As(err, &se):
		e := apiError(http.StatusConflict, CodeInvalidState, "state", "%s", strings.TrimPrefix(se.Error(), "campaigns: "))
		e.State = string(se.State)
		return e
	}
	if ve := validationError(err); ve != nil {
		return ve
	}
	return apiError(http.StatusInternalServerError, CodeInternal, "", "%s", err.Error())
}

// campaignView is a campaign as the API shows it.
type campaignView struct {
	*campaigns.Campaign
	// LatestRun is the number of the campaign's latest run, 0 before the
	// first.
	LatestRun int `json:"latest_run"`
	// NextFires are the campaign's next fire times (at most
	// campaigns.NextFiresDefault), in its schedule's time zone, while it is
	// on a schedule; see schedules.go.
	NextFires []time.Time `json:"next_fires,omitempty"`
}

// decodeCampaign reads a whole campaign from a create or update body: no
// read-only field, and its account resolved.
func (s *Server) decodeCampaign(w http.ResponseWriter, r *http.Request) (*campaigns.Campaign, *Error) {
	var c campaigns.Campaign
	if e := decodeJSON(w, r, s.cfg.MaxBodyBytes, &c); e != nil {
		return nil, e
	}
	if e := readOnly(&c); e != nil {
		return nil, e
	}
	if e := s.resolveAccount(&c); e != nil {
		return nil, e
	}
	if e := s.checkMediaRefs(r.Context(), &c); e != nil {
		return nil, e
	}
	return &c, nil
}

func (s *Server) createCampaign(w http.ResponseWriter, r *http.Request) *Error {
	c, e := s.decodeCampaign(w, r)
	if e != nil {
		return e
	}
	return s.idempotent(w, r, "create", c, func() (any, int, *Error) {
		if err := s.cfg.Store.Create(r.Context(), c); err != nil {
			return nil, 0, storeError(err)
		}
		noteAudit(r.Context(), c.ID, 0)
		return campaignView{Campaign: c}, http.StatusCreated, nil
	})
}

// resolveAccount makes c name one of the configured accounts by its id:
// the default account when c names none, the account's id when c names its
// appid. An account wxmass does not send for is refused.
func (s *Server) resolveAccount(c *campaigns.Campaign) *Error {
	if s.cfg.Accounts == nil {
		return nil
	}
	a, err := s.cfg.Accounts.Get(c.Account)
	if err != nil {
		e := apiError(http.StatusUnprocessableEntity, CodeInvalidCampaign, "account", "wxmass sends for no account %q (configured: %s)",
			c.Account, strings.Join(accountIDs(s.cfg.Accounts), ", "))
		e.Errors = []campaigns.FieldError{{Field: "account", Message: e.Message}}
		return e
	}
	c.Account = a.ID
	return nil
}

func accountIDs(r *account.Registry) []string {
	var ids []string
	for _, a := range r.All() {
		ids = append(ids, a.ID)
	}
	return ids
}

// readOnly refuses fields the store sets.
func readOnly(c *campaigns.Campaign) *Error {
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"id", c.ID != ""},
		{"state", c.State != ""},
		{"created_at", !c.CreatedAt.IsZero()},
		{"updated_at", !c.UpdatedAt.IsZero()},
		{"tested_at", c.TestedAt != nil},
		{"tested_digest", c.TestedDigest != ""},
	} {
		if f.set {
			return apiError(http.StatusBadRequest, CodeInvalidField, f.name, "%s is set by wxmass, not by the request", f.name)
		}
	}
	return nil
}

// idempotent runs do once per Idempotency-Key: a retry with the same key
// and the same request gets the first answer again, without doing the work
// twice; the same key with another request is refused. Without the header
// it just runs do.
func (s *Server) idempotent(w http.ResponseWriter, r *http.Request, scope string, req any, do func() (any, int, *Error)) *Error {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		v, status, e := do()
		if e != nil {
			return e
		}
		writeJSON(w, status, v)
		return nil
	}
	if len(key) > 255 {
		return apiError(http.StatusBadRequest, CodeInvalidField, "Idempotency-Key", "at most 255 characters, got %d", len(key))
	}
	body, err := json.Marshal(req)
	if err != nil {
		return apiError(http.StatusInternalServerError, CodeInternal, "", "fingerprint: %s", err.Error())
	}
	sum := sha256.Sum256(body)
	fp := hex.EncodeToString(sum[:])
	ctx := r.Context()
	claim, err := s.cfg.Store.ClaimIdempotency(ctx, scope, key, fp, s.cfg.IdempotencyTTL)
	if err != nil {
		return storeError(err)
	}
	switch {
	case claim.Fingerprint != fp:
		return apiError(http.StatusUnprocessableEntity, CodeIdempotencyReuse, "Idempotency-Key", "this key was used with another request")
	case claim.State == campaigns.IdempotencyPending:
		return apiError(http.StatusConflict, CodeIdempotencyBusy, "Idempotency-Key", "a request with this key is in progress; retry later")
	case claim.State == campaigns.IdempotencyDone:
		status, rest, _ := strings.Cut(claim.Result, " ")
		code, _ := strconv.Atoi(status)
		w.Header().Set("Idempotent-Replayed", "true")
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(rest))
		return nil
	}
	v, status, e := do()
	if e != nil {
		// Nothing was done: a retry may try again.
		if err := s.cfg.Store.ReleaseIdempotency(context.WithoutCancel(ctx), scope, key); err != nil {
			s.log.Warn("release idempotency key", zap.Error(err))
		}
		return e
	}
	out, err := json.Marshal(v)
	if err != nil {
		return apiError(http.StatusInternalServerError, CodeInternal, "", "encode: %s", err.Error())
	}
	if err := s.cfg.Store.FinishIdempotency(context.WithoutCancel(ctx), scope, key, fp, strconv.Itoa(status)+" "+string(out), s.cfg.IdempotencyTTL); err != nil {
		s.log.Warn("finish idempotency key", zap.Error(err))
	}
	writeJSON(w, status, v)
	return nil
}

func (s *Server) getCampaign(w http.ResponseWriter, r *http.Request) *Error {
	return s.writeCampaign(r.Context(), w, r.PathValue("id"))
}

// listAnswer is a page of campaigns.
type listAnswer struct {
	Campaigns []campaignView `json:"campaigns"`
	// Total is the number of campaigns, whatever their state.
	Total int64 `json:"total"`
	// NextOffset is the offset of the next page, absent on the last.
	NextOffset *int64 `json:"next_offset,omitempty"`
}

// pageParams reads a list's limit (ListLimitDefault, at most
// ListLimitMax) and offset query parameters.
func pageParams(q url.Values) (limit, offset int, e *Error) {
	if limit, e = intParam(q.Get("limit"), "limit", ListLimitDefault, 1, ListLimitMax); e != nil {
		return 0, 0, e
	}
	if offset, e = intParam(q.Get("offset"), "offset", 0, 0, 1<<40); e != nil {
		return 0, 0, e
	}
	return limit, offset, nil
}

// ListScanMax bounds how many campaigns one page of a filtered list looks
// at, so that a filter few campaigns match answers in the same time as an
// unfiltered page: the page may then be short, or empty, with a
// next_offset to go on from.
const ListScanMax = 2000

// listFilter is a list's filters.
type listFilter struct {
	state   campaigns.State
	account string
	name    string // lower case
}

func (f listFilter) none() bool { return f.state == "" && f.account == "" && f.name == "" }

func (f listFilter) match(c *campaigns.Campaign) bool {
	return (f.state == "" || c.State == f.state) && (f.account == "" || c.Account == f.account) &&
		(f.name == "" || strings.Contains(strings.ToLower(c.Name), f.name))
}

func (s *Server) listCampaigns(w http.ResponseWriter, r *http.Request) *Error {
	q := r.URL.Query()
	limit, offset, e := pageParams(q)
	if e != nil {
		return e
	}
	f := listFilter{state: campaigns.State(q.Get("state")), account: q.Get("account"), name: strings.ToLower(strings.TrimSpace(q.Get("q")))}
	if f.state != "" && !f.state.Valid() {
		return apiError(http.StatusBadRequest, CodeInvalidField, "state", "unknown state %q", f.state)
	}
	if len(f.account) > 64 {
		return apiError(http.StatusBadRequest, CodeInvalidField, "account", "an account id has at most 64 characters")
	}
	if utf8.RuneCountInString(f.name) > 200 {
		return apiError(http.StatusBadRequest, CodeInvalidField, "q", "at most 200 characters")
	}
	ctx := r.Context()
	out := listAnswer{Campaigns: []campaignView{}}
	pos, scanned := int64(offset), 0
	for len(out.Campaigns) < limit && (f.none() || scanned < ListScanMax) {
		n := int64(limit)
		if !f.none() {
			n = int64(min(ListScanMax-scanned, 200))
		}
		ids, total, err := s.cfg.Store.List(ctx, pos, n)
		if err != nil {
			return storeError(err)
		}
		out.Total = total
		if len(ids) == 0 {
			break
		}
		for _, id := range ids {
			pos++
			scanned++
			c, run, err := s.cfg.Store.Latest(ctx, id)
			if errors.Is(err, campaigns.ErrNotFound) {
				continue
			}
			if err != nil {
				return storeError(err)
			}
			if f.match(c) {
				out.Campaigns = append(out.Campaigns, campaignView{Campaign: c, LatestRun: run})
				if len(out.Campaigns) == limit {
					break
				}
			}
		}
	}
	if pos < out.Total {
		out.NextOffset = &pos
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func intParam(v, name string, def, lo, hi int) (int, *Error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, apiError(http.StatusBadRequest, CodeInvalidField, name, "%s must be a whole number from %d to %d, got %q", name, lo, hi, v)
	}
	return n, nil
}

func (s *Server) uploadAudience(w http.ResponseWriter, r *http.Request) *Error {
	var f campaigns.Format
	switch ct, _, _ := strings.Cut(r.Header.Get("Content-Type"), ";"); strings.TrimSpace(ct) {
	case "text/csv":
		f = campaigns.FormatCSV
	case "application/x-ndjson", "application/jsonl", "application/x-jsonlines":
		f = campaigns.FormatJSONL
	default:
		return apiError(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, "Content-Type",
			"send text/csv or application/x-ndjson, not %q", ct)
	}
	body := http.MaxBytesReader(w, httpserve.Upload(r), s.cfg.MaxUploadBytes)
	res, err := s.cfg.Store.UploadAudience(r.Context(), r.PathValue("id"), body, f)
	var big *http.MaxBytesError
	var fe *campaigns.FileError
	switch {
	case errors.As(err, &big):
		return apiError(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "", "the file is larger than %d bytes; nothing was stored", s.cfg.MaxUploadBytes)
	case errors.As(err, &fe):
		e := apiError(http.StatusUnprocessableEntity, CodeInvalidAudience, "", "%s; nothing was stored: the audience is as it was", strings.TrimPrefix(fe.Error(), "campaigns: "))
		writeRefused(r.Context(), w, e, fe.Line, res.Report)
		return nil
	case err != nil && strings.Contains(err.Error(), "only a file audience takes an upload"):
		return apiError(http.StatusConflict, CodeInvalidState, "audience.source", "%s", strings.TrimPrefix(err.Error(), "campaigns: "))
	case err != nil:
		return storeError(err)
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// writeRefused answers a body refused as a whole (an audience file, a
// suppression import) with e, its field "line N" when it names line N (0:
// none), beside the report of what was read, and tells the audit trail
// its code.
func writeRefused(ctx context.Context, w http.ResponseWriter, e *Error, line int, report any) {
	noteAuditCode(ctx, e.Code)
	if line > 0 {
		e.Field = "line " + strconv.Itoa(line)
	}
	writeJSON(w, e.status, map[string]any{"error": e, "report": report})
}

// runStarted is the answer to a start or a transactional send.
type runStarted struct {
	Campaign string `json:"campaign"`
	Run      int    `json:"run"`
	// Warnings say what the operator should know before the run sends:
	// for a mass campaign, the recipients WeChat will filter for their
	// monthly cap (producer.Producer.MassWarnings).
	Warnings []string `json:"warnings,omitempty"`
}

func (s *Server) startCampaign(w http.ResponseWriter, r *http.Request) *Error {
	id := r.PathValue("id")
	run, warnings, err := s.cfg.Producer.StartWarned(r.Context(), id)
	if err != nil {
		return startError(err) // start.go
	}
	noteAudit(r.Context(), id, run)
	writeJSON(w, http.StatusAccepted, runStarted{Campaign: id, Run: run, Warnings: warnings})
	return nil
}

// control is a pause, resume or cancel.
func (s *Server) control(op func(*campaigns.Store, context.Context, string) error) handler {
	return func(w http.ResponseWriter, r *http.Request) *Error {
		id := r.PathValue("id")
		if err := op(s.cfg.Store, r.Context(), id); err != nil {
			return storeError(err)
		}
		c, run, err := s.cfg.Store.Latest(r.Context(), id)
		if err != nil {
			return storeError(err)
		}
		writeJSON(w, http.StatusOK, campaignView{Campaign: c, LatestRun: run})
		return nil
	}
}

// runView is a run's live status.
type runView struct {
	Campaign string `json:"campaign"`
	// Account is the campaign's account.
	Account string `json:"account"`
	Run     int    `json:"run"`
	// State is running, paused, stopping (stopped: its last recipients are
	// getting their outcomes; Final says what it will end as), completed,
	// failed or cancelled. Finished is set only once every recipient has
	// an outcome.
	State    string     `json:"state"`
	Final    string     `json:"final,omitempty"`
	Reason   string     `json:"reason,omitempty"`
	Size     int64      `json:"size"`
	Expanded int64      `json:"expanded"`
	Settled  int64      `json:"settled"`
	Started  time.Time  `json:"started"`
	Stopped  *time.Time `json:"stopped,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
	// Counters are the run's counters: per outcome, "code:N", "class:X"
	// and "total".
	Counters map[string]int64 `json:"counters"`
	// Waiting is set while the run's sends wait for WeChat or for quiet
	// hours (waiting.go).
	Waiting *waitingView `json:"waiting,omitempty"`
	// Protection counts the recipients the account's protection held
	// back, absent when it held back none (protection.go).
	Protection *runProtectionView `json:"protection,omitempty"`
	// Mass is a mass run's batches (mass.go).
	Mass *massView `json:"mass,omitempty"`
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) *Error {
	id := r.PathValue("id")
	run, err := strconv.Atoi(r.PathValue("run"))
	if err != nil || run <= 0 {
		return apiError(http.StatusBadRequest, CodeInvalidField, "run", "run must be a positive whole number, got %q", r.PathValue("run"))
	}
	c, err := s.cfg.Store.Get(r.Context(), id)
	if err != nil {
		return storeError(err)
	}
	rec, err := s.cfg.Store.Run(r.Context(), id, run)
	if err != nil {
		return storeError(err)
	}
	v := runView{Campaign: id, Account: c.Account, Run: run, State: rec.State, Final: rec.Final, Reason: rec.Reason, Size: rec.Size,
		Expanded: rec.Expanded, Settled: rec.Settled(), Started: rec.Started, Counters: rec.Counters}
	if !rec.Stopped.IsZero() {
		v.Stopped = &rec.Stopped
	}
	if !rec.Finished.IsZero() {
		v.Finished = &rec.Finished
	}
	if rec.Finished.IsZero() {
		v.Waiting = s.waiting(r.Context(), c, rec)
	}
	if v.Protection, err = s.runProtection(r.Context(), c, run, rec); err != nil {
		return storeError(err)
	}
	if v.Mass, err = s.mass(r.Context(), c, run, rec.MassCapped); err != nil {
		return storeError(err)
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) sendTransactional(w http.ResponseWriter, r *http.Request) *Error {
	var c campaigns.Campaign
	if e := decodeJSON(w, r, s.cfg.MaxBodyBytes, &c); e != nil {
		return e
	}
	if e := readOnly(&c); e != nil {
		return e
	}
	if c.Audience.Source != campaigns.SourceInline || len(c.Audience.OpenIDs) != 1 {
		return apiError(http.StatusBadRequest, CodeInvalidField, "audience", "a transactional send has an inline audience of exactly one openid")
	}
	if c.RequireTest {
		return apiError(http.StatusUnprocessableEntity, CodeInvalidField, "require_test", "a transactional send starts at once: it cannot wait for a test")
	}
	if e := s.resolveAccount(&c); e != nil {
		return e
	}
	return s.idempotent(w, r, "message", &c, func() (any, int, *Error) {
		run, err := s.cfg.Producer.SendTransactional(r.Context(), &c)
		// A send refused after its campaign was stored is in its trail.
		noteAudit(r.Context(), c.ID, run)
		if err != nil {
			return nil, 0, storeError(err)
		}
		return runStarted{Campaign: c.ID, Run: run}, http.StatusAccepted, nil
	})
}
