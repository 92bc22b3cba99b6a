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
	url string

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
	f.mu.Lock()
	times := slices.Clone(f.calls[callKey{appID, api}])
	f.mu.Unlock()
	slices.Sort(times) // token calls are recorded when answered
	peak, lo := 0, 0
	for hi, t := range times {
		for t-times[lo] >= int64(time.Second) {
			lo++
		}
		peak = max(peak, hi-lo+1)
	}
	return peak
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
