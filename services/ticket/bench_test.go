package ticket_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/uias/uias/services/ticket"
)

// BenchmarkIssueValidate measures one ST issued from a session and
// validated, against embedded NATS, and reports the NATS requests each
// part makes (messages the client sent: KV reads, writes and purges).
// Profile it with -cpuprofile.
func BenchmarkIssueValidate(b *testing.B) {
	f := newFixture(b, ticket.Config{})
	ctx := context.Background()
	tgt, _, err := f.svc.CreateSession(ctx, ticket.NewSession{UserID: "u1", Login: "u", AuthLevel: 1})
	if err != nil {
		b.Fatal(err)
	}
	var issueMsgs, validateMsgs uint64
	b.ResetTimer()
	for range b.N {
		m0 := f.nc.Stats().OutMsgs
		st, _, err := f.svc.IssueServiceTicket(ctx, tgt, svcA, false)
		if err != nil {
			b.Fatal(err)
		}
		m1 := f.nc.Stats().OutMsgs
		v, err := f.svc.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: svcA})
		if err != nil || !v.Valid {
			b.Fatal(v, err)
		}
		issueMsgs += m1 - m0
		validateMsgs += f.nc.Stats().OutMsgs - m1
	}
	b.ReportMetric(float64(issueMsgs)/float64(b.N), "nats-req/issue")
	b.ReportMetric(float64(validateMsgs)/float64(b.N), "nats-req/validate")
}

// TestTicketEndsWithSession: validation no longer reads the session, so a
// session's end removes its unvalidated service tickets (logout and
// revocation alike), and a ticket never outlives its session.
func TestTicketEndsWithSession(t *testing.T) {
	f := newFixture(t, ticket.Config{TGTIdle: 3 * time.Second, STTTL: 10 * time.Second})
	ctx := context.Background()
	tgt := f.login(t, "u1")
	st1, st2 := f.st(t, tgt, svcA), f.st(t, tgt, svcA)
	if ended, err := f.svc.DestroySession(ctx, tgt); err != nil || !ended {
		t.Fatalf("logout: %v %v", ended, err)
	}
	for _, st := range []string{st1, st2} {
		if v := f.validate(t, st, svcA); v.Valid || v.Code != ticket.CodeInvalidTicket {
			t.Fatalf("ticket of a logged-out session: %+v", v)
		}
	}
	tgt = f.login(t, "u2")
	st := f.st(t, tgt, svcA)
	if n, err := f.svc.RevokeUserSessions(ctx, "u2", "", "ADMIN_REVOKED"); err != nil || n != 1 {
		t.Fatalf("revoke: %d %v", n, err)
	}
	if v := f.validate(t, st, svcA); v.Valid {
		t.Fatal("ticket of a revoked session validated")
	}
	// The ticket's lifetime is bounded by the session's idle end (3 s here,
	// under the 10 s ticket lifetime): after it, refused as expired.
	tgt = f.login(t, "u3")
	st = f.st(t, tgt, svcA)
	f.clock.advance(4 * time.Second)
	if v := f.validate(t, st, svcA); v.Valid || v.Code != ticket.CodeInvalidTicket {
		t.Fatalf("ticket past its session's end: %+v", v)
	}
}

// BenchmarkIssueValidateParallel is BenchmarkIssueValidate from 50
// goroutines over 64 sessions (as `uias bench --only ticket` calls it).
func BenchmarkIssueValidateParallel(b *testing.B) {
	f := newFixture(b, ticket.Config{})
	ctx := context.Background()
	var tgts []string
	for range 64 {
		tgt, _, err := f.svc.CreateSession(ctx, ticket.NewSession{UserID: "u1", Login: "u", AuthLevel: 1})
		if err != nil {
			b.Fatal(err)
		}
		tgts = append(tgts, tgt)
	}
	var next atomic.Uint64
	b.SetParallelism(25)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			st, _, err := f.svc.IssueServiceTicket(ctx, tgts[next.Add(1)%64], svcA, false)
			if err != nil {
				b.Error(err)
				return
			}
			v, err := f.svc.ValidateTicket(ctx, ticket.Validate{Ticket: st, Service: svcA})
			if err != nil || !v.Valid {
				b.Error(v, err)
				return
			}
		}
	})
}
