package campaigns

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/wxmass/wxmass/internal/rdb"
)

// Errors of the store.
var (
	// ErrNotFound is returned for a campaign id that is not stored.
	ErrNotFound = errors.New("campaigns: campaign not found")
	// ErrEmptyAudience is returned when a run would start with no
	// recipients.
	ErrEmptyAudience = errors.New("campaigns: the audience is empty")
)

// StateError is an operation refused because of the campaign's state.
type StateError struct {
	Op    string
	State State
}

func (e *StateError) Error() string {
	return fmt.Sprintf("campaigns: cannot %s a campaign that is %s", e.Op, e.State)
}

// Is makes a StateError match ErrBadTransition.
func (e *StateError) Is(t error) bool { return t == ErrBadTransition }

// Store keeps campaigns, their audiences and their runs in Redis. It is safe
// for concurrent use.
type Store struct {
	r      *rdb.RDB
	now    func() time.Time
	ledger LedgerConfig
	// archive holds the archive files of finished runs; nil for none.
	archive *Archive
}

// NewStore returns a Store on r, whose ledger has the default
// configuration (see WithLedger).
func NewStore(r *rdb.RDB) *Store {
	return (&Store{r: r, now: time.Now}).WithLedger(LedgerConfig{})
}

// WithClock returns a copy of s that reads the time from now instead of
// time.Now: creation and update times, and the first fire time of a
// schedule.
func (s *Store) WithClock(now func() time.Time) *Store {
	c := *s
	c.now = now
	return &c
}

// idAlphabet is Crockford's base32 in lower case: no i, l, o, u.
const idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"

// NewID returns a new campaign id, "c" and 12 random base32 characters.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, 1, 13)
	out[0] = 'c'
	for _, x := range b {
		out = append(out, idAlphabet[int(x)%len(idAlphabet)])
	}
	return string(out)
}

// ValidID reports whether id has the form NewID gives, so that ids from
// requests can be checked before they reach Redis keys.
func ValidID(id string) bool {
	if len(id) != 13 || id[0] != 'c' {
		return false
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// inlineBatch is how many inline openids go to Redis per round trip.
const inlineBatch = 1000

// Create validates c and stores it as a draft with a new id (set in c.ID).
// An inline audience is stored with it.
func (s *Store) Create(ctx context.Context, c *Campaign) error {
	if err := c.ValidateAt(s.now()); err != nil {
		return err
	}
	c.Schedule = c.Schedule.withDefaults()
	c.ID = NewID()
	c.State = StateDraft
	c.CreatedAt = s.now().UTC()
	c.UpdatedAt = c.CreatedAt
	doc, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("campaigns: encode: %w", err)
	}
	if err := s.r.CreateCampaign(ctx, c.ID, doc, string(StateDraft), c.CreatedAt); err != nil {
		return err
	}
	if c.Audience.Source == SourceInline {
		entries := make([]rdb.AudienceEntry, 0, min(inlineBatch, len(c.Audience.OpenIDs)))
		for i, o := range c.Audience.OpenIDs {
			entries = append(entries, rdb.AudienceEntry{OpenID: o})
			if len(entries) == inlineBatch || i == len(c.Audience.OpenIDs)-1 {
				if _, _, err := s.r.AppendAudience(ctx, c.ID, entries, string(StateDraft)); err != nil {
					return err
				}
				entries = entries[:0]
			}
		}
	}
	return nil
}

// Get returns the campaign with its current state.
func (s *Store) Get(ctx context.Context, id string) (*Campaign, error) {
	c, _, err := s.Latest(ctx, id)
	return c, err
}

// Latest returns the campaign with its current state and the number of its
// latest run (0 before the first).
func (s *Store) Latest(ctx context.Context, id string) (*Campaign, int, error) {
	rec, err := s.r.GetCampaign(ctx, id)
	if errors.Is(err, rdb.ErrCampaignNotFound) || err == nil && rec.State == rdb.StateDeleting {
		// A campaign being deleted (see Delete) is gone for its readers.
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, 0, err
	}
	var c Campaign
	if err := json.Unmarshal(rec.Doc, &c); err != nil {
		return nil, 0, fmt.Errorf("campaigns: decode %s: %w", id, err)
	}
	c.State = State(rec.State)
	if !rec.Updated.IsZero() {
		c.UpdatedAt = rec.Updated.UTC()
	}
	// The test record lives beside the document, which may hold a stale
	// copy of it (documents are written back from a Get).
	c.TestedAt, c.TestedDigest = nil, rec.TestedDigest
	if !rec.TestedAt.IsZero() {
		at := rec.TestedAt.UTC()
		c.TestedAt = &at
	}
	return &c, rec.Run, nil
}

// DoneState is the state a campaign takes when a run gives its last
// recipient an outcome.
func DoneState(c *Campaign) string { return string(StateCompleted) }

// StartRun begins the campaign's next run: the campaign and the run are
// running. A campaign that requires a test and has no current one is
// refused with ErrTestRequired (see Campaign.TestCurrent). A run of an
// inline or file audience is sized now; a run of followers or a tag is
// sized by its launch, which fetches them, and so is a mass run, whose
// launch cuts it into batches.
func (s *Store) StartRun(ctx context.Context, c *Campaign) (int, error) {
	if err := c.checkTested(); err != nil {
		return 0, err
	}
	size, list := int64(-1), ""
	switch c.Audience.Source {
	case SourceInline, SourceFile:
		n, err := s.r.AudienceLen(ctx, c.ID)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, fmt.Errorf("%w: upload an audience file first", ErrEmptyAudience)
		}
		size, list = n, s.r.Keys().Audience(c.ID)
	}
	if c.Kind == KindMass {
		// The launch cuts the run into batches (LaunchMass).
		size, list = -1, ""
	}
	run, err := s.r.StartRun(ctx, c.ID, string(StateRunning), string(StateRunning), size, list,
		string(StateDraft), string(StateScheduled), string(StateCompleted))
	return run, s.stateErr("start", c.ID, err)
}

func (s *Store) stateErr(op, id string, err error) error {
	var se *rdb.StateError
	switch {
	case errors.As(err, &se):
		return &StateError{Op: op, State: State(se.State)}
	case errors.Is(err, rdb.ErrCampaignNotFound):
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return err
}

func (s *Store) setStates(ctx context.Context, op, id string, to State, reason string, from ...State) error {
	rec, err := s.r.GetCampaign(ctx, id)
	if err != nil {
		return s.stateErr(op, id, err)
	}
	fs := make([]string, len(from))
	for i, f := range from {
		fs[i] = string(f)
	}
	return s.stateErr(op, id, s.r.SetStates(ctx, id, rec.Run, string(to), string(to), reason, fs...))
}

// Pause stops a running campaign's sends until Resume; sends already
// queued wait without using up their retries.
func (s *Store) Pause(ctx context.Context, id string) error {
	return s.setStates(ctx, "pause", id, StatePaused, "", StateRunning)
}

// Resume restarts a paused campaign.
func (s *Store) Resume(ctx context.Context, id string) error {
	return s.setStates(ctx, "resume", id, StateRunning, "", StatePaused)
}

// Cancel stops a campaign for good. A live run stops (see Stop): every
// recipient without an outcome gets one, cancelled if it was certainly
// never sent and unknown if an attempt may have reached WeChat, and the
// run and the campaign are cancelled once all have theirs. A campaign
// without a live run is cancelled at once. It leaves its schedule either
// way. It reports whether a run was stopped, which the caller must then
// settle (SettleStopped).
func (s *Store) Cancel(ctx context.Context, id string) (stopped bool, run int, err error) {
	rec, err := s.r.GetCampaign(ctx, id)
	if err != nil {
		return false, 0, s.stateErr("cancel", id, err)
	}
	switch State(rec.State) {
	case StateRunning, StatePaused:
		stopped, err = s.Stop(ctx, id, rec.Run, StateCancelled, "cancelled by an operator")
		if err != nil {
			return false, 0, err
		}
		if !stopped {
			// It finished or stopped meanwhile: what is its state now?
			return s.Cancel(ctx, id)
		}
	default:
		err := s.r.SetStates(ctx, id, rec.Run, string(StateCancelled), "", "cancelled by an operator",
			string(StateDraft), string(StateScheduled), string(StateCompleted))
		if err != nil {
			return false, 0, s.stateErr("cancel", id, err)
		}
	}
	// Once cancelled, no fire can claim the campaign: this only tidies its
	// schedule, and the cancel stands if it fails (the next scheduler to
	// find the index entry drops it), so its error is not the cancel's.
	_ = s.r.DropSchedule(ctx, id)
	return stopped, rec.Run, nil
}

// uploadBatch is how many recipients of an upload go to Redis per round
// trip.
const uploadBatch = 1000

// UploadResult is what UploadAudience stored.
type UploadResult struct {
	// Stored is the number of recipients now in the audience.
	Stored int `json:"stored"`
	// Report counts and lists the file's problems, by line.
	Report Report `json:"report"`
}

// UploadAudience replaces a draft campaign's audience with the recipients
// of an uploaded file, streamed: the file is never held whole in memory.
// Every recipient is rendered and checked against WeChat's field rules as
// it is read, so a value WeChat would refuse is a line error now rather than
// a failed send later. Lines with problems are reported and skipped; a file
// error (no openid column, a missing variable column, too many bad lines,
// an I/O error) stores nothing, and so does a file with no valid recipient
// at all (a *FileError wrapping ErrNoRecipients, with the report): it
// would empty the audience. Either way, the audience stored before is
// untouched until the whole file has been read.
func (s *Store) UploadAudience(ctx context.Context, id string, r io.Reader, f Format) (UploadResult, error) {
	c, err := s.Get(ctx, id)
	if err != nil {
		return UploadResult{}, err
	}
	if c.State != StateDraft {
		return UploadResult{}, &StateError{Op: "upload an audience to", State: c.State}
	}
	if c.Audience.Source != SourceFile {
		return UploadResult{}, fmt.Errorf("campaigns: audience.source is %q: only a file audience takes an upload", c.Audience.Source)
	}
	msg, err := c.Compile()
	if err != nil {
		return UploadResult{}, err
	}
	vars := msg.Variables()
	ar := NewAudienceReader(r, f, AudienceOptions{RequiredVars: vars, Check: msg.CheckRecipient})
	if err := s.r.DropStagedAudience(ctx, id); err != nil {
		return UploadResult{}, err
	}
	stored := 0
	batch := make([]rdb.AudienceEntry, 0, uploadBatch)
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		added, _, err := s.r.AppendAudienceStaging(ctx, id, batch, string(StateDraft))
		stored += added
		batch = batch[:0]
		return err
	}
	fail := func(err error) (UploadResult, error) {
		if derr := s.r.DropStagedAudience(context.WithoutCancel(ctx), id); derr != nil {
			err = errors.Join(err, derr)
		}
		return UploadResult{Report: ar.Report()}, err
	}
	for {
		rcp, err := ar.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(err)
		}
		e := rdb.AudienceEntry{OpenID: rcp.OpenID}
		if len(vars) > 0 {
			// Only the variables the message uses are kept.
			used := make(map[string]string, len(vars))
			for _, v := range vars {
				used[v] = rcp.Vars[v]
			}
			b, err := json.Marshal(used)
			if err != nil {
				return fail(fmt.Errorf("campaigns: encode variables of line %d: %w", rcp.Line, err))
			}
			e.Vars = string(b)
		}
		batch = append(batch, e)
		if len(batch) == uploadBatch {
			if err := flush(); err != nil {
				return fail(err)
			}
		}
	}
	if err := flush(); err != nil {
		return fail(err)
	}
	rep := ar.Report()
	if rep.Accepted == 0 {
		return fail(&FileError{Message: noRecipients(rep), Err: ErrNoRecipients})
	}
	c.Audience.Variables = rep.Variables
	c.UpdatedAt = s.now().UTC()
	doc, err := json.Marshal(c)
	if err != nil {
		return fail(fmt.Errorf("campaigns: encode: %w", err))
	}
	if err := s.r.CommitAudience(ctx, id, doc, string(StateDraft)); err != nil {
		return UploadResult{Report: rep}, s.stateErr("upload an audience to", id, err)
	}
	return UploadResult{Stored: stored, Report: rep}, nil
}

// noRecipients says why a file held no valid recipient, from its report.
func noRecipients(rep Report) string {
	if rep.Lines == rep.Blank {
		return "the file holds no recipient"
	}
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{rep.InvalidOpenIDs, "invalid openids"}, {rep.Invalid, "invalid"}, {rep.Duplicates, "duplicates"}, {rep.Blank, "blank"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	return fmt.Sprintf("none of the file's %d lines is a valid recipient (%s; the report lists them)",
		rep.Lines, strings.Join(parts, ", "))
}
