package grpcx_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
)

// ---- a tiny test service built on the health messages ----

const (
	checkMethod = "/uias.test.Test/Check"
	watchMethod = "/uias.test.Test/Watch"
	secretPanic = "secret-panic-text db.internal:5432"
)

type callerKey struct{}

// testReq is the request of the test service. On the wire it is a
// HealthCheckRequest (field 1, "service"); the server decodes it as
// uias.test.CheckRequest, whose proto carries protovalidate rules: service
// holds at most 32 bytes and is not "invalid".
type testReq struct {
	*dynamicpb.Message
}

var checkRequestDesc = func() protoreflect.MessageDescriptor {
	rules := validate.FieldRules_builder{String: validate.StringRules_builder{
		MaxBytes: proto.Uint64(32),
		NotIn:    []string{"invalid"},
	}.Build()}.Build()
	opts := &descriptorpb.FieldOptions{}
	proto.SetExtension(opts, validate.E_Field, rules)
	fdp := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("uias/test/check.proto"),
		Package:    proto.String("uias.test"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"buf/validate/validate.proto"},
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("CheckRequest"),
			Field: []*descriptorpb.FieldDescriptorProto{{
				Name:     proto.String("service"),
				JsonName: proto.String("service"),
				Number:   proto.Int32(1),
				Label:    descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
				Type:     descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(),
				Options:  opts,
			}},
		}},
	}
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	if err != nil {
		panic(err)
	}
	return fd.Messages().Get(0)
}()

func newReq() *testReq { return &testReq{Message: dynamicpb.NewMessage(checkRequestDesc)} }

func (r *testReq) GetService() string {
	return r.Get(checkRequestDesc.Fields().ByNumber(1)).String()
}

type testServer struct {
	entered chan struct{} // receives when a "block" call starts
	release chan struct{} // closed to let "block" calls finish
}

// The reasons of the test service, registered as a real service registers its own.
func init() {
	apierr.Register(
		apierr.Reason{Name: "USER_NOT_FOUND", Code: apierr.NotFound, Doc: "test"},
		apierr.Reason{Name: "NO_CREDENTIALS", Code: apierr.Unauthenticated, Doc: "test"},
		apierr.Reason{Name: "APP_NOT_ALLOWED", Code: apierr.PermissionDenied, Doc: "test"},
		apierr.Reason{Name: "OVERLOADED", Code: apierr.ResourceExhausted, Legacy: -6, Doc: "test"},
	)
}

func newTestServer() *testServer {
	return &testServer{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

// behave implements the behaviour selected by the request's service name and
// reports what the chain put into ctx as trailer metadata.
func (s *testServer) behave(ctx context.Context, req *testReq, setTrailer func(metadata.MD)) error {
	caller, _ := ctx.Value(callerKey{}).(string)
	setTrailer(metadata.Pairs(
		"seen-request-id", grpcx.RequestID(ctx),
		"seen-client-ip", grpcx.ClientIP(ctx).String(),
		"seen-caller", caller,
	))
	switch req.GetService() {
	case "panic":
		panic(secretPanic)
	case "plainerr":
		return errors.New("pq: password authentication failed for host db.internal")
	case "notfound":
		return apierr.New(apierr.NotFound, "USER_NOT_FOUND", "user not found")
	case "unregistered":
		return apierr.New(apierr.NotFound, "NOBODY_REGISTERED_THIS", "user alice not found")
	case "record": // hands the call a record of its own, once only
		if !grpcx.HandRecord(ctx, "the handler's record") || grpcx.HandRecord(ctx, "another") {
			return errors.New("HandRecord")
		}
	case "app": // names the application the call was made for
		if !grpcx.NameApp(ctx, "app-named") {
			return errors.New("NameApp")
		}
	case "block":
		s.entered <- struct{}{}
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	case "stubborn": // ignores its context, then meets a closed store
		s.entered <- struct{}{}
		<-s.release
		return errors.New("read: sql: database is closed")
	case "stubborn-notfound": // ignores its context, then answers NOT_FOUND
		s.entered <- struct{}{}
		<-s.release
		return apierr.New(apierr.NotFound, "USER_NOT_FOUND", "user not found")
	}
	return nil
}

func (s *testServer) check(ctx context.Context, req *testReq) (*healthpb.HealthCheckResponse, error) {
	err := s.behave(ctx, req, func(md metadata.MD) { _ = grpc.SetTrailer(ctx, md) })
	if err != nil {
		return nil, err
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (s *testServer) watch(req *testReq, ss grpc.ServerStream) error {
	if err := s.behave(ss.Context(), req, ss.SetTrailer); err != nil {
		return err
	}
	return ss.SendMsg(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
}

var testDesc = grpc.ServiceDesc{
	ServiceName: "uias.test.Test",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Check",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := newReq()
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) { return srv.(*testServer).check(ctx, req.(*testReq)) }
			if interceptor == nil {
				return h(ctx, in)
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: checkMethod}, h)
		},
	}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "Watch",
		ServerStreams: true,
		Handler: func(srv any, ss grpc.ServerStream) error {
			in := newReq()
			if err := ss.RecvMsg(in); err != nil {
				return err
			}
			return srv.(*testServer).watch(in, ss)
		},
	}},
}

// ---- harness ----

type harness struct {
	t      *testing.T
	conn   *grpc.ClientConn
	direct *grpcx.Direct // the same services and options, called directly
	svc    *testServer
	logs   *observer.ObservedLogs
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, o grpcx.ServerOptions, grace time.Duration, dialOpts ...grpc.DialOption) *harness {
	t.Helper()
	core, logs := observer.New(zapcore.DebugLevel)
	o.Logger = zap.New(core)
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	srv, hs := grpcx.NewServer(o)
	svc := newTestServer()
	srv.RegisterService(&testDesc, svc)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- grpcx.Serve(ctx, srv, lis, grace) }()

	conn, err := grpc.NewClient(lis.Addr().String(),
		append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, dialOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	direct := grpcx.NewDirect(o, conn)
	direct.RegisterService(&testDesc, svc)
	healthpb.RegisterHealthServer(direct, hs)
	h := &harness{t: t, conn: conn, direct: direct, svc: svc, logs: logs, reg: o.Registry, cancel: cancel, done: done}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return h
}

type result struct {
	err     error
	header  metadata.MD
	trailer metadata.MD
}

func (h *harness) check(ctx context.Context, service string) result {
	var r result
	out := &healthpb.HealthCheckResponse{}
	r.err = h.conn.Invoke(ctx, checkMethod, &healthpb.HealthCheckRequest{Service: service}, out,
		grpc.Header(&r.header), grpc.Trailer(&r.trailer))
	if r.err == nil && out.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		r.err = errors.New("unexpected response status " + out.GetStatus().String())
	}
	return r
}

func (h *harness) watch(ctx context.Context, service string) result {
	var r result
	cs, err := h.conn.NewStream(ctx, &testDesc.Streams[0], watchMethod)
	if err != nil {
		r.err = err
		return r
	}
	if err := cs.SendMsg(&healthpb.HealthCheckRequest{Service: service}); err != nil {
		r.err = err
		return r
	}
	if err := cs.CloseSend(); err != nil {
		r.err = err
		return r
	}
	r.err = cs.RecvMsg(&healthpb.HealthCheckResponse{})
	if r.err == nil {
		// Drain to the end of the stream so the trailer is available.
		if err := cs.RecvMsg(&healthpb.HealthCheckResponse{}); !errors.Is(err, io.EOF) {
			r.err = fmt.Errorf("want io.EOF after one message, got %w", err)
		}
	}
	r.header, _ = cs.Header()
	r.trailer = cs.Trailer()
	return r
}

// both runs fn against the unary and the streaming method.
func (h *harness) both(fn func(name string, call func(context.Context, string) result)) {
	fn("unary", h.check)
	fn("stream", h.watch)
}

func first(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// ---- tests ----

func TestPanicBecomesInternal(t *testing.T) {
	h := start(t, grpcx.ServerOptions{}, time.Second)
	h.both(func(name string, call func(context.Context, string) result) {
		r := call(ctxT(t), "panic")
		st := status.Convert(r.err)
		if st.Code() != codes.Internal {
			t.Errorf("%s: code = %v, want Internal (%v)", name, st.Code(), r.err)
		}
		if strings.Contains(st.Message(), "secret") || strings.Contains(st.Message(), "db.internal") {
			t.Errorf("%s: panic text leaked: %q", name, st.Message())
		}
		// The server survives.
		if r := call(ctxT(t), "ok"); r.err != nil {
			t.Errorf("%s: call after panic: %v", name, r.err)
		}
	})
	if n := h.logs.FilterMessage("grpc handler panic").Len(); n != 2 {
		t.Errorf("panic log lines = %d, want 2", n)
	}
	for _, e := range h.logs.FilterMessage("grpc call").FilterField(zap.String("code", "Internal")).All() {
		if e.ContextMap()["request_id"] == "" {
			t.Errorf("call log line without request id: %v", e.ContextMap())
		}
	}
	if n := h.logs.FilterMessage("grpc call").FilterField(zap.String("code", "Internal")).Len(); n != 2 {
		t.Errorf("Internal call log lines = %d, want 2", n)
	}
}

func TestRequestID(t *testing.T) {
	h := start(t, grpcx.ServerOptions{}, time.Second)
	h.both(func(name string, call func(context.Context, string) result) {
		// Supplied and valid: echoed and seen by the handler.
		ctx := metadata.AppendToOutgoingContext(ctxT(t), "x-request-id", "req-1.A_b")
		r := call(ctx, "ok")
		if r.err != nil {
			t.Fatalf("%s: %v", name, r.err)
		}
		if got := first(r.header, "x-request-id"); got != "req-1.A_b" {
			t.Errorf("%s: header request id = %q", name, got)
		}
		if got := first(r.trailer, "seen-request-id"); got != "req-1.A_b" {
			t.Errorf("%s: handler request id = %q", name, got)
		}

		// Invalid or missing: a fresh valid id, echoed (also on errors).
		for _, in := range []string{"", "bad id!", strings.Repeat("a", 65), "a/b", "a:b"} {
			ctx := ctxT(t)
			if in != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "x-request-id", in)
			}
			for _, svc := range []string{"ok", "notfound"} {
				r := call(ctx, svc)
				got := first(r.header, "x-request-id")
				if got == "" || got == in || !grpcx.ValidRequestID(got) {
					t.Errorf("%s %s: request id for %q = %q", name, svc, in, got)
				}
				if seen := first(r.trailer, "seen-request-id"); seen != got {
					t.Errorf("%s %s: handler saw %q, header %q", name, svc, seen, got)
				}
			}
		}
	})
	a, b := grpcx.NewRequestID(), grpcx.NewRequestID()
	if a == b || !grpcx.ValidRequestID(a) {
		t.Errorf("NewRequestID: %q %q", a, b)
	}
}

// TestRequestIDHeaderConcurrent: calls served at once, over the transport
// and directly, each get their own request id as response header and in
// the handler (the header's metadata is reused between calls).
func TestRequestIDHeaderConcurrent(t *testing.T) {
	h := start(t, grpcx.ServerOptions{}, time.Second)
	direct := func(ctx context.Context, service string) result {
		var r result
		r.err = h.direct.Invoke(ctx, checkMethod, &healthpb.HealthCheckRequest{Service: service}, &healthpb.HealthCheckResponse{},
			grpc.Header(&r.header), grpc.Trailer(&r.trailer))
		return r
	}
	var wg sync.WaitGroup
	for g := range 8 {
		call := h.check
		if g%2 == 1 {
			call = direct
		}
		wg.Go(func() {
			for i := range 50 {
				id := fmt.Sprintf("req-%d-%d", g, i)
				r := call(metadata.AppendToOutgoingContext(ctxT(t), "x-request-id", id), "ok")
				if r.err != nil {
					t.Error(r.err)
					return
				}
				if got, seen := r.header.Get("x-request-id"), first(r.trailer, "seen-request-id"); len(got) != 1 || got[0] != id || seen != id {
					t.Errorf("call %s: header %q, handler saw %q", id, got, seen)
				}
			}
		})
	}
	wg.Wait()
}

func TestClientRequestIDPropagation(t *testing.T) {
	h := start(t, grpcx.ServerOptions{}, time.Second,
		grpc.WithUnaryInterceptor(grpcx.UnaryClientRequestID()),
		grpc.WithStreamInterceptor(grpcx.StreamClientRequestID()))
	h.both(func(name string, call func(context.Context, string) result) {
		r := call(grpcx.WithRequestID(ctxT(t), "upstream-42"), "ok")
		if r.err != nil {
			t.Fatalf("%s: %v", name, r.err)
		}
		if got := first(r.trailer, "seen-request-id"); got != "upstream-42" {
			t.Errorf("%s: handler request id = %q, want upstream-42", name, got)
		}
	})
}

func TestForwardedForOnlyFromTrustedPeers(t *testing.T) {
	xff := func(ctx context.Context, v string) context.Context {
		return metadata.AppendToOutgoingContext(ctx, "x-forwarded-for", v)
	}
	t.Run("trusted", func(t *testing.T) {
		h := start(t, grpcx.ServerOptions{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, time.Second)
		h.both(func(name string, call func(context.Context, string) result) {
			for in, want := range map[string]string{
				"":                          "127.0.0.1",
				"203.0.113.7":               "203.0.113.7",
				"198.51.100.1, 203.0.113.7": "203.0.113.7", // rightmost untrusted
				"203.0.113.7, 127.0.0.5":    "203.0.113.7", // trusted hop skipped
				"garbage, 127.0.0.9":        "127.0.0.9",   // stop at unparsable entry
			} {
				ctx := ctxT(t)
				if in != "" {
					ctx = xff(ctx, in)
				}
				r := call(ctx, "ok")
				if r.err != nil {
					t.Fatalf("%s: %v", name, r.err)
				}
				if got := first(r.trailer, "seen-client-ip"); got != want {
					t.Errorf("%s: x-forwarded-for %q: client ip %q, want %q", name, in, got, want)
				}
			}
		})
		if n := h.logs.FilterMessage("grpc call").FilterField(zap.String("client_ip", "203.0.113.7")).Len(); n == 0 {
			t.Error("no call log line carries the client ip")
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		h := start(t, grpcx.ServerOptions{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, time.Second)
		h.both(func(name string, call func(context.Context, string) result) {
			r := call(xff(ctxT(t), "203.0.113.7"), "ok")
			if r.err != nil {
				t.Fatalf("%s: %v", name, r.err)
			}
			if got := first(r.trailer, "seen-client-ip"); got != "127.0.0.1" {
				t.Errorf("%s: client ip %q, want the peer 127.0.0.1", name, got)
			}
		})
	})
}

func TestResolveClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct {
		peer string
		xff  []string
		want string
	}{
		{"192.0.2.1", []string{"203.0.113.7"}, "192.0.2.1"},
		{"10.1.1.1", nil, "10.1.1.1"},
		{"10.1.1.1", []string{"203.0.113.7"}, "203.0.113.7"},
		{"10.1.1.1", []string{"1.1.1.1, 203.0.113.7", "10.2.2.2"}, "203.0.113.7"},
		{"10.1.1.1", []string{"10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
		{"::1", []string{"2001:db8::1"}, "2001:db8::1"},
		{"::ffff:10.1.1.1", []string{"203.0.113.7:4711"}, "203.0.113.7"},
		{"10.1.1.1", []string{"[2001:db8::2]:80"}, "2001:db8::2"},
	} {
		got := grpcx.ResolveClientIP(netip.MustParseAddr(tc.peer), tc.xff, trusted)
		if got.String() != tc.want {
			t.Errorf("ResolveClientIP(%s, %q) = %s, want %s", tc.peer, tc.xff, got, tc.want)
		}
	}
}

func TestCallerAuth(t *testing.T) {
	auth := grpcx.CallerAuthFunc(func(ctx context.Context, method string) (context.Context, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		switch first(md, "x-app") {
		case "good":
			return context.WithValue(ctx, callerKey{}, "app:good"), nil
		case "":
			return nil, apierr.New(apierr.Unauthenticated, "NO_CREDENTIALS", "missing credentials")
		}
		return nil, apierr.New(apierr.PermissionDenied, "APP_NOT_ALLOWED", "caller may not call "+method)
	})
	h := start(t, grpcx.ServerOptions{Auth: auth}, time.Second)
	h.both(func(name string, call func(context.Context, string) result) {
		r := call(ctxT(t), "ok")
		if st := status.Convert(r.err); st.Code() != codes.Unauthenticated || st.Message() != "missing credentials" {
			t.Errorf("%s: no creds: %v", name, r.err)
		}
		r = call(metadata.AppendToOutgoingContext(ctxT(t), "x-app", "evil"), "ok")
		if st := status.Convert(r.err); st.Code() != codes.PermissionDenied {
			t.Errorf("%s: evil: %v", name, r.err)
		}
		if e, ok := apierr.FromStatus(r.err); !ok || e.Reason != "APP_NOT_ALLOWED" {
			t.Errorf("%s: reason lost: %+v", name, e)
		}
		r = call(metadata.AppendToOutgoingContext(ctxT(t), "x-app", "good"), "ok")
		if r.err != nil {
			t.Fatalf("%s: good: %v", name, r.err)
		}
		if got := first(r.trailer, "seen-caller"); got != "app:good" {
			t.Errorf("%s: caller in ctx = %q", name, got)
		}
	})
	// Health checks need no credentials.
	resp, err := healthpb.NewHealthClient(h.conn).Check(ctxT(t), &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v %v", resp, err)
	}
}

func TestValidation(t *testing.T) {
	h := start(t, grpcx.ServerOptions{}, time.Second)
	h.both(func(name string, call func(context.Context, string) result) {
		r := call(ctxT(t), "invalid")
		st := status.Convert(r.err)
		if st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "must not be") {
			t.Errorf("%s: %v", name, r.err)
		}
		// The handler never ran.
		if first(r.trailer, "seen-request-id") != "" {
			t.Errorf("%s: handler ran for an invalid request", name)
		}
	})
}

func TestErrorFunnel(t *testing.T) {
	h := start(t, grpcx.ServerOptions{}, time.Second)
	h.both(func(name string, call func(context.Context, string) result) {
		st := status.Convert(call(ctxT(t), "plainerr").err)
		if st.Code() != codes.Internal || strings.Contains(st.Message(), "db.internal") {
			t.Errorf("%s: plain error: %v", name, st)
		}
		st = status.Convert(call(ctxT(t), "notfound").err)
		if st.Code() != codes.NotFound || st.Message() != "user not found" {
			t.Errorf("%s: domain error: %v", name, st)
		}
		if info := apierr.Info(st); info.GetReason() != "USER_NOT_FOUND" {
			t.Errorf("%s: domain error info: %v", name, info)
		}
		// A reason nobody registered is answered as an internal error,
		// without its message, and logged.
		st = status.Convert(call(ctxT(t), "unregistered").err)
		if st.Code() != codes.Internal || st.Message() != "internal error" || apierr.Info(st).GetReason() != apierr.ReasonInternal {
			t.Errorf("%s: unregistered reason: %v", name, st)
		}
	})
	// The cause of an internal error is logged (never sent), with the
	// method and request id; so is an unregistered reason.
	for _, frag := range []string{"db.internal", "NOBODY_REGISTERED_THIS"} {
		entries := h.logs.FilterLevelExact(zapcore.ErrorLevel).Filter(func(e observer.LoggedEntry) bool {
			return strings.Contains(fmt.Sprint(e.ContextMap()["error"]), frag)
		}).All()
		if len(entries) != 2 { // unary and stream
			t.Errorf("log lines with %q: %d, want 2 (%v)", frag, len(entries), h.logs.All())
			continue
		}
		if m := entries[0].ContextMap(); m["method"] != checkMethod && m["method"] != watchMethod || m["request_id"] == "" {
			t.Errorf("log line lacks method or request id: %v", m)
		}
	}
}

func counter(t *testing.T, reg *prometheus.Registry, method, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "grpc_server_handled_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["grpc_method"] == method && labels["grpc_code"] == code {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func histogramCount(t *testing.T, reg *prometheus.Registry, method string) uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "grpc_server_handling_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "grpc_method" && l.GetValue() == method {
					return m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func TestMetrics(t *testing.T) {
	h := start(t, grpcx.ServerOptions{}, time.Second)
	for i := 0; i < 3; i++ {
		if r := h.check(ctxT(t), "ok"); r.err != nil {
			t.Fatal(r.err)
		}
	}
	h.check(ctxT(t), "notfound")
	h.check(ctxT(t), "panic")
	h.watch(ctxT(t), "ok")
	for _, tc := range []struct {
		method, code string
		want         float64
	}{
		{checkMethod, "OK", 3},
		{checkMethod, "NotFound", 1},
		{checkMethod, "Internal", 1},
		{watchMethod, "OK", 1},
	} {
		if got := counter(t, h.reg, tc.method, tc.code); got != tc.want {
			t.Errorf("handled_total{%s,%s} = %v, want %v", tc.method, tc.code, got, tc.want)
		}
	}
	if got := histogramCount(t, h.reg, checkMethod); got != 5 {
		t.Errorf("handling_seconds count = %d, want 5", got)
	}

	// A second server on the same registry shares the collectors.
	srv2, _ := grpcx.NewServer(grpcx.ServerOptions{Registry: h.reg})
	srv2.Stop()
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	h := start(t, grpcx.ServerOptions{}, time.Minute)
	var wg sync.WaitGroup
	results := make([]result, 2)
	wg.Add(2)
	go func() { defer wg.Done(); results[0] = h.check(ctxT(t), "block") }()
	go func() { defer wg.Done(); results[1] = h.watch(ctxT(t), "block") }()
	<-h.svc.entered
	<-h.svc.entered

	h.cancel() // begin graceful shutdown while both calls are in flight

	// New calls are refused once the listener is closed; wait for that
	// (bounded) so the release below happens during the shutdown.
	probe, err := grpc.NewClient(h.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		_, err := healthpb.NewHealthClient(probe).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-h.done:
		t.Fatalf("Serve returned before in-flight calls finished: %v", err)
	default:
	}

	close(h.svc.release)
	wg.Wait()
	for i, r := range results {
		if r.err != nil {
			t.Errorf("in-flight call %d: %v", i, r.err)
		}
	}
	if err := <-h.done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	h.done <- nil // for the cleanup
}

func TestServeHardStopAfterGrace(t *testing.T) {
	h := start(t, grpcx.ServerOptions{}, 50*time.Millisecond)
	errc := make(chan error, 1)
	go func() { errc <- h.check(ctxT(t), "block").err }()
	<-h.svc.entered
	h.cancel()
	if err := <-h.done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	h.done <- nil
	if err := <-errc; err == nil {
		t.Error("blocked call succeeded although the server was stopped hard")
	}
}

func TestServerTLSMinVersion(t *testing.T) {
	// Exercised through NewServer too (must not panic with a TLS config).
	srv, _ := grpcx.NewServer(grpcx.ServerOptions{TLS: tlsConfig(0)})
	srv.Stop()
	if got := grpcx.ServerTLS(tlsConfig(0x0301)).MinVersion; got != 0x0303 {
		t.Errorf("MinVersion = %#x, want TLS 1.2", got)
	}
	if got := grpcx.ServerTLS(tlsConfig(0x0304)).MinVersion; got != 0x0304 {
		t.Errorf("MinVersion = %#x, want TLS 1.3 kept", got)
	}
}

// Admit refuses calls in the transport with the refusal's domain status
// (code, message, ErrorInfo reason); other methods and admitted calls run
// through the chain as usual.
func TestAdmit(t *testing.T) {
	var shed atomic.Bool
	var auths atomic.Int32
	h := start(t, grpcx.ServerOptions{
		Auth: grpcx.CallerAuthFunc(func(ctx context.Context, _ string) (context.Context, error) {
			auths.Add(1)
			return ctx, nil
		}),
		Admit: func(method string) error {
			if method == checkMethod && shed.Load() {
				return apierr.New(apierr.ResourceExhausted, "OVERLOADED", "too busy, retry shortly")
			}
			return nil
		},
	}, time.Second)
	if r := h.check(ctxT(t), "ok"); r.err != nil {
		t.Fatalf("admitted call: %v", r.err)
	}
	shed.Store(true)
	before := auths.Load()
	r := h.check(ctxT(t), "ok")
	st := status.Convert(r.err)
	if st.Code() != codes.ResourceExhausted || st.Message() != "too busy, retry shortly" {
		t.Fatalf("refused call: %v", st)
	}
	var reason string
	for _, d := range st.Details() {
		if ei, ok := d.(*errdetails.ErrorInfo); ok {
			reason = ei.GetReason()
		}
	}
	if reason != "OVERLOADED" {
		t.Fatalf("refusal reason %q in %v", reason, st.Details())
	}
	if auths.Load() != before {
		t.Fatal("a refused call reached the interceptor chain")
	}
	if got := counter(t, h.reg, checkMethod, "ResourceExhausted"); got != 1 {
		t.Fatalf("refusals counted %v, want 1", got)
	}
	// Other methods are not affected.
	if r := h.watch(ctxT(t), "ok"); r.err != nil {
		t.Fatalf("watch while check is shed: %v", r.err)
	}
}

// The caller credentials a client sends reach CallerAuth through
// AppCredentials and BearerToken, over a real connection.
func TestCallerCredentials(t *testing.T) {
	auth := grpcx.CallerAuthFunc(func(ctx context.Context, _ string) (context.Context, error) {
		id, secret := grpcx.AppCredentials(ctx)
		seen := fmt.Sprintf("app=%s secret=%s bearer=%s extra=%s", id, secret, grpcx.BearerToken(ctx),
			grpcx.IncomingValue(ctx, "x-extra"))
		return context.WithValue(ctx, callerKey{}, seen), nil
	})
	h := start(t, grpcx.ServerOptions{Auth: auth}, time.Second)
	cases := []struct {
		md   []string
		want string
	}{
		{nil, "app= secret= bearer= extra="},
		{[]string{"X-Uias-App-Id", "app-1", "x-uias-app-secret", "s3cret", "x-extra", "e"},
			"app=app-1 secret=s3cret bearer= extra=e"},
		{[]string{"authorization", "Bearer tok-1 "}, "app= secret= bearer=tok-1 extra="},
		{[]string{"authorization", "bearer tok-2"}, "app= secret= bearer=tok-2 extra="},
		{[]string{"authorization", "tok-3"}, "app= secret= bearer=tok-3 extra="},
		{[]string{grpcx.MetadataAppID, "first", grpcx.MetadataAppID, "second"}, "app=first secret= bearer= extra="},
	}
	h.both(func(name string, call func(context.Context, string) result) {
		for _, c := range cases {
			r := call(metadata.AppendToOutgoingContext(ctxT(t), c.md...), "ok")
			if r.err != nil {
				t.Fatalf("%s: %v", name, r.err)
			}
			if got := first(r.trailer, "seen-caller"); got != c.want {
				t.Errorf("%s: metadata %q: seen %q, want %q", name, c.md, got, c.want)
			}
		}
	})
	if grpcx.IncomingValue(context.Background(), grpcx.MetadataAppID) != "" || grpcx.BearerToken(context.Background()) != "" {
		t.Fatal("a context without metadata has credentials")
	}
}
