package wechat_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/secret"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// templateMsg is a valid template message for the fake's default template.
func templateMsg(openid, clientMsgID string) *wechat.TemplateMessage {
	return &wechat.TemplateMessage{
		ToUser:      openid,
		TemplateID:  wechattest.TemplateIDDefault,
		ClientMsgID: clientMsgID,
		Data:        map[string]wechat.TemplateValue{"thing1": {Value: "您的订单已发货"}},
	}
}

// runConcurrently starts n goroutines per process, released together, and
// waits for all of them. fn gets the process and the goroutine's index.
func runConcurrently(procs []*proc, n int, fn func(p *proc, i int) error) []error {
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, len(procs)*n)
	for pi, p := range procs {
		for j := range n {
			wg.Go(func() {
				<-start
				errs[pi*n+j] = fn(p, pi*n+j)
			})
		}
	}
	close(start)
	wg.Wait()
	return errs
}

func TestTokenColdStartFetchesOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{})
	procs := []*proc{b.process(t, wechat.TokenCacheConfig{}), b.process(t, wechat.TokenCacheConfig{}), b.process(t, wechat.TokenCacheConfig{})}

	// 200 callers over 3 processes, all with an empty cache.
	tokens := make([]string, 201)
	errs := runConcurrently(procs, 67, func(p *proc, i int) error {
		tok, err := p.tokens.Token(t.Context())
		tokens[i] = tok
		return err
	})
	for _, err := range errs {
		require.NoError(t, err)
	}
	for _, tok := range tokens[:len(errs)] {
		require.NotEmpty(t, tok)
		require.Equal(t, tokens[0], tok)
	}
	st := b.apiStats(wechat.APIStableToken)
	require.EqualValues(t, 1, st.Calls, "one token fetch for the whole fleet")
	require.EqualValues(t, 1, st.TokensIssued)
}

func TestTokenInvalidatedBurstRefreshesOnce(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{})
	procs := []*proc{b.process(t, wechat.TokenCacheConfig{}), b.process(t, wechat.TokenCacheConfig{}), b.process(t, wechat.TokenCacheConfig{})}
	for _, p := range procs {
		_, err := p.tokens.Token(t.Context())
		require.NoError(t, err)
	}
	require.EqualValues(t, 1, b.apiStats(wechat.APIStableToken).Calls)

	b.fake.InvalidateTokens() // as if another system had refreshed it
	errs := runConcurrently(procs, 70, func(p *proc, i int) error {
		_, err := p.client.SendTemplate(t.Context(), p.tokens, templateMsg(followerID(i), ""))
		return err
	})
	for _, err := range errs {
		require.NoError(t, err, "every send succeeds after one refresh")
	}
	st := b.apiStats(wechat.APIStableToken)
	require.EqualValues(t, 2, st.Calls, "exactly one refresh after the invalidation")
	send := b.apiStats(wechat.APITemplateSend)
	require.EqualValues(t, len(errs), send.Accepted)
	require.EqualValues(t, 0, b.fake.Stats().DuplicatesDelivered)
}

func TestTokenLaggardKeepsFreshToken(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{})
	laggard := b.process(t, wechat.TokenCacheConfig{LocalTTL: time.Hour})
	other := b.process(t, wechat.TokenCacheConfig{})
	old, err := laggard.tokens.Token(t.Context())
	require.NoError(t, err)

	b.fake.InvalidateTokens()
	// Another process meets the invalid token first and refreshes.
	_, err = other.client.SendTemplate(t.Context(), other.tokens, templateMsg(followerID(1), ""))
	require.NoError(t, err)
	fresh, err := other.tokens.Token(t.Context())
	require.NoError(t, err)
	require.NotEqual(t, old, fresh)

	// The laggard still holds the old token in memory; its send fails with
	// 40001, its invalidation of the old token must not remove the fresh
	// one, and its retry uses the fresh one.
	_, err = laggard.client.SendTemplate(t.Context(), laggard.tokens, templateMsg(followerID(2), ""))
	require.NoError(t, err)
	require.NoError(t, laggard.tokens.Invalidate(t.Context(), old))
	now, err := other.tokens.Token(t.Context())
	require.NoError(t, err)
	require.Equal(t, fresh, now)
	ok, err := laggard.rdb.InvalidateToken(t.Context(), wechattest.AppIDDefault, old)
	require.NoError(t, err)
	require.False(t, ok, "the stored token is the fresh one")
	require.EqualValues(t, 2, b.apiStats(wechat.APIStableToken).Calls)
}

func TestTokenProactiveRefreshByOneProcess(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{})
	// RefreshAhead just under the token's lifetime makes the first token due
	// for refresh 300 ms after it is stored. The refresh answers the same
	// token (stable_token normal mode), still due, so the next refresh waits
	// RefreshRetryMax: an hour, beyond this test.
	cfg := wechat.TokenCacheConfig{
		RefreshAhead:    7200*time.Second - 300*time.Millisecond,
		RefreshRetryMax: time.Hour,
		LocalTTL:        10 * time.Millisecond,
	}
	procs := []*proc{b.process(t, cfg), b.process(t, cfg), b.process(t, cfg)}
	first, err := procs[0].tokens.Token(t.Context())
	require.NoError(t, err)

	deadline := time.Now().Add(10 * time.Second)
	errs := runConcurrently(procs, 10, func(p *proc, _ int) error {
		for b.apiStats(wechat.APIStableToken).Calls < 2 {
			if time.Now().After(deadline) {
				return errors.New("no proactive refresh within 10s")
			}
			tok, err := p.tokens.Token(t.Context())
			if err != nil {
				return err
			}
			if tok != first {
				return errors.New("normal-mode refresh changed the token")
			}
		}
		// Keep calling while the others may still be racing for the lease.
		for range 20 {
			if _, err := p.tokens.Token(t.Context()); err != nil {
				return err
			}
		}
		return nil
	})
	for _, err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 2, b.apiStats(wechat.APIStableToken).Calls, "one proactive refresh for the whole fleet")
	info, err := procs[1].rdb.TokenInfo(t.Context(), wechattest.AppIDDefault)
	require.NoError(t, err)
	require.True(t, info.Present)
	require.True(t, info.RefreshAt.After(time.Now().Add(20*time.Minute)), "next refresh waits RefreshRetryMax")
}

func TestTokenRotatesWhenFakeRollsOver(t *testing.T) {
	t.Parallel()
	clock := wechattest.NewManualClock(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	b := setup(t, wechattest.Config{NowFunc: clock.Now})
	p := b.process(t, wechat.TokenCacheConfig{})
	first, err := p.tokens.Token(t.Context())
	require.NoError(t, err)

	// Past the token's expiry by the fake's clock, the fake answers 42001;
	// the client refreshes and retries once.
	clock.Advance(7201 * time.Second)
	_, err = p.client.SendTemplate(t.Context(), p.tokens, templateMsg(followerID(1), ""))
	require.NoError(t, err)
	second, err := p.tokens.Token(t.Context())
	require.NoError(t, err)
	require.NotEqual(t, first, second)
	require.EqualValues(t, 1, b.apiStats(wechat.APITemplateSend).Errors[42001])
}

func TestTokenConfigErrorIsClearAndCached(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{Accounts: []wechattest.Account{{
		AppID: wechattest.AppIDDefault, Secret: wechattest.SecretDefault, TokenErrcode: 40164,
	}}})
	procs := []*proc{b.process(t, wechat.TokenCacheConfig{}), b.process(t, wechat.TokenCacheConfig{})}
	errs := runConcurrently(procs, 25, func(p *proc, _ int) error {
		_, err := p.tokens.Token(t.Context())
		return err
	})
	for _, err := range errs {
		require.ErrorIs(t, err, wechat.ErrTokenConfig)
		var ae *wechat.APIError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 40164, ae.Code)
		require.Contains(t, err.Error(), "caller IP not in the account's API IP whitelist")
		require.NotContains(t, err.Error(), wechattest.SecretDefault)
	}
	require.EqualValues(t, 1, b.apiStats(wechat.APIStableToken).Calls, "the error is cached, not fetched again by every caller")
}

func TestTokenWrongSecret(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{})
	for _, api := range []string{wechat.APIStableToken, wechat.APIToken} {
		client := newClient(t, b.fake.URL())
		var err error
		if api == wechat.APIStableToken {
			_, err = client.StableToken(t.Context(), wechattest.AppIDDefault, secret.New("wrong-secret-value"), false)
		} else {
			_, err = client.PlainToken(t.Context(), wechattest.AppIDDefault, secret.New("wrong-secret-value"))
		}
		require.ErrorIs(t, err, wechat.ErrTokenConfig, api)
		require.NotErrorIs(t, err, wechat.ErrTokenInvalid, api)
		require.NotContains(t, err.Error(), "wrong-secret-value")
		require.Contains(t, err.Error(), "appsecret", api)
	}
}

func TestTokenLeaseOfCrashedProcessExpires(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{})
	p := b.process(t, wechat.TokenCacheConfig{LeaseTTL: 300 * time.Millisecond})
	// A process took the lease and died before storing a token.
	keys := p.rdb.Keys()
	require.NoError(t, b.redis.Set(t.Context(), keys.TokenLease(wechattest.AppIDDefault), "dead-process", 300*time.Millisecond).Err())

	tok, err := p.tokens.Token(t.Context())
	require.NoError(t, err)
	require.NotEmpty(t, tok)
	require.EqualValues(t, 1, b.apiStats(wechat.APIStableToken).Calls)
}

func TestTokenHonoursContext(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{})
	p := b.process(t, wechat.TokenCacheConfig{})
	keys := p.rdb.Keys()
	require.NoError(t, b.redis.Set(t.Context(), keys.TokenLease(wechattest.AppIDDefault), "other-process", time.Minute).Err())
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := p.tokens.Token(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestTokenPlainAPI(t *testing.T) {
	t.Parallel()
	b := setup(t, wechattest.Config{})
	var p *proc
	p = b.process(t, wechat.TokenCacheConfig{Fetch: func(ctx context.Context) (wechat.AccessToken, error) {
		return p.client.PlainToken(ctx, wechattest.AppIDDefault, secret.New(wechattest.SecretDefault))
	}})
	_, err := p.client.SendTemplate(t.Context(), p.tokens, templateMsg(followerID(1), ""))
	require.NoError(t, err)
	require.EqualValues(t, 1, b.apiStats(wechat.APIToken).Calls)
	require.EqualValues(t, 0, b.apiStats(wechat.APIStableToken).Calls)
}
