package reliability

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wxmass/wxmass/wechat/wechattest"
)

// Fake is a wechattest.Server served for one scenario behind a recorder of
// every WeChat API call's arrival time and account, so that scenarios can
// read the calls per second of any stretch of time, and the peak one-second
// count per (account, API) (wechattest keeps one peak per API over all
// accounts). The account of a call is that of its access_token, learnt from
// the token APIs' answers.
type Fake struct {
	*wechattest.Server
	url  string
	link *wechattest.Link // StartCuttableFake's; nil otherwise

	mu     sync.Mutex
	calls  map[callKey][]int64 // arrival times, unix nanoseconds, in order
	tokens map[string]string   // access_token -> appid
}

type callKey struct{ appID, api string }

// unknownAccount is the account of calls whose access_token the recorder
// never saw issued.
const unknownAccount = "?"

// StartFake serves a new fake WeChat with cfg until the test ends.
func StartFake(tb testing.TB, cfg wechattest.Config) *Fake {
	tb.Helper()
	s, err := wechattest.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	f := &Fake{Server: s, calls: map[callKey][]int64{}, tokens: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	ts := httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	ts.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	ts.Start()
	f.url = ts.URL
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), wechattest.ShutdownTimeoutDefault)
		defer scancel()
		if err := s.Stop(sctx); err != nil {
			tb.Error(err)
		}
		cancel()
		ts.Close()
	})
	return f
}

// StartCuttableFake is StartFake on a wechattest.Link, which Cut and
// Restore close and reopen (connection refused meanwhile: a network cut).
func StartCuttableFake(tb testing.TB, cfg wechattest.Config) *Fake {
	tb.Helper()
	s, err := wechattest.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	f := &Fake{Server: s, calls: map[callKey][]int64{}, tokens: map[string]string{}}
	l, err := wechattest.NewLink(http.HandlerFunc(f.serve))
	if err != nil {
		tb.Fatal(err)
	}
	f.url, f.link = l.URL(), l
	tb.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), wechattest.ShutdownTimeoutDefault)
		defer scancel()
		if err := s.Stop(sctx); err != nil {
			tb.Error(err)
		}
		l.Close()
	})
	return f
}

// Cut closes the listener and every connection of a StartCuttableFake:
// calls are refused until Restore.
func (f *Fake) Cut() { f.link.Cut() }

// Restore listens again on the same address after Cut.
func (f *Fake) Restore(ctx context.Context) error { return f.link.Restore(ctx) }

// URL is the base URL the workers call.
func (f *Fake) URL() string { return f.url }

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	api, ok := strings.CutPrefix(r.URL.Path, "/cgi-bin/")
	if !ok {
		f.Server.ServeHTTP(w, r)
		return
	}
	if api != "stable_token" && api != "token" {
		appID := unknownAccount
		tok := r.URL.Query().Get("access_token")
		f.mu.Lock()
		if a, ok := f.tokens[tok]; ok {
			appID = a
		}
		k := callKey{appID, api}
		f.calls[k] = append(f.calls[k], time.Now().UnixNano())
		f.mu.Unlock()
		f.Server.ServeHTTP(w, r)
		return
	}
	// A token call: learn which account the token it answers is for.
	appID := r.URL.Query().Get("appid")
	if r.Method == http.MethodPost {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req struct {
			AppID string `json:"appid"`
		}
		_ = json.Unmarshal(body, &req) // the fake answers what is wrong
		appID = req.AppID
	}
	if appID == "" {
		appID = unknownAccount
	}
	at := time.Now().UnixNano()
	rec := httptest.NewRecorder()
	f.Server.ServeHTTP(rec, r)
	var res struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &res)
	f.mu.Lock()
	k := callKey{appID, api}
	f.calls[k] = append(f.calls[k], at)
	if res.AccessToken != "" {
		f.tokens[res.AccessToken] = appID
	}
	f.mu.Unlock()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// arrivals returns copies of the arrival times of api's calls for appID
// ("" for every account), one slice per account.
func (f *Fake) arrivals(appID, api string) [][]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]int64
	for k, v := range f.calls {
		if k.api == api && (appID == "" || k.appID == appID) {
			out = append(out, slices.Clone(v))
		}
	}
	return out
}

// CallsPerSecond returns the calls of api for appID ("" for every account)
// that arrived in each whole second of the real clock from from (rounded
// down to its second) to to (exclusive).
func (f *Fake) CallsPerSecond(appID, api string, from, to time.Time) []int {
	first, last := from.Unix(), to.Unix()
	if last <= first {
		return nil
	}
	out := make([]int, last-first)
	for _, times := range f.arrivals(appID, api) {
		for _, ns := range times {
			if s := ns / int64(time.Second); s >= first && s < last {
				out[s-first]++
			}
		}
	}
	return out
}

// Calls returns the calls of api for appID ("" for every account) that
// arrived in the seconds from from to to, as CallsPerSecond counts them.
func (f *Fake) Calls(appID, api string, from, to time.Time) int {
	n := 0
	for _, c := range f.CallsPerSecond(appID, api, from, to) {
		n += c
	}
	return n
}

// Peak1s returns the most calls of api for appID that arrived in any
// sliding one-second window (calls exactly one second apart are in
// different windows, as wechattest counts them).
func (f *Fake) Peak1s(appID, api string) int {
	peak, _ := f.Peak1sAt(appID, api)
	return peak
}

// Peak1sAt is Peak1s, and the arrival of the first call of the first
// window that holds the peak (zero when there was no call).
func (f *Fake) Peak1sAt(appID, api string) (int, time.Time) {
	f.mu.Lock()
	times := slices.Clone(f.calls[callKey{appID, api}])
	f.mu.Unlock()
	slices.Sort(times) // token calls are recorded when answered
	peak, lo, at := 0, 0, int64(0)
	for hi, t := range times {
		for t-times[lo] >= int64(time.Second) {
			lo++
		}
		if hi-lo+1 > peak {
			peak, at = hi-lo+1, times[lo]
		}
	}
	if peak == 0 {
		return 0, time.Time{}
	}
	return peak, time.Unix(0, at)
}

// Accounts returns the appids whose calls of api the fake received
// (unknownAccount, "?", for calls with a token it never saw issued).
func (f *Fake) Accounts(api string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.calls {
		if k.api == api {
			out = append(out, k.appID)
		}
	}
	slices.Sort(out)
	return out
}

// LongestGap returns the longest stretch without a call of api for appID
// ("" for every account) between from and to, bounds included as calls:
// when it started and how long it lasted. Scenarios read the downtime the
// fake saw from it.
func (f *Fake) LongestGap(appID, api string, from, to time.Time) (at time.Time, gap time.Duration) {
	times := []int64{from.UnixNano()}
	for _, a := range f.arrivals(appID, api) {
		for _, ns := range a {
			if ns > from.UnixNano() && ns < to.UnixNano() {
				times = append(times, ns)
			}
		}
	}
	times = append(times, to.UnixNano())
	slices.Sort(times)
	for i := 1; i < len(times); i++ {
		if d := time.Duration(times[i] - times[i-1]); d > gap {
			at, gap = time.Unix(0, times[i-1]), d
		}
	}
	return at, gap
}

// SpendQuota makes n template sends for the account appID (secret its
// appsecret) straight to the wechattest server, bypassing the recorder, as
// another system of the same account would: they count against the
// account's daily quota at the fake (and in its Stats and Deliveries), but
// not in Peak1s, CallsPerSecond or Calls, which measure wxmass. Each goes
// to an openid of its own (OpenIDs("SPENT", n)), so none is a duplicate,
// and none is in a scenario's audience. It fails the test if a send is
// refused.
func (f *Fake) SpendQuota(tb testing.TB, appID, secret string, n int) {
	tb.Helper()
	call := func(path, body string, out any) {
		tb.Helper()
		rec := httptest.NewRecorder()
		f.Server.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
		var res struct {
			ErrCode int    `json:"errcode"`
			ErrMsg  string `json:"errmsg"`
		}
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &res) != nil || res.ErrCode != 0 {
			tb.Fatalf("SpendQuota: %s answered %d %s", path, rec.Code, rec.Body.String())
		}
		if out != nil {
			if err := json.Unmarshal(rec.Body.Bytes(), out); err != nil {
				tb.Fatalf("SpendQuota: %s: %v", path, err)
			}
		}
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	req, _ := json.Marshal(map[string]string{"grant_type": "client_credential", "appid": appID, "secret": secret})
	call("/cgi-bin/stable_token", string(req), &tok)
	for _, o := range OpenIDs("SPENT", n) {
		call("/cgi-bin/message/template/send?access_token="+tok.AccessToken,
			`{"touser":"`+o+`","template_id":"`+wechattest.TemplateIDDefault+`","data":{"thing1":{"value":"earlier today"}}}`, nil)
	}
}

// FirstCall returns the arrival time of the first call of api for appID
// ("" for every account) after after, and false if none came.
func (f *Fake) FirstCall(appID, api string, after time.Time) (time.Time, bool) {
	first := int64(0)
	for _, a := range f.arrivals(appID, api) {
		for _, ns := range a {
			if ns > after.UnixNano() && (first == 0 || ns < first) {
				first = ns
			}
		}
	}
	return time.Unix(0, first), first != 0
}
