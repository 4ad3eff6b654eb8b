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
		err := admit(info.FullMethodName)
		if err == nil {
			return ctx, nil
		}
		err = apierr.ToStatus(err)
		c.metrics.observe(info.FullMethodName, status.Code(err), 0)
		return ctx, err
	}
}
