package grpcx

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// outgoingWithRequestID adds the request id of ctx to its outgoing metadata
// unless there is none or the metadata already carries one.
func outgoingWithRequestID(ctx context.Context) context.Context {
	id := RequestID(ctx)
	if id == "" {
		return ctx
	}
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get(MetadataRequestID)) > 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, MetadataRequestID, id)
}

// UnaryClientRequestID propagates the request id of the calling context
// (RequestID(ctx)) as "x-request-id" outgoing metadata.
func UnaryClientRequestID() grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(outgoingWithRequestID(ctx), method, req, reply, cc, opts...)
	}
}

// StreamClientRequestID is the streaming counterpart of UnaryClientRequestID.
func StreamClientRequestID() grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		return streamer(outgoingWithRequestID(ctx), desc, cc, method, opts...)
	}
}
