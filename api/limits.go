package api

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/wxmass/wxmass/internal/httpserve"
)

// Defaults of the request limits, for the flags of `wxmass serve`; the
// zero Limits limits nothing.
const (
	// A client of the API makes a few calls per campaign, and one per
	// transactional send: 50 a second is far above what one account's
	// sends need from one key, and low enough that a runaway script
	// cannot take the process.
	RatePerKeyDefault  = 50
	BurstPerKeyDefault = 100
	// Above the per-key limit, so that one key from one address meets the
	// key's limit first; it mostly bounds unauthenticated floods.
	RatePerAddressDefault  = 100
	BurstPerAddressDefault = 200
	// Ten wrong keys at once, then one a second: a person who mistyped is
	// barely slowed, a client retrying a bad key slower than once a second
	// never locks out the others at its address, and a guesser gets 86,400
	// tries a day, nothing against a key of 16 characters or more.
	AuthFailureRateDefault  = 1
	AuthFailureBurstDefault = 10
)

// Rate is a token bucket: Rate events a second on average, Burst at once.
// A zero Rate is no limit; a zero Burst with a Rate is the Rate rounded up.
type Rate struct {
	Rate  float64
	Burst int
}

// Limits are the API's request limits, per key and per client address. A
// client address is the request's remote address, an IPv6 one by its /64
// (httpserve.AddressKey): behind a reverse proxy, every client has the
// proxy's.
type Limits struct {
	// PerKey limits each key's requests, by key name, once authenticated.
	PerKey Rate
	// PerAddress limits each address's requests, before authentication.
	PerAddress Rate
	// AuthFailures limits failed authentications (a key sent, and wrong)
	// per address: once its burst is spent, every request from the
	// address is refused, whatever its key, until a failure is allowed
	// again; so a guesser learns nothing from a right guess made too soon.
	AuthFailures Rate
}

// Limiters are dropped once idle long enough to be full again (dropping
// them loses nothing); past limiterMaxEntries, new keys share one limiter.
const (
	limiterSweepInterval = 10 * time.Second
	limiterMaxEntries    = 100_000
)

// limiterSet is a token bucket per key. The nil *limiterSet limits nothing.
// Safe for concurrent use.
type limiterSet struct {
	limit rate.Limit
	burst int

	mu       sync.Mutex
	m        map[string]*rate.Limiter
	overflow *rate.Limiter
	swept    time.Time
}

func newLimiterSet(r Rate, name string) (*limiterSet, error) {
	switch {
	case math.IsNaN(r.Rate) || r.Rate < 0 || r.Burst < 0:
		return nil, fmt.Errorf("api: %s: rate %v burst %d: want 0 (no limit) or more", name, r.Rate, r.Burst)
	case r.Rate == 0:
		return nil, nil
	}
	burst := r.Burst
	if burst == 0 {
		burst = int(math.Ceil(r.Rate))
	}
	return &limiterSet{limit: rate.Limit(r.Rate), burst: burst, m: map[string]*rate.Limiter{},
		overflow: rate.NewLimiter(rate.Limit(r.Rate), burst)}, nil
}

// getLocked returns key's limiter, made if create.
func (s *limiterSet) getLocked(key string, now time.Time, create bool) *rate.Limiter {
	if since := now.Sub(s.swept); since >= limiterSweepInterval || (len(s.m) >= limiterMaxEntries && since >= time.Second) {
		s.swept = now
		for k, l := range s.m {
			if l.TokensAt(now) >= float64(s.burst) {
				delete(s.m, k)
			}
		}
	}
	if l, ok := s.m[key]; ok || !create {
		return l
	}
	if len(s.m) >= limiterMaxEntries {
		return s.overflow
	}
	l := rate.NewLimiter(s.limit, s.burst)
	s.m[key] = l
	return l
}

// take takes a token of key's bucket, or returns how long until one is
// there (taking none).
func (s *limiterSet) take(key string, now time.Time) time.Duration {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.getLocked(key, now, true).ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// wait returns how long until key's bucket has a token, taking none.
func (s *limiterSet) wait(key string, now time.Time) time.Duration {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.getLocked(key, now, false)
	if l == nil {
		return 0
	}
	if tokens := l.TokensAt(now); tokens < 1 {
		return time.Duration((1 - tokens) / float64(s.limit) * float64(time.Second))
	}
	return 0
}

// spend takes a token of key's bucket if it has one.
func (s *limiterSet) spend(key string, now time.Time) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.getLocked(key, now, true).AllowN(now, 1)
}

// len is the number of keys with a limiter.
func (s *limiterSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// limits are a Server's limiters.
type limits struct {
	perKey, perAddress, authFailures *limiterSet
	now                              func() time.Time
	logLimited                       rate.Sometimes
}

func newLimits(l Limits) (*limits, error) {
	var err error
	lim := &limits{now: time.Now, logLimited: rate.Sometimes{Interval: time.Minute}}
	if lim.perKey, err = newLimiterSet(l.PerKey, "Limits.PerKey"); err != nil {
		return nil, err
	}
	if lim.perAddress, err = newLimiterSet(l.PerAddress, "Limits.PerAddress"); err != nil {
		return nil, err
	}
	if lim.authFailures, err = newLimiterSet(l.AuthFailures, "Limits.AuthFailures"); err != nil {
		return nil, err
	}
	return lim, nil
}

// admitAddress applies the limits of the request's address, before
// authentication: its request rate, and its failed authentications. Over
// one, it answers 429 and returns false.
func (s *Server) admitAddress(w http.ResponseWriter, r *http.Request) bool {
	addr := httpserve.AddressKey(r.RemoteAddr)
	now := s.lim.now()
	if d := s.lim.perAddress.take(addr, now); d > 0 {
		s.rateLimited(w, r, d, "too many requests from this address", zap.String("address", addr))
		return false
	}
	if d := s.lim.authFailures.wait(addr, now); d > 0 {
		s.rateLimited(w, r, d, "too many failed authentications from this address", zap.String("address", addr))
		return false
	}
	return true
}

// authFailed counts a failed authentication against the request's address
// when it sent credentials (a first request without any, as browsers make,
// is no failure), and makes the 401 close the connection unread.
func (s *Server) authFailed(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" {
		s.spendAuthFailure(r)
	}
	httpserve.Refuse(w, r)
}

// spendAuthFailure counts a wrong key sent from the request's address (a
// login with a wrong key, or a wrong Authorization).
func (s *Server) spendAuthFailure(r *http.Request) {
	s.lim.authFailures.spend(httpserve.AddressKey(r.RemoteAddr), s.lim.now())
}

// admitKey applies the limit of the request's key. Over it, it answers 429
// and returns false.
func (s *Server) admitKey(w http.ResponseWriter, r *http.Request, p Principal) bool {
	if d := s.lim.perKey.take(p.Key, s.lim.now()); d > 0 {
		s.rateLimited(w, r, d, "too many requests with this key", zap.String("key", p.Key))
		return false
	}
	return true
}

// rateLimited answers 429 with Retry-After, the wait d in whole seconds,
// and closes the connection without reading the body.
func (s *Server) rateLimited(w http.ResponseWriter, r *http.Request, d time.Duration, what string, who zap.Field) {
	secs := max(1, int(math.Ceil(d.Seconds())))
	s.lim.logLimited.Do(func() {
		s.log.Warn("api requests refused over a rate limit (logged once a minute)", who, zap.String("limit", what))
	})
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	httpserve.Refuse(w, r)
	writeError(w, apiError(http.StatusTooManyRequests, CodeRateLimited, "", "%s; retry in %d s", what, secs))
}
