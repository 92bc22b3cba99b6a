package reliability

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestFakeRecordsCallsPerAccount: the harness's recorder learns a token's
// account from the token API's answer and counts each call under it.
func TestFakeRecordsCallsPerAccount(t *testing.T) {
	t.Parallel()
	fake := StartFake(t, wechattest.Config{})
	post := func(path, body string) *http.Response {
		res, err := http.Post(fake.URL()+path, "application/json", strings.NewReader(body))
		require.NoError(t, err)
		t.Cleanup(func() { _ = res.Body.Close() })
		return res
	}
	res := post("/cgi-bin/stable_token", `{"grant_type":"client_credential","appid":"`+wechattest.AppIDDefault+`","secret":"`+wechattest.SecretDefault+`"}`)
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&tok))
	require.NotEmpty(t, tok.AccessToken)

	begin := time.Now()
	send := `{"touser":"oFAKE00000000000000000000001","template_id":"` + wechattest.TemplateIDDefault + `","data":{"thing1":{"value":"ok"}}}`
	for range 5 {
		require.Equal(t, http.StatusOK, post("/cgi-bin/message/template/send?access_token="+tok.AccessToken, send).StatusCode)
	}
	post("/cgi-bin/message/template/send?access_token=unknown", send)
	end := time.Now().Add(time.Second)

	api := wechat.APITemplateSend
	require.Equal(t, []string{unknownAccount, wechattest.AppIDDefault}, fake.Accounts(api))
	require.Equal(t, 5, fake.Peak1s(wechattest.AppIDDefault, api))
	require.Equal(t, 1, fake.Peak1s(unknownAccount, api))
	require.Equal(t, 5, fake.Calls(wechattest.AppIDDefault, api, begin, end))
	require.Equal(t, 6, fake.Calls("", api, begin, end))
	require.Equal(t, 1, fake.Peak1s(wechattest.AppIDDefault, wechat.APIStableToken))
	require.EqualValues(t, 6, fake.Stats().APIs[api].Calls, "every call reached the fake")
	require.EqualValues(t, 5, fake.Stats().APIs[api].Accepted, "the known token was accepted")
}
