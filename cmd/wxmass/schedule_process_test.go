package main

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestScheduleFiresOnceAcrossServeProcesses runs two `wxmass all`
// processes on one Redis and schedules a campaign every minute: the next
// minute's fire starts exactly one run, whichever process claims it. The
// binary's clock cannot be driven, so the test waits for the next minute
// (at most a minute, polling with a deadline).
func TestScheduleFiresOnceAcrossServeProcesses(t *testing.T) {
	t.Parallel()
	const apiKey = "sched-test-key-0123456789"
	fake := wechattest.Start(t, wechattest.Config{})
	c := redistest.Client(t, redistest.DBCmdSched)
	prefix := redistest.Prefix(t, c)
	opt := redistest.Options(t, redistest.DBCmdSched)

	env := []string{
		fmt.Sprintf("WXMASS_REDIS_URL=redis://%s/%d", opt.Addr, opt.DB),
		"WXMASS_REDIS_PREFIX=" + prefix,
		"WXMASS_WECHAT_BASE_URL=" + fake.URL(),
		"WXMASS_APPID=" + wechattest.AppIDDefault,
		"WXMASS_APPSECRET=" + wechattest.SecretDefault,
		"WXMASS_API_KEYS=" + apiKey,
	}
	var addrs []string
	var outs []*syncBuffer
	for range 2 {
		p := startAll(t, freeAddr(t), env)
		t.Cleanup(func() {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			_ = p.cmd.Wait()
		})
		addrs = append(addrs, p.addr)
		outs = append(outs, p.out)
	}
	call := func(addr, method, path, body string) (int, map[string]any) {
		t.Helper()
		status, m, _ := apiCall(t, addr, apiKey, method, path, body)
		return status, m
	}

	status, created := call(addrs[0], "POST", "/v1/campaigns", `{"name":"every minute","account":"`+wechattest.AppIDDefault+`","kind":"template",
		"template":{"template_id":"`+wechattest.TemplateIDDefault+`","data":{"thing1":"整点提醒"}},
		"audience":{"source":"inline","openids":["oSCH000000000000000000000001","oSCH000000000000000000000002"]},
		"schedule":{"cron":"* * * * *"}}`)
	require.Equal(t, http.StatusCreated, status, "%v", created)
	id := created["id"].(string)
	status, scheduled := call(addrs[1], "POST", "/v1/campaigns/"+id+"/schedule", "")
	require.Equal(t, http.StatusOK, status, "%v", scheduled)
	fires := scheduled["next_fires"].([]any)
	first, err := time.Parse(time.RFC3339, fires[0].(string))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Truncate(time.Minute).Add(time.Minute), first, time.Minute)

	// The fire: one run, completed, once the minute has come.
	var cv map[string]any
	pollUntil(t, 2*time.Minute, 100*time.Millisecond, func() bool {
		_, cv = call(addrs[0], "GET", "/v1/campaigns/"+id, "")
		if cv["latest_run"] != float64(1) {
			return false
		}
		_, run := call(addrs[0], "GET", "/v1/campaigns/"+id+"/runs/1", "")
		return run["state"] == "completed"
	}, "the fire of %s did not run: %v\n%s\n%s", first, cv, outs[0], outs[1])
	// Let both processes poll the schedule a few times past the fire
	// (each looks every second): still one run, until the next minute.
	select {
	case <-time.After(time.Until(first.Add(3 * time.Second))):
	case <-t.Context().Done():
		t.Fatal(t.Context().Err())
	}
	_, cv = call(addrs[1], "GET", "/v1/campaigns/"+id, "")
	require.EqualValues(t, 1, cv["latest_run"], "one fire, one run")
	require.EqualValues(t, 2, fake.Stats().APIs["message/template/send"].Accepted, "each recipient once")
	status, _ = call(addrs[0], "POST", "/v1/campaigns/"+id+"/unschedule", "")
	require.Equal(t, http.StatusOK, status)
}
