package ticket_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/ticket"
	"github.com/uias/uias/services/ticket/kvstore"
)

// replica is a second ticket Service on f's NATS server: its own
// connection and its own store (so its own memory of issued tickets and
// recent sessions), the same key ring, policy and registry, as another
// process of the component would be.
func (f *fixture) replica(t *testing.T) *ticket.Service {
	t.Helper()
	_, svc := f.instance(t)
	return svc
}

// instance is replica with its store (a generous store timeout: these
// tests make many calls on a loaded machine).
func (f *fixture) instance(t *testing.T) (*kvstore.Store, *ticket.Service) {
	t.Helper()
	nc, err := nats.Connect(f.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st := kvstore.New(js, kvstore.Options{Timeout: 10 * time.Second, SessionCache: time.Minute})
	svc, err := ticket.New(ticket.Deps{Store: st, MAC: f.mac, Audit: f.audit, Now: f.clock.now, Config: f.cfg,
		Registry: ticket.NewRegistry(f.services, 0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	return st, svc
}

// TestSingleUseAcrossReplicas: the replica that issued a ticket keeps it
// in memory and validates it there; another replica asks the issuer for it
// through NATS. Single use holds across replicas, whichever validates
// first, and concurrently.
func TestSingleUseAcrossReplicas(t *testing.T) {
	f := newFixture(t, ticket.Config{})
	a, b := f.svc, f.replica(t)
	ctx := context.Background()
	validate := func(s *ticket.Service, st string) *ticket.Validation {
		t.Helper()
		v, err := s.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: svcA})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tgt := f.login(t, "u1")

	// Issued at A, validated at B: A's memory of it does not make a replay
	// at A valid.
	st := f.st(t, tgt, svcA)
	if v := validate(b, st); !v.Valid || v.Ticket.UserID != "u1" {
		t.Fatalf("A's ticket at B: %+v", v)
	}
	for _, s := range []*ticket.Service{a, b} {
		if v := validate(s, st); v.Valid || v.Code != ticket.CodeInvalidTicket {
			t.Fatalf("replay after B validated: %+v", v)
		}
	}
	// Issued at A, validated at A (from memory), replayed at B.
	st = f.st(t, tgt, svcA)
	if v := validate(a, st); !v.Valid || v.Ticket.Login != "login-u1" {
		t.Fatalf("A's ticket at A: %+v", v)
	}
	if v := validate(b, st); v.Valid {
		t.Fatal("replay at B after A validated")
	}
	// Wrong service at A (from memory) uses the ticket up for B too.
	st = f.st(t, tgt, svcA)
	if v, err := a.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: "https://b.example.com/"}); err != nil || v.Valid || v.Code != ticket.CodeInvalidService {
		t.Fatalf("wrong service: %+v %v", v, err)
	}
	if v := validate(b, st); v.Valid {
		t.Fatal("valid at B after a wrong-service attempt at A")
	}

	// 40 concurrent validations, half at each replica: exactly one wins.
	for round := range 3 {
		st := f.st(t, tgt, svcA)
		var ok, refused, failed atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 40 {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				<-start
				v, err := s.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: svcA})
				switch {
				case err != nil:
					failed.Add(1)
				case v.Valid:
					ok.Add(1)
				case v.Code == ticket.CodeInvalidTicket:
					refused.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		if ok.Load() != 1 || refused.Load() != 39 || failed.Load() != 0 {
			t.Fatalf("round %d, 40 validations at two replicas: %d valid, %d refused, %d errors", round, ok.Load(), refused.Load(), failed.Load())
		}
	}
}

// TestStaleSessionCopy: a replica issues from its recent copy of a session;
// a copy another replica made stale costs a retry when the session must be
// written, and a ticket issued from a copy of a session that ended
// elsewhere is refused at validation (which reads the session).
func TestStaleSessionCopy(t *testing.T) {
	f := newFixture(t, ticket.Config{})
	a, b := f.svc, f.replica(t)
	ctx := context.Background()
	tgt := f.login(t, "u1") // A holds a copy
	st1 := f.st(t, tgt, svcA)
	st2, _, err := b.IssueServiceTicket(ctx, tgt, svcA, false)
	if err != nil {
		t.Fatal(err)
	}
	st3 := f.st(t, tgt, svcA)
	for _, st := range []string{st1, st2, st3} {
		if v := f.validate(t, st, svcA); !v.Valid {
			t.Fatalf("ticket issued at A, B, A: %+v", v)
		}
	}
	sess, err := b.GetSession(ctx, tgt)
	if err != nil {
		t.Fatal(err)
	}
	// The service is recorded once, with the ticket of the last session
	// write (B's first ticket, which named B in the session); A's later
	// ticket wrote nothing (A noted it for single logout).
	if len(sess.Services) != 1 || sess.Services[0].Ticket != st2 {
		t.Fatalf("single-logout list after issuing for one service at A, B, A: %+v", sess.Services)
	}
	// A new service at B changes the session; A's copy is stale, and A's
	// ticket for another new service costs a retry and loses nothing.
	if _, _, err := b.IssueServiceTicket(ctx, tgt, "https://b.example.com/", false); err != nil {
		t.Fatal(err)
	}
	st5 := f.st(t, tgt, "https://backend.example.com/")
	sess, err = a.GetSession(ctx, tgt)
	if err != nil {
		t.Fatal(err)
	}
	if len(sess.Services) != 3 || sess.Services[2].Ticket != st5 {
		t.Fatalf("single-logout list after new services at B and A: %+v", sess.Services)
	}

	// Logout at B: A's copy may still say the session lives, but no
	// ticket of A's, issued before or after, is valid.
	st4 := f.st(t, tgt, svcA)
	if ended, err := b.DestroySession(ctx, tgt); err != nil || !ended {
		t.Fatalf("logout at B: %v %v", ended, err)
	}
	if v, err := a.ValidateTicket(ctx, ticket.Validate{Ticket: st4, Service: svcA}); err != nil || v.Valid || v.Code != ticket.CodeInvalidTicket {
		t.Fatalf("A's ticket after logout at B: %+v %v", v, err)
	}
	if st, _, err := a.IssueServiceTicket(ctx, tgt, svcA, false); err == nil {
		if v, err := a.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: svcA}); err != nil || v.Valid || v.Code != ticket.CodeInvalidTicket {
			t.Fatalf("ticket issued at A after logout at B: %+v %v", v, err)
		}
	} else if !errors.Is(err, ticket.ErrSessionNotFound) {
		t.Fatalf("issue at A after logout at B: %v", err)
	}
}

// TestSessionTouchIsCoarse: a ticket for a service the session has
// recorded writes nothing to NATS (the ticket stays in the issuing
// instance's memory) until the session's idle deadline is due to move
// (TouchAfter), and validation consumes it there and reads nothing.
func TestSessionTouchIsCoarse(t *testing.T) {
	f := newFixture(t, ticket.Config{}) // idle 2h: touch after 6m
	ctx := context.Background()
	tgt := f.login(t, "u1")
	requests := func(do func()) uint64 {
		m0 := f.nc.Stats().OutMsgs
		do()
		return f.nc.Stats().OutMsgs - m0
	}
	var st string
	if n := requests(func() { st = f.st(t, tgt, svcA) }); n != 1 {
		t.Fatalf("first ticket for a service: %d NATS requests, want 1 (the session; the ticket stays in memory)", n)
	}
	if n := requests(func() { f.validate(t, st, svcA) }); n != 0 {
		t.Fatalf("validation: %d NATS requests, want none (the ticket is guarded: its session's end would have removed it)", n)
	}
	first, _ := f.svc.GetSession(ctx, tgt)
	f.clock.advance(5 * time.Minute)
	if n := requests(func() { st = f.st(t, tgt, svcA) }); n != 0 {
		t.Fatalf("next ticket 5m later: %d NATS requests, want none", n)
	}
	if v := f.validate(t, st, svcA); !v.Valid {
		t.Fatalf("ticket: %+v", v)
	}
	if s, _ := f.svc.GetSession(ctx, tgt); !s.LastUsedAt.Equal(first.LastUsedAt) {
		t.Fatalf("the session moved after 5m: %v, was %v", s.LastUsedAt, first.LastUsedAt)
	}
	f.clock.advance(2 * time.Minute)
	if n := requests(func() { st = f.st(t, tgt, svcA) }); n != 1 {
		t.Fatalf("ticket 7m after the last move: %d NATS requests, want 1 (the session)", n)
	}
	if s, _ := f.svc.GetSession(ctx, tgt); !s.LastUsedAt.After(first.LastUsedAt.Add(6*time.Minute)) || len(s.Services) != 1 {
		t.Fatalf("the session after 7m: %+v, first used %v", s, first.LastUsedAt)
	}
	if v := f.validate(t, st, svcA); !v.Valid {
		t.Fatalf("ticket: %+v", v)
	}
}

// TestTicketOfStoppedReplica: a ticket is kept by the replica that issued
// it; when that replica stops before the ticket is validated, another
// replica refuses it as INVALID_TICKET (never an error once the stopped
// replica is gone from NATS), and the session, kept in NATS, gives a new
// ticket at once, which validates.
func TestTicketOfStoppedReplica(t *testing.T) {
	f := newFixture(t, ticket.Config{})
	nc, err := nats.Connect(f.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	gone, err := ticket.New(ticket.Deps{Store: kvstore.New(js, kvstore.Options{Timeout: 10 * time.Second, SessionCache: time.Minute}),
		MAC: f.mac, Audit: f.audit, Now: f.clock.now, Registry: ticket.NewRegistry(f.services, 0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tgt := f.login(t, "u1")
	st, _, err := gone.IssueServiceTicket(ctx, tgt, svcA, true)
	if err != nil {
		t.Fatal(err)
	}
	other, _, err := gone.IssueServiceTicket(ctx, tgt, svcA, false)
	if err != nil {
		t.Fatal(err)
	}
	if v := f.validate(t, other, svcA); !v.Valid || v.Ticket.UserID != "u1" {
		t.Fatalf("a ticket of the replica, validated here before it stopped: %+v", v)
	}
	nc.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := f.svc.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: svcA})
		if err == nil && !v.Valid && v.Code == ticket.CodeInvalidTicket {
			break
		}
		if err == nil && v.Valid || time.Now().After(deadline) {
			t.Fatalf("the ticket of a stopped replica: %+v %v", v, err)
		}
	}
	st = f.st(t, tgt, svcA)
	if v := f.validate(t, st, svcA); !v.Valid || v.Ticket.UserID != "u1" {
		t.Fatalf("a new ticket from the session: %+v", v)
	}
}

// TestGuardedTicketsEndWithTheirSession: each instance that issues tickets
// of a session is named in it (once), its tickets are guarded and their
// validation reads nothing; a logout at another instance removes them from
// every issuing instance before it answers, and the instances whose copy
// of the session was stale refuse to issue from it.
func TestGuardedTicketsEndWithTheirSession(t *testing.T) {
	f := newFixture(t, ticket.Config{})
	a, b := f.svc, f.replica(t)
	_, c := f.instance(t)
	ctx := context.Background()
	tgt := f.login(t, "u1")
	stA1, stA2 := f.st(t, tgt, svcA), f.st(t, tgt, "https://b.example.com/")
	stB, _, err := b.IssueServiceTicket(ctx, tgt, svcA, false)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.GetSession(ctx, tgt)
	if err != nil {
		t.Fatal(err)
	}
	if len(sess.Issuers) != 2 || sess.Issuers[0] == sess.Issuers[1] {
		t.Fatalf("issuers after tickets at A, A, B: %q", sess.Issuers)
	}
	// A valid guarded ticket: validation at its instance reads nothing.
	st := f.st(t, tgt, svcA)
	m0 := f.nc.Stats().OutMsgs
	if v := f.validate(t, st, svcA); !v.Valid {
		t.Fatalf("guarded ticket: %+v", v)
	}
	if n := f.nc.Stats().OutMsgs - m0; n != 0 {
		t.Fatalf("validating a guarded ticket at its instance: %d NATS requests, want none", n)
	}
	// Logout at C, which issued nothing: A's and B's tickets are gone,
	// wherever they are presented.
	if ended, err := c.DestroySession(ctx, tgt); err != nil || !ended {
		t.Fatalf("logout at C: %v %v", ended, err)
	}
	for _, x := range []struct {
		name string
		svc  *ticket.Service
		st   string
		at   string
	}{{"A's at A", a, stA1, svcA}, {"A's at B", b, stA2, "https://b.example.com/"}, {"B's at C", c, stB, svcA}} {
		v, err := x.svc.ValidateTicket(ctx, ticket.Validate{Ticket: x.st, Service: x.at})
		if err != nil || v.Valid || v.Code != ticket.CodeInvalidTicket {
			t.Fatalf("%s after logout at C: %+v %v", x.name, v, err)
		}
	}
	// A's and B's copies of the session say it lives; they issue nothing.
	for name, s := range map[string]*ticket.Service{"A": a, "B": b} {
		if st, _, err := s.IssueServiceTicket(ctx, tgt, svcA, false); !errors.Is(err, ticket.ErrSessionNotFound) {
			t.Fatalf("issue at %s after logout at C: %q %v, want ErrSessionNotFound", name, st, err)
		}
	}
}

// TestUnguardedTicketReadsItsSession: a proxy ticket is not guarded (its
// instance is not named in the session): its validation reads the session
// and refuses it once the session ended.
func TestUnguardedTicketReadsItsSession(t *testing.T) {
	f := newFixture(t, ticket.Config{})
	ctx := context.Background()
	tgt := f.login(t, "u1")
	st := f.st(t, tgt, svcA)
	v, err := f.svc.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: svcA, IssuePGT: true,
		PGTURL: "https://a.example.com/pgt"})
	if err != nil || !v.Valid || v.PGT == "" {
		t.Fatalf("validation with a PGT: %+v %v", v, err)
	}
	pt := func() string {
		pt, code, msg, err := f.svc.IssueProxyTicket(ctx, v.PGT, "https://backend.example.com/")
		if err != nil || pt == "" {
			t.Fatalf("proxy ticket: %q %s %s %v", pt, code, msg, err)
		}
		return pt
	}
	pt1, pt2 := pt(), pt()
	m0 := f.nc.Stats().OutMsgs
	if v, err := f.svc.ValidateTicket(ctx, ticket.Validate{Ticket: pt1, Service: "https://backend.example.com/", AllowProxy: true}); err != nil || !v.Valid || v.Ticket.Guarded {
		t.Fatalf("proxy ticket: %+v %v", v, err)
	}
	if n := f.nc.Stats().OutMsgs - m0; n != 1 {
		t.Fatalf("validating a proxy ticket: %d NATS requests, want 1 (the session)", n)
	}
	// After the session's end the proxy ticket is refused (this instance
	// dropped it too: it is named for the session's service ticket).
	if ended, err := f.replica(t).DestroySession(ctx, tgt); err != nil || !ended {
		t.Fatalf("logout: %v %v", ended, err)
	}
	if v, err := f.svc.ValidateTicket(ctx, ticket.Validate{Ticket: pt2, Service: "https://backend.example.com/", AllowProxy: true}); err != nil || v.Valid || v.Code != ticket.CodeInvalidTicket {
		t.Fatalf("proxy ticket after logout: %+v %v", v, err)
	}
}

// TestEndNotToldIsAnError: an instance named in a session that is running
// but does not answer makes the session's end an error (its tickets of the
// session may validate until they expire), yet the session has ended, the
// tickets of the instances that answered are gone, and the person's other
// sessions end too.
func TestEndNotToldIsAnError(t *testing.T) {
	f := newFixture(t, ticket.Config{})
	ctx := context.Background()
	nc, err := nats.Connect(f.ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	st := kvstore.New(js, kvstore.Options{Timeout: 300 * time.Millisecond, SessionCache: time.Minute})
	svc, err := ticket.New(ticket.Deps{Store: st, MAC: f.mac, Audit: f.audit, Now: f.clock.now, Config: f.cfg,
		Registry: ticket.NewRegistry(f.services, 0, nil)})
	if err != nil {
		t.Fatal(err)
	}
	// "silent1" is running (subscribed) but never answers.
	if _, err := nc.Subscribe(kvstore.OwnedSubjectPrefix+"silent1"+kvstore.EndedSubjectSuffix, func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	tgt1, s1, err := svc.CreateSession(ctx, ticket.NewSession{UserID: "u9", Login: "u9", AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	tgt2, _, err := svc.CreateSession(ctx, ticket.NewSession{UserID: "u9", Login: "u9", AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	got, rev, err := st.GetSession(ctx, s1.ID)
	if err != nil {
		t.Fatal(err)
	}
	got.Issuers = append(got.Issuers, "silent1")
	if err := st.UpdateSession(ctx, got, rev, time.Hour); err != nil {
		t.Fatal(err)
	}
	st1, _, err := svc.IssueServiceTicket(ctx, tgt1, svcA, false)
	if err != nil {
		t.Fatal(err)
	}
	st2, _, err := svc.IssueServiceTicket(ctx, tgt2, svcA, false)
	if err != nil {
		t.Fatal(err)
	}
	// The person's own logout of a third session succeeds: the session
	// is gone, the instance not told is only logged.
	tgt3, s3, err := svc.CreateSession(ctx, ticket.NewSession{UserID: "u8", Login: "u8", AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}
	got3, rev3, err := st.GetSession(ctx, s3.ID)
	if err != nil {
		t.Fatal(err)
	}
	got3.Issuers = append(got3.Issuers, "silent1")
	if err := st.UpdateSession(ctx, got3, rev3, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ended, err := svc.DestroySession(ctx, tgt3); err != nil || !ended {
		t.Fatalf("logout with an instance not answering: %v %v, want ended and no error", ended, err)
	}
	if _, err := svc.GetSession(ctx, tgt3); !errors.Is(err, ticket.ErrSessionNotFound) {
		t.Fatalf("a logged-out session: %v", err)
	}
	n, err := svc.RevokeUserSessions(ctx, "u9", "", "USER_DISABLED")
	if ae, ok := apierr.As(err); n != 2 || !ok || ae.Reason != "TICKET_STORE_UNAVAILABLE" {
		t.Fatalf("revoke with an instance not answering: %d %v, want 2 and TICKET_STORE_UNAVAILABLE", n, err)
	}
	for _, tgt := range []string{tgt1, tgt2} {
		if _, err := svc.GetSession(ctx, tgt); !errors.Is(err, ticket.ErrSessionNotFound) {
			t.Fatalf("a revoked session: %v", err)
		}
	}
	for _, st := range []string{st1, st2} {
		if v, err := svc.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: svcA}); err != nil || v.Valid {
			t.Fatalf("a ticket of a revoked session at the instance that answered: %+v %v", v, err)
		}
	}
}

// TestSingleLogoutNamesTheLatestTicket: single logout names the latest
// ticket each service received in the session (CAS's default), whether
// that ticket wrote the session or not (the issuing instance remembers
// it and hands it over at the end), wherever the session ends. The
// repeated tickets still write nothing to NATS.
func TestSingleLogoutNamesTheLatestTicket(t *testing.T) {
	f := newFixture(t, ticket.Config{})
	b := f.replica(t)
	ctx := context.Background()
	var ended []*ticket.Session
	var mu sync.Mutex
	hook := func(s *ticket.Session, _ string) { mu.Lock(); ended = append(ended, s); mu.Unlock() }
	f.svc.SetEnding(hook)
	b.SetEnding(hook)
	latest := func(s *ticket.Session, service string) string {
		for _, u := range s.Services {
			if u.Service == service {
				return u.Ticket
			}
		}
		return ""
	}
	issue := func(s *ticket.Service, tgt, service string) string {
		t.Helper()
		st, _, err := s.IssueServiceTicket(ctx, tgt, service, false)
		if err != nil {
			t.Fatal(err)
		}
		if v, err := s.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: service}); err != nil || !v.Valid {
			t.Fatalf("validate: %+v %v", v, err)
		}
		return st
	}

	// One instance: T1 then T2 for the same service, the second without a
	// session write.
	tgt := f.login(t, "u1")
	t1 := issue(f.svc, tgt, svcA)
	m0 := f.nc.Stats().OutMsgs
	f.clock.advance(time.Second)
	t2 := issue(f.svc, tgt, svcA)
	if n := f.nc.Stats().OutMsgs - m0; n != 0 {
		t.Fatalf("second ticket for a recorded service: %d NATS requests, want none", n)
	}
	other := issue(f.svc, tgt, "https://b.example.com/")
	if _, err := f.svc.DestroySession(ctx, tgt); err != nil {
		t.Fatal(err)
	}
	if len(ended) != 1 || latest(ended[0], svcA) != t2 || latest(ended[0], "https://b.example.com/") != other || len(ended[0].Services) != 2 {
		t.Fatalf("single-logout list %+v: want %s for %s (not the first, %s)", ended[0].Services, t2, svcA, t1)
	}

	// Across instances: the latest ticket was issued at B, the session
	// ends at A (and the other way round).
	for _, tc := range []struct {
		name      string
		last, end *ticket.Service
	}{{"issued at B, ended at A", b, f.svc}, {"issued at A, ended at B", f.svc, b}} {
		ended = nil
		tgt := f.login(t, "u2")
		issue(f.svc, tgt, svcA)
		issue(b, tgt, svcA) // B's first ticket of the session names B in it
		f.clock.advance(time.Second)
		want := issue(tc.last, tgt, svcA)
		if _, err := tc.end.DestroySession(ctx, tgt); err != nil {
			t.Fatal(err)
		}
		if len(ended) != 1 || latest(ended[0], svcA) != want || len(ended[0].Services) != 1 {
			t.Fatalf("%s: single-logout list %+v, want %s", tc.name, ended, want)
		}
	}
}
