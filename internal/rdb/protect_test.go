package rdb_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/rdb"
)

const protectApp = "wx00000000000prot1"

func admission(member string, now time.Time, caps ...rdb.CapRule) *rdb.Admission {
	return &rdb.Admission{AppID: protectApp, Member: member, Blocking: []string{rdb.SuppressUnfollowed, rdb.SuppressBlocked, rdb.SuppressManual},
		Caps: caps, Rest: true, Now: now}
}

// TestAdmitCaps: a cap of 2 a day admits two runs' sends to a user and
// holds the third until the oldest leaves the window; a send admitted
// again (a retry) keeps its one place; a released place is free again.
func TestAdmitCaps(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	day := rdb.CapRule{Max: 2, Per: 24 * time.Hour}
	t0 := time.UnixMilli(time.Now().UnixMilli())
	const u = "oUSER00000000000000000000001"

	a, err := r.Admit(ctx, admission("c1:1", t0, day), u)
	require.NoError(t, err)
	require.Equal(t, rdb.AdmitNew, a.Verdict)
	a, err = r.Admit(ctx, admission("c1:1", t0.Add(time.Minute), day), u)
	require.NoError(t, err)
	require.Equal(t, rdb.AdmitHeld, a.Verdict, "a retry of the same run keeps its place")
	a, err = r.Admit(ctx, admission("c2:1", t0.Add(time.Hour), day), u)
	require.NoError(t, err)
	require.Equal(t, rdb.AdmitNew, a.Verdict)

	a, err = r.Admit(ctx, admission("c3:1", t0.Add(2*time.Hour), day), u)
	require.NoError(t, err)
	require.Equal(t, rdb.AdmitCapped, a.Verdict)
	require.Equal(t, t0.Add(24*time.Hour), a.Until, "the oldest place leaves the window a day after it was taken")
	require.ElementsMatch(t, []string{"c1:1", "c2:1"}, a.Members)

	// A week cap on top: the later of the two limits.
	week := rdb.CapRule{Max: 2, Per: 7 * 24 * time.Hour}
	a, err = r.Admit(ctx, admission("c3:1", t0.Add(25*time.Hour), day, week), u)
	require.NoError(t, err)
	require.Equal(t, rdb.AdmitCapped, a.Verdict)
	require.Equal(t, t0.Add(7*24*time.Hour), a.Until)

	// Released (the send failed): its place is free.
	require.NoError(t, r.Release(ctx, protectApp, u, "c1:1"))
	a, err = r.Admit(ctx, admission("c3:1", t0.Add(3*time.Hour), day), u)
	require.NoError(t, err)
	require.Equal(t, rdb.AdmitNew, a.Verdict)
	log, err := r.CapLog(ctx, protectApp, u)
	require.NoError(t, err)
	require.Len(t, log, 2)
}

// TestAdmitCapsConcurrent: many processes admitting sends of many runs to
// one user at once never let more than the cap through.
func TestAdmitCapsConcurrent(t *testing.T) {
	t.Parallel()
	r := setup(t)
	cap3 := rdb.CapRule{Max: 3, Per: time.Hour}
	now := time.Now()
	const u = "oUSER00000000000000000000002"
	var mu sync.Mutex
	admitted := 0
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			a, err := r.Admit(t.Context(), admission(fmt.Sprintf("c%d:1", i), now, cap3), u)
			require.NoError(t, err)
			if a.Admitted() {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Equal(t, 3, admitted)
}

// TestAdmitSuppressionAndRest: a suppressed user is refused with the
// entry when its reason blocks the send, a rest holds sends that count
// toward the caps until it ends, and an operator's entry survives the
// lifting a subscribe event does.
func TestAdmitSuppressionAndRest(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	now := time.UnixMilli(time.Now().UnixMilli())
	const u, v, w = "oUSER00000000000000000000003", "oUSER00000000000000000000004", "oUSER00000000000000000000005"
	n, err := r.Suppress(ctx, protectApp, false,
		rdb.Suppression{OpenID: u, Reason: rdb.SuppressUnfollowed, Code: 43004, At: now, Source: "c1:1"},
		rdb.Suppression{OpenID: v, Reason: rdb.SuppressRefused, Code: 43101, At: now, Source: "c1:1"},
		rdb.Suppression{OpenID: w, Reason: rdb.SuppressManual, At: now, Source: "alice", Note: "asked us | twice"})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	n, err = r.Suppress(ctx, protectApp, false, rdb.Suppression{OpenID: u, Reason: rdb.SuppressBlocked, At: now})
	require.NoError(t, err)
	require.Zero(t, n, "WeChat's later reason does not replace the first")

	a, err := r.Admit(ctx, admission("c2:1", now), u)
	require.NoError(t, err)
	require.Equal(t, rdb.AdmitSuppressed, a.Verdict)
	require.Equal(t, rdb.Suppression{OpenID: u, Reason: rdb.SuppressUnfollowed, Code: 43004, At: now, Source: "c1:1"}, a.Suppression)
	a, err = r.Admit(ctx, admission("c2:1", now), v)
	require.NoError(t, err)
	require.Equal(t, rdb.AdmitHeld, a.Verdict, "refused does not block a send that ignores it")

	lifted, err := r.Unsuppress(ctx, protectApp, true, u, v, w)
	require.NoError(t, err)
	require.Equal(t, 2, lifted)
	entries, on, err := r.GetSuppressions(ctx, protectApp, []string{u, v, w})
	require.NoError(t, err)
	require.Equal(t, []bool{false, false, true}, on)
	require.Equal(t, "asked us / twice", entries[2].Note)

	require.NoError(t, r.SetRest(ctx, protectApp, u, now.Add(time.Hour)))
	require.NoError(t, r.SetRest(ctx, protectApp, u, now.Add(time.Minute)), "an earlier end does not shorten it")
	a, err = r.Admit(ctx, admission("c2:1", now, rdb.CapRule{Max: 5, Per: time.Hour}), u)
	require.NoError(t, err)
	require.Equal(t, rdb.AdmitRest, a.Verdict)
	require.Equal(t, now.Add(time.Hour), a.Until)
	tx := admission("c2:1", now)
	tx.Rest = false
	a, err = r.Admit(ctx, tx, u)
	require.NoError(t, err)
	require.True(t, a.Admitted(), "a send exempt from the caps is exempt from rests")
	a, err = r.Admit(ctx, admission("c3:1", now.Add(2*time.Hour)), u)
	require.NoError(t, err)
	require.True(t, a.Admitted(), "the rest is over")
}

// TestAdmitCSWindow: a message opens a window of 5 sends in 48 hours;
// sends outside it or past its count are refused with why; a retry keeps
// its place; a release gives it back; a shorter window does not replace a
// longer one with sends left.
func TestAdmitCSWindow(t *testing.T) {
	t.Parallel()
	r := setup(t)
	ctx := t.Context()
	now := time.UnixMilli(time.Now().UnixMilli())
	const u, old, none = "oUSER00000000000000000000006", "oUSER00000000000000000000007", "oUSER00000000000000000000008"
	cs := func(member string) *rdb.Admission {
		a := admission(member, now)
		a.CSWindow = true
		return a
	}
	_, err := r.Interact(ctx, protectApp, u, now.Add(-47*time.Hour), 48*time.Hour, 5)
	require.NoError(t, err)
	_, err = r.Interact(ctx, protectApp, old, now.Add(-49*time.Hour), 48*time.Hour, 5)
	require.NoError(t, err)
	replaced, err := r.Interact(ctx, protectApp, u, now.Add(-time.Hour), time.Minute, 3)
	require.NoError(t, err)
	require.False(t, replaced, "the longer window with sends left stays")

	for i := range 5 {
		a, err := r.Admit(ctx, cs(fmt.Sprintf("c%d:1", i)), u)
		require.NoError(t, err)
		require.Equal(t, rdb.AdmitNew, a.Verdict, "send %d", i)
	}
	a, err := r.Admit(ctx, cs("c0:1"), u)
	require.NoError(t, err)
	require.Equal(t, rdb.AdmitHeld, a.Verdict)
	a, err = r.Admit(ctx, cs("c5:1"), u)
	require.NoError(t, err)
	require.Equal(t, rdb.AdmitNoWindow, a.Verdict)
	require.Equal(t, "used", a.Window)
	require.Equal(t, 5, a.WindowAllowed)
	require.NoError(t, r.Release(ctx, protectApp, u, "c2:1"))
	a, err = r.Admit(ctx, cs("c5:1"), u)
	require.NoError(t, err)
	require.Equal(t, rdb.AdmitNew, a.Verdict, "the released send's place")
	w, ok, err := r.GetCSWindow(ctx, protectApp, u)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 5, w.Used)

	a, err = r.Admit(ctx, cs("c0:1"), old)
	require.NoError(t, err)
	require.Equal(t, rdb.AdmitNoWindow, a.Verdict)
	require.Equal(t, "closed", a.Window)
	require.Equal(t, now.Add(-49*time.Hour), a.WindowStart)
	a, err = r.Admit(ctx, cs("c0:1"), none)
	require.NoError(t, err)
	require.Equal(t, "none", a.Window)

	var open []string
	require.NoError(t, r.ScanCSWindows(ctx, protectApp, now, func(w rdb.CSWindowState) error {
		if w.Open(now) {
			open = append(open, w.OpenID)
		}
		return nil
	}))
	require.Empty(t, open, "u's window is used up; old's closed and is dropped")
	_, ok, err = r.GetCSWindow(ctx, protectApp, old)
	require.NoError(t, err)
	require.False(t, ok)
}
