//go:build reliability

package reliability

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/wxmass/wxmass/campaigns"
	"github.com/wxmass/wxmass/internal/rdb"
	"github.com/wxmass/wxmass/internal/redistest"
	"github.com/wxmass/wxmass/wechat"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

// TestTokenStorm: every 2 s during a 20,000-recipient run, the fake revokes
// every access_token of the account (as when another system refreshes the
// token with force_refresh, or WeChat rotates it early). Each worker
// process's sends then get 40001; the fleet of three must fetch one new
// token per revocation, not one per process or per send (compare-and-
// refresh: the stored token is replaced only if it is still the one that
// failed, and one process at a time holds the fetch lease), and every send
// must end sent: a 40001 is retried with the new token, never a failure.
func TestTokenStorm(t *testing.T) {
	const (
		n       = 20000
		workers = 3
		every   = 2 * time.Second
		// A revocation in the middle of a fetch can cost one fetch more; the
		// first token of the run is one too.
		slack = 3
	)
	begin := time.Now()
	rs := StartRedis(t, redistest.ServerConfig{})
	fake := StartFake(t, wechattest.Config{})
	f := StartFleet(t, FleetConfig{RedisURL: rs.URL(), Fake: fake, Workers: workers, Rate: 1000, Burst: 100})
	run := f.Launch(t, campaigns.KindTemplate, OpenIDs("TOKEN", n))

	invalidations := 0
	rec := run.Wait(t, 6*time.Minute, Hook{Every: every, Do: func(rdb.RunRecord) {
		fake.InvalidateTokens()
		invalidations++
	}})

	s := Check(t, run)
	assert.EqualValues(t, n, rec.Counters[rdb.OutcomeSent], "every recipient was sent: a revoked token fails nobody")
	st := fake.Stats()
	tok := st.APIs[wechat.APIStableToken]
	send := st.APIs[run.Kind.API()]
	assert.Positive(t, send.Errors[40001], "the revocations reached sends in flight")
	assert.LessOrEqual(t, int(tok.TokensIssued), invalidations+slack, "one new token per revocation")
	assert.LessOrEqual(t, int(tok.Calls), invalidations+slack, "one stable_token call per revocation, across %d processes", workers)
	assert.Zero(t, st.APIs[wechat.APIToken].Calls, "the plain token API (which rotates the token) is never called")
	s.Note("%d revocations every %s; stable_token: %d calls, %d tokens issued", invalidations, every, tok.Calls, tok.TokensIssued)
	s.Note("%d sends answered 40001 and sent again", send.Errors[40001])
	s.Elapsed = time.Since(begin)
	Report(t, s)
}
