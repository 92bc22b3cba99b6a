// Package logfield holds the zap fields every package logs recipients
// with, masked. It is a leaf, so that wechat/ can use it without depending
// on monitoring (which imports asynq).
package logfield

import (
	"strings"

	"go.uber.org/zap"
)

// MaskOpenID shortens an openid for logs: the first four and last four
// characters stay, so that an operator can match a line against a report
// without the log holding the user's identifier.
func MaskOpenID(openid string) string {
	if len(openid) <= 8 {
		return strings.Repeat("*", len(openid))
	}
	return openid[:4] + "…" + openid[len(openid)-4:]
}

// OpenID is the log field for a recipient, masked.
func OpenID(openid string) zap.Field { return zap.String("openid", MaskOpenID(openid)) }
