package component

import (
	"context"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/grpcx"
)

// Calls of the analytics to other components (ticket sessions, identity
// people).

// asCaller forwards the calling administrator's token to the component
// asked: it decides itself what they may read.
func asCaller(ctx context.Context) context.Context {
	if tok := grpcx.BearerToken(ctx); tok != "" {
		return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	return ctx
}

// unreachable is err (not nil) of a call to another component, wrapped in
// absent when that component cannot answer (down, not deployed, too
// slow): the analytics then answer without it.
func unreachable(err, absent error) error {
	switch status.Code(err) {
	case codes.Unavailable, codes.Unimplemented, codes.DeadlineExceeded:
		return fmt.Errorf("%w: %w", absent, err)
	}
	return err
}
