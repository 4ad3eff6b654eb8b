package component

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/events/eventstest"
	"github.com/uias/uias/services/ticket"
	"github.com/uias/uias/services/ticket/kvstore"
)

// noServices is a ServiceStore with no services (sessions need none).
type noServices struct{}

func (noServices) CreateService(context.Context, *ticket.RegisteredService, ...events.Event) error {
	return nil
}
func (noServices) GetService(context.Context, string) (*ticket.RegisteredService, error) {
	return nil, ticket.ErrNotFound
}
func (noServices) ListServices(context.Context, string) ([]*ticket.RegisteredService, error) {
	return nil, nil
}
func (noServices) UpdateService(context.Context, *ticket.RegisteredService, ...events.Event) error {
	return nil
}
func (noServices) DeleteService(context.Context, string, ...events.Event) error { return nil }

// newSessions is a ticket service over JetStream (embedded NATS) with no
// registered services.
func newSessions(t *testing.T) *ticket.Service {
	t.Helper()
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	ring, err := crypto.ParseRing(crypto.NewRingJSON())
	if err != nil {
		t.Fatal(err)
	}
	mac, err := ring.Signer()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := ticket.New(ticket.Deps{Store: kvstore.New(js, kvstore.Options{Timeout: time.Second}), MAC: mac,
		Registry: ticket.NewRegistry(noServices{}, 0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// A password change's event ends the sessions of the older password and
// notes the new password's time, so that a login that checked the old
// password and opens its session only after the event is refused; the
// new password's sessions open.
func TestPasswordChangedRefusesLoginsInFlight(t *testing.T) {
	svc := newSessions(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	oldPw := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	open := func(pw time.Time) (string, error) {
		tgt, _, err := svc.CreateSession(ctx, ticket.NewSession{UserID: "u1", Login: "l-u1", AuthLevel: 1, PasswordAt: pw})
		return tgt, err
	}
	before, err := open(oldPw)
	if err != nil {
		t.Fatal(err)
	}
	endSessionsOnChange(ctx, svc, zap.NewNop(), "uias.changes.identity.user.password_changed",
		[]byte(`{"entity":"user","op":"password_changed","id":"u1","data":{"password_changed_at":"2026-03-01T09:00:00Z"}}`))
	if _, err := svc.GetSession(ctx, before); err == nil {
		t.Error("the old password's session survived the change")
	}
	if _, err := open(oldPw); !errors.Is(err, ticket.ErrPasswordChanged) {
		t.Errorf("a login of the old password after the change: %v", err)
	}
	if _, err := open(oldPw.Add(time.Hour)); err != nil {
		t.Errorf("a login of the new password: %v", err)
	}
}

// A session that escaped the first sweep (a replica had not listed it, or
// the note could not be written when a racing login stored it) ends at
// the second one; the new password's session stays.
func TestPasswordChangedSweepsTwice(t *testing.T) {
	old := passwordResweep
	passwordResweep = 50 * time.Millisecond
	t.Cleanup(func() { passwordResweep = old })
	svc := newSessions(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	endSessionsOnChange(ctx, svc, zap.NewNop(), "uias.changes.identity.user.password_changed",
		[]byte(`{"entity":"user","op":"password_changed","id":"u1","data":{"password_changed_at":"2026-03-01T09:00:00Z"}}`))
	// Opened after the first sweep without a password time: not checked
	// at creation, as a session the first sweep did not see.
	escaped, _, err := svc.CreateSession(ctx, ticket.NewSession{UserID: "u1", Login: "l-u1", AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	fresh, _, err := svc.CreateSession(ctx, ticket.NewSession{UserID: "u1", Login: "l-u1", AuthLevel: 1,
		PasswordAt: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := svc.GetSession(ctx, escaped); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second sweep did not end the session that escaped the first")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := svc.GetSession(ctx, fresh); err != nil {
		t.Fatalf("the new password's session: %v", err)
	}
}

// Unbinding a person's certificate (identity's user.certificate_unbound)
// ends the person's sessions, as a password change does: a session does
// not record which certificate opened it, so all of them end; another
// person's sessions stay. Real sessions in JetStream (embedded NATS).
func TestCertificateUnboundEndsSessions(t *testing.T) {
	svc := newSessions(t)
	var reasons []string
	svc.SetEnding(func(_ *ticket.Session, reason string) { reasons = append(reasons, reason) })
	ctx := context.Background()
	login := func(user string, level int) string {
		t.Helper()
		tgt, _, err := svc.CreateSession(ctx, ticket.NewSession{UserID: user, Login: "l-" + user, AuthLevel: level})
		if err != nil {
			t.Fatal(err)
		}
		return tgt
	}
	certSession, pwSession, other := login("u1", 2), login("u1", 1), login("u2", 2)

	endSessionsOnChange(ctx, svc, zap.NewNop(), "uias.changes.identity.user.certificate_unbound",
		[]byte(`{"entity":"user","op":"certificate_unbound","id":"u1","data":{"sha256":"ab01"}}`))
	for name, tgt := range map[string]string{"certificate session": certSession, "password session": pwSession} {
		if _, err := svc.GetSession(ctx, tgt); err == nil {
			t.Errorf("%s alive after the certificate was unbound", name)
		}
	}
	if _, err := svc.GetSession(ctx, other); err != nil {
		t.Errorf("another person's session: %v", err)
	}
	if len(reasons) != 2 || reasons[0] != "CERTIFICATE_UNBOUND" || reasons[1] != "CERTIFICATE_UNBOUND" {
		t.Errorf("ended with %v, want CERTIFICATE_UNBOUND twice", reasons)
	}
}

// A person's own level raised (identity's user.updated naming
// min_auth_level, at home or as a replica) ends their sessions below it:
// at 2 the one-factor sessions, at 3 every session but a certificate's;
// another person's sessions, a level lowered and other changes end
// nothing.
func TestRaisedLevelEndsWeakerSessions(t *testing.T) {
	ns := eventstest.NATS(t)
	_, js := eventstest.Connect(t, ns)
	ring, err := crypto.ParseRing(crypto.NewRingJSON())
	if err != nil {
		t.Fatal(err)
	}
	mac, err := ring.Signer()
	if err != nil {
		t.Fatal(err)
	}
	svc, err := ticket.New(ticket.Deps{Store: kvstore.New(js, kvstore.Options{Timeout: time.Second}), MAC: mac,
		Registry: ticket.NewRegistry(noServices{}, 0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		reasons []string
	)
	svc.SetEnding(func(_ *ticket.Session, reason string) { mu.Lock(); reasons = append(reasons, reason); mu.Unlock() })
	ended := func() []string { mu.Lock(); defer mu.Unlock(); return slices.Clone(reasons) }
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	login := func(user string, level, method int) string {
		t.Helper()
		tgt, _, err := svc.CreateSession(ctx, ticket.NewSession{UserID: user, Login: "l-" + user, AuthLevel: level, AuthMethod: method})
		if err != nil {
			t.Fatal(err)
		}
		return tgt
	}
	alive := func(tgt string) bool {
		_, err := svc.GetSession(ctx, tgt)
		return err == nil
	}
	password, twoFactor, cert := login("u1", 1, 1), login("u1", 2, 3), login("u1", 2, ticket.AuthMethodCertificate)
	other := login("u2", 1, 1)
	change := func(subject, data string) {
		endSessionsBelowLevel(ctx, svc, zap.NewNop(), "uias.changes.identity.user."+subject, []byte(`{"entity":"user","id":"u1","data":`+data+`}`))
	}
	change("updated", `{"display_name":"X"}`)
	change("updated", `{"min_auth_level":1}`)
	change("updated", `{"min_auth_level":0}`)
	if !alive(password) || len(ended()) != 0 {
		t.Fatalf("ended by a change that raised no level: %v", ended())
	}
	change("updated", `{"min_auth_level":2}`)
	if alive(password) || !alive(twoFactor) || !alive(cert) || !alive(other) {
		t.Fatalf("level 2: password %v two factors %v certificate %v other %v", alive(password), alive(twoFactor), alive(cert), alive(other))
	}
	change("replica.updated", `{"min_auth_level":3}`)
	if alive(twoFactor) || !alive(cert) || !alive(other) {
		t.Fatalf("level 3: two factors %v certificate %v other %v", alive(twoFactor), alive(cert), alive(other))
	}
	if r := ended(); len(r) != 2 || r[0] != ReasonLevelRaised || r[1] != ReasonLevelRaised {
		t.Fatalf("ended with %v", r)
	}
}

// A login that checked the person's old level and stores its session
// after the raise's sweep ends at the second sweep (review sec26 L1).
func TestRaisedLevelSweepsTwice(t *testing.T) {
	old := passwordResweep
	passwordResweep = 50 * time.Millisecond
	t.Cleanup(func() { passwordResweep = old })
	svc := newSessions(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	endSessionsBelowLevel(ctx, svc, zap.NewNop(), "uias.changes.identity.user.updated",
		[]byte(`{"entity":"user","id":"u1","data":{"min_auth_level":2}}`))
	late, _, err := svc.CreateSession(ctx, ticket.NewSession{UserID: "u1", Login: "l-u1", AuthLevel: 1, AuthMethod: 1})
	if err != nil {
		t.Fatal(err)
	}
	strong, _, err := svc.CreateSession(ctx, ticket.NewSession{UserID: "u1", Login: "l-u1", AuthLevel: 2, AuthMethod: ticket.AuthMethodCertificate})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := svc.GetSession(ctx, late); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second sweep did not end the level-1 session stored after the first")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := svc.GetSession(ctx, strong); err != nil {
		t.Fatalf("the certificate session: %v", err)
	}
}
