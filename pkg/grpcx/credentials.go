package grpcx

import (
	"context"
	"strings"

	"google.golang.org/grpc/metadata"
)

// Metadata keys of caller credentials. Over HTTP the same names are the
// request headers (X-Uias-App-Id, X-Uias-App-Secret, Authorization), which
// the REST edge forwards as this metadata.
const (
	// MetadataAppID and MetadataAppSecret carry an application caller's
	// App_ID and App_Secret.
	MetadataAppID     = "x-uias-app-id"
	MetadataAppSecret = "x-uias-app-secret"
	// MetadataAuthorization carries "Bearer <token>" (e.g. an administrator
	// token).
	MetadataAuthorization = "authorization"
)

// IncomingValue returns the first value of key (lower case) in the incoming
// metadata of ctx, or "". It reads the one key: the whole metadata is not
// copied (this runs for every call's caller check).
func IncomingValue(ctx context.Context, key string) string {
	if v := metadata.ValueFromIncomingContext(ctx, key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// AppCredentials returns the App_ID and App_Secret the caller sent ("" for
// what it did not send).
func AppCredentials(ctx context.Context) (appID, secret string) {
	return IncomingValue(ctx, MetadataAppID), IncomingValue(ctx, MetadataAppSecret)
}

// BearerToken returns the token the caller sent as "authorization: Bearer
// <token>" (or "bearer"; a value without the scheme is taken as the token),
// trimmed; "" when none was sent.
func BearerToken(ctx context.Context) string {
	v := IncomingValue(ctx, MetadataAuthorization)
	tok, ok := strings.CutPrefix(v, "Bearer ")
	if !ok {
		tok, _ = strings.CutPrefix(v, "bearer ")
	}
	return strings.TrimSpace(tok)
}

// firstValue is the first value of key in md, or "".
func firstValue(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}
