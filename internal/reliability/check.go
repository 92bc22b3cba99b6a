package reliability

import (
	"cmp"
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
	"github.com/wxmass/wxmass/internal/truth"
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

// Check checks DESIGN.md's invariants for a settled run (and the retry
// runs that followed it, if any) and returns the first run's summary. A
// violation fails the test (after every check has run, so that all of them
// are reported):
//
//   - each run finished in its Want state (completed by default) with
//     every recipient settled, and its counters by status add up to its
//     size;
//   - the stored outcomes are exactly one per recipient (the first run's:
//     one per recipient of its audience), and agree with the counters;
//   - each recipient's truth against the fake's record (internal/truth):
//     delivered at most once; sent (in one run at most) means delivered
//     exactly once with the msgid recorded; skipped, cancelled and failed
//     mean never delivered; unknown only where the fake recorded a call
//     whose answer the client could not read, or a killed worker began the
//     attempt;
//   - the fake never saw more calls of the run's API for the run's account
//     in any one second than the account's rate plus burst.
func Check(t *testing.T, runs ...*Run) Summary {
	t.Helper()
	ctx := context.Background()
	r := runs[0]
	f := r.Fleet
	n := len(r.OpenIDs)
	s := Summary{Scenario: t.Name(), Recipients: n, Outcomes: map[string]int{}, Limit: r.Account.Limit, Duration: r.Finished.Sub(r.Started)}

	var truths []truth.Run
	for i, run := range runs {
		rec, err := run.Record(ctx)
		require.NoError(t, err)
		want := cmp.Or(run.Want, string(campaigns.StateCompleted))
		assert.Equal(t, want, rec.State, "run %d ended %s (reason %q)", run.Number, want, rec.Reason)
		assert.False(t, rec.Finished.IsZero(), "run %d is finished", run.Number)
		if i == 0 {
			assert.EqualValues(t, n, rec.Size, "the run's size is the audience's")
		}
		assert.EqualValues(t, rec.Size, rec.Settled(), "every recipient of run %d is settled", run.Number)
		sum := int64(0)
		for _, st := range campaigns.OutcomeStatuses {
			sum += rec.Counters[st]
		}
		assert.EqualValues(t, rec.Size, sum, "the counters by status of run %d add up to its size: %v", run.Number, rec.Counters)

		tr, err := truth.Load(ctx, f.store, run.Campaign, run.Number)
		require.NoError(t, err)
		truths = append(truths, tr)
		assert.Len(t, tr.Outcomes, int(rec.Size), "exactly one outcome per recipient of run %d", run.Number)
		byStatus := map[string]int64{}
		for _, o := range tr.Outcomes {
			byStatus[o.Status]++
		}
		for _, st := range campaigns.OutcomeStatuses {
			assert.EqualValues(t, rec.Counters[st], byStatus[st], "stored %s outcomes of run %d agree with the counter", st, run.Number)
		}
		if i > 0 {
			continue
		}
		audience := make(map[string]bool, n)
		for _, o := range r.OpenIDs {
			audience[o] = true
		}
		var strangers int
		for openid, o := range tr.Outcomes {
			if !audience[openid] {
				strangers++
			}
			key := o.Status
			if o.Status == campaigns.OutcomeFailed || o.Class != "" {
				key = fmt.Sprintf("%s(%s,%d)", o.Status, o.Class, o.Code)
			}
			s.Outcomes[key]++
		}
		assert.Zero(t, strangers, "outcomes of openids outside the audience")
	}

	api := r.Kind.API()
	rep := truth.Check(f.cfg.Fake.Server, truth.Options{API: api, AppID: r.Account.AppID, Killed: f.Killed}, truths...)
	s.Duplicates = int64(rep.Twice)
	if !assert.Zero(t, rep.ViolationCount, "each recipient's truth against the fake's record: %s\n  %s", rep, strings.Join(rep.Violations, "\n  ")) {
		s.Note("%d truth violations", rep.ViolationCount)
	}
	if rep.Unknown > 0 {
		s.Note("%d unknown (%d of them delivered by the fake; %d explained only by a kill)", rep.Unknown, rep.UnknownDelivered, rep.UnknownByKill)
	}
	stats := f.cfg.Fake.Stats()
	if r.Kind == campaigns.KindTemplate {
		assert.Zero(t, stats.DuplicatesDelivered, "the fake's own count of template messages delivered twice")
	}
	var peakAt time.Time
	s.Peak1s, peakAt = f.cfg.Fake.Peak1sAt(r.Account.AppID, api)
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
