package rdb

import (
	"cmp"
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// sendOp is a SendState or RecordOutcome call waiting for its group. The
// two kinds share groups: a send's state read and another send's outcome
// often go in the same round trip.
type sendOp struct {
	id     string
	run    int
	openid string

	record bool // RecordOutcome, else SendState

	// SendState
	withVars bool
	has      bool
	vars     string

	// RecordOutcome
	doneState string
	outcome   Outcome
	recorded  bool
	completed bool

	err  error
	done chan struct{}
}

// SendState tells a send task whether its recipient already has an outcome
// in the run, and the recipient's variables ("" when none, or when withVars
// is false). Concurrent SendState and RecordOutcome calls of a process share
// round trips (see RecordOutcome).
func (r *RDB) SendState(ctx context.Context, id string, run int, openid string, withVars bool) (done bool, vars string, err error) {
	op := &sendOp{id: id, run: run, openid: openid, withVars: withVars, done: make(chan struct{})}
	r.sendOps.add(op)
	if err := wait(ctx, op.done); err != nil {
		return false, "", fmt.Errorf("send state: %w", err)
	}
	return op.has, op.vars, op.err
}

// RecordOutcome is RecordOutcomes of one recipient, grouped with the
// RecordOutcome and SendState calls of other goroutines of this process that
// come at the same time: one round trip carries all of them (one record
// script per run, one HMGET per run or audience, pipelined), so that many
// concurrent sends do not pay a round trip each. It returns once the outcome
// is stored, or with ctx's error (the outcome may then still be stored).
// recorded is false when the recipient had an outcome already (which is
// kept); completed is true for one caller of the call that completed the
// run.
func (r *RDB) RecordOutcome(ctx context.Context, id string, run int, doneState string, s Settle) (recorded, completed bool, err error) {
	op := &sendOp{id: id, run: run, openid: s.OpenID, record: true, doneState: doneState, outcome: s.Outcome, done: make(chan struct{})}
	r.sendOps.add(op)
	if err := wait(ctx, op.done); err != nil {
		return false, false, fmt.Errorf("record outcome: %w", err)
	}
	return op.recorded, op.completed, op.err
}

// flushSendOps carries out a group of send ops in one pipeline.
func (r *RDB) flushSendOps(ctx context.Context, batch []*sendOp) {
	// Outcomes: one record script per run.
	type runOps struct {
		ops     []*sendOp
		settles []Settle
		res     *redis.Cmd
	}
	var runs []*runOps
	byRun := make(map[string]*runOps)
	// State reads: one HMGET per key, of outcomes or of variables.
	type read struct {
		key      string
		outcomes bool
		ops      []*sendOp
		fields   []string
		cmd      *redis.SliceCmd
	}
	var reads []*read
	byKey := make(map[string]*read)
	addRead := func(key string, outcomes bool, op *sendOp) {
		rd := byKey[key]
		if rd == nil {
			rd = &read{key: key, outcomes: outcomes}
			byKey[key] = rd
			reads = append(reads, rd)
		}
		rd.ops = append(rd.ops, op)
		rd.fields = append(rd.fields, op.openid)
	}
	for _, op := range batch {
		if !op.record {
			addRead(r.keys.Outcomes(op.id, op.run), true, op)
			if op.withVars {
				addRead(r.keys.AudienceVars(op.id), false, op)
			}
			continue
		}
		k := op.id + "|" + strconv.Itoa(op.run)
		ro := byRun[k]
		if ro == nil {
			ro = &runOps{}
			byRun[k] = ro
			runs = append(runs, ro)
		}
		ro.ops = append(ro.ops, op)
		ro.settles = append(ro.settles, Settle{OpenID: op.openid, Outcome: op.outcome})
	}

	err := r.withScripts(ctx, func(pipe redis.Pipeliner) {
		for _, rd := range reads {
			rd.cmd = pipe.HMGet(ctx, rd.key, rd.fields...)
		}
		for _, ro := range runs {
			op := ro.ops[0]
			ro.res = r.queueRecord(ctx, pipe, op.id, op.run, op.doneState, ro.settles)
		}
	}, recordOutcomes)

	for _, rd := range reads {
		v, rerr := rd.cmd.Result()
		for i, op := range rd.ops {
			switch {
			case rerr != nil || err != nil:
				if op.err == nil {
					op.err = fmt.Errorf("send state: %w", cmp.Or(rerr, err))
				}
			case rd.outcomes:
				op.has = v[i] != nil
			default:
				op.vars, _ = v[i].(string)
			}
		}
	}
	for _, ro := range runs {
		_, completed, flags, rerr := recordReply(ro.res)
		for i, op := range ro.ops {
			switch {
			case rerr != nil:
				op.err = fmt.Errorf("record outcome: %w", rerr)
			case err != nil:
				// The script ran; a msgid index entry or a read did not.
				op.err = fmt.Errorf("record outcome: %w", err)
			default:
				op.recorded = i < len(flags) && flags[i] == '1'
				op.completed = i == 0 && completed
			}
		}
	}
	for _, op := range batch {
		close(op.done)
	}
}
