package rdb

// Media files and their WeChat media_ids (internal/media). A stored file's
// keys share the hash tag {media:<hex>}; an account's cache entries, their
// locks and its media_id index share the account's hash tag.

// MediaMeta is the hash of a stored file's metadata: fields name, type,
// size (bytes) and created (ms since the epoch). hex is the SHA-256 of its
// bytes.
func (k Keys) MediaMeta(hex string) string { return k.prefix() + ":{media:" + hex + "}:meta" }

// MediaData is the string holding a stored file's bytes.
func (k Keys) MediaData(hex string) string { return k.prefix() + ":{media:" + hex + "}:data" }

// MediaFiles is the sorted set of stored files: member the hex, score the
// creation time (ms).
func (k Keys) MediaFiles() string { return k.prefix() + ":media:files" }

// MediaCache is the string holding the media_id of a stored file uploaded
// for an account for a purpose (temporary, permanent, draft), as JSON
// {"media_id","expires_ms"}; it expires with the media.
func (k Keys) MediaCache(appID, purpose, hex string) string {
	return k.account(appID) + ":media:" + purpose + ":" + hex
}

// MediaLock is the lock a process holds while it uploads a file for an
// account for a purpose: its value is the holder's random token.
func (k Keys) MediaLock(appID, purpose, hex string) string {
	return k.MediaCache(appID, purpose, hex) + ":lock"
}

// MediaIDs is the hash of an account's cached media_ids: field the
// media_id, value the MediaCache key that holds it.
func (k Keys) MediaIDs(appID string) string { return k.account(appID) + ":media:ids" }
