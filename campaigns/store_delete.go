package campaigns

import (
	"context"
	"encoding/json"
	"fmt"
)

// Delete removes a campaign and everything of it in Redis: its record, its
// runs with their outcomes, attempts, counters and timelines, its audience
// and variables, its fire claims and audit trail, its entries in the
// campaign list (so List and CountStates no longer see it) and in the
// schedule index, the msgid index entries of its runs' template sends and
// the notes of their lost answers (see rdb.DeleteCampaign), and the
// archive files of its runs.
//
// A campaign with a live run (running, paused or stopping) is refused with
// a *StateError naming the state, and nothing changes: cancel it and let it
// settle first. A campaign on a schedule (scheduled for its first fire, or
// a recurring one between runs) is taken off it and deleted: the delete and
// a fire are ordered on the campaign's hash, so either the fire started a
// run first (and the delete is refused) or no fire starts one after.
// Deleting is safe to repeat: a delete cut short is finished by the next;
// until then the campaign is in rdb.StateDeleting, and Get and Latest
// answer ErrNotFound for it, as they will once it is gone. It returns ErrNotFound for an unknown campaign.
func (s *Store) Delete(ctx context.Context, id string) error {
	if !ValidID(id) {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	// Read as stored: a campaign whose delete was cut short is gone for Get,
	// but its delete is finished here.
	rec, err := s.r.GetCampaign(ctx, id)
	if err != nil {
		return s.stateErr("delete", id, err)
	}
	var c Campaign
	if err := json.Unmarshal(rec.Doc, &c); err != nil {
		return fmt.Errorf("campaigns: decode %s: %w", id, err)
	}
	// Its runs' archive files go once it is marked deleting (no run is
	// archived from then on) and before its run records, which say
	// whether it has any, so that a delete cut short finds them again.
	archives := func(ctx context.Context) error {
		has, err := s.r.HasArchives(ctx, id, rec.Run+1)
		if err != nil || !has {
			return err
		}
		if s.archive == nil {
			return ErrNoArchive
		}
		return s.archive.deleteCampaign(ctx, id)
	}
	err = s.r.DeleteCampaignThen(ctx, id, c.Account, archives, string(StateRunning), string(StatePaused), string(StateStopping))
	return s.stateErr("delete", id, err)
}
