package campaigns

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wxmass/wxmass/internal/rdb"
)

// RunArchive is a finished run's archive state (see rdb.RunArchive).
type RunArchive = rdb.RunArchive

// Archive states of a run (see rdb).
const (
	ArchiveWritten = rdb.ArchiveWritten
	ArchiveDone    = rdb.ArchiveDone
	ArchiveExpired = rdb.ArchiveExpired
)

// WithArchive returns a copy of s that archives finished runs to a and
// reads archived runs from it.
func (s *Store) WithArchive(a *Archive) *Store {
	c := *s
	c.archive = a
	return &c
}

// source returns where a run's outcomes are read from.
func (s *Store) source(ctx context.Context, id string, run int) (recipientSource, error) {
	ra, err := s.r.GetRunArchive(ctx, id, run)
	if err != nil {
		return nil, runErr(id, run, err)
	}
	switch ra.Archive {
	case ArchiveWritten, ArchiveDone:
		// From ArchiveWritten on, the file is complete and final (no
		// receipt changes the run any more): reading it, not Redis, means
		// a read is never cut short by the removal of the keys.
		if s.archive == nil {
			return nil, ErrNoArchive
		}
		return archiveSource{a: s.archive, key: ra.Key}, nil
	case ArchiveExpired:
		return nil, fmt.Errorf("%w: run %d of %s", ErrRecipientsExpired, run, id)
	}
	return redisSource{r: s.r}, nil
}

// RecipientsKept returns nil when a run's per-recipient data can be read
// (from Redis or its archive), ErrRecipientsExpired when retention removed
// it, ErrRunNotFound for a missing run.
func (s *Store) RecipientsKept(ctx context.Context, id string, run int) error {
	_, err := s.source(ctx, id, run)
	return err
}

// FinishedRuns calls fn with every finished run (completed, failed or
// cancelled) of the campaigns not being deleted.
func (s *Store) FinishedRuns(ctx context.Context, fn func(RunArchive) error) error {
	return s.r.FinishedRuns(ctx, []string{string(StateCompleted), string(StateFailed), string(StateCancelled)}, fn)
}

// ArchiveResult is what ArchiveRun did.
type ArchiveResult struct {
	// Written is set when this call wrote the archive file, of Records
	// records and Bytes bytes.
	Written bool
	Records int64
	Bytes   int64
	// Dropped is set when this call removed the run's per-recipient keys
	// from Redis.
	Dropped bool
}

// ArchiveRun archives a finished run's per-recipient data, in steps each
// safe to repeat, so that a call cut short at any point is finished by the
// next:
//  0. (no archive state) The run's msgid index entries and lost answers'
//     notes are removed (unless its receipt window already did), so that
//     no receipt changes its outcomes from then on.
//  1. (no archive state) Every outcome, with its attempt record, is written
//     to the run's archive file, in the order ScanOutcomes reads them from
//     Redis; the file appears only once complete. It is read back: only if
//     it holds exactly the run's size of records is the run marked
//     ArchiveWritten.
//  2. (ArchiveWritten) The file is read back again, and only if it still
//     holds them all are the run's per-recipient keys removed from Redis
//     (outcomes, attempts, its own audience list, its msgid index entries
//     and lost answers' notes); the run is then ArchiveDone.
//
// A run that is not finished, or not settled, is refused. An archive file
// written for a campaign that is being deleted meanwhile is removed again.
func (s *Store) ArchiveRun(ctx context.Context, id string, run int) (ArchiveResult, error) {
	var res ArchiveResult
	if s.archive == nil {
		return res, ErrNoArchive
	}
	ra, err := s.r.GetRunArchive(ctx, id, run)
	if err != nil {
		return res, runErr(id, run, err)
	}
	rec, err := s.Run(ctx, id, run)
	if err != nil {
		return res, err
	}
	if rec.Finished.IsZero() || rec.Size < 0 || rec.Settled() != rec.Size {
		return res, fmt.Errorf("%w: run %d of %s is %s with %d of %d outcomes", ErrRunNotSettled, run, id, rec.State, rec.Settled(), rec.Size)
	}
	// A retry run of an archived run finds no attempt records in Redis,
	// and so counts every unknown recipient as one it may send twice (see
	// carry): true only once WeChat's dedupe window has passed since the
	// run's end, as it has for every attempt of the run.
	if age := s.now().Sub(rec.Finished); age < s.ledger.DedupeWindow {
		return res, fmt.Errorf("%w: run %d of %s ended %s ago, within the dedupe window (%s)", ErrRunNotSettled, run, id, age.Round(time.Second), s.ledger.DedupeWindow)
	}
	c, err := s.Get(ctx, id)
	if err != nil {
		return res, err
	}
	if ra.Archive == "" {
		// First no receipt may change an outcome any more (through the
		// msgid index or a lost answer's note): the file is then the
		// run's final truth, and readers can move to it as soon as it
		// is recorded.
		if !ra.MsgIDsDropped {
			if err := s.r.DropRunMsgIDs(ctx, id, run, c.Account); err != nil {
				return res, runErr(id, run, err)
			}
		}
		key, n, b, err := s.writeArchive(ctx, id, run, rec)
		if err != nil {
			return res, err
		}
		if err := s.r.MarkArchiveWritten(ctx, id, run, key, n, b); err != nil {
			if errors.Is(err, rdb.ErrCampaignNotFound) {
				// Deleted meanwhile: the delete may have listed the
				// archives before this one appeared.
				_ = s.archive.delete(ctx, key)
			}
			return res, runErr(id, run, err)
		}
		res.Written, res.Records, res.Bytes = true, n, b
		ra.Archive, ra.Key = ArchiveWritten, key
	}
	if ra.Archive != ArchiveWritten {
		return res, nil
	}
	// Never remove what the archive does not verifiably hold. A file that
	// is gone or damaged since it was verified is written again by the
	// next call: its data is still in Redis.
	if err := s.archive.verify(ctx, ra.Key, rec.Size); err != nil {
		if errors.Is(err, ErrArchiveIncomplete) {
			if rerr := s.r.ResetArchiveWritten(ctx, id, run); rerr != nil {
				return res, errors.Join(err, rerr)
			}
		}
		return res, err
	}
	if err := s.r.DropRunRecipients(ctx, id, run, c.Account); err != nil {
		return res, runErr(id, run, err)
	}
	res.Dropped = true
	return res, nil
}

// writeArchive writes a finished run's archive file from Redis and reads
// it back: it returns the file's key, records and bytes only if the file
// holds exactly the run's size of records.
func (s *Store) writeArchive(ctx context.Context, id string, run int, rec RunRecord) (string, int64, int64, error) {
	key := archiveKey(id, run)
	h := ArchiveHeader{Format: ArchiveFormat, Version: ArchiveVersion, Campaign: id, Run: run, State: rec.State, Size: rec.Size, Finished: rec.Finished.UTC()}
	n, b, err := s.archive.write(ctx, key, h, func(emit func(ArchiveRecord) error) error {
		return s.scanWithAttempts(ctx, id, run, emit)
	})
	if err != nil {
		return "", 0, 0, err
	}
	if err := s.archive.verify(ctx, key, rec.Size); err != nil {
		return "", 0, 0, err
	}
	return key, n, b, nil
}

// scanWithAttempts calls emit with every outcome of a run in Redis, with
// its attempt record, a page at a time.
func (s *Store) scanWithAttempts(ctx context.Context, id string, run int, emit func(ArchiveRecord) error) error {
	const page = 500
	openids := make([]string, 0, page)
	outs := make([]Outcome, 0, page)
	flush := func() error {
		atts, ok, err := s.r.GetAttempts(ctx, id, run, openids)
		if err != nil {
			return err
		}
		for i, openid := range openids {
			var a *Attempt
			if ok[i] {
				a = &atts[i]
			}
			if err := emit(archiveRecord(openid, outs[i], a)); err != nil {
				return err
			}
		}
		openids, outs = openids[:0], outs[:0]
		return nil
	}
	err := s.r.ScanOutcomes(ctx, id, run, func(openid string, o Outcome) error {
		openids = append(openids, openid)
		outs = append(outs, o)
		if len(openids) == page {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// ExpireArchive removes an archived run's archive file, retention having
// passed, and marks it ArchiveExpired: the run keeps its summary. Safe to
// repeat.
func (s *Store) ExpireArchive(ctx context.Context, id string, run int) error {
	if s.archive == nil {
		return ErrNoArchive
	}
	ra, err := s.r.GetRunArchive(ctx, id, run)
	if err != nil {
		return runErr(id, run, err)
	}
	if ra.Archive != ArchiveDone {
		return fmt.Errorf("campaigns: expire run %d of %s: archive state is %q, not %q", run, id, ra.Archive, ArchiveDone)
	}
	if err := s.archive.delete(ctx, ra.Key); err != nil {
		return err
	}
	return runErr(id, run, s.r.MarkArchiveExpired(ctx, id, run))
}

// DropMsgIDs removes a finished run's entries of the msgid index and the
// notes of its lost answers, its receipt window having passed: receipts
// for it are ignored from then on.
func (s *Store) DropMsgIDs(ctx context.Context, id string, run int) error {
	c, err := s.Get(ctx, id)
	if err != nil {
		return err
	}
	return runErr(id, run, s.r.DropRunMsgIDs(ctx, id, run, c.Account))
}
