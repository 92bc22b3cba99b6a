package rdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrMediaNotFound is returned for a stored file that does not exist.
var ErrMediaNotFound = errors.New("rdb: media file not found")

// MediaRecord is a stored file's metadata.
type MediaRecord struct {
	Hex     string
	Name    string
	Type    string
	Size    int64
	Created time.Time
}

// putMedia stores a file unless it is stored already.
//
// KEYS[1] meta hash, KEYS[2] data, KEYS[3] files zset. ARGV[1] hex,
// ARGV[2] name, ARGV[3] type, ARGV[4] size, ARGV[5] created ms, ARGV[6]
// the bytes.
// Returns {1} when stored, or {0, name, type, size, created} of the file
// stored before.
var putMedia = redis.NewScript(`
local old = redis.call('HMGET', KEYS[1], 'name', 'type', 'size', 'created')
if old[1] then
  return {0, old[1], old[2], old[3], old[4]}
end
redis.call('SET', KEYS[2], ARGV[6])
redis.call('HSET', KEYS[1], 'name', ARGV[2], 'type', ARGV[3], 'size', ARGV[4], 'created', ARGV[5])
return {1}
`)

// PutMedia stores a file's bytes and metadata under its hex (the SHA-256
// of data), unless a file of the same bytes is stored already: it then
// returns that file's record and false.
func (r *RDB) PutMedia(ctx context.Context, rec MediaRecord, data []byte) (MediaRecord, bool, error) {
	// The meta and data keys share a slot; the index lives elsewhere and
	// is written after them (a file missing from it is found by id).
	res, err := putMedia.Run(ctx, r.c, []string{r.keys.MediaMeta(rec.Hex), r.keys.MediaData(rec.Hex)},
		rec.Hex, rec.Name, rec.Type, rec.Size, rec.Created.UnixMilli(), data).Slice()
	if err != nil {
		return MediaRecord{}, false, fmt.Errorf("put media: %w", err)
	}
	if n, _ := res[0].(int64); n == 0 && len(res) == 5 {
		old := MediaRecord{Hex: rec.Hex}
		old.Name, _ = res[1].(string)
		old.Type, _ = res[2].(string)
		size, _ := res[3].(string)
		created, _ := res[4].(string)
		old.Size, _ = strconv.ParseInt(size, 10, 64)
		ms, _ := strconv.ParseInt(created, 10, 64)
		old.Created = time.UnixMilli(ms)
		return old, false, nil
	}
	if err := r.c.ZAddNX(ctx, r.keys.MediaFiles(), redis.Z{Score: float64(rec.Created.UnixMilli()), Member: rec.Hex}).Err(); err != nil {
		return MediaRecord{}, false, fmt.Errorf("put media: index: %w", err)
	}
	return rec, true, nil
}

// Media returns a stored file's metadata, or ErrMediaNotFound.
func (r *RDB) Media(ctx context.Context, hex string) (MediaRecord, error) {
	m, err := r.c.HGetAll(ctx, r.keys.MediaMeta(hex)).Result()
	if err != nil {
		return MediaRecord{}, fmt.Errorf("get media: %w", err)
	}
	if len(m) == 0 {
		return MediaRecord{}, ErrMediaNotFound
	}
	size, _ := strconv.ParseInt(m["size"], 10, 64)
	ms, _ := strconv.ParseInt(m["created"], 10, 64)
	return MediaRecord{Hex: hex, Name: m["name"], Type: m["type"], Size: size, Created: time.UnixMilli(ms)}, nil
}

// MediaData returns a stored file's bytes, or ErrMediaNotFound.
func (r *RDB) MediaData(ctx context.Context, hex string) ([]byte, error) {
	b, err := r.c.Get(ctx, r.keys.MediaData(hex)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, ErrMediaNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get media data: %w", err)
	}
	return b, nil
}

// ListMedia returns stored files' hexes by creation time, newest first,
// from offset, at most limit, and how many there are.
func (r *RDB) ListMedia(ctx context.Context, offset, limit int64) ([]string, int64, error) {
	pipe := r.c.Pipeline()
	ids := pipe.ZRevRange(ctx, r.keys.MediaFiles(), offset, offset+limit-1)
	n := pipe.ZCard(ctx, r.keys.MediaFiles())
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, fmt.Errorf("list media: %w", err)
	}
	return ids.Val(), n.Val(), nil
}

// MediaCacheEntry is a file's media_id for an account and purpose, and
// when WeChat drops it (zero: never).
type MediaCacheEntry struct {
	MediaID string `json:"media_id"`
	// ExpiresMS is the expiry in ms since the epoch; 0 for none.
	ExpiresMS int64 `json:"expires_ms,omitempty"`
}

// Expires is the entry's expiry, zero for none.
func (e MediaCacheEntry) Expires() time.Time {
	if e.ExpiresMS == 0 {
		return time.Time{}
	}
	return time.UnixMilli(e.ExpiresMS)
}

// MediaCache returns the cached media_id of a file for an account and
// purpose, and whether there is one.
func (r *RDB) MediaCache(ctx context.Context, appID, purpose, hex string) (MediaCacheEntry, bool, error) {
	b, err := r.c.Get(ctx, r.keys.MediaCache(appID, purpose, hex)).Bytes()
	if errors.Is(err, redis.Nil) {
		return MediaCacheEntry{}, false, nil
	}
	if err != nil {
		return MediaCacheEntry{}, false, fmt.Errorf("get media cache: %w", err)
	}
	var e MediaCacheEntry
	if err := json.Unmarshal(b, &e); err != nil || e.MediaID == "" {
		return MediaCacheEntry{}, false, nil // unreadable: upload again
	}
	return e, true, nil
}

// setMediaCache stores a cache entry and indexes its media_id.
//
// KEYS[1] cache key, KEYS[2] the account's media_id hash. ARGV[1] entry
// JSON, ARGV[2] media_id, ARGV[3] ttl ms (0: none).
// Returns 1.
var setMediaCache = redis.NewScript(`
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('HSET', KEYS[2], ARGV[2], KEYS[1])
return 1
`)

// SetMediaCache stores the media_id of a file for an account and purpose.
// An entry with an expiry is kept until ttl has passed (it should be a
// little past the expiry, so that readers see it expire rather than
// vanish); ttl 0 keeps it for good.
func (r *RDB) SetMediaCache(ctx context.Context, appID, purpose, hex string, e MediaCacheEntry, ttl time.Duration) error {
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("set media cache: %w", err)
	}
	err = setMediaCache.Run(ctx, r.c, []string{r.keys.MediaCache(appID, purpose, hex), r.keys.MediaIDs(appID)},
		b, e.MediaID, ttl.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("set media cache: %w", err)
	}
	return nil
}

// dropMediaID deletes the cache entry that holds a media_id.
//
// KEYS[1] the account's media_id hash, KEYS[2] the entry the hash named.
// ARGV[1] media_id.
// Returns 1 when the entry held it and was deleted, else 0; the media_id
// leaves the hash either way.
var dropMediaID = redis.NewScript(`
redis.call('HDEL', KEYS[1], ARGV[1])
local v = redis.call('GET', KEYS[2])
if v then
  local ok, e = pcall(cjson.decode, v)
  if ok and type(e) == 'table' and e['media_id'] == ARGV[1] then
    redis.call('DEL', KEYS[2])
    return 1
  end
end
return 0
`)

// DropMediaID deletes an account's cache entry holding mediaID, if it
// still holds it, and reports whether it did.
func (r *RDB) DropMediaID(ctx context.Context, appID, mediaID string) (bool, error) {
	key, err := r.c.HGet(ctx, r.keys.MediaIDs(appID), mediaID).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("drop media id: %w", err)
	}
	n, err := dropMediaID.Run(ctx, r.c, []string{r.keys.MediaIDs(appID), key}, mediaID).Int()
	if err != nil {
		return false, fmt.Errorf("drop media id: %w", err)
	}
	return n == 1, nil
}

// AcquireMediaLock takes the upload lock of a file for an account and
// purpose with token for ttl, and reports whether it got it.
func (r *RDB) AcquireMediaLock(ctx context.Context, appID, purpose, hex, token string, ttl time.Duration) (bool, error) {
	ok, err := r.c.SetNX(ctx, r.keys.MediaLock(appID, purpose, hex), token, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("acquire media lock: %w", err)
	}
	return ok, nil
}

// renewLock extends a lock its holder still holds.
//
// KEYS[1] lock. ARGV[1] token, ARGV[2] ttl ms. Returns 1 if renewed.
var renewLock = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// releaseLock deletes a lock its holder still holds.
//
// KEYS[1] lock. ARGV[1] token. Returns 1 if released.
var releaseLock = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// RenewMediaLock extends the upload lock to ttl from now if token still
// holds it, and reports whether it does.
func (r *RDB) RenewMediaLock(ctx context.Context, appID, purpose, hex, token string, ttl time.Duration) (bool, error) {
	n, err := renewLock.Run(ctx, r.c, []string{r.keys.MediaLock(appID, purpose, hex)}, token, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("renew media lock: %w", err)
	}
	return n == 1, nil
}

// ReleaseMediaLock releases the upload lock if token still holds it.
func (r *RDB) ReleaseMediaLock(ctx context.Context, appID, purpose, hex, token string) error {
	if err := releaseLock.Run(ctx, r.c, []string{r.keys.MediaLock(appID, purpose, hex)}, token).Err(); err != nil {
		return fmt.Errorf("release media lock: %w", err)
	}
	return nil
}
