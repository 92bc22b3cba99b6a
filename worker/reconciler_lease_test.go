package worker

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/producer"
	"github.com/wxmass/wxmass/ratelimit"
)

// TestReconcilerRenewsItsLeaseDuringALongPass: a pass that outlasts the
// reconcile interval renews the lease as it goes, and stops at once when
// the lease was taken over meanwhile (it lapsed: Redis was slow, the
// process stalled), so that two processes never reconcile the same runs
// together.
func TestReconcilerRenewsItsLeaseDuringALongPass(t *testing.T) {
	c := redistest.Client(t, redistest.DBWorker)
	r := rdb.New(c, redistest.Prefix(t, c))
	store := campaigns.NewStore(r)
	const runs = 3
	for i := range runs {
		cp := &campaigns.Campaign{
			Name: fmt.Sprintf("lease %d", i), Account: "wx00000000000fake1", Kind: campaigns.KindTemplate,
			Template: &campaigns.TemplateSpec{TemplateID: "TPL", Data: map[string]string{"thing1": "hi"}},
			Audience: campaigns.AudienceSpec{Source: campaigns.SourceInline, OpenIDs: []string{fmt.Sprintf("oL%026d", i)}},
		}
		require.NoError(t, store.Create(t.Context(), cp))
		_, err := store.StartRun(t.Context(), cp)
		require.NoError(t, err)
	}

	const interval = time.Second
	for _, steal := range []bool{false, true} {
		t.Run(fmt.Sprintf("taken over %v", steal), func(t *testing.T) {
			// Each reading of the clock is an interval later: every run of
			// the pass comes after the lease was due for renewal.
			var calls atomic.Int64
			t0 := time.Now()
			now := func() time.Time {
				n := calls.Add(1)
				if steal && n == 2 {
					// The lease lapsed and another process took it.
					require.NoError(t, c.Del(context.Background(), r.Keys().Lease(reconcilerLease)).Err())
					held, err := store.TakeLease(context.Background(), reconcilerLease, "other", time.Minute)
					require.NoError(t, err)
					require.True(t, held)
				}
				return t0.Add(time.Duration(n) * interval)
			}
			cfg := Config{ReconcileInterval: interval, NowFunc: now}
			cfg.withDefaults()
			accounts, err := account.NewRegistry(&account.Account{AppID: "wx00000000000fake1", Default: ratelimit.Limit{Rate: 1, Burst: 1}})
			require.NoError(t, err)
			w := &Worker{cfg: cfg, store: store, log: cfg.Logger, producer: producer.New(nil, store, accounts, nil, producer.Config{})}
			rc := newReconciler(w)
			rc.token = "holder"
			rc.tick(t.Context())
			if steal {
				require.False(t, rc.held, "the pass stopped when it found the lease taken over")
				require.Empty(t, rc.seen, "no run was looked at after the lease was lost")
				held, err := store.TakeLease(t.Context(), reconcilerLease, "other", time.Minute)
				require.NoError(t, err)
				require.True(t, held, "the new holder keeps it")
				return
			}
			require.True(t, rc.held)
			require.Len(t, rc.seen, runs, "every live run was looked at")
			require.NoError(t, store.ReleaseLease(t.Context(), reconcilerLease, "holder"))
		})
	}
}
