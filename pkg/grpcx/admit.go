package grpcx

import (
	"context"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/uias/uias/pkg/apierr"
)

// admission is the server's tap handle: ServerOptions.Admit (when set),
// which runs on the connection's reader goroutine, so a refusal costs no
// goroutine, no request decoding and no interceptor work; and, for an
// admitted call, the call's metadata kept for the chain to read without a
// copy (callMD).
func (c *chain) admission(admit func(string) error) tap.ServerInHandle {
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		if admit != nil {
			if err := c.admitCall(admit, info.FullMethodName); err != nil {
				return ctx, err
			}
		}
		return withCallMD(ctx, info.Header), nil
	}
}

// callMDKey holds the incoming metadata of a call as the server received
// it (the transport's map, or Direct's own copy), which nothing changes
// once the call is handed to the chain.
type callMDKey struct{}

// withCallMD returns ctx keeping md as its call's metadata (callMD).
func withCallMD(ctx context.Context, md metadata.MD) context.Context {
	if md == nil {
		return ctx
	}
	return context.WithValue(ctx, callMDKey{}, md)
}

// callMD is the incoming metadata of the call served in ctx, to read only:
// the map the server received (kept by its tap handle or by Direct), else
// a copy (metadata.FromIncomingContext, which copies every key and value
// of every call). Only the chain's steps use it, on the context the server
// handed them: no code has set other incoming metadata on it since.
// Its keys are lower case (HTTP/2 header names; Direct's copy).
func callMD(ctx context.Context) metadata.MD {
	if md, ok := ctx.Value(callMDKey{}).(metadata.MD); ok {
		return md
	}
	md, _ := metadata.FromIncomingContext(ctx)
	return md
}

// admitCall asks admit about a call to method: nil, or the refusal as a
// status error (counted in the metrics).
func (c *chain) admitCall(admit func(string) error, method string) error {
	err := admit(method)
	if err == nil {
		return nil
	}
	err = apierr.ToStatus(err)
	c.metrics.observe(method, status.Code(err), 0)
	return err
}
