package module

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/store"
)

const readMethod = "/uias.test.Store/Read"

// storeComponent is a test component whose one method reads its SQL store
// through a prepared statement, as the services' stores do, once the
// process is stopping: entered is closed when a call is being served; the
// call waits for the process to stop (Env.Context), then reads once the
// component's store has closed (closed) or after wait.
type storeComponent struct {
	entered chan struct{}
	closed  chan struct{}
	wait    time.Duration
	// classify: the handler answers store errors as the services' stores
	// do (store.Classify); else as they are.
	classify bool
}

func (s *storeComponent) module() Module {
	return Module{Name: "svc", SQL: true, Init: func(ctx context.Context, env *Env) (*Component, error) {
		// Registered first, so it runs last: after the store closed.
		env.OnStop(func(context.Context) error { close(s.closed); return nil })
		db, err := env.SQL(ctx)
		if err != nil {
			return nil, err
		}
		stmts := store.NewStmtCache(db.DB)
		var once sync.Once
		desc := &grpc.ServiceDesc{ServiceName: "uias.test.Store", HandlerType: (*any)(nil),
			Methods: []grpc.MethodDesc{{MethodName: "Read", Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
				in := &healthpb.HealthCheckRequest{}
				if err := dec(in); err != nil {
					return nil, err
				}
				h := func(ctx context.Context, _ any) (any, error) {
					once.Do(func() { close(s.entered) })
					<-env.Context().Done()
					select {
					case <-s.closed:
					case <-time.After(s.wait):
					}
					var n int
					if err := stmts.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
						if s.classify {
							err = store.Classify(err)
						}
						return nil, fmt.Errorf("read: %w", err)
					}
					return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
				}
				return ic(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: readMethod}, h)
			}}}}
		// A first read prepares the statement while the store is open.
		var n int
		if err := stmts.QueryRowContext(ctx, "SELECT 1").Scan(&n); err != nil {
			return nil, err
		}
		return &Component{Register: func(r grpc.ServiceRegistrar) { r.RegisterService(desc, struct{}{}) }}, nil
	}}
}

// cleanAnswer fails the test unless err is what a caller may get from a
// stopping process: no error, or UNAVAILABLE, without a word of what
// closed inside.
func cleanAnswer(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	st := status.Convert(err)
	if st.Code() != codes.Unavailable {
		t.Errorf("%s: %v (%s), want OK or UNAVAILABLE", what, st.Code(), st.Message())
	}
	if m := strings.ToLower(st.Message()); strings.Contains(m, "closed") || strings.Contains(m, "sql") || strings.Contains(m, "database") {
		t.Errorf("%s: the message tells what closed inside: %q", what, st.Message())
	}
}

// A process stopped while an in-process (direct) call is being served:
// the call completes, or is answered UNAVAILABLE; it never reads a closed
// store, and calls made after the stop are refused UNAVAILABLE, not
// served by a component whose store has closed.
func TestStopWhileDirectCallServed(t *testing.T) {
	for _, classify := range []bool{true, false} {
		t.Run(fmt.Sprintf("classify=%v", classify), func(t *testing.T) {
			sc := &storeComponent{entered: make(chan struct{}), closed: make(chan struct{}), wait: 300 * time.Millisecond, classify: classify}
			r := &Registry{}
			r.Register(sc.module())
			var conn grpc.ClientConnInterface
			r.Register(clientOf("svc", &conn))
			p, err := Start(context.Background(), r, allConfig(t, ""), Options{})
			if err != nil {
				t.Fatal(err)
			}
			call := func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				return conn.Invoke(ctx, readMethod, &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
			}
			served := make(chan error, 1)
			go func() { served <- call() }()
			select {
			case <-sc.entered:
			case err := <-served:
				t.Fatalf("the call ended before it was served: %v", err)
			case <-time.After(20 * time.Second):
				t.Fatal("the call was not served")
			}
			stopped := make(chan error, 1)
			go func() { stopped <- p.Stop(context.Background()) }()
			select {
			case err := <-served:
				t.Logf("the call served during the stop: %v", err)
				cleanAnswer(t, "the call served during the stop", err)
			case <-time.After(30 * time.Second):
				t.Fatal("the call served during the stop hangs")
			}
			select {
			case err := <-stopped:
				if err != nil {
					t.Errorf("stop: %v", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("stop hangs")
			}
			err = call()
			t.Logf("a call after the stop: %v", err)
			if err == nil {
				t.Error("a call after the stop was served")
			}
			cleanAnswer(t, "a call after the stop", err)
			_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
			if status.Code(err) != codes.Unavailable {
				t.Errorf("health after the stop: %v, want UNAVAILABLE", err)
			}
		})
	}
}
