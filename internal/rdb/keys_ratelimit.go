package rdb

// RateBucket is the hash holding the shared token bucket of key (for example
// "wx1234567890abcdef:message/template/send"): fields tk (tokens), ts (when
// tk was computed, µs by the Redis clock), r and b (the rate and burst of the
// latest take), sf, sa and sr (a slowdown: the factor at the cut, the cut's
// time and the recovery's length, µs), pu (paused for the quota until, µs),
// po (paused for an outage until, µs). Every rate
// script touches this one key, so the hash tag only has to keep it whole; a
// key containing '}' is still safe on Redis Cluster for that reason.
func (k Keys) RateBucket(key string) string { return k.prefix() + ":{rate:" + key + "}:bucket" }
