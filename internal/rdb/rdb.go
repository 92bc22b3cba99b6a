package rdb

import (
	"github.com/redis/go-redis/v9"
)

// RDB runs wxmass's Redis operations. It is safe for concurrent use.
type RDB struct {
	c    redis.UniversalClient
	keys Keys

	sendOps group[sendOp] // SendState and RecordOutcome
}

// New returns an RDB using c, with keys under prefix ("" means
// PrefixDefault).
func New(c redis.UniversalClient, prefix string) *RDB {
	r := &RDB{c: c, keys: Keys{Prefix: prefix}}
	r.sendOps.flush = r.flushSendOps
	return r
}

// Keys returns the key builder in use.
func (r *RDB) Keys() Keys { return r.keys }

// Client returns the underlying Redis client.
func (r *RDB) Client() redis.UniversalClient { return r.c }

// WithPrefix returns an RDB on the same client with keys under prefix.
func (r *RDB) WithPrefix(prefix string) *RDB { return New(r.c, prefix) }
