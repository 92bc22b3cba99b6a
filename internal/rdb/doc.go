// Package rdb holds all of wxmass's own Redis I/O: one method per operation,
// multi-key operations as Lua scripts, and every key built by the helpers in
// keys.go under one prefix.
//
// Keys that a script touches together share a hash tag ({acct:APPID} for an
// account's token state), so every script runs unchanged on Redis Cluster.
// Times that several processes must agree on (token expiry, leases) are taken
// from the Redis server's clock inside the scripts, never from a process's.
package rdb
