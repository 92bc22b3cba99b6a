package wechattest

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// tokenWorks reports the errcode of a call made with tok (0 when accepted).
func (b *testBundle) tokenCode(t *testing.T, tok string) int {
	t.Helper()
	return errcode(t, b.send(t, nameQuotaGet, tok, `{"cgi_path":"/cgi-bin/message/template/send"}`))
}

func accessToken(t *testing.T, m map[string]any) string {
	t.Helper()
	require.Zero(t, errcode(t, m), "%v", m)
	tok, ok := m["access_token"].(string)
	require.True(t, ok, "%v", m)
	return tok
}

func plainTokenPath(appid, secret string) string {
	q := url.Values{"grant_type": {"client_credential"}, "appid": {appid}, "secret": {secret}}
	return "/cgi-bin/token?" + q.Encode()
}

func TestStableTokenNormalMode(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})

	first := b.stableToken(t, AppIDDefault, SecretDefault, false)
	tok1 := accessToken(t, first)
	require.Len(t, tok1, tokenLen)
	require.Regexp(t, `^[A-Za-z0-9_-]+$`, tok1)
	require.EqualValues(t, 7200, num(t, first, "expires_in"))

	// Inside the token's life the same token comes back with less time left.
	b.clock.Advance(time.Hour)
	again := b.stableToken(t, AppIDDefault, SecretDefault, false)
	require.Equal(t, tok1, accessToken(t, again))
	require.EqualValues(t, 3600, num(t, again, "expires_in"))

	// With exactly 5 minutes left it rolls over to a new token.
	b.clock.Advance(time.Hour - 5*time.Minute)
	rolled := b.stableToken(t, AppIDDefault, SecretDefault, false)
	tok2 := accessToken(t, rolled)
	require.NotEqual(t, tok1, tok2)
	require.EqualValues(t, 7200, num(t, rolled, "expires_in"))

	// The old token lives out its own life: the 5-minute overlap.
	require.Zero(t, b.tokenCode(t, tok1))
	require.Zero(t, b.tokenCode(t, tok2))
	b.clock.Advance(5*time.Minute - time.Second)
	require.Zero(t, b.tokenCode(t, tok1))
	b.clock.Advance(time.Second)
	require.Equal(t, 42001, b.tokenCode(t, tok1))
	require.Zero(t, b.tokenCode(t, tok2))

	st := b.srv.Stats().APIs[nameStableToken]
	require.EqualValues(t, 2, st.TokensIssued)
	require.EqualValues(t, 3, st.Calls)
}

func TestStableTokenForceRefresh(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tok0 := accessToken(t, b.stableToken(t, AppIDDefault, SecretDefault, false))

	tok1 := accessToken(t, b.stableToken(t, AppIDDefault, SecretDefault, true))
	require.NotEqual(t, tok0, tok1)
	// The replaced token stays valid for the overlap only.
	b.clock.Advance(5*time.Minute - time.Second)
	require.Zero(t, b.tokenCode(t, tok0))
	b.clock.Advance(time.Second)
	require.Equal(t, 42001, b.tokenCode(t, tok0))

	// Forced refreshes less than 30 s apart return the current token.
	tok2 := accessToken(t, b.stableToken(t, AppIDDefault, SecretDefault, true))
	require.NotEqual(t, tok1, tok2)
	b.clock.Advance(29 * time.Second)
	require.Equal(t, tok2, accessToken(t, b.stableToken(t, AppIDDefault, SecretDefault, true)))
	b.clock.Advance(time.Second)
	tok3 := accessToken(t, b.stableToken(t, AppIDDefault, SecretDefault, true))
	require.NotEqual(t, tok2, tok3)

	// 20 forced refreshes a day: 3 used, 17 more work, the 21st does not.
	last := tok3
	for range ForceRefreshDailyMax - 3 {
		b.clock.Advance(30 * time.Second)
		next := accessToken(t, b.stableToken(t, AppIDDefault, SecretDefault, true))
		require.NotEqual(t, last, next)
		last = next
	}
	b.clock.Advance(30 * time.Second)
	require.Equal(t, last, accessToken(t, b.stableToken(t, AppIDDefault, SecretDefault, true)))

	// ResetQuotas gives the allowance back, as does the next day.
	b.srv.ResetQuotas()
	b.clock.Advance(30 * time.Second)
	fresh := accessToken(t, b.stableToken(t, AppIDDefault, SecretDefault, true))
	require.NotEqual(t, last, fresh)
	for range ForceRefreshDailyMax - 1 {
		b.clock.Advance(30 * time.Second)
		fresh = accessToken(t, b.stableToken(t, AppIDDefault, SecretDefault, true))
	}
	b.clock.Advance(30 * time.Second)
	require.Equal(t, fresh, accessToken(t, b.stableToken(t, AppIDDefault, SecretDefault, true)))
	b.clock.Set(time.Date(2026, 3, 11, 0, 0, 0, 0, quotaLocationDefault()))
	require.NotEqual(t, fresh, accessToken(t, b.stableToken(t, AppIDDefault, SecretDefault, true)))
}

func TestPlainTokenRotation(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	stable := accessToken(t, b.stableToken(t, AppIDDefault, SecretDefault, false))

	m1 := b.get(t, plainTokenPath(AppIDDefault, SecretDefault))
	tok1 := accessToken(t, m1)
	require.EqualValues(t, 7200, num(t, m1, "expires_in"))
	b.clock.Advance(time.Minute)
	tok2 := accessToken(t, b.get(t, plainTokenPath(AppIDDefault, SecretDefault)))
	require.NotEqual(t, tok1, tok2)

	// tok1 overlaps tok2 for 5 minutes from tok2's issue, no matter how many
	// more tokens are issued meanwhile.
	b.clock.Advance(time.Minute)
	tok3 := accessToken(t, b.get(t, plainTokenPath(AppIDDefault, SecretDefault)))
	b.clock.Advance(4*time.Minute - time.Second)
	require.Zero(t, b.tokenCode(t, tok1))
	b.clock.Advance(time.Second)
	require.Equal(t, 42001, b.tokenCode(t, tok1))
	require.Zero(t, b.tokenCode(t, tok2))
	b.clock.Advance(time.Minute)
	require.Equal(t, 42001, b.tokenCode(t, tok2))
	require.Zero(t, b.tokenCode(t, tok3))

	// The token APIs are isolated: rotating plain tokens leaves the stable
	// token alone.
	require.Zero(t, b.tokenCode(t, stable))
	require.Equal(t, stable, accessToken(t, b.stableToken(t, AppIDDefault, SecretDefault, false)))
	require.EqualValues(t, 3, b.srv.Stats().APIs[nameToken].TokensIssued)
}

func TestTokenErrors(t *testing.T) {
	t.Parallel()
	cfg := Config{Accounts: []Account{
		{AppID: AppIDDefault, Secret: SecretDefault},
		{AppID: "wx0000000000000ip1", Secret: "s1", TokenErrcode: 40164},
		{AppID: "wx0000000000000ip2", Secret: "s2", TokenErrcode: 61004},
		{AppID: "wx00000000000frozn", Secret: "s3", TokenErrcode: 40243},
		{AppID: "wx0000000000confrm", Secret: "s4", TokenErrcode: 89503},
	}}
	b := setup(t, cfg)
	stable := func(grant, appid, secret string) string {
		return mustJSON(t, map[string]any{"grant_type": grant, "appid": appid, "secret": secret})
	}
	cases := []struct {
		name   string
		method string
		path   string
		body   string
		code   int
	}{
		{"stable empty body", http.MethodPost, "/cgi-bin/stable_token", "", 44002},
		{"stable bad json", http.MethodPost, "/cgi-bin/stable_token", `{"grant_type":`, 47001},
		{"stable not an object", http.MethodPost, "/cgi-bin/stable_token", `[]`, 47001},
		{"stable force_refresh not bool", http.MethodPost, "/cgi-bin/stable_token", `{"grant_type":"client_credential","appid":"wx00000000000fake1","secret":"x","force_refresh":"yes"}`, 47001},
		{"stable grant_type", http.MethodPost, "/cgi-bin/stable_token", stable("password", AppIDDefault, SecretDefault), 40002},
		{"stable appid missing", http.MethodPost, "/cgi-bin/stable_token", stable("client_credential", "", SecretDefault), 41002},
		{"stable secret missing", http.MethodPost, "/cgi-bin/stable_token", stable("client_credential", AppIDDefault, ""), 41004},
		{"stable unknown appid", http.MethodPost, "/cgi-bin/stable_token", stable("client_credential", "wx0000000000000000", SecretDefault), 40013},
		{"stable wrong secret", http.MethodPost, "/cgi-bin/stable_token", stable("client_credential", AppIDDefault, "nope"), 40125},
		{"stable ip whitelist", http.MethodPost, "/cgi-bin/stable_token", stable("client_credential", "wx0000000000000ip1", "s1"), 40164},
		{"stable clientip", http.MethodPost, "/cgi-bin/stable_token", stable("client_credential", "wx0000000000000ip2", "s2"), 61004},
		{"stable frozen", http.MethodPost, "/cgi-bin/stable_token", stable("client_credential", "wx00000000000frozn", "s3"), 40243},
		{"stable confirm", http.MethodPost, "/cgi-bin/stable_token", stable("client_credential", "wx0000000000confrm", "s4"), 89503},
		{"stable GET", http.MethodGet, "/cgi-bin/stable_token", "", 43002},
		{"plain wrong secret", http.MethodGet, plainTokenPath(AppIDDefault, "nope"), "", 40001},
		{"plain unknown appid", http.MethodGet, plainTokenPath("wx0000000000000000", "x"), "", 40013},
		{"plain grant_type", http.MethodGet, "/cgi-bin/token?grant_type=x&appid=" + AppIDDefault + "&secret=" + SecretDefault, "", 40002},
		{"plain ip whitelist", http.MethodGet, plainTokenPath("wx0000000000000ip1", "s1"), "", 40164},
		{"plain POST", http.MethodPost, plainTokenPath(AppIDDefault, SecretDefault), "", 43001},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := b.call(t, tc.method, tc.path, tc.body)
			require.Equal(t, tc.code, errcode(t, m), "%v", m)
			require.Regexp(t, ` rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$`, m["errmsg"])
			require.NotContains(t, m, "access_token")
		})
	}
}

func TestAccessTokenChecks(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	tok := b.token(t)
	body := `{"cgi_path":"/cgi-bin/message/template/send"}`

	m := b.post(t, "/cgi-bin/openapi/quota/get", body)
	require.Equal(t, 41001, errcode(t, m))
	require.Contains(t, m["errmsg"], "access_token missing rid: ")
	require.Equal(t, 41001, errcode(t, b.send(t, nameQuotaGet, "", body)))
	require.Equal(t, 40014, errcode(t, b.send(t, nameQuotaGet, "short", body)))
	require.Equal(t, 40014, errcode(t, b.send(t, nameQuotaGet, tok+"!", body)))
	// A well-formed token that is not the issued one (the last character
	// changed, whatever it was).
	other := "x"
	if tok[len(tok)-1] == 'x' {
		other = "y"
	}
	m = b.send(t, nameQuotaGet, tok[:len(tok)-1]+other, body)
	require.Equal(t, 40001, errcode(t, m))
	require.Contains(t, m["errmsg"], "invalid credential, access_token is invalid or not latest rid: ")
	require.Zero(t, b.tokenCode(t, tok))

	b.clock.Advance(TokenTTL)
	require.Equal(t, 42001, b.tokenCode(t, tok))

	tok = b.token(t)
	require.Zero(t, b.tokenCode(t, tok))
	b.srv.InvalidateTokens()
	require.Equal(t, 40001, b.tokenCode(t, tok))
	// The next stable_token call issues a new token even in normal mode.
	require.NotEqual(t, tok, b.token(t))
}

func TestTokenTimeScale(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{TimeScale: 60})
	m := b.stableToken(t, AppIDDefault, SecretDefault, false)
	tok := accessToken(t, m)
	require.EqualValues(t, 120, num(t, m, "expires_in"))
	// Rolls over 5 s (5 min / 60) before its 120 s end.
	b.clock.Advance(115 * time.Second)
	next := accessToken(t, b.stableToken(t, AppIDDefault, SecretDefault, false))
	require.NotEqual(t, tok, next)
	b.clock.Advance(5 * time.Second)
	require.Equal(t, 42001, b.tokenCode(t, tok))
}

func TestTokensPerAccount(t *testing.T) {
	t.Parallel()
	second := Account{AppID: "wx0000000000000two", Secret: "two"}
	b := setup(t, Config{Accounts: []Account{{AppID: AppIDDefault, Secret: SecretDefault}, second}, Limits: map[string]Limit{nameTemplateSend: {Daily: 1}}})
	tok1 := b.token(t)
	tok2 := accessToken(t, b.stableToken(t, second.AppID, second.Secret, false))
	require.NotEqual(t, tok1, tok2)
	body := mustJSON(t, templateBody(openID("acct"), ""))
	require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok1, body)))
	require.Equal(t, 45009, errcode(t, b.send(t, nameTemplateSend, tok1, body)))
	// Limits count per account.
	require.Zero(t, errcode(t, b.send(t, nameTemplateSend, tok2, body)))
	ds := b.srv.Deliveries()
	require.Len(t, ds, 2)
	require.Equal(t, AppIDDefault, ds[0].AppID)
	require.Equal(t, second.AppID, ds[1].AppID)
}
