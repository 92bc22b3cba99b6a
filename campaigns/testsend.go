package campaigns

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wxmass/wxmass/internal/rdb"
)

// Test sends: a campaign's message sent to a few test targets outside any
// run (no run, outcome or counter changes), so that an operator sees it as
// users will before it starts. The API sends them; the store keeps the
// digest of the message the last successful one reached, which
// Campaign.RequireTest asks for.

// Bounds of a test send's targets (openids and WeChat IDs together).
const (
	TestTargetsMin = 1
	TestTargetsMax = 20
)

// ErrTestRequired is returned by Store.StartRun and Store.Schedule for a
// campaign with RequireTest whose message has had no successful test send
// since it last changed.
var ErrTestRequired = errors.New("campaigns: send a test first: POST /v1/campaigns/{id}/test")

// ErrTestAs is wrapped by the errors of Store.TestVariables about the
// recipient whose variables a test send renders (the request's "as").
var ErrTestAs = errors.New("campaigns: test recipient")

// MessageDigest is a digest of what the campaign sends: its account, kind
// and message spec. It changes when the message does, and not when the
// name, audience, schedule, rate or priority do. It is "sha256:" and 64 hex
// digits.
func (c *Campaign) MessageDigest() string {
	// encoding/json writes struct fields in order and map keys sorted, so
	// the same message always has the same encoding.
	b, err := json.Marshal(struct {
		Account   string         `json:"account"`
		Kind      Kind           `json:"kind"`
		Template  *TemplateSpec  `json:"template,omitempty"`
		Custom    *CustomSpec    `json:"custom,omitempty"`
		Subscribe *SubscribeSpec `json:"subscribe,omitempty"`
		Mass      *MassSpec      `json:"mass,omitempty"`
	}{c.Account, c.Kind, c.Template, c.Custom, c.Subscribe, c.Mass})
	if err != nil {
		// Specs of strings, numbers and maps of strings always encode;
		// an empty digest matches no stored one.
		return ""
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// TestCurrent reports whether the campaign's last successful test send
// (TestedDigest) sent the message it has now.
func (c *Campaign) TestCurrent() bool {
	return c.TestedAt != nil && c.TestedDigest != "" && c.TestedDigest == c.MessageDigest()
}

// checkTested returns ErrTestRequired for a campaign that requires a
// current test and has none.
func (c *Campaign) checkTested() error {
	if c.RequireTest && !c.TestCurrent() {
		return ErrTestRequired
	}
	return nil
}

// TestClientMsgID returns a new client_msg_id for one template test send:
// "wxtest" and 16 random base32 characters, unlike every run's, so that a
// test never shares WeChat's dedupe window with a real send, nor with
// another test.
func TestClientMsgID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, 0, 22)
	out = append(out, "wxtest"...)
	for _, x := range b {
		out = append(out, idAlphabet[int(x)%len(idAlphabet)])
	}
	return string(out)
}

// RecordTest stores digest, the MessageDigest of the message a successful
// test send of campaign id reached, and returns when it was stored (by
// Redis's clock). It returns ErrNotFound for a campaign that does not
// exist. The digest, not the state, says whether the test is current: a
// message changed while the test was sent keeps its old digest.
func (s *Store) RecordTest(ctx context.Context, id, digest string) (time.Time, error) {
	at, err := s.r.RecordCampaignTest(ctx, id, digest)
	if errors.Is(err, rdb.ErrCampaignNotFound) {
		return time.Time{}, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return at.UTC(), err
}

// testScanPage is how many audience entries TestVariables reads at a time
// while it looks for a recipient with variables.
const testScanPage = 200

// TestVariables returns the recipient, and its variables, whose values a
// test send of c renders msg with. A message without variables needs none:
// it returns "" and nil, and an error wrapping ErrTestAs if as is set. For
// a message with variables (a file audience's), as names the recipient; it
// must be in the audience and have every variable the message uses (an
// error wrapping ErrTestAs says which is wrong). When as is "", it is the
// first recipient of the audience that has variables; ErrEmptyAudience
// when there is none.
func (s *Store) TestVariables(ctx context.Context, c *Campaign, msg *Message, as string) (string, map[string]string, error) {
	used := msg.Variables()
	if len(used) == 0 {
		if as != "" {
			return "", nil, fmt.Errorf("%w: the message uses no variables: leave as out", ErrTestAs)
		}
		return "", nil, nil
	}
	if as != "" {
		if !ValidOpenID(as) {
			return "", nil, fmt.Errorf("%w: %s is not an openid", ErrTestAs, quoteValue(as))
		}
		raw, found, err := s.r.AudienceVarsOf(ctx, c.ID, []string{as})
		if err != nil {
			return "", nil, err
		}
		if !found[0] {
			return "", nil, fmt.Errorf("%w: %s is not in the campaign's audience", ErrTestAs, as)
		}
		vars, err := testVars(raw[0], used)
		if err != nil {
			return "", nil, fmt.Errorf("%w: %s: %w", ErrTestAs, as, err)
		}
		return as, vars, nil
	}
	list := s.r.Keys().Audience(c.ID)
	for start := int64(0); ; start += testScanPage {
		ids, err := s.r.AudienceRange(ctx, list, start, start+testScanPage-1)
		if err != nil {
			return "", nil, err
		}
		if len(ids) == 0 {
			return "", nil, fmt.Errorf("%w: no recipient of the audience has the message's variables (%s)",
				ErrEmptyAudience, strings.Join(used, ", "))
		}
		raw, found, err := s.r.AudienceVarsOf(ctx, c.ID, ids)
		if err != nil {
			return "", nil, err
		}
		for i, id := range ids {
			if !found[i] || raw[i] == "" {
				continue
			}
			if vars, err := testVars(raw[i], used); err == nil {
				return id, vars, nil
			}
		}
	}
}

// testVars decodes a recipient's stored variables and checks that it has
// every one of used.
func testVars(raw string, used []string) (map[string]string, error) {
	vars := map[string]string{}
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &vars); err != nil {
			return nil, fmt.Errorf("its stored variables do not decode: %w", err)
		}
	}
	var missing []string
	for _, v := range used {
		if _, ok := vars[v]; !ok {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("it has no variable %s", strings.Join(missing, ", "))
	}
	return vars, nil
}
