package rdb_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/wxmass/wxmass/internal/rdb"
)

// BenchmarkMassBatchBookkeeping measures what wxmass writes to Redis for
// one accepted batch of 10,000 openids: the accept (the batch's record,
// its attempt and its msg_id index, one round trip) and the per-user mass
// counts (one pipeline of 10,000 HINCRBY). Run it with
// go test -bench MassBatch ./internal/rdb/.
func BenchmarkMassBatchBookkeeping(b *testing.B) {
	r := setup(b)
	ctx := b.Context()
	openids := make([]string, 10000)
	for i := range openids {
		openids[i] = fmt.Sprintf("oBENCH%022d", i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		batch := fmt.Sprintf("b%d:0-10000", i)
		sub := rdb.MassSubmission{ClientMsgID: batch, MsgID: int64(1_000_000_000 + i), Recipients: 10000, Submitted: time.Now()}
		if _, _, err := r.AcceptMass(ctx, "c1", 1, batch, "wxbench", "bench", sub); err != nil {
			b.Fatal(err)
		}
		if err := r.CountMassReceived(ctx, "wxbench", "2026-12", openids, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
