package grpcx_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/grpcx"
)

// What a caller check takes for a call (a slot of the application's
// concurrency limit) is given back when the call ends, not before: over
// gRPC and in-process, unary and streaming, and also when the call is
// refused after the caller passed (a malformed remark).
func TestCallEnd(t *testing.T) {
	var ended atomic.Int64
	auth := grpcx.CallerAuthFunc(func(ctx context.Context, _ string) (context.Context, error) {
		ctx = caller.With(ctx, &caller.Caller{Principal: "u1"}) // a person: remarks are read
		return grpcx.WithCallEnd(ctx, func() { ended.Add(1) }), nil
	})
	h := start(t, grpcx.ServerOptions{Auth: auth}, time.Second)
	calls := map[string]func(context.Context, string) result{"unary": h.check, "stream": h.watch, "direct": h.directCheck}
	for _, name := range []string{"unary", "stream", "direct"} {
		call := calls[name]
		before := ended.Load()
		done := make(chan result, 1)
		go func() { done <- call(ctxT(t), "block") }()
		<-h.svc.entered
		time.Sleep(20 * time.Millisecond)
		if got := ended.Load() - before; got != 0 {
			t.Fatalf("%s: the call's end ran %d times while its handler runs", name, got)
		}
		h.svc.release <- struct{}{}
		if r := <-done; r.err != nil {
			t.Fatalf("%s: %v", name, r.err)
		}
		waitUntil(t, func() bool { return ended.Load()-before == 1 }, name+": the call's end did not run once")
	}
	// refused after the caller check (a remark that is not text)
	before := ended.Load()
	ctx := metadata.AppendToOutgoingContext(ctxT(t), grpcx.MetadataRemark, "%01bad")
	if r := h.check(ctx, "ok"); r.err == nil {
		t.Fatal("a control character in the remark was taken")
	}
	waitUntil(t, func() bool { return ended.Load()-before == 1 }, "a call refused after the caller check kept its slot")
}

func waitUntil(t *testing.T, ok func() bool, msg string) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
	}
}

// A caller check that takes something for the call and then refuses it,
// returning its context with the error, has it given back by the server
// (review sec27b H1).
func TestCallEndOnRefusal(t *testing.T) {
	var ended atomic.Int64
	auth := grpcx.CallerAuthFunc(func(ctx context.Context, _ string) (context.Context, error) {
		return grpcx.WithCallEnd(ctx, func() { ended.Add(1) }), apierr.New(apierr.Unavailable, "LOADING", "not yet")
	})
	h := start(t, grpcx.ServerOptions{Auth: auth}, time.Second)
	for _, call := range []func(context.Context, string) result{h.check, h.watch, h.directCheck} {
		if r := call(ctxT(t), "ok"); r.err == nil {
			t.Fatal("taken")
		}
	}
	waitUntil(t, func() bool { return ended.Load() == 3 }, "the refused calls kept what was taken for them")
}
