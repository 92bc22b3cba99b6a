package wechattest

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Delivery is one message the fake accepted for a user: what "reached
// WeChat".
type Delivery struct {
	// API is the send API, such as "message/template/send".
	API string `json:"api"`
	// AppID is the account that sent it.
	AppID string `json:"app_id"`
	// OpenID is the recipient.
	OpenID string `json:"openid"`
	// MsgID is the msgid answered by template/send; 0 for the other APIs.
	MsgID int64 `json:"msgid,omitempty"`
	// ClientMsgID is the client_msg_id of a template send, if any.
	ClientMsgID string `json:"client_msg_id,omitempty"`
	// TemplateID is the template of a template or subscribe send.
	TemplateID string `json:"template_id,omitempty"`
	// MsgType is the msgtype of a customer-service send.
	MsgType string `json:"msgtype,omitempty"`
	// MediaID is the media_id of a customer-service image, voice, video
	// or mpnews message.
	MediaID string `json:"media_id,omitempty"`
	// Time is when the fake accepted it, by its clock.
	Time time.Time `json:"time"`
	// BodyHash is the hex of the first 16 bytes of the SHA-256 of the raw
	// request body.
	BodyHash string `json:"body_hash"`
}

// record is the compact stored form of a Delivery.
type record struct {
	api         apiID
	acct        *account
	openid      string
	msgid       int64
	clientMsgID string
	kind        string // template id or msgtype
	media       string // a custom message's media_id
	at          time.Time
	hash        [16]byte
}

func (r *record) delivery() Delivery {
	d := Delivery{
		API:         r.api.name(),
		AppID:       r.acct.AppID,
		OpenID:      r.openid,
		MsgID:       r.msgid,
		ClientMsgID: r.clientMsgID,
		Time:        r.at,
		BodyHash:    hex.EncodeToString(r.hash[:]),
		MediaID:     r.media,
	}
	if r.api == apiCustomSend {
		d.MsgType = r.kind
	} else {
		d.TemplateID = r.kind
	}
	return d
}

// dupKey identifies "the same message to the same user".
type dupKey struct {
	api    apiID
	openid string
	body   [16]byte
}

// shardCount is the number of lock shards of the dedupe and duplicate maps.
const shardCount = 64

// recordChunk is the number of elements per chunk of a chunkLog: elements
// are appended to fixed-size chunks so that appending never copies the
// elements already stored.
const recordChunk = 4096

// chunkLog is an append-only list stored in chunks of recordChunk elements.
// An element never moves once appended, so add can return its address for
// later updates through store. All methods are safe for concurrent use.
type chunkLog[T any] struct {
	mu     sync.Mutex
	chunks [][]T
	n      int
}

// add appends v and returns the address of the stored copy, which may be
// read or written only under l.mu (see store).
func (l *chunkLog[T]) add(v T) *T {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n%recordChunk == 0 {
		l.chunks = append(l.chunks, make([]T, 0, recordChunk))
	}
	last := len(l.chunks) - 1
	l.chunks[last] = append(l.chunks[last], v)
	l.n++
	return &l.chunks[last][len(l.chunks[last])-1]
}

// store replaces the element at p, an address add returned, with *v.
func (l *chunkLog[T]) store(p, v *T) {
	l.mu.Lock()
	*p = *v
	l.mu.Unlock()
}

// len returns the number of elements.
func (l *chunkLog[T]) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// copyRange returns a copy of elements [from, to) clipped to what exists.
func (l *chunkLog[T]) copyRange(from, to int) []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	to = min(to, l.n)
	if from >= to {
		return nil
	}
	out := make([]T, 0, to-from)
	for i := from; i < to; {
		c := l.chunks[i/recordChunk]
		off := i % recordChunk
		n := min(len(c)-off, to-i)
		out = append(out, c[off:off+n]...)
		i += n
	}
	return out
}

// filter returns a copy of the elements keep accepts, in order.
func (l *chunkLog[T]) filter(keep func(*T) bool) []T {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []T
	for _, c := range l.chunks {
		for i := range c {
			if keep(&c[i]) {
				out = append(out, c[i])
			}
		}
	}
	return out
}

// recorder keeps the deliveries in order and counts duplicates.
type recorder struct {
	list chunkLog[record]

	seed   maphash.Seed
	shards [shardCount]struct {
		mu   sync.Mutex
		seen map[dupKey]struct{}
	}
	dups atomic.Int64
}

func newRecorder() *recorder {
	r := &recorder{seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].seen = make(map[dupKey]struct{})
	}
	return r
}

// bodyHash returns the first 16 bytes of the SHA-256 of body.
func bodyHash(body []byte) [16]byte {
	sum := sha256.Sum256(body)
	return [16]byte(sum[:16])
}

// add records a delivery.
func (r *recorder) add(rec record) {
	k := dupKey{api: rec.api, openid: rec.openid, body: rec.hash}
	sh := &r.shards[maphash.String(r.seed, rec.openid)%shardCount]
	sh.mu.Lock()
	if _, dup := sh.seen[k]; dup {
		r.dups.Add(1)
	} else {
		sh.seen[k] = struct{}{}
	}
	sh.mu.Unlock()
	r.list.add(rec)
}

// count returns the number of deliveries.
func (r *recorder) count() int { return r.list.len() }

// slice returns deliveries [from, to) clipped to what exists.
func (r *recorder) slice(from, to int) []Delivery {
	recs := r.list.copyRange(from, to)
	if len(recs) == 0 {
		return nil
	}
	out := make([]Delivery, len(recs))
	for i := range recs {
		out[i] = recs[i].delivery()
	}
	return out
}

// dedupeKey identifies a client_msg_id of one recipient of one account.
type dedupeKey struct {
	appID, openid, clientMsgID string
}

type dedupeEntry struct {
	msgid int64
	at    time.Time
}

// dedupeTable remembers template sends by client_msg_id for the dedupe
// window. It is sharded by openid so that concurrent sends rarely share a
// lock; expired entries are swept from a shard at most once per window.
type dedupeTable struct {
	window time.Duration
	seed   maphash.Seed
	shards [shardCount]struct {
		mu        sync.Mutex
		m         map[dedupeKey]dedupeEntry
		nextSweep time.Time
	}
}

func newDedupeTable(window time.Duration) *dedupeTable {
	t := &dedupeTable{window: window, seed: maphash.MakeSeed()}
	for i := range t.shards {
		t.shards[i].m = make(map[dedupeKey]dedupeEntry)
	}
	return t
}

// claim returns the msgid of an earlier send of k within the window and
// true, or stores k with newID() and returns it and false.
func (t *dedupeTable) claim(k dedupeKey, now time.Time, newID func() int64) (int64, bool) {
	sh := &t.shards[maphash.String(t.seed, k.openid)%shardCount]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e, ok := sh.m[k]; ok && now.Sub(e.at) < t.window {
		return e.msgid, true
	}
	if !now.Before(sh.nextSweep) {
		for key, e := range sh.m {
			if now.Sub(e.at) >= t.window {
				delete(sh.m, key)
			}
		}
		sh.nextSweep = now.Add(t.window)
	}
	id := newID()
	sh.m[k] = dedupeEntry{msgid: id, at: now}
	return id, false
}
