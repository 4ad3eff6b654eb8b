package identity_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
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

// downStore is a store of presented fingerprint records that cannot answer
// (NATS JetStream down).
type downStore struct{}

func (downStore) Remember(context.Context, string, time.Duration) error {
	return errors.New("nats: connection closed")
}

// A fingerprint that cannot be checked against the records presented
// before (the store down) is refused FINGER_CHECK_UNAVAILABLE, not taken
// unchecked, and not counted as a wrong finger (ADR 0027).
func TestFingerReplayStoreDown(t *testing.T) {
	db, clk := testDB(t), newTestClock()
	svc := testService(t, identity.Deps{Store: sqlstore.New(db), Sealer: testSealer(t), Now: clk.now, Sleep: clk.sleep,
		Hasher: cheapHasher(), Probes: downStore{}})
	w := setupOn(t, svc, clk)
	if _, err := w.svc.EnrollFinger(context.Background(), w.user.ID, 2, impression(1, 0)); err != nil {
		t.Fatal(err)
	}
	_, err := w.authFinger(t, identity.AuthFingerprint, impression(1, 1), "")
	wantReason(t, "store down", err, apierr.Unavailable, identity.ReasonFingerCheckUnavailable)
	if u, err := w.svc.GetUser(context.Background(), w.user.ID); err != nil || u.FailedCount != 0 {
		t.Fatalf("counted: %+v %v", u, err)
	}
}
