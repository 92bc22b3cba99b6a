package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/wechat/callback"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestCallbackProtectsTheAudience: the account's callback receiver (real
// wiring, real Redis, the fake pushing signed, and in safe mode encrypted,
// events as WeChat does) keeps the account's protection up to date: an
// unsubscribe event suppresses the user, a subscribe event lifts it (an
// operator's entry stays), a "failed:user block" receipt suppresses, a
// "failed:freq limit" receipt rests the user, and a user's message opens
// a customer-service window from the time WeChat says it was written.
func TestCallbackProtectsTheAudience(t *testing.T) {
	for _, mode := range []string{callback.ModePlain, callback.ModeSafe} {
		t.Run(mode, func(t *testing.T) {
			b := setupReceiver(t, mode)
			ctx := t.Context()
			app := wechattest.AppIDDefault
			suppressed := func(openid string) (campaigns.Suppression, bool) {
				t.Helper()
				e, on, err := b.store.Suppressions(ctx, app, []string{openid})
				require.NoError(t, err)
				return e[0], on[0]
			}

			require.NoError(t, b.fake.PushInteraction(ctx, app, b.alice, wechattest.InteractUnfollow, time.Now()))
			e, on := suppressed(b.alice)
			require.True(t, on, "an unsubscribe event suppresses")
			require.Equal(t, campaigns.SuppressUnfollowed, e.Reason)
			require.Equal(t, "event", e.Source)

			_, err := b.store.Suppress(ctx, app, true, campaigns.Suppression{OpenID: b.carol, Reason: campaigns.SuppressManual, At: time.Now(), Source: "alice"})
			require.NoError(t, err)
			require.NoError(t, b.fake.PushInteraction(ctx, app, b.alice, wechattest.InteractFollow, time.Now()))
			require.NoError(t, b.fake.PushInteraction(ctx, app, b.carol, wechattest.InteractFollow, time.Now()))
			_, on = suppressed(b.alice)
			require.False(t, on, "a subscribe event lifts it")
			_, on = suppressed(b.carol)
			require.True(t, on, "an operator's entry stays")
			w, ok, err := b.store.CSWindow(ctx, app, b.alice)
			require.NoError(t, err)
			require.True(t, ok)
			require.Equal(t, 3, w.Allowed, "a follow opens the short window")
			require.WithinDuration(t, w.Start.Add(time.Minute), w.End, time.Millisecond)

			wrote := time.Now().Add(-47 * time.Hour).Truncate(time.Second)
			require.NoError(t, b.fake.PushInteraction(ctx, app, b.bob, wechattest.InteractMessage, wrote))
			w, ok, err = b.store.CSWindow(ctx, app, b.bob)
			require.NoError(t, err)
			require.True(t, ok)
			require.True(t, w.Start.Equal(wrote), "the window starts when the user wrote: %v", w.Start)
			require.Equal(t, 5, w.Allowed)
			require.True(t, w.Open(time.Now()))

			require.NoError(t, b.fake.SetReceiptStatus(b.bob, "failed:user block"))
			b.send(t, b.bob)
			pollUntil(t, 10*time.Second, 10*time.Millisecond, func() bool {
				_, on := suppressed(b.bob)
				return on
			}, "the user-block receipt suppresses")
			e, _ = suppressed(b.bob)
			require.Equal(t, campaigns.SuppressBlocked, e.Reason)
			require.Equal(t, "receipt", e.Source)
			require.Equal(t, "failed: user block", b.outcome(t, b.bob))

			require.NoError(t, b.fake.SetReceiptStatus(b.alice, "failed:freq limit"))
			b.send(t, b.alice)
			adm := &campaigns.Admission{AppID: app, Member: "next:1", Rest: true, Now: time.Now(),
				Caps: []campaigns.CapRule{{Max: 10, Per: time.Hour}}}
			pollUntil(t, 10*time.Second, 10*time.Millisecond, func() bool {
				a, err := b.store.Admit(ctx, adm, b.alice)
				require.NoError(t, err)
				return a.Verdict == campaigns.AdmitRest
			}, "the freq-limit receipt rests the user")
			_, on = suppressed(b.alice)
			require.False(t, on, "a rest is not a suppression")
		})
	}
}
