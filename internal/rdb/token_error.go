package rdb

import "context"

// ClearTokenError forgets a stored configuration error of appID's token
// API, so that the next Token call fetches again at once: the operator
// has just rotated the appsecret or fixed the IP whitelist.
func (r *RDB) ClearTokenError(ctx context.Context, appID string) error {
	return r.c.Del(ctx, r.keys.TokenError(appID)).Err()
}
