package wechattest

import (
	"crypto/rand"
	"encoding/base64"
	"strconv"
	"sync"
	"time"
)

// tokenKind separates the tokens of the two token APIs, which WeChat keeps
// fully isolated: getting one kind never invalidates the other.
type tokenKind uint8

const (
	tokenPlain  tokenKind = iota // GET /cgi-bin/token
	tokenStable                  // POST /cgi-bin/stable_token
	tokenKinds
)

// tokenEntry is one issued access_token.
type tokenEntry struct {
	acct    *account
	expires time.Time
	revoked bool
}

// tokenHead is an account's latest token of one kind and its force_refresh
// allowance.
type tokenHead struct {
	token      string
	entry      *tokenEntry
	forceDay   int // yyyymmdd of forceCount
	forceCount int
	lastForce  time.Time
}

// tokenStore issues and checks access_tokens. Checks take the read lock
// only; issuing is rare and takes the write lock. The heads of every
// account are guarded by mu too.
type tokenStore struct {
	mu        sync.RWMutex
	entries   map[string]*tokenEntry
	accounts  []*account
	ttl       time.Duration
	overlap   time.Duration
	spacing   time.Duration
	loc       *time.Location
	lastSweep time.Time
}

// tokenLen is the length of an issued token: like WeChat's, 136 characters
// of [A-Za-z0-9_-].
const tokenLen = 136

// tokenSweepAt is the number of stored tokens above which long-expired ones
// are forgotten (and then answer 40001 rather than 42001).
const tokenSweepAt = 4096

func newTokenString() string {
	var raw [tokenLen * 3 / 4]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails on supported platforms.
	return base64.RawURLEncoding.EncodeToString(raw[:])
}

// wellFormedToken reports whether tok could be an access_token at all; a
// malformed one answers 40014.
func wellFormedToken(tok string) bool {
	if len(tok) < 16 || len(tok) > 512 {
		return false
	}
	for i := 0; i < len(tok); i++ {
		if !isBase64URLByte(tok[i]) {
			return false
		}
	}
	return true
}

// check returns the account of tok, or the errcode that refuses it: 41001
// when missing, 40014 when malformed, 40001 when unknown or invalidated and
// 42001 when expired.
func (ts *tokenStore) check(tok string, now time.Time) (*account, int) {
	if tok == "" {
		return nil, 41001
	}
	if !wellFormedToken(tok) {
		return nil, 40014
	}
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	e := ts.entries[tok]
	switch {
	case e == nil || e.revoked:
		return nil, 40001
	case !now.Before(e.expires):
		return nil, 42001
	}
	return e.acct, 0
}

// issue stores a new token of kind for acct. ts.mu is held.
func (ts *tokenStore) issue(acct *account, kind tokenKind, now time.Time) string {
	ts.sweep(now)
	tok := newTokenString()
	e := &tokenEntry{acct: acct, expires: now.Add(ts.ttl)}
	ts.entries[tok] = e
	h := &acct.heads[kind]
	h.token, h.entry = tok, e
	return tok
}

// retire shortens the account's current token of kind to the overlap: it
// stays valid for TokenOverlap (or less, if it expires sooner). ts.mu is
// held.
func (ts *tokenStore) retire(acct *account, kind tokenKind, now time.Time) {
	if e := acct.heads[kind].entry; e != nil {
		if end := now.Add(ts.overlap); end.Before(e.expires) {
			e.expires = end
		}
	}
}

// sweep forgets tokens that expired more than a TTL ago, at most once per
// overlap and only when many are stored. ts.mu is held.
func (ts *tokenStore) sweep(now time.Time) {
	if len(ts.entries) < tokenSweepAt || now.Sub(ts.lastSweep) < ts.overlap {
		return
	}
	ts.lastSweep = now
	for tok, e := range ts.entries {
		if now.Sub(e.expires) > ts.ttl {
			delete(ts.entries, tok)
		}
	}
}

// plain issues a token the way GET /cgi-bin/token does: always a new one,
// leaving the previous one valid for the overlap only.
func (ts *tokenStore) plain(acct *account, now time.Time) (string, time.Duration) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.retire(acct, tokenPlain, now)
	return ts.issue(acct, tokenPlain, now), ts.ttl
}

// stable answers POST /cgi-bin/stable_token. In normal mode it returns the
// current token while more than the overlap of its life is left, and a new
// one otherwise (the old one lives out its own life). force issues a new
// token and retires the old one to the overlap, unless the account used up
// its ForceRefreshDailyMax or the last forced refresh was less than
// ForceRefreshSpacing ago; then it answers as normal mode does.
func (ts *tokenStore) stable(acct *account, force bool, now time.Time) (tok string, left time.Duration, issued bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	h := &acct.heads[tokenStable]
	if force {
		if d := dayOf(now, ts.loc); d != h.forceDay {
			h.forceDay, h.forceCount = d, 0
		}
		if h.forceCount < ForceRefreshDailyMax && (h.lastForce.IsZero() || now.Sub(h.lastForce) >= ts.spacing) {
			h.forceCount++
			h.lastForce = now
			ts.retire(acct, tokenStable, now)
			return ts.issue(acct, tokenStable, now), ts.ttl, true
		}
	}
	if e := h.entry; e != nil && !e.revoked && e.expires.Sub(now) > ts.overlap {
		return h.token, e.expires.Sub(now), false
	}
	return ts.issue(acct, tokenStable, now), ts.ttl, true
}

// invalidate revokes every token of every account, so the next stable_token
// call issues a new one.
func (ts *tokenStore) invalidate() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, e := range ts.entries {
		e.revoked = true
	}
	for _, a := range ts.accounts {
		for k := range a.heads {
			a.heads[k].token, a.heads[k].entry = "", nil
		}
	}
}

// resetForce gives every account its daily force_refresh allowance back.
func (ts *tokenStore) resetForce() {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, a := range ts.accounts {
		a.heads[tokenStable].forceCount = 0
	}
}

// appendToken appends a token API's success body.
func appendToken(dst []byte, tok string, left time.Duration) []byte {
	secs := max(int64(left/time.Second), 1)
	dst = append(dst, `{"access_token":"`...)
	dst = append(dst, tok...)
	dst = append(dst, `","expires_in":`...)
	dst = strconv.AppendInt(dst, secs, 10)
	return append(dst, '}')
}

// stableToken serves POST /cgi-bin/stable_token.
func (s *Server) stableToken(x *exchange, now time.Time) outcome {
	if len(x.body) == 0 {
		return outcome{code: 44002}
	}
	root, err := parseJSON(x.body)
	if err != nil || root.kind != jsonObject {
		return outcome{code: 47001}
	}
	f := fieldReader{obj: &root}
	grant, _ := f.str("grant_type")
	appid, _ := f.str("appid")
	secret, _ := f.str("secret")
	force := f.boolean("force_refresh")
	if f.bad {
		return outcome{code: 47001}
	}
	acct, code := s.tokenAccount(apiStableToken, grant, appid, secret, now)
	if code != 0 {
		return outcome{code: code}
	}
	tok, left, issued := s.tokens.stable(acct, force, now)
	x.out = appendToken(x.out, tok, left)
	return outcome{issued: issued}
}

// plainToken serves GET /cgi-bin/token.
func (s *Server) plainToken(x *exchange, rawQuery string, now time.Time) outcome {
	grant := queryValue(rawQuery, "grant_type")
	appid := queryValue(rawQuery, "appid")
	secret := queryValue(rawQuery, "secret")
	acct, code := s.tokenAccount(apiToken, grant, appid, secret, now)
	if code != 0 {
		return outcome{code: code}
	}
	tok, left := s.tokens.plain(acct, now)
	x.out = appendToken(x.out, tok, left)
	return outcome{issued: true}
}

// tokenAccount runs the checks both token APIs share and returns the
// account: 40002 wrong grant_type, 41002/41004 missing appid/secret, 40013
// unknown appid, the account's TokenErrcode, the API's limits, then a wrong
// secret (40125 on stable_token, 40001 on token, as WeChat answers).
func (s *Server) tokenAccount(id apiID, grant, appid, secret string, now time.Time) (*account, int) {
	switch {
	case grant != "client_credential":
		return nil, 40002
	case appid == "":
		return nil, 41002
	case secret == "":
		return nil, 41004
	}
	acct := s.accounts[appid]
	if acct == nil {
		return nil, 40013
	}
	if acct.TokenErrcode != 0 {
		return nil, acct.TokenErrcode
	}
	if code := acct.limiters[id].admit(now, s.set.loc); code != 0 {
		return nil, code
	}
	if secret != acct.secret() {
		if id == apiStableToken {
			return nil, 40125
		}
		return nil, 40001
	}
	return acct, 0
}
