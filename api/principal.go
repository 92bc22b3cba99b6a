package api

import "context"

// How a request proved its key.
const (
	ViaBearer  = "bearer"  // Authorization: Bearer <key>
	ViaBasic   = "basic"   // Basic auth with the key as the password (tools, reading only)
	ViaSession = "session" // the session cookie of a browser that logged in
)

// Principal is who made a request: the name of the key it proved, and how.
type Principal struct {
	Key string `json:"key"`
	Via string `json:"via"`
}

type principalKey struct{}

func withPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of an authorized request's context.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
