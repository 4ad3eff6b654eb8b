package grpcx_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
)

// rawCodec sends requests as given ([]byte, any wire bytes at all) and
// decodes answers as usual: a client that can send what a Go client built
// on generated code refuses to marshal (e.g. a string that is not UTF-8).
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

func (rawCodec) Name() string { return "proto" }

// serviceField is the wire form of a request with field 1 ("service") = s.
func serviceField(s string) []byte {
	return protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), s)
}

func (h *harness) rawCheck(ctx context.Context, req []byte) result {
	var r result
	out := &healthpb.HealthCheckResponse{}
	r.err = h.conn.Invoke(ctx, checkMethod, req, out,
		grpc.Header(&r.header), grpc.Trailer(&r.trailer), grpc.ForceCodecV2(rawCodec{}))
	if r.err == nil && out.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		r.err = errors.New("unexpected response status " + out.GetStatus().String())
	}
	return r
}

func (h *harness) rawWatch(ctx context.Context, req []byte) result {
	var r result
	cs, err := h.conn.NewStream(ctx, &testDesc.Streams[0], watchMethod, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		r.err = err
		return r
	}
	if err := cs.SendMsg(req); err != nil {
		r.err = err
		return r
	}
	if err := cs.CloseSend(); err != nil {
		r.err = err
		return r
	}
	r.err = cs.RecvMsg(&healthpb.HealthCheckResponse{})
	if r.err == nil {
		if err := cs.RecvMsg(&healthpb.HealthCheckResponse{}); !errors.Is(err, io.EOF) {
			r.err = errors.New("want io.EOF after one message")
		}
	}
	r.header, _ = cs.Header()
	r.trailer = cs.Trailer()
	return r
}

// wantBadRequest checks that err is InvalidArgument with reason BAD_REQUEST,
// legacy code -5, ErrorInfo field and a message mentioning each of mention.
func wantBadRequest(t *testing.T, label string, err error, field string, mention ...string) {
	t.Helper()
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Errorf("%s: code = %v, want InvalidArgument (%v)", label, st.Code(), err)
		return
	}
	var info *errdetails.ErrorInfo
	for _, d := range st.Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	if info == nil || info.GetDomain() != apierr.Domain || info.GetReason() != grpcx.ReasonBadRequest {
		t.Errorf("%s: ErrorInfo = %v, want reason BAD_REQUEST in %s", label, info, apierr.Domain)
		return
	}
	if got := info.GetMetadata()[grpcx.MetaLegacyCode]; got != "-5" {
		t.Errorf("%s: legacy_code = %q, want -5", label, got)
	}
	if got := info.GetMetadata()[grpcx.MetaField]; got != field {
		t.Errorf("%s: field = %q, want %q", label, got, field)
	}
	for _, m := range mention {
		if !strings.Contains(st.Message(), m) {
			t.Errorf("%s: message %q does not mention %q", label, st.Message(), m)
		}
	}
}

func TestValidationByProtoRules(t *testing.T) {
	h := start(t, grpcx.ServerOptions{}, time.Second)
	cases := []struct {
		service string
		message string
	}{
		{"invalid", "service must not be in list [invalid]"},
		{strings.Repeat("s", 33), "service is too long (at most 32 bytes)"},
	}
	h.both(func(name string, call func(context.Context, string) result) {
		for _, c := range cases {
			r := call(ctxT(t), c.service)
			wantBadRequest(t, name, r.err, "service")
			if got := status.Convert(r.err).Message(); got != c.message {
				t.Errorf("%s: message = %q, want %q", name, got, c.message)
			}
			if first(r.trailer, "seen-request-id") != "" {
				t.Errorf("%s: handler ran for a request breaking its rules", name)
			}
		}
		if r := call(ctxT(t), strings.Repeat("s", 32)); r.err != nil {
			t.Errorf("%s: a request within the rules: %v", name, r.err)
		}
	})
}

func TestUndecodableRequest(t *testing.T) {
	h := start(t, grpcx.ServerOptions{}, time.Second)
	calls := map[string]func(context.Context, []byte) result{"unary": h.rawCheck, "stream": h.rawWatch}
	for name, call := range calls {
		// Not protobuf at all: a length-delimited field 1 running past the end.
		r := call(ctxT(t), []byte{0x0a, 0x7f, 'x'})
		wantBadRequest(t, name+" garbage", r.err, "", "not a valid uias.test.CheckRequest message")
		if first(r.trailer, "seen-request-id") != "" {
			t.Errorf("%s: handler ran for an undecodable request", name)
		}

		// A string that is not UTF-8 fails proto3 decoding: named.
		r = call(ctxT(t), serviceField("al\xffice"))
		wantBadRequest(t, name+" utf8", r.err, "service")
		if got := status.Convert(r.err).Message(); got != "service is not valid UTF-8" {
			t.Errorf("%s: message = %q", name, got)
		}

		// A client cannot forge the server's mark of an undecodable
		// message: an unknown field of the same number is just unknown.
		forged := protowire.AppendBytes(protowire.AppendTag(serviceField("ok"), protowire.MaxValidNumber,
			protowire.BytesType), []byte("0123456789abcdef"))
		if r := call(ctxT(t), forged); r.err != nil {
			t.Errorf("%s: request with an unknown field: %v", name, r.err)
		}

		// The connection and the server are fine afterwards.
		if r := call(ctxT(t), serviceField("ok")); r.err != nil {
			t.Errorf("%s: good request after bad ones: %v", name, r.err)
		}
	}
	// Counted and logged as the callers' fault, not the server's.
	if got := counter(t, h.reg, checkMethod, "InvalidArgument"); got != 2 {
		t.Errorf("unary InvalidArgument count = %v, want 2", got)
	}
	if n := h.logs.FilterMessage("grpc call").FilterField(zap.String("code", "Internal")).Len(); n != 0 {
		t.Errorf("%d calls logged as Internal", n)
	}
}

func TestOnBadRequest(t *testing.T) {
	type report struct{ method, caller, field string }
	reports := make(chan report, 8)
	h := start(t, grpcx.ServerOptions{
		Auth: grpcx.CallerAuthFunc(func(ctx context.Context, _ string) (context.Context, error) {
			return context.WithValue(ctx, callerKey{}, "app-1"), nil
		}),
		OnBadRequest: func(ctx context.Context, method string, err error) {
			caller, _ := ctx.Value(callerKey{}).(string)
			ae, _ := apierr.As(err)
			reports <- report{method, caller, ae.Meta[grpcx.MetaField]}
		},
	}, time.Second)
	h.check(ctxT(t), "invalid")
	h.rawWatch(ctxT(t), []byte{0xff})
	h.check(ctxT(t), "ok")
	want := []report{{checkMethod, "app-1", "service"}, {watchMethod, "app-1", ""}}
	for _, w := range want {
		if got := <-reports; got != w {
			t.Errorf("reported %+v, want %+v", got, w)
		}
	}
	if len(reports) != 0 {
		t.Errorf("%d more reports (a good request was reported?)", len(reports))
	}
}
