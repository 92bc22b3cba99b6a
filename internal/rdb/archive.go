package rdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Archive states of a run: the field "arch" of its run hash. A run whose
// per-recipient data was never archived has none.
const (
	// ArchiveWritten: the run's archive file is complete and verified
	// (its key is in "arch_key"); its per-recipient keys may still be in
	// Redis.
	ArchiveWritten = "written"
	// ArchiveDone: the run's per-recipient keys are gone from Redis; its
	// archive file holds them.
	ArchiveDone = "done"
	// ArchiveExpired: retention removed the archive file; only the run's
	// summary is left.
	ArchiveExpired = "expired"
)

// RunArchive is what the archiver needs to know of one run.
type RunArchive struct {
	ID    string
	Run   int
	State string // the run's state
	// Audience is the run's audience list key.
	Audience string
	Size     int64
	Finished time.Time // zero while the run is live
	// Archive is its archive state ("", ArchiveWritten, ArchiveDone or
	// ArchiveExpired); Key its archive file's key; At when the archive
	// was written; Records and Bytes how many records and bytes it holds.
	Archive string
	Key     string
	At      time.Time
	Records int64
	Bytes   int64
	// MsgIDsDropped is set once the run's entries of the msgid index were
	// removed (at the end of the receipt window or at archive).
	MsgIDsDropped bool
}

// runArchiveFields are the fields of a run hash that RunArchive reads.
var runArchiveFields = []string{"state", "audience", "size", "finished", "arch", "arch_key", "arch_written", "arch_n", "arch_bytes", "msgids_off"}

func parseRunArchive(id string, run int, v []any) (RunArchive, bool) {
	s := func(i int) string { x, _ := v[i].(string); return x }
	if s(0) == "" {
		return RunArchive{}, false
	}
	ra := RunArchive{ID: id, Run: run, State: s(0), Audience: s(1), Archive: s(4), Key: s(5), MsgIDsDropped: s(9) == "1"}
	ra.Size, _ = strconv.ParseInt(s(2), 10, 64)
	if ms, err := strconv.ParseInt(s(3), 10, 64); err == nil && ms > 0 {
		ra.Finished = time.UnixMilli(ms)
	}
	if ms, err := strconv.ParseInt(s(6), 10, 64); err == nil && ms > 0 {
		ra.At = time.UnixMilli(ms)
	}
	ra.Records, _ = strconv.ParseInt(s(7), 10, 64)
	ra.Bytes, _ = strconv.ParseInt(s(8), 10, 64)
	return ra, true
}

// GetRunArchive reads a run's archive state (ErrRunNotFound if the run is
// missing).
func (r *RDB) GetRunArchive(ctx context.Context, id string, run int) (RunArchive, error) {
	v, err := r.c.HMGet(ctx, r.keys.Run(id, run), runArchiveFields...).Result()
	if err != nil {
		return RunArchive{}, fmt.Errorf("get run archive: %w", err)
	}
	ra, ok := parseRunArchive(id, run, v)
	if !ok {
		return RunArchive{}, ErrRunNotFound
	}
	return ra, nil
}

// FinishedRuns calls fn with every finished run (in one of states) of
// every campaign that is not being deleted, a campaign at a time, reading
// the runs of a campaign in one pipelined round trip.
func (r *RDB) FinishedRuns(ctx context.Context, states []string, fn func(RunArchive) error) error {
	type camp struct {
		id   string
		runs int
	}
	var all []camp
	err := r.eachCampaign(ctx, []string{"state", "run", "next_run"}, func(id string, v []any) {
		if st, _ := v[0].(string); st == StateDeleting || st == "" {
			return
		}
		run, _ := v[1].(string)
		nr, _ := v[2].(string)
		n, _ := strconv.Atoi(run)
		m, _ := strconv.Atoi(nr)
		if n = max(n, m); n > 0 {
			all = append(all, camp{id: id, runs: n})
		}
	})
	if err != nil {
		return fmt.Errorf("finished runs: %w", err)
	}
	for _, c := range all {
		pipe := r.c.Pipeline()
		cmds := make([]*redis.SliceCmd, c.runs)
		for i := range cmds {
			cmds[i] = pipe.HMGet(ctx, r.keys.Run(c.id, i+1), runArchiveFields...)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("finished runs: %w", err)
		}
		for i, cmd := range cmds {
			v, err := cmd.Result()
			if err != nil {
				continue
			}
			ra, ok := parseRunArchive(c.id, i+1, v)
			if !ok || ra.Finished.IsZero() {
				continue
			}
			for _, s := range states {
				if ra.State == s {
					if err := fn(ra); err != nil {
						return err
					}
					break
				}
			}
		}
	}
	return nil
}

// markArchive moves a finished run's archive state.
//
// KEYS[1] campaign hash, KEYS[2] run hash. ARGV[1] the state it must be
// in ("" for none), ARGV[2] the new state, ARGV[3] the deleting state,
// ARGV[4..] field, value pairs to set with it.
// Returns 1 when moved, 0 when the run is in another archive state, -1
// when the campaign is missing or being deleted, -2 when the run is
// missing.
var markArchive = redis.NewScript(campaignLua + `
local cs = redis.call('HGET', KEYS[1], 'state')
if not cs or cs == ARGV[3] then return -1 end
if redis.call('EXISTS', KEYS[2]) == 0 then return -2 end
local cur = redis.call('HGET', KEYS[2], 'arch') or ''
if cur ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], 'arch', ARGV[2], 'arch_' .. ARGV[2], now())
for i = 4, #ARGV, 2 do
  redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
end
return 1
`)

// ErrArchiveState is returned when a run is not in the archive state a
// step expects (another process moved it on, or the campaign is being
// deleted).
var ErrArchiveState = errors.New("rdb: run is not in the expected archive state")

func (r *RDB) markArchive(ctx context.Context, id string, run int, from, to string, fields ...any) error {
	args := append([]any{from, to, StateDeleting}, fields...)
	n, err := markArchive.Run(ctx, r.c, []string{r.keys.Campaign(id), r.keys.Run(id, run)}, args...).Int()
	if err != nil {
		return fmt.Errorf("mark archive: %w", err)
	}
	switch n {
	case -1:
		return ErrCampaignNotFound
	case -2:
		return ErrRunNotFound
	case 0:
		return ErrArchiveState
	}
	return nil
}

// MarkArchiveWritten records that a run's archive file, key, is complete
// and verified with records records and bytes bytes. It refuses
// (ErrArchiveState) a run already marked and (ErrCampaignNotFound) a
// campaign being deleted.
func (r *RDB) MarkArchiveWritten(ctx context.Context, id string, run int, key string, records, bytes int64) error {
	return r.markArchive(ctx, id, run, "", ArchiveWritten, "arch_key", key, "arch_n", records, "arch_bytes", bytes)
}

// DropRunRecipients removes the per-recipient data of a run marked
// ArchiveWritten from Redis: its entries of the msgid index and the notes
// of its lost answers (under account), then its outcomes, attempt records
// and own audience list (a run of the campaign's audience list leaves that
// list alone: it is the campaign's, not the run's). It then marks the run
// ArchiveDone. Every step is safe to repeat, so a drop cut short is
// finished by the next call.
func (r *RDB) DropRunRecipients(ctx context.Context, id string, run int, account string) error {
	ra, err := r.GetRunArchive(ctx, id, run)
	if err != nil {
		return err
	}
	if ra.Archive != ArchiveWritten {
		return ErrArchiveState
	}
	if err := r.unindexRun(ctx, id, run, account); err != nil {
		return fmt.Errorf("drop run recipients: %w", err)
	}
	keys := []string{r.keys.Outcomes(id, run), r.keys.Attempts(id, run), r.keys.Deferred(id, run)}
	if ra.Audience == r.keys.RunAudience(id, run) {
		keys = append(keys, ra.Audience)
	}
	if err := r.c.Unlink(ctx, keys...).Err(); err != nil {
		return fmt.Errorf("drop run recipients: %w", err)
	}
	return r.markArchive(ctx, id, run, ArchiveWritten, ArchiveDone, "msgids_off", 1)
}

// DropRunMsgIDs removes a finished run's entries of the msgid index and
// the notes of its lost answers (under account), so that no receipt
// changes its outcomes any more, and marks it so.
func (r *RDB) DropRunMsgIDs(ctx context.Context, id string, run int, account string) error {
	if err := r.unindexRun(ctx, id, run, account); err != nil {
		return fmt.Errorf("drop run msgids: %w", err)
	}
	if err := r.c.HSet(ctx, r.keys.Run(id, run), "msgids_off", 1).Err(); err != nil {
		return fmt.Errorf("drop run msgids: %w", err)
	}
	return nil
}

// MarkArchiveExpired records that retention removed a run's archive file.
func (r *RDB) MarkArchiveExpired(ctx context.Context, id string, run int) error {
	return r.markArchive(ctx, id, run, ArchiveDone, ArchiveExpired)
}

// HasArchives reports whether any of runs 1..runs of a campaign has an
// archive file (written or done), in one pipelined round trip.
func (r *RDB) HasArchives(ctx context.Context, id string, runs int) (bool, error) {
	if runs <= 0 {
		return false, nil
	}
	pipe := r.c.Pipeline()
	cmds := make([]*redis.StringCmd, runs)
	for i := range cmds {
		cmds[i] = pipe.HGet(ctx, r.keys.Run(id, i+1), "arch")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("has archives: %w", err)
	}
	for _, c := range cmds {
		if v := c.Val(); v == ArchiveWritten || v == ArchiveDone {
			return true, nil
		}
	}
	return false, nil
}

// resetArchive takes a run marked ArchiveWritten back to no archive state.
//
// KEYS[1] run hash. ARGV[1] ArchiveWritten. Returns 1 if reset.
var resetArchive = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'arch') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'arch', 'arch_key', 'arch_n', 'arch_bytes', 'arch_written')
return 1
`)

// ResetArchiveWritten takes a run marked ArchiveWritten, whose archive file
// was found missing or damaged before its keys were removed, back to no
// archive state, so that its file is written again. A run in any other
// state is left alone.
func (r *RDB) ResetArchiveWritten(ctx context.Context, id string, run int) error {
	if err := resetArchive.Run(ctx, r.c, []string{r.keys.Run(id, run)}, ArchiveWritten).Err(); err != nil {
		return fmt.Errorf("reset archive: %w", err)
	}
	return nil
}
