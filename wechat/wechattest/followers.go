package wechattest

import (
	"encoding/base64"
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// followerCodec turns follower index i into a deterministic, random-looking
// openid and back, so that millions of generated followers need no memory
// and membership is checked in constant time. The openid is "o" and the
// URL-safe base64 of 20 bytes: a = mix(i+k1), b = mix(a^k2) and the top 32
// bits of mix(b^k3). mix is the invertible splitmix64 finaliser, so i is
// recovered from a; b and the tail authenticate the rest.
type followerCodec struct {
	k1, k2, k3 uint64
	n          uint64
	enc        *base64.Encoding
}

func newFollowerCodec(seed int64, n int) followerCodec {
	s := uint64(seed)
	next := func() uint64 {
		s += 0x9e3779b97f4a7c15
		return mix64(s)
	}
	return followerCodec{
		k1:  next(),
		k2:  next(),
		k3:  next(),
		n:   uint64(n),
		enc: base64.RawURLEncoding.Strict(),
	}
}

const (
	mixC1 = 0xbf58476d1ce4e5b9
	mixC2 = 0x94d049bb133111eb
)

// mix64 is the splitmix64 finaliser, a bijection of uint64.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * mixC1
	z = (z ^ (z >> 27)) * mixC2
	return z ^ (z >> 31)
}

// unmix64 inverts mix64.
func unmix64(z uint64) uint64 {
	z ^= z>>31 ^ z>>62
	z *= modInverse(mixC2)
	z ^= z>>27 ^ z>>54
	z *= modInverse(mixC1)
	return z ^ z>>30 ^ z>>60
}

// modInverse returns the inverse of odd c modulo 2^64 (Newton's iteration;
// each step doubles the number of correct low bits, starting from 3).
func modInverse(c uint64) uint64 {
	x := c
	for range 5 {
		x *= 2 - c*x
	}
	return x
}

func (c followerCodec) raw(i uint64) [20]byte {
	var raw [20]byte
	a := mix64(i + c.k1)
	b := mix64(a ^ c.k2)
	binary.BigEndian.PutUint64(raw[0:8], a)
	binary.BigEndian.PutUint64(raw[8:16], b)
	binary.BigEndian.PutUint32(raw[16:20], uint32(mix64(b^c.k3)>>32))
	return raw
}

// openID returns the openid of follower i.
func (c followerCodec) openID(i uint64) string {
	raw := c.raw(i)
	var out [openIDLen]byte
	out[0] = 'o'
	c.enc.Encode(out[1:], raw[:])
	return string(out[:])
}

// index returns the follower index of openid, if it is a generated follower.
func (c followerCodec) index(openid string) (uint64, bool) {
	if c.n == 0 || len(openid) != openIDLen || openid[0] != 'o' {
		return 0, false
	}
	var src [openIDLen - 1]byte
	copy(src[:], openid[1:])
	var raw [21]byte
	if n, err := c.enc.Decode(raw[:], src[:]); err != nil || n != 20 {
		return 0, false
	}
	a := binary.BigEndian.Uint64(raw[0:8])
	i := unmix64(a) - c.k1
	if i >= c.n || c.raw(i) != [20]byte(raw[:20]) {
		return 0, false
	}
	return i, true
}

// followerList is the ordered follower list of user/get: the generated
// followers, then Config.FollowerIDs. It is immutable.
type followerList struct {
	codec    followerCodec
	explicit []string
	pos      map[string]int // explicit openid -> index in explicit
}

func newFollowerList(seed int64, n int, explicit []string) (*followerList, error) {
	l := &followerList{
		codec:    newFollowerCodec(seed, n),
		explicit: explicit,
		pos:      make(map[string]int, len(explicit)),
	}
	for j, id := range explicit {
		if _, dup := l.pos[id]; dup {
			return nil, configErrorf(fieldPath(fieldElem("FollowerIDs", "follower_ids"), indexElem(j)), "duplicate openid %q", id)
		}
		if _, gen := l.codec.index(id); gen {
			return nil, configErrorf(fieldPath(fieldElem("FollowerIDs", "follower_ids"), indexElem(j)), "openid %q is also a generated follower", id)
		}
		l.pos[id] = j
	}
	return l, nil
}

// len is the number of followers.
func (l *followerList) len() int { return int(l.codec.n) + len(l.explicit) }

// at returns the openid at position i of the list.
func (l *followerList) at(i int) string {
	if i < int(l.codec.n) {
		return l.codec.openID(uint64(i))
	}
	return l.explicit[i-int(l.codec.n)]
}

// index returns the position of openid in the list.
func (l *followerList) index(openid string) (int, bool) {
	if i, ok := l.codec.index(openid); ok {
		return int(i), true
	}
	if j, ok := l.pos[openid]; ok {
		return int(l.codec.n) + j, true
	}
	return 0, false
}

// contains reports whether openid follows the account.
func (l *followerList) contains(openid string) bool {
	_, ok := l.index(openid)
	return ok
}

// all returns every follower's openid in list order.
func (l *followerList) all() []string {
	out := make([]string, l.len())
	for i := range out {
		out[i] = l.at(i)
	}
	return out
}

// tagList is the member list of one tag, for user/tag/get.
type tagList struct {
	members []string
	pos     map[string]int
}

func newTagLists(tags map[int64][]string) map[int64]*tagList {
	out := make(map[int64]*tagList, len(tags))
	for id, members := range tags {
		t := &tagList{members: members, pos: make(map[string]int, len(members))}
		for i, m := range members {
			t.pos[m] = i
		}
		out[id] = t
	}
	return out
}

// followChanges is one account's changes to the shared follower list, made
// by follow, scan and unfollow interactions (Server.Interact). Every
// account starts with the shared list (Config.Followers, then
// Config.FollowerIDs) and no changes.
type followChanges struct {
	// changed is set by the first change, so that sends skip the lock of
	// an account nobody followed or left.
	changed  atomic.Bool
	mu       sync.RWMutex
	extra    []string        // users outside the shared list who followed, in order
	extraPos map[string]int  // extra openid -> index in extra
	gone     map[string]bool // users of the shared list or extra who unfollowed
}

// followerView is an account's follower list: the shared list, then the
// users who followed later, without those who unfollowed. Positions count
// the users who unfollowed too, so that a next_openid cursor stays valid.
// It must be used only while the account's followChanges are read-locked
// (see Server.followersOf).
type followerView struct {
	base     *followerList
	extra    []string
	extraPos map[string]int
	gone     map[string]bool
}

// followersOf returns acct's follower list and the function that ends its
// use.
func (s *Server) followersOf(acct *account) (followerView, func()) {
	c := &acct.follows
	if !c.changed.Load() {
		return followerView{base: s.followers}, func() {}
	}
	c.mu.RLock()
	return followerView{base: s.followers, extra: c.extra, extraPos: c.extraPos, gone: c.gone}, c.mu.RUnlock
}

// span is the number of positions: followers and those who left.
func (v followerView) span() int { return v.base.len() + len(v.extra) }

// total is the number of followers.
func (v followerView) total() int { return v.span() - len(v.gone) }

// at returns the openid at position i.
func (v followerView) at(i int) string {
	if n := v.base.len(); i >= n {
		return v.extra[i-n]
	}
	return v.base.at(i)
}

// index returns the position of openid, a follower or one who left.
func (v followerView) index(openid string) (int, bool) {
	if i, ok := v.base.index(openid); ok {
		return i, true
	}
	if j, ok := v.extraPos[openid]; ok {
		return v.base.len() + j, true
	}
	return 0, false
}

// contains reports whether openid follows the account.
func (v followerView) contains(openid string) bool {
	_, ok := v.index(openid)
	return ok && !v.gone[openid]
}

// page returns the followers from position start on, at most n of them.
func (v followerView) page(start, n int) []string {
	var out []string
	for i := start; i < v.span() && len(out) < n; i++ {
		if id := v.at(i); !v.gone[id] {
			out = append(out, id)
		}
	}
	return out
}

// all returns every follower's openid in list order.
func (v followerView) all() []string {
	if len(v.gone) == 0 && len(v.extra) == 0 {
		return v.base.all()
	}
	return v.page(0, v.span())
}

// isFollower reports whether openid follows acct.
func (s *Server) isFollower(acct *account, openid string) bool {
	v, done := s.followersOf(acct)
	defer done()
	return v.contains(openid)
}

// follow makes openid a follower of acct and reports whether it was one
// already.
func (s *Server) follow(acct *account, openid string) (already bool) {
	c := &acct.follows
	c.mu.Lock()
	defer c.mu.Unlock()
	v := followerView{base: s.followers, extra: c.extra, extraPos: c.extraPos, gone: c.gone}
	if v.contains(openid) {
		return true
	}
	if _, ok := v.index(openid); ok {
		delete(c.gone, openid) // Back after leaving: at the old position.
	} else {
		if c.extraPos == nil {
			c.extraPos = make(map[string]int)
		}
		c.extraPos[openid] = len(c.extra)
		c.extra = append(c.extra, openid)
	}
	c.changed.Store(true)
	return false
}

// unfollow removes openid from acct's followers, if it is one.
func (s *Server) unfollow(acct *account, openid string) {
	c := &acct.follows
	c.mu.Lock()
	defer c.mu.Unlock()
	v := followerView{base: s.followers, extra: c.extra, extraPos: c.extraPos, gone: c.gone}
	if !v.contains(openid) {
		return
	}
	if c.gone == nil {
		c.gone = make(map[string]bool)
	}
	c.gone[openid] = true
	c.changed.Store(true)
}
