package identity_test

import (
	"context"
	"net/netip"
	"slices"
	"testing"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/services/identity"
)

// An application's concurrency limit (JR/T 0185-2020 10.1.2, max
// concurrent calls): set, validated, kept and shown; a call beyond it is
// refused CONCURRENCY_LIMITED and audited as a refused caller; a slot
// given back is taken again.
func TestAppMaxConcurrent(t *testing.T) {
	w := newSecretWorld(t, 0)
	ctx := context.Background()
	_, _, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "neg", Name: "Neg", MaxConcurrent: -1})
	wantReason(t, "negative", err, apierr.InvalidArgument, apierr.ReasonBadRequest)
	a, secret, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "busy", Name: "Busy", MaxConcurrent: 2})
	if err != nil || a.MaxConcurrent != 2 {
		t.Fatalf("created %+v %v", a, err)
	}
	a, err = w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"max_concurrent"}, MaxConcurrent: 1})
	if err != nil || a.MaxConcurrent != 1 {
		t.Fatalf("updated %+v %v", a, err)
	}
	_, err = w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"max_concurrent"}, MaxConcurrent: 2_000_000})
	wantReason(t, "too many", err, apierr.InvalidArgument, apierr.ReasonBadRequest)
	if d := w.auditDetails(t, "app.update"); d[len(d)-1]["max_concurrent"] != "1" {
		t.Fatalf("app.update detail %v", d[len(d)-1])
	}

	app, err := w.svc.AuthenticateApp(ctx, a.ID, secret, netip.MustParseAddr("192.0.2.1"))
	if err != nil {
		t.Fatal(err)
	}
	leave, err := w.svc.EnterApp(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.EnterApp(ctx, app)
	wantReason(t, "second call at once", err, apierr.ResourceExhausted, caller.ReasonConcurrencyLimited)
	leave()
	leave2, err := w.svc.EnterApp(ctx, app)
	if err != nil {
		t.Fatalf("after the first ended: %v", err)
	}
	leave2()
	if got := w.deniedReasons(t); !slices.Equal(got, []string{caller.ReasonConcurrencyLimited}) {
		t.Fatalf("caller.denied reasons %v", got)
	}
}
