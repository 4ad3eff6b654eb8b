// Package grpcx builds the gRPC servers used by every UIAS component: one
// interceptor chain (recovery, request id, client ip, logging, metrics, caller
// auth, validation, error funnel), health and reflection, TLS and graceful
// shutdown.
package grpcx

import (
	"context"
	"net/netip"

	"github.com/uias/uias/pkg/ids"
)

// MetadataRequestID is the metadata key (and response header) that carries the
// request id.
const MetadataRequestID = "x-request-id"

// MetadataForwardedFor is the metadata key consulted for the client address
// when the peer is a trusted proxy.
const MetadataForwardedFor = "x-forwarded-for"

type requestIDKey struct{}

type clientIPKey struct{}

// WithRequestID returns a copy of ctx carrying the request id.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id carried by ctx, or "" if none.
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// WithClientIP returns a copy of ctx carrying the client address.
func WithClientIP(ctx context.Context, ip netip.Addr) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// ClientIP returns the client address carried by ctx; the zero netip.Addr
// (IsValid() == false) if unknown.
func ClientIP(ctx context.Context) netip.Addr {
	ip, _ := ctx.Value(clientIPKey{}).(netip.Addr)
	return ip
}

// ValidRequestID reports whether id is acceptable as a caller-supplied request
// id: 1 to 64 characters from [A-Za-z0-9._-].
func ValidRequestID(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// NewRequestID returns a fresh random request id (32 hex characters).
func NewRequestID() string { return ids.Random() }
