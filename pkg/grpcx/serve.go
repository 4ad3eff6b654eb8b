package grpcx

import (
	"context"
	"errors"
	"net"
	"time"

	"google.golang.org/grpc"
)

// Serve runs srv on lis until ctx is done, then stops it gracefully: new
// connections are refused and in-flight calls may finish; if they have not
// finished within grace the server is stopped hard (remaining calls are
// cancelled). It returns nil after a shutdown caused by ctx, or the error of
// grpc.Server.Serve if serving failed on its own.
func Serve(ctx context.Context, srv *grpc.Server, lis net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()

	select {
	case err := <-errc:
		if errors.Is(err, grpc.ErrServerStopped) {
			return nil
		}
		return err
	case <-ctx.Done():
	}

	StopWithin(srv, grace)
	if err := <-errc; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// Stopper is what stops as a grpc.Server does: a *grpc.Server, a *Direct.
type Stopper interface {
	GracefulStop()
	Stop()
}

// StopWithin stops s gracefully (GracefulStop), or hard (Stop) if that has
// not finished within grace, and returns once GracefulStop has returned.
func StopWithin(s Stopper, grace time.Duration) {
	stopped := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		s.Stop()
		<-stopped
	}
}
