package api_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/ratelimit"
)

// Campaigns name their account by id: none means the default account, an
// appid becomes the id, an account wxmass does not send for is refused and
// nothing is stored.
func TestCampaignAccounts(t *testing.T) {
	reg, err := account.NewRegistry(
		&account.Account{ID: "shop", AppID: appID, Default: ratelimit.Limit{Rate: 300, Burst: 30}},
		&account.Account{ID: "news", AppID: "wx00000000000api02", Default: ratelimit.Limit{Rate: 50, Burst: 5}},
	)
	require.NoError(t, err)
	b := setup(t, func(c *api.Config) { c.Accounts = reg })

	const body = `"kind":"template","template":{"template_id":"T","data":{"thing1":"x"}},"audience":{"source":"inline","openids":["o0000000000000000000000000001"]}}`
	a := b.json(t, "POST", "/v1/campaigns", `{"name":"no account",`+body)
	require.Equal(t, 201, a.status, a.raw)
	require.Equal(t, "shop", a.body["account"], "the default account")

	a = b.json(t, "POST", "/v1/campaigns", `{"name":"by appid","account":"wx00000000000api02",`+body)
	require.Equal(t, 201, a.status, a.raw)
	require.Equal(t, "news", a.body["account"], "stored by id")

	a = b.json(t, "POST", "/v1/campaigns", `{"name":"by id","account":"news",`+body)
	require.Equal(t, 201, a.status, a.raw)
	require.Equal(t, "news", a.body["account"])

	list := b.json(t, "GET", "/v1/campaigns", "")
	before := len(list.body["campaigns"].([]any))
	a = b.json(t, "POST", "/v1/campaigns", `{"name":"unknown","account":"sports",`+body)
	require.Equal(t, 422, a.status, a.raw)
	require.Equal(t, "account", a.errField())
	require.Contains(t, a.raw, `no account \"sports\" (configured: news, shop)`)
	list = b.json(t, "GET", "/v1/campaigns", "")
	require.Len(t, list.body["campaigns"], before, "nothing stored")

	a = b.json(t, "GET", "/v1/accounts", "")
	require.Equal(t, 200, a.status, a.raw)
	accts := a.body["accounts"].([]any)
	require.Len(t, accts, 2)
	news := accts[0].(map[string]any)
	require.Equal(t, "news", news["id"])
	require.Equal(t, "wx00000000000api02", news["appid"])
	require.Equal(t, false, news["default"])
	require.Equal(t, map[string]any{"rate": 50.0, "burst": 5.0}, news["limits"].(map[string]any)["message/template/send"])
	require.Equal(t, true, accts[1].(map[string]any)["default"])
}
