package grpcx_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
)

type seenCall struct {
	call   grpcx.Call
	caller string
	rid    string
	ip     string
}

// OnCall hears of every finished call once, refused, failed, panicked or
// not, with its code, reason and duration, in the context as caller auth
// left it; health checks are not API calls.
func TestOnCallRecordsEveryCall(t *testing.T) {
	var mu sync.Mutex
	var seen []seenCall
	auth := grpcx.CallerAuthFunc(func(ctx context.Context, method string) (context.Context, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		if first(md, "x-app") != "good" {
			return nil, apierr.New(apierr.Unauthenticated, "NO_CREDENTIALS", "missing credentials")
		}
		return context.WithValue(ctx, callerKey{}, "app:good"), nil
	})
	h := start(t, grpcx.ServerOptions{Auth: auth, OnCall: func(ctx context.Context, c grpcx.Call) {
		who, _ := ctx.Value(callerKey{}).(string)
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, seenCall{call: c, caller: who, rid: grpcx.RequestID(ctx), ip: grpcx.ClientIP(ctx).String()})
	}}, time.Second)
	good := func() context.Context { return metadata.AppendToOutgoingContext(ctxT(t), "x-app", "good") }
	type want struct {
		method, reason, caller string
		code                   codes.Code
	}
	var wants []want
	h.both(func(name string, call func(context.Context, string) result) {
		method := "/uias.test.Test/Check"
		if name == "stream" {
			method = "/uias.test.Test/Watch"
		}
		call(good(), "ok")
		call(good(), "notfound")
		call(ctxT(t), "ok")
		call(good(), "panic")
		call(good(), "invalid")
		wants = append(wants,
			want{method, "", "app:good", codes.OK},
			want{method, "USER_NOT_FOUND", "app:good", codes.NotFound},
			want{method, "NO_CREDENTIALS", "", codes.Unauthenticated},
			want{method, "", "app:good", codes.Internal},
			want{method, "BAD_REQUEST", "app:good", codes.InvalidArgument})
	})
	if _, err := healthpb.NewHealthClient(h.conn).Check(ctxT(t), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(wants) {
		t.Fatalf("OnCall heard %d calls, want %d (health checks excluded): %+v", len(seen), len(wants), seen)
	}
	for i, w := range wants {
		s := seen[i]
		if s.call.Method != w.method || s.call.Code != w.code || s.call.Reason != w.reason || s.caller != w.caller {
			t.Errorf("call %d: %+v caller %q, want %+v", i, s.call, s.caller, w)
		}
		if refused := w.reason == "NO_CREDENTIALS"; s.call.Refused != refused {
			t.Errorf("call %d: refused by caller auth %v, want %v", i, s.call.Refused, refused)
		}
		if s.call.Nested || s.rid == "" || s.ip != "127.0.0.1" || s.call.Duration < 0 || s.call.Start.IsZero() {
			t.Errorf("call %d: nested %v request id %q client ip %q duration %v start %v", i, s.call.Nested, s.rid, s.ip,
				s.call.Duration, s.call.Start)
		}
	}
}

// A handler may name the application a call was made for (a CAS
// validation, made by the application its ticket was issued for): OnCall
// finds it in Call.App. Outside a served call it is refused.
func TestNameApp(t *testing.T) {
	var mu sync.Mutex
	var apps []string
	h := start(t, grpcx.ServerOptions{OnCall: func(ctx context.Context, c grpcx.Call) {
		mu.Lock()
		defer mu.Unlock()
		apps = append(apps, c.App)
	}}, time.Second)
	h.both(func(name string, call func(context.Context, string) result) {
		call(ctxT(t), "app")
		call(ctxT(t), "ok")
	})
	mu.Lock()
	defer mu.Unlock()
	if len(apps) != 4 || apps[0] != "app-named" || apps[1] != "" || apps[2] != "app-named" || apps[3] != "" {
		t.Fatalf("apps %q", apps)
	}
	if grpcx.NameApp(context.Background(), "x") || grpcx.NameApp(grpcx.PartOf(context.Background()), "x") {
		t.Fatal("an application named outside a served call")
	}
}

// A handler may hand its call a record of its own, once, to be the call's
// access record: OnCall finds it in Call.Record. Outside a served call it
// is refused.
func TestHandRecord(t *testing.T) {
	var mu sync.Mutex
	var records []any
	h := start(t, grpcx.ServerOptions{OnCall: func(ctx context.Context, c grpcx.Call) {
		mu.Lock()
		defer mu.Unlock()
		records = append(records, c.Record)
	}}, time.Second)
	h.both(func(name string, call func(context.Context, string) result) {
		call(ctxT(t), "record")
		call(ctxT(t), "ok")
	})
	mu.Lock()
	defer mu.Unlock()
	if len(records) != 4 || records[0] != "the handler's record" || records[1] != nil ||
		records[2] != "the handler's record" || records[3] != nil {
		t.Fatalf("records %v", records)
	}
	if grpcx.HandRecord(context.Background(), "x") || grpcx.HandRecord(grpcx.PartOf(context.Background()), "x") {
		t.Fatal("a record handed outside a served call")
	}
}
