package rdb

import (
	"cmp"
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// sendOp is a BeginAttempt, EndAttempt or RecordOutcome call waiting for
// its group. The kinds share groups: one send's attempt and another's
// outcome often go in the same round trip.
type sendOp struct {
	id     string
	run    int
	openid string
	kind   sendOpKind

	begin     BeginOptions // opBegin
	lost      bool         // opEnd
	account   string       // opEnd
	settle    Settle       // opRecord
	doneState string       // opRecord

	began    Begin    // opBegin's result
	admitted Admit    // opBegin's admission verdict
	recorded Recorded // opRecord's result, for this recipient alone

	err  error
	done chan struct{}
}

type sendOpKind uint8

const (
	opBegin sendOpKind = iota
	opEnd
	opRecord
)

// BeginAttempt records the attempt of a send to one recipient of a run,
// just before the WeChat call, or tells why no call is to be made (see
// Begin and beginAttempts). Concurrent BeginAttempt, EndAttempt and
// RecordOutcome calls of a process share round trips (see RecordOutcome).
func (r *RDB) BeginAttempt(ctx context.Context, id string, run int, openid string, opt BeginOptions) (Begin, error) {
	op := &sendOp{id: id, run: run, openid: openid, kind: opBegin, begin: opt, done: make(chan struct{})}
	r.sendOps.add(op)
	if err := wait(ctx, op.done); err != nil {
		return Begin{}, fmt.Errorf("begin attempt: %w", err)
	}
	return op.began, op.err
}

// EndAttempt closes the open attempt of one recipient whose call got an
// answer that is not its outcome (a retry follows), or whose answer was
// lost (Lost). It shares round trips like BeginAttempt.
func (r *RDB) EndAttempt(ctx context.Context, id string, run int, e EndAttempt) error {
	op := &sendOp{id: id, run: run, openid: e.OpenID, kind: opEnd, lost: e.Lost, account: e.Account, done: make(chan struct{})}
	r.sendOps.add(op)
	if err := wait(ctx, op.done); err != nil {
		return fmt.Errorf("end attempt: %w", err)
	}
	return op.err
}

// RecordOutcome is RecordOutcomes of one recipient, grouped with the
// BeginAttempt, EndAttempt and RecordOutcome calls of other goroutines of
// this process that come at the same time: one round trip carries all of
// them (one script per run and kind, pipelined), so that many concurrent
// sends do not pay a round trip each. It returns once the outcome is
// stored, or with ctx's error (the outcome may then still be stored).
// Recorded.New is 1 for a first outcome; Recorded.Finished is set for one
// caller of the call that finished the run.
func (r *RDB) RecordOutcome(ctx context.Context, id string, run int, doneState string, s Settle) (Recorded, error) {
	op := &sendOp{id: id, run: run, openid: s.OpenID, kind: opRecord, doneState: doneState, settle: s, done: make(chan struct{})}
	r.sendOps.add(op)
	if err := wait(ctx, op.done); err != nil {
		return Recorded{}, fmt.Errorf("record outcome: %w", err)
	}
	return op.recorded, op.err
}

// flushSendOps carries out a group of send ops in one pipeline: per run,
// one script per kind of op.
func (r *RDB) flushSendOps(ctx context.Context, batch []*sendOp) {
	type runOps struct {
		op  *sendOp // the first, for the run's parameters
		ops []*sendOp
		res *redis.Cmd
	}
	var groups []*runOps
	byKey := make(map[string]*runOps)
	for _, op := range batch {
		k := strconv.Itoa(int(op.kind)) + "|" + op.id + "|" + strconv.Itoa(op.run)
		g := byKey[k]
		if g == nil {
			g = &runOps{op: op}
			byKey[k] = g
			groups = append(groups, g)
		}
		g.ops = append(g.ops, op)
	}
	// Admissions first, one script per account and rules: a send's
	// admission runs before its attempt begins.
	type admitOps struct {
		ops []*sendOp
		res *redis.Cmd
	}
	var admits []*admitOps
	admitBy := make(map[string]*admitOps)
	for _, op := range batch {
		if op.kind != opBegin || op.begin.Admit == nil {
			continue
		}
		k := op.begin.Admit.key()
		g := admitBy[k]
		if g == nil {
			g = &admitOps{}
			admitBy[k] = g
			admits = append(admits, g)
		}
		g.ops = append(g.ops, op)
	}
	err := r.withScripts(ctx, func(pipe redis.Pipeliner) {
		for _, g := range admits {
			openids, members := make([]string, len(g.ops)), make([]string, len(g.ops))
			for i, o := range g.ops {
				openids[i], members[i] = o.openid, o.begin.Admit.Member
			}
			g.res = r.queueAdmit(ctx, pipe, g.ops[0].begin.Admit, openids, members)
		}
		for _, g := range groups {
			op := g.op
			switch op.kind {
			case opBegin:
				args := op.begin.args(op.run)
				for _, o := range g.ops {
					args = append(args, o.openid)
				}
				g.res = beginAttempts.EvalSha(ctx, pipe, r.ledgerKeys(op.id, op.run, r.keys.AudienceVars(op.id)), args...)
			case opEnd:
				ends := make([]EndAttempt, len(g.ops))
				for i, o := range g.ops {
					ends[i] = EndAttempt{OpenID: o.openid, Lost: o.lost, Account: o.account}
				}
				g.res = r.queueEnd(ctx, pipe, op.id, op.run, ends)
			case opRecord:
				settles := make([]Settle, len(g.ops))
				for i, o := range g.ops {
					settles[i] = o.settle
				}
				g.res = r.queueRecord(ctx, pipe, op.id, op.run, op.doneState, settles)
			}
		}
	}, beginAttempts, endAttempts, recordOutcomes)

	for _, g := range admits {
		openids := make([]string, len(g.ops))
		for i, o := range g.ops {
			openids[i] = o.openid
		}
		verdicts, aerr := admitReply(g.res, openids)
		for i, op := range g.ops {
			if aerr != nil || err != nil {
				op.err = fmt.Errorf("admit: %w", cmp.Or(aerr, err))
				continue
			}
			op.admitted = verdicts[i]
		}
	}
	for _, g := range groups {
		switch g.op.kind {
		case opBegin:
			began, rerr := beginReply(g.res, g.op.run, len(g.ops))
			for i, op := range g.ops {
				if op.err != nil {
					continue // its admission failed
				}
				if rerr != nil || err != nil {
					op.err = fmt.Errorf("begin attempt: %w", cmp.Or(rerr, err))
					continue
				}
				op.began = began[i]
				op.began.Admit = op.admitted
			}
		case opEnd:
			for _, op := range g.ops {
				if rerr := cmp.Or(g.res.Err(), err); rerr != nil {
					op.err = fmt.Errorf("end attempt: %w", rerr)
				}
			}
		case opRecord:
			rec, rerr := recordReply(g.res)
			for i, op := range g.ops {
				switch {
				case rerr != nil:
					op.err = fmt.Errorf("record outcome: %w", rerr)
				case err != nil:
					// The script ran; a msgid index entry did not.
					op.err = fmt.Errorf("record outcome: %w", err)
				default:
					op.recorded = Recorded{Stored: []Stored{StoredNothing}}
					if i < len(rec.Stored) {
						op.recorded.Stored[0] = rec.Stored[i]
					}
					if op.recorded.Stored[0] == StoredAsGiven || op.recorded.Stored[0] == StoredUnknown {
						op.recorded.New = 1
					}
					if i == 0 {
						op.recorded.Finished = rec.Finished
					}
				}
			}
		}
	}
	for _, op := range batch {
		close(op.done)
	}
}
