package rdb

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Lease is the key of a lease held by one process of the fleet at a time
// (name: "reconciler"). It is one key, so its scripts run on one node of
// a Redis Cluster.
func (k Keys) Lease(name string) string { return k.prefix() + ":lease:" + name }

// takeNamedLease takes a lease that is free, or renews it for its holder.
//
// KEYS[1] lease. ARGV[1] token, ARGV[2] ttl ms. Returns 1 if the caller
// holds the lease now (taken or renewed), 0 if another does.
var takeNamedLease = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if cur then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// releaseNamedLease deletes a lease if the caller holds it.
//
// KEYS[1] lease. ARGV[1] token. Returns 1 if deleted.
var releaseNamedLease = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// TakeLease takes the lease name for token for ttl if it is free, or
// renews it for ttl if token holds it. It reports whether token holds it
// now. token must be unique per holder; ttl at least a millisecond.
func (r *RDB) TakeLease(ctx context.Context, name, token string, ttl time.Duration) (bool, error) {
	if token == "" || ttl < time.Millisecond {
		return false, fmt.Errorf("take lease %s: token empty or ttl %v under 1ms", name, ttl)
	}
	n, err := takeNamedLease.Run(ctx, r.c, []string{r.keys.Lease(name)}, token, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("take lease %s: %w", name, err)
	}
	return n == 1, nil
}

// ReleaseLease gives the lease name up if token holds it (compare and
// delete: a lease that expired and was taken by another stays theirs).
func (r *RDB) ReleaseLease(ctx context.Context, name, token string) error {
	if err := releaseNamedLease.Run(ctx, r.c, []string{r.keys.Lease(name)}, token).Err(); err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

// LiveCampaign is a campaign whose state is one of those asked for, with
// its latest run.
type LiveCampaign struct {
	ID    string
	State string
	Run   int
}

// CampaignsInStates returns every campaign whose state is one of states,
// with its latest run.
func (r *RDB) CampaignsInStates(ctx context.Context, states ...string) ([]LiveCampaign, error) {
	var out []LiveCampaign
	err := r.eachCampaign(ctx, []string{"state", "run"}, func(id string, v []any) {
		st, _ := v[0].(string)
		rs, _ := v[1].(string)
		run, _ := strconv.Atoi(rs)
		if slices.Contains(states, st) && run > 0 {
			out = append(out, LiveCampaign{ID: id, State: st, Run: run})
		}
	})
	if err != nil {
		return nil, fmt.Errorf("campaigns in states: %w", err)
	}
	return out, nil
}

// finishRun finishes a live run whose recipients all have outcomes, by the
// ledger's rule (L.finish), as the record that gave the last one its
// outcome would have.
//
// KEYS: the ledger's (KEYS[7] unused). ARGV[1] doneState, ARGV[2] run.
// Returns the state the run finished in, or "".
var finishRun = redis.NewScript(campaignLua + ledgerLua + `
L.open(ARGV[1], ARGV[2])
return L.finish(tonumber(redis.call('HGET', KEYS[2], 'total') or '0'))
`)

// FinishRun finishes a run whose recipients all have outcomes and that is
// still live (running, paused, or stopping), in the state the ledger's
// finish rule gives; the campaign moves to doneState if the run completed.
// It returns the state the run finished in, or "" (it was not done, or had
// finished already).
func (r *RDB) FinishRun(ctx context.Context, id string, run int, doneState string) (string, error) {
	fin, err := finishRun.Run(ctx, r.c, r.ledgerKeys(id, run, r.keys.Run(id, run)), doneState, run).Text()
	if err != nil {
		return "", fmt.Errorf("finish run: %w", err)
	}
	return fin, nil
}
