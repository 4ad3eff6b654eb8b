package grpcx

import (
	"context"

	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/uias/uias/pkg/apierr"
)

// admission adapts ServerOptions.Admit to a tap handle: it runs on the
// connection's reader goroutine, so a refusal costs no goroutine, no request
// decoding and no interceptor work.
func (c *chain) admission(admit func(string) error) tap.ServerInHandle {
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		return ctx, c.admitCall(admit, info.FullMethodName)
	}
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
