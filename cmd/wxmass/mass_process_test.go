package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestMassThroughTheAPI: mass campaigns through a real `wxmass all`: one to
// all followers (one sendall job) and one to a list (one mass/send job),
// created and started through the API. The fake pushes MASSSENDJOBFINISH
// to the process's callback receiver, in plain and in safe (AES) mode; the
// run's status and report show each batch's result from the push, with
// counts equal to the fake's record of the job. mass/get is not asked
// (--mass-poll-after 1h).
func TestMassThroughTheAPI(t *testing.T) {
	for _, mode := range []string{"plain", "safe"} {
		t.Run(mode, func(t *testing.T) {
			const apiKey = "mass-test-key-0123456789"
			const cbToken, aesKey = "mass-callback-token", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
			addr := freeAddr(t)
			cb := wechattest.Callback{URL: "http://" + addr + "/wechat/callback", Token: cbToken, AppID: wechattest.AppIDDefault, Mode: mode}
			env := []string{"WXMASS_CALLBACK_TOKEN=" + cbToken}
			if mode == "safe" {
				cb.AESKey = aesKey
				env = append(env, "WXMASS_CALLBACK_AES_KEY="+aesKey)
			}
			list := []string{fmt.Sprintf("oMAS%024d", 1), fmt.Sprintf("oMAS%024d", 2), fmt.Sprintf("oMAS%024d", 3)}
			fake := wechattest.Start(t, wechattest.Config{Followers: 25, FollowerIDs: list, Callback: cb,
				Mass: wechattest.MassConfig{Sending: 100 * time.Millisecond}})
			c := redistest.Client(t, redistest.DBCmdMass)
			prefix := redistest.Prefix(t, c)
			opt := redistest.Options(t, redistest.DBCmdMass)
			p := startAll(t, addr, append(env,
				fmt.Sprintf("WXMASS_REDIS_URL=redis://%s/%d", opt.Addr, opt.DB),
				"WXMASS_REDIS_PREFIX="+prefix,
				"WXMASS_WECHAT_BASE_URL="+fake.URL(),
				"WXMASS_APPID="+wechattest.AppIDDefault,
				"WXMASS_APPSECRET="+wechattest.SecretDefault,
				"WXMASS_API_KEYS="+apiKey,
				"WXMASS_MASS_POLL_AFTER=1h",
			), "--callback-mode", mode)

			call := func(method, path, body string) (int, map[string]any) {
				t.Helper()
				status, m, _ := apiCall(t, addr, apiKey, method, path, body)
				return status, m
			}
			start := func(audience string) string {
				t.Helper()
				status, created := call("POST", "/v1/campaigns", `{"name":"群发","account":"`+wechattest.AppIDDefault+`","kind":"mass",
					"mass":{"msgtype":"text","text":{"content":"本月精选"}},"audience":`+audience+`}`)
				require.Equal(t, http.StatusCreated, status, "%v", created)
				id := created["id"].(string)
				status, started := call("POST", "/v1/campaigns/"+id+"/start", "")
				require.Equal(t, http.StatusAccepted, status, "%v", started)
				return id
			}
			all := start(`{"source":"followers"}`)
			inline := start(`{"source":"inline","openids":["` + strings.Join(list, `","`) + `"]}`)

			jobs := map[string]wechattest.MassJob{}
			for _, id := range []string{all, inline} {
				var rs map[string]any
				pollUntil(t, 30*time.Second, 50*time.Millisecond, func() bool {
					_, rs = call("GET", "/v1/campaigns/"+id+"/runs/1", "")
					return rs["state"] == "completed"
				}, "the mass run does not complete: %v\n%s", rs, p.out)
				status, rep := call("GET", "/v1/campaigns/"+id+"/runs/1/report", "")
				require.Equal(t, http.StatusOK, status, "%v", rep)
				mass := rep["mass"].(map[string]any)
				batches := mass["batches"].([]any)
				require.Len(t, batches, 1)
				b := batches[0].(map[string]any)
				res := b["result"].(map[string]any)
				require.Equal(t, "push", res["via"], "the result came through the %s receiver", mode)
				require.Equal(t, "sent", b["state"])
				var job wechattest.MassJob
				for _, j := range fake.MassJobs() {
					if float64(j.MsgID) == b["msg_id"] {
						job = j
					}
				}
				require.NotZero(t, job.MsgID, "the batch's msg_id is a job of the fake")
				require.Equal(t, b["clientmsgid"], job.ClientMsgID)
				require.EqualValues(t, len(job.Delivered), res["sent_count"], "the push's counts are the fake's record")
				require.EqualValues(t, job.Total, res["total_count"])
				require.EqualValues(t, len(job.Delivered), mass["totals"].(map[string]any)["sent_count"])
				jobs[id] = job
			}
			require.True(t, jobs[all].ToAll)
			require.Len(t, jobs[all].Delivered, 28)
			require.ElementsMatch(t, list, jobs[inline].Delivered)
			require.Len(t, fake.MassJobs(), 2, "one job each")
			require.Zero(t, fake.MassCalls()["message/mass/get"], "the pushes did it")

			// The CLI's status shows the batch and WeChat's counts.
			stdout, stderr, code := run(t, []string{"WXMASS_API_URL=http://" + addr, "WXMASS_API_KEY=" + apiKey}, "campaign", "status", inline)
			require.Equal(t, 0, code, stderr)
			require.Contains(t, stdout, "a mass send has no per-recipient outcome")
			require.Regexp(t, `b0:0-3 +3 +\d+ +sent +send success +3 +3 +3 +0`, stdout)
			require.Contains(t, stdout, "filtered by WeChat: 0")
		})
	}
}
