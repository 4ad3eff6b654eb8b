package grpcx_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
)

// directCheck is harness.check over the direct channel.
func (h *harness) directCheck(ctx context.Context, service string) result {
	var r result
	out := &healthpb.HealthCheckResponse{}
	r.err = h.direct.Invoke(ctx, checkMethod, &healthpb.HealthCheckRequest{Service: service}, out,
		grpc.Header(&r.header), grpc.Trailer(&r.trailer))
	if r.err == nil && out.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		r.err = errors.New("unexpected response status " + out.GetStatus().String())
	}
	return r
}

// A direct call passes the server's whole chain: request id (header and
// handler), the origin the in-process caller asserts (trusted, as over the
// in-process listener), caller auth, the access record, the metrics.
func TestDirectServesThroughChain(t *testing.T) {
	type seenCall struct {
		call        grpcx.Call
		caller, rid string
		ip          string
	}
	var mu sync.Mutex
	var seen []seenCall
	auth := grpcx.CallerAuthFunc(func(ctx context.Context, method string) (context.Context, error) {
		if grpcx.IncomingValue(ctx, "x-app") != "good" {
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

	// The edge's context: request id and origin (client address), and the
	// caller's credentials as outgoing metadata.
	ctx := grpcx.WithRequestID(grpcx.WithOrigin(ctxT(t), grpcx.Origin{ClientIP: netip.MustParseAddr("192.0.2.7")}), "rid-7")
	ctx = metadata.AppendToOutgoingContext(ctx, "x-app", "good")
	r := h.directCheck(ctx, "ok")
	if r.err != nil {
		t.Fatal(r.err)
	}
	for k, want := range map[string]string{"seen-request-id": "rid-7", "seen-client-ip": "192.0.2.7", "seen-caller": "app:good"} {
		if got := first(r.trailer, k); got != want {
			t.Errorf("trailer %s = %q, want %q", k, got, want)
		}
	}
	if got := first(r.header, "x-request-id"); got != "rid-7" {
		t.Errorf("header x-request-id = %q, want rid-7", got)
	}
	// Refused by caller auth, through the error funnel.
	r = h.directCheck(ctxT(t), "ok")
	if e, ok := apierr.FromStatus(r.err); !ok || e.Reason != "NO_CREDENTIALS" || status.Code(r.err) != codes.Unauthenticated {
		t.Errorf("no credentials: %v", r.err)
	}
	if got := first(r.header, "x-request-id"); !grpcx.ValidRequestID(got) {
		t.Errorf("refused call: header x-request-id = %q", got)
	}
	// Counted and recorded like any call.
	if got := counter(t, h.reg, checkMethod, "OK"); got != 1 {
		t.Errorf("handled_total{OK} = %v, want 1", got)
	}
	if got := counter(t, h.reg, checkMethod, "Unauthenticated"); got != 1 {
		t.Errorf("handled_total{Unauthenticated} = %v, want 1", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 {
		t.Fatalf("OnCall heard %d calls, want 2: %+v", len(seen), seen)
	}
	if s := seen[0]; s.call.Method != checkMethod || s.call.Code != codes.OK || s.caller != "app:good" || s.rid != "rid-7" ||
		s.ip != "192.0.2.7" || s.call.Nested {
		t.Errorf("access record %+v", s)
	}
	if s := seen[1]; s.call.Code != codes.Unauthenticated || s.call.Reason != "NO_CREDENTIALS" {
		t.Errorf("access record of the refusal %+v", s)
	}
	if n := h.logs.FilterMessage("grpc call").Len(); n != 2 {
		t.Errorf("%d call log lines, want 2", n)
	}
}

// Refusals and errors are those of the server: validation (-5, the field
// named, also for a string that is not UTF-8, which a codec would have
// refused), the error funnel, panics, admission.
func TestDirectErrors(t *testing.T) {
	var shed atomic.Bool
	h := start(t, grpcx.ServerOptions{Admit: func(method string) error {
		if shed.Load() {
			return apierr.New(apierr.ResourceExhausted, "OVERLOADED", "too busy, retry shortly")
		}
		return nil
	}}, time.Second)

	r := h.directCheck(ctxT(t), "invalid")
	wantBadRequest(t, "invalid", r.err, "service")
	if first(r.trailer, "seen-request-id") != "" {
		t.Error("the handler ran for an invalid request")
	}
	// A request of the handler's own type is copied, not encoded: its
	// strings are checked as the server's codec checks them.
	h.direct.RegisterService(&keepDesc, &keepServer{reply: &healthpb.HealthCheckResponse{}})
	err := h.direct.Invoke(ctxT(t), keepMethod, &healthpb.HealthCheckRequest{Service: "al\xffice"}, &healthpb.HealthCheckResponse{})
	wantBadRequest(t, "utf8", err, "service")
	if got := status.Convert(err).Message(); got != "service is not valid UTF-8" {
		t.Errorf("utf8: message = %q", got)
	}
	// One of another type goes through its wire form: a Go client's
	// encoder refuses it, as over a connection.
	r = h.directCheck(ctxT(t), "al\xffice")
	if st := status.Convert(r.err); st.Code() != codes.Internal || !strings.Contains(st.Message(), "UTF-8") {
		t.Errorf("utf8 through the wire form: %v", r.err)
	}

	st := status.Convert(h.directCheck(ctxT(t), "notfound").err)
	if st.Code() != codes.NotFound || st.Message() != "user not found" || apierr.Info(st).GetReason() != "USER_NOT_FOUND" {
		t.Errorf("domain error: %v", st)
	}
	st = status.Convert(h.directCheck(ctxT(t), "plainerr").err)
	if st.Code() != codes.Internal || strings.Contains(st.Message(), "db.internal") {
		t.Errorf("plain error: %v", st)
	}
	st = status.Convert(h.directCheck(ctxT(t), "panic").err)
	if st.Code() != codes.Internal || strings.Contains(st.Message(), "secret") {
		t.Errorf("panic: %v", st)
	}

	shed.Store(true)
	st = status.Convert(h.directCheck(ctxT(t), "ok").err)
	if st.Code() != codes.ResourceExhausted || apierr.Info(st).GetReason() != "OVERLOADED" {
		t.Errorf("admission: %v", st)
	}
	shed.Store(false)
	if got := counter(t, h.reg, keepMethod, "InvalidArgument"); got != 1 {
		t.Errorf("handled_total{Keep, InvalidArgument} = %v, want 1", got)
	}
	for code, want := range map[string]float64{"InvalidArgument": 1, "NotFound": 1, "Internal": 2, "ResourceExhausted": 1} {
		if got := counter(t, h.reg, checkMethod, code); got != want {
			t.Errorf("handled_total{%s} = %v, want %v", code, got, want)
		}
	}
	if r := h.directCheck(ctxT(t), "ok"); r.err != nil {
		t.Errorf("after the errors: %v", r.err)
	}
}

// The handler runs in a context of its own: the caller's deadline and
// cancellation, the in-process peer, none of the caller's values.
func TestDirectContext(t *testing.T) {
	h := start(t, grpcx.ServerOptions{}, time.Second)

	// A value the caller's context carries (as a component's own caller
	// would) does not reach the handler.
	ctx := context.WithValue(ctxT(t), callerKey{}, "forged")
	if r := h.directCheck(ctx, "ok"); r.err != nil || first(r.trailer, "seen-caller") != "" {
		t.Errorf("caller's value reached the handler: %v %v", r.err, r.trailer)
	}
	// X-Forwarded-For without the edge's origin: the in-process peer has
	// no address and trusts no proxy (as the in-process listener).
	ctx = metadata.AppendToOutgoingContext(ctxT(t), "x-forwarded-for", "192.0.2.7")
	if r := h.directCheck(ctx, "ok"); r.err != nil || first(r.trailer, "seen-client-ip") == "192.0.2.7" {
		t.Errorf("x-forwarded-for believed: %v %v", r.err, r.trailer)
	}

	// Deadline: the handler ends with the caller's.
	ctx, cancel := context.WithTimeout(ctxT(t), 100*time.Millisecond)
	defer cancel()
	if r := h.directCheck(ctx, "block"); status.Code(r.err) != codes.DeadlineExceeded {
		t.Errorf("deadline: %v", r.err)
	}
	<-h.svc.entered
	// Cancel: likewise.
	ctx, cancel = context.WithCancel(ctxT(t))
	go func() { <-h.svc.entered; cancel() }()
	if r := h.directCheck(ctx, "block"); status.Code(r.err) != codes.Canceled {
		t.Errorf("cancel: %v", r.err)
	}
	// A call made with a context already done is not served.
	if r := h.directCheck(ctx, "ok"); status.Code(r.err) != codes.Canceled || first(r.trailer, "seen-request-id") != "" {
		t.Errorf("done context: %v %v", r.err, r.trailer)
	}

	var p peer.Peer
	if err := h.direct.Invoke(ctxT(t), checkMethod, &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}, grpc.Peer(&p)); err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Addr.(grpcx.InprocAddr); !ok {
		t.Errorf("peer %v, want in-process", p.Addr)
	}
	// Health checks (unary) go direct; streams through the connection.
	if resp, err := healthpb.NewHealthClient(h.direct).Check(ctxT(t), &healthpb.HealthCheckRequest{}); err != nil ||
		resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("health: %v %v", resp, err)
	}
	cs, err := h.direct.NewStream(ctxT(t), &testDesc.Streams[0], watchMethod)
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.SendMsg(&healthpb.HealthCheckRequest{Service: "ok"}); err != nil {
		t.Fatal(err)
	}
	_ = cs.CloseSend()
	if err := cs.RecvMsg(&healthpb.HealthCheckResponse{}); err != nil {
		t.Errorf("stream through the connection: %v", err)
	}
}

// keepServer keeps the request it got, its context's deadline, and answers
// the same reply message every time.
type keepServer struct {
	mu       sync.Mutex
	req      *healthpb.HealthCheckRequest
	deadline time.Time
	reply    *healthpb.HealthCheckResponse
}

const keepMethod = "/uias.test.Keep/Keep"

var keepDesc = grpc.ServiceDesc{
	ServiceName: "uias.test.Keep",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Keep",
		Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
			in := &healthpb.HealthCheckRequest{}
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, req any) (any, error) {
				s := srv.(*keepServer)
				s.mu.Lock()
				defer s.mu.Unlock()
				s.req = req.(*healthpb.HealthCheckRequest)
				s.deadline, _ = ctx.Deadline()
				return s.reply, nil
			}
			return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: keepMethod}, h)
		},
	}},
}

// Neither side keeps a message the other may reuse; the deadline is the
// caller's.
func TestDirectCopiesMessages(t *testing.T) {
	h := start(t, grpcx.ServerOptions{}, time.Second)
	ks := &keepServer{reply: &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}}
	h.direct.RegisterService(&keepDesc, ks)

	ctx, cancel := context.WithTimeout(ctxT(t), time.Minute)
	defer cancel()
	want, _ := ctx.Deadline()
	req := &healthpb.HealthCheckRequest{Service: "mine"}
	out := &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_UNKNOWN}
	if err := h.direct.Invoke(ctx, keepMethod, req, out); err != nil {
		t.Fatal(err)
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if !ks.deadline.Equal(want) {
		t.Errorf("handler deadline %v, want the caller's %v", ks.deadline, want)
	}
	if ks.req == req || !proto.Equal(ks.req, req) {
		t.Errorf("request: handler got %p %v, caller sent %p %v", ks.req, ks.req, req, req)
	}
	if out == ks.reply || out.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("reply: caller got %p %v, handler answered %p", out, out, ks.reply)
	}
	req.Service = "changed by the caller"
	out.Status = healthpb.HealthCheckResponse_NOT_SERVING
	if ks.req.GetService() != "mine" || ks.reply.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("the caller's messages are shared with the handler: %v %v", ks.req, ks.reply)
	}
}

// BenchmarkDirectInvoke is one unary call over the direct channel (the
// keep stand-in, whose handler does nothing), from parallel callers: what
// the channel and the chain cost a call, with -benchmem its allocations.
func BenchmarkDirectInvoke(b *testing.B) { benchDirectInvoke(b, false) }

// BenchmarkDirectInvokeOwnContext is BenchmarkDirectInvoke with a context
// of its own for each caller (as the edge's requests have): the callers
// share only the channel.
func BenchmarkDirectInvokeOwnContext(b *testing.B) { benchDirectInvoke(b, true) }

// benchDirectInvoke calls the keep stand-in from parallel callers, with
// one shared context or (own) a context for each caller.
func benchDirectInvoke(b *testing.B, own bool) {
	d := grpcx.NewDirect(grpcx.ServerOptions{Logger: zap.NewNop(), Registry: prometheus.NewRegistry()}, nil)
	d.RegisterService(&keepDesc, &keepServer{reply: &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}})
	shared, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := shared
		if own {
			c, cancel := context.WithTimeout(context.Background(), time.Hour)
			defer cancel()
			ctx = c
		}
		req := &healthpb.HealthCheckRequest{Service: "x"}
		out := &healthpb.HealthCheckResponse{}
		for pb.Next() {
			if err := d.Invoke(ctx, keepMethod, req, out); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// wantShuttingDown fails unless err is the answer of a stopping channel:
// UNAVAILABLE, saying nothing of what closed inside.
func wantShuttingDown(t *testing.T, what string, err error) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "shutting down") {
		t.Errorf("%s: %v, want UNAVAILABLE (shutting down)", what, err)
	}
	if e, ok := apierr.FromStatus(err); !ok || e.Reason != "UNAVAILABLE" {
		t.Errorf("%s: reason %v, want UNAVAILABLE", what, e)
	}
}

// GracefulStop: the call being served completes; new calls are answered
// UNAVAILABLE, except those made while serving a call (a handler finishing
// its work, which may come and go meanwhile); it returns when the last
// call has ended. Two GracefulStops at once both wait and both return.
func TestDirectGracefulStop(t *testing.T) {
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d GracefulStops", n), func(t *testing.T) {
			h := start(t, grpcx.ServerOptions{}, time.Second)
			served := h.blockedCall("block")
			stopped := make(chan struct{}, n)
			for range n {
				go func() { h.direct.GracefulStop(); stopped <- struct{}{} }()
			}
			// Once draining, a new call from outside is refused...
			r := h.refusedCall()
			wantShuttingDown(t, "a new call while draining", r.err)
			if got := first(r.trailer, "seen-request-id"); got != "" {
				t.Errorf("the refused call reached the handler (trailer %v)", r.trailer)
			}
			// ...calls made while serving one are served.
			for range 20 {
				if r := h.directCheck(grpcx.PartOf(ctxT(t)), "ok"); r.err != nil {
					t.Fatalf("a nested call while draining: %v", r.err)
				}
			}
			notYet(t, stopped, "GracefulStop returned while a call was being served")
			close(h.svc.release)
			if r := <-served; r.err != nil {
				t.Errorf("the call being served: %v, want it completed", r.err)
			}
			for i := range n {
				waitFor(t, stopped, fmt.Sprintf("GracefulStop %d of %d", i+1, n))
			}
			wantShuttingDown(t, "a call after GracefulStop", h.directCheck(ctxT(t), "ok").err)
			if _, err := healthpb.NewHealthClient(h.direct).Check(ctxT(t), &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
				t.Errorf("health after GracefulStop: %v, want UNAVAILABLE", err)
			}
		})
	}
}

// Stop cancels the calls being served and every call is refused; a call
// ended by its context cancelled by the stop is answered UNAVAILABLE, but
// an error of the handler's own after Stop (here a store closed under a
// handler that ignores its context, or a user not found) keeps its code,
// as the error funnel made it (nothing of what closed inside). StopWithin
// returns after its grace even when a handler never ends.
func TestDirectStop(t *testing.T) {
	h := start(t, grpcx.ServerOptions{}, time.Second)
	blocked := h.blockedCall("block")
	stubborn := h.blockedCall("stubborn")
	stubbornNotFound := h.blockedCall("stubborn-notfound")
	grpcx.StopWithin(h.direct, 50*time.Millisecond)
	wantShuttingDown(t, "a call cancelled by Stop", (<-blocked).err)
	wantShuttingDown(t, "a new call after Stop", h.directCheck(ctxT(t), "ok").err)
	wantShuttingDown(t, "a nested call after Stop", h.directCheck(grpcx.PartOf(ctxT(t)), "ok").err)
	close(h.svc.release)
	err := (<-stubborn).err
	if st := status.Convert(err); st.Code() != codes.Internal || strings.Contains(st.Message(), "sql") {
		t.Errorf("a call that met a closed store after Stop: %v, want INTERNAL from the error funnel", err)
	}
	if r := <-stubbornNotFound; status.Code(r.err) != codes.NotFound {
		t.Errorf("a call answering NOT_FOUND after Stop: %v, want it kept", r.err)
	}
}

// Stop while a GracefulStop waits for a call: GracefulStop returns (it
// does not wait for the handler), the call is cancelled and answered
// UNAVAILABLE, and a second Stop is harmless.
func TestDirectStopDuringGracefulStop(t *testing.T) {
	h := start(t, grpcx.ServerOptions{}, time.Second)
	blocked := h.blockedCall("block")
	stubborn := h.blockedCall("stubborn")
	graceful := make(chan struct{})
	go func() { h.direct.GracefulStop(); close(graceful) }()
	// Draining: a new call is refused, so GracefulStop is waiting.
	h.refusedCall()
	notYet(t, graceful, "GracefulStop returned while calls were being served")
	h.direct.Stop()
	h.direct.Stop()
	waitFor(t, graceful, "GracefulStop after Stop")
	wantShuttingDown(t, "a call cancelled by Stop during GracefulStop", (<-blocked).err)
	close(h.svc.release)
	<-stubborn
	// GracefulStop after Stop returns at once.
	again := make(chan struct{})
	go func() { h.direct.GracefulStop(); close(again) }()
	waitFor(t, again, "GracefulStop after Stop")
}

// blockedCall starts a direct call of service ("block", "stubborn") and
// returns once its handler runs; the call's result comes on the channel.
func (h *harness) blockedCall(service string) <-chan result {
	c := make(chan result, 1)
	ctx := ctxT(h.t)
	go func() { c <- h.directCheck(ctx, service) }()
	<-h.svc.entered
	return c
}

// refusedCall makes new direct calls until one is refused (the channel
// drains or has stopped) and returns its result.
func (h *harness) refusedCall() result {
	r := h.directCheck(ctxT(h.t), "ok")
	for ; r.err == nil; r = h.directCheck(ctxT(h.t), "ok") {
		time.Sleep(time.Millisecond)
	}
	return r
}

// notYet fails the test if ch has delivered.
func notYet[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s", what)
	default:
	}
}

// waitFor fails the test if ch has not delivered within a minute (a hang).
func waitFor[T any](t *testing.T, ch <-chan T, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(time.Minute):
		t.Fatalf("%s hangs", what)
	}
}
