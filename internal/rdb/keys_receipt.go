package rdb

// ReceiptDedupe is the marker of a callback push already handled, by the
// push's dedupe key (callback.Event.DedupeKey). It expires on its own.
func (k Keys) ReceiptDedupe(key string) string { return k.prefix() + ":rcpt:" + key }
