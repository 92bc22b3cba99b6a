package reliability

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
)

// Summary is what a scenario reports: one line of the report.
type Summary struct {
	Scenario   string
	Recipients int
	// Outcomes counts the stored outcomes by status, and failures also by
	// class and errcode ("failed(retry,-1)").
	Outcomes map[string]int
	// Duplicates is the fake's count of messages delivered again to the
	// same user.
	Duplicates int64
	// Peak1s is the most calls of the run's API for its account the fake
	// saw in any one-second window; Limit is the account's rate plus
	// burst.
	Peak1s, Limit int
	// Duration is from the run's start to its last outcome; Elapsed is the
	// whole scenario's, set-up included (set by the scenario).
	Duration, Elapsed time.Duration
	// Notes are the scenario's own figures.
	Notes []string
}

// Note adds a figure to the summary.
func (s *Summary) Note(format string, args ...any) {
	s.Notes = append(s.Notes, fmt.Sprintf(format, args...))
}

// statuses are the final outcomes a recipient can have.
var statuses = []string{rdb.OutcomeSent, rdb.OutcomeDelivered, rdb.OutcomeFailed, rdb.OutcomeSkipped, rdb.OutcomeCancelled}

// Check checks DESIGN.md's invariants for a settled run and returns its
// summary. A violation fails the test (after every check has run, so that
// all of them are reported):
//
//   - the run completed with every recipient of its audience settled, and
//     its counters by status add up to the audience size;
//   - the stored outcomes are exactly one per recipient of the audience,
//     and agree with the counters;
//   - no recipient got the message twice: the fake's duplicate count is 0
//     (template sends), and each recipient recorded as sent has exactly one
//     delivery at the fake, whose msgid is the one recorded;
//   - the fake never saw more calls of the run's API for the run's account
//     in any one second than the account's rate plus burst.
func Check(t *testing.T, r *Run) Summary {
	t.Helper()
	ctx := context.Background()
	f := r.Fleet
	n := len(r.OpenIDs)
	s := Summary{Scenario: t.Name(), Recipients: n, Outcomes: map[string]int{}, Limit: r.Account.Limit, Duration: r.Finished.Sub(r.Started)}

	rec, err := r.Record(ctx)
	require.NoError(t, err)
	assert.Equal(t, string(campaigns.StateCompleted), rec.State, "the run completed (reason %q)", rec.Reason)
	assert.EqualValues(t, n, rec.Size, "the run's size is the audience's")
	assert.EqualValues(t, n, rec.Settled(), "every recipient is settled")
	sum := int64(0)
	for _, st := range statuses {
		sum += rec.Counters[st]
	}
	assert.EqualValues(t, n, sum, "the counters by status add up to the audience: %v", rec.Counters)

	audience := make(map[string]bool, n)
	for _, o := range r.OpenIDs {
		audience[o] = true
	}
	stored := make(map[string]rdb.Outcome, n)
	byStatus := map[string]int64{}
	var strangers []string
	require.NoError(t, f.rdb.ScanOutcomes(ctx, r.Campaign, r.Number, func(openid string, o rdb.Outcome) error {
		if _, dup := stored[openid]; dup {
			// HSCAN may return a field twice while the hash is rehashed;
			// a hash cannot hold it twice.
			return nil
		}
		if !audience[openid] {
			strangers = append(strangers, openid)
		}
		stored[openid] = o
		byStatus[o.Status]++
		key := o.Status
		if o.Status == rdb.OutcomeFailed || o.Class != "" {
			key = fmt.Sprintf("%s(%s,%d)", o.Status, o.Class, o.Code)
		}
		s.Outcomes[key]++
		return nil
	}))
	assert.Empty(t, strangers, "outcomes of openids outside the audience")
	assert.Len(t, stored, n, "exactly one outcome per recipient")
	for _, st := range statuses {
		assert.EqualValues(t, rec.Counters[st], byStatus[st], "stored %s outcomes agree with the counter", st)
	}

	api := r.Kind.API()
	stats := f.cfg.Fake.Stats()
	s.Duplicates = stats.DuplicatesDelivered
	var peakAt time.Time
	s.Peak1s, peakAt = f.cfg.Fake.Peak1sAt(r.Account.AppID, api)
	if r.Kind == campaigns.KindTemplate {
		assert.Zero(t, s.Duplicates, "no template recipient got the message twice")
	}
	delivered := map[string][]int64{} // openid -> msgids
	for _, d := range f.cfg.Fake.Deliveries() {
		if d.API == api && d.AppID == r.Account.AppID && audience[d.OpenID] {
			delivered[d.OpenID] = append(delivered[d.OpenID], d.MsgID)
		}
	}
	var twice, sentNotDelivered, wrongMsgID, deliveredNotSent int
	for openid, ids := range delivered {
		if len(ids) > 1 {
			twice++
		}
		if o := stored[openid]; o.Status != rdb.OutcomeSent && o.Status != rdb.OutcomeDelivered {
			deliveredNotSent++
		}
	}
	for openid, o := range stored {
		if o.Status != rdb.OutcomeSent && o.Status != rdb.OutcomeDelivered {
			continue
		}
		ids := delivered[openid]
		switch {
		case len(ids) == 0:
			sentNotDelivered++
		case r.Kind == campaigns.KindTemplate && !slices.Contains(ids, o.MsgID):
			wrongMsgID++
		}
	}
	if r.Kind == campaigns.KindTemplate {
		assert.Zero(t, twice, "recipients with more than one delivery at the fake")
		assert.Zero(t, wrongMsgID, "recipients recorded as sent with a msgid the fake did not answer them")
	}
	assert.Zero(t, sentNotDelivered, "recipients recorded as sent that the fake never received")
	if deliveredNotSent > 0 {
		s.Note("%d delivered but recorded as not sent", deliveredNotSent)
	}
	if !assert.LessOrEqual(t, s.Peak1s, s.Limit, "the fake saw at most rate + burst %s calls of %s in any one second", api, r.Account.AppID) {
		s.Note("peak 1s from %s into the run", peakAt.Sub(r.Started).Round(100*time.Millisecond))
	}
	// wechattest's own count is over every account: when only this one
	// called, it holds it to the limit too.
	if accts := f.cfg.Fake.Accounts(api); len(accts) == 1 && accts[0] == r.Account.AppID {
		assert.LessOrEqual(t, stats.APIs[api].Peak1s, s.Limit, "wechattest's peak of %s calls in one second", api)
	} else {
		s.Note("%s called for %v", api, accts)
	}
	return s
}

// summaryFormat is a line of the report: its columns.
const summaryFormat = "%-28s %10s  %-30s %10s  %-13s %8s %8s  %s\n"

func summaryHeader() string {
	return fmt.Sprintf(strings.TrimSuffix(summaryFormat, "\n"), "scenario", "recipients", "outcomes", "duplicates", "peak 1s/limit", "run", "scenario", "notes")
}

// String formats s as a line of the report.
func (s Summary) String() string {
	keys := slices.Sorted(maps.Keys(s.Outcomes))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, s.Outcomes[k]))
	}
	outcomes := strings.Join(parts, " ")
	if outcomes == "" {
		outcomes = "-"
	}
	notes := strings.Join(s.Notes, "; ")
	return fmt.Sprintf(summaryFormat, s.Scenario, fmt.Sprint(s.Recipients), outcomes, fmt.Sprint(s.Duplicates),
		fmt.Sprintf("%d/%d", s.Peak1s, s.Limit), s.Duration.Round(100*time.Millisecond).String(), s.Elapsed.Round(time.Second).String(), notes)
}

// Report logs s and appends it to the report file. Call it even when a
// check failed: the line says how far the scenario got.
func Report(t *testing.T, s Summary) {
	t.Helper()
	line := s.String()
	t.Log("\n" + summaryHeader() + "\n" + strings.TrimSuffix(line, "\n"))
	appendReport(line)
}

// byteSize formats a byte count for a note: "512 B", "37.5 KiB", "2.1 MiB".
func byteSize(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
}
