package e2e

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/caller/natsnonce"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/ticket"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
	"github.com/uias/uias/services/ticket/kvstore"
)

// TestNATSPermissionsOfTicket: with the ticket component's credentials of
// the deployed NATS configuration, the ticket store creates its buckets and
// does everything it does (sessions, single-use tickets taken from another
// instance, the person's
// session listing and the listing of every session, proxy-granting
// tickets) and publishes its audit records,
// but cannot delete or purge its buckets or the AUDIT stream, touch another
// bucket, or forge another component's records.
func TestNATSPermissionsOfTicket(t *testing.T) {
	p := startPermNATS(t, t.TempDir())
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	setupConn, _ := p.connect(t, p.setup, "setup")
	setupJS, _ := jetstream.New(setupConn)
	if err := events.EnsureStreams(ctx, setupJS); err != nil {
		t.Fatalf("setup: %v", err)
	}

	tc, viol := p.connect(t, p.ticket, "ticket")
	js, _ := jetstream.New(tc)
	if err := events.EnsureStreams(ctx, js); err != nil {
		t.Fatalf("ticket checking the streams after setup: %v", err)
	}
	st := kvstore.New(js, kvstore.Options{Timeout: 5 * time.Second})
	if err := st.Ping(ctx); err != nil {
		t.Fatalf("create the buckets: %v", err)
	}
	now := time.Now().UTC()
	sess := &ticket.Session{ID: "s1", UserID: "u1", Login: "u", AuthLevel: 1, CreatedAt: now, LastUsedAt: now, HardExpiry: now.Add(time.Hour)}
	if err := st.CreateSession(ctx, sess, time.Hour); err != nil {
		t.Fatalf("create session: %v", err)
	}
	got, rev, err := st.GetSession(ctx, "s1")
	if err != nil || got.UserID != "u1" {
		t.Fatalf("get session: %v %v", got, err)
	}
	if err := st.UpdateSession(ctx, got, rev, time.Hour); err != nil {
		t.Fatalf("update session: %v", err)
	}
	if ids, err := st.UserSessions(ctx, "u1"); err != nil || len(ids) != 1 || ids[0] != "s1" {
		t.Fatalf("a person's sessions: %v %v", ids, err)
	}
	var all []string
	if err := st.AllSessions(ctx, func(s *ticket.Session) error { all = append(all, s.ID); return nil }); err != nil ||
		len(all) != 1 || all[0] != "s1" {
		t.Fatalf("every session (the administrators' listing): %v %v", all, err)
	}
	if err := st.PutTicket(ctx, "k1", &ticket.Ticket{Kind: ticket.KindST, UserID: "u1"}, 10*time.Second); err != nil {
		t.Fatalf("put ticket: %v", err)
	}
	// Another instance (its own connection as the ticket user) takes it
	// through NATS from the instance that keeps it.
	tc2, _ := p.connect(t, p.ticket, "ticket")
	js2, _ := jetstream.New(tc2)
	other := kvstore.New(js2, kvstore.Options{Timeout: 5 * time.Second})
	if got, err := other.ConsumeTicket(ctx, st.Replica(), "k1"); err != nil || got.UserID != "u1" {
		t.Fatalf("consume ticket at another instance: %v %v", got, err)
	}
	if _, err := st.ConsumeTicket(ctx, st.Replica(), "k1"); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("consume twice: %v", err)
	}
	if err := st.PutPGT(ctx, "p1", &ticket.PGT{UserID: "u1"}, time.Minute); err != nil {
		t.Fatalf("put pgt: %v", err)
	}
	if _, err := st.GetPGT(ctx, "p1"); err != nil {
		t.Fatalf("get pgt: %v", err)
	}
	// A session's end told to the instance keeping its tickets (a request
	// on uias.ticket.owned.<instance>.ended, answered to the inbox).
	if err := st.PutTicket(ctx, "k2", &ticket.Ticket{Kind: ticket.KindST, SessionID: "s1", UserID: "u1", Guarded: true}, 10*time.Second); err != nil {
		t.Fatalf("put ticket: %v", err)
	}
	if _, err := st.DeleteSession(ctx, "s1"); err != nil {
		t.Fatalf("delete session: %v", err)
	}
	if _, err := other.EndTickets(ctx, "s1", []string{st.Replica()}); err != nil {
		t.Fatalf("tell the instance keeping its tickets that a session ended: %v", err)
	}
	if _, err := st.ConsumeTicket(ctx, st.Replica(), "k2"); !errors.Is(err, ticket.ErrNotFound) {
		t.Fatalf("a ticket of the ended session: %v", err)
	}
	// The peers' assertions and logout tokens used (rr29 B3): the bucket
	// is created, a token recorded once and refused the second time at
	// another instance.
	used := natsnonce.New(js, natsnonce.Options{Timeout: 5 * time.Second, Bucket: ticket.PeerTokensBucket, TTL: ticket.PeerTokensTTL})
	if err := used.Remember(ctx, "0123456789abcdef", time.Minute); err != nil {
		t.Fatalf("record a peer's token used: %v", err)
	}
	usedAgain := natsnonce.New(js2, natsnonce.Options{Timeout: 5 * time.Second, Bucket: ticket.PeerTokensBucket, TTL: ticket.PeerTokensTTL})
	if err := usedAgain.Remember(ctx, "0123456789abcdef", time.Minute); !errors.Is(err, caller.ErrNonceSeen) {
		t.Fatalf("a peer's token used again at another instance: %v", err)
	}
	if _, err := js.Publish(ctx, "uias.audit.ticket.session.end", []byte(`{}`)); err != nil {
		t.Fatalf("publish an audit record: %v", err)
	}

	// It hears identity's changes that drop its cached attributes, and
	// the people's changes and locks that end their sessions (review
	// sec13 L2: the lock subject's permission was not checked).
	ic, _ := p.connect(t, p.identity, "identity")
	heard := append([]string{ticketcomponent.UserChangesSubject, ticketcomponent.LockChangesSubject},
		ticketcomponent.AttributeChangesSubjects...)
	for _, subj := range heard {
		sub, err := tc.SubscribeSync(subj)
		if err != nil {
			t.Fatal(err)
		}
		if err := tc.Flush(); err != nil {
			t.Fatal(err)
		}
		sent := strings.Replace(subj, ">", "x.updated", 1)
		if err := ic.Publish(sent, []byte(`{"id":"u1"}`)); err != nil {
			t.Fatal(err)
		}
		if m, err := sub.NextMsg(10 * time.Second); err != nil || m.Subject != sent {
			t.Fatalf("ticket subscribed to %s did not get identity's %s: %v", subj, sent, err)
		}
		_ = sub.Unsubscribe()
	}

	short := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 2*time.Second) }
	for _, a := range []struct {
		what, subject string
		run           func(ctx context.Context) error
	}{
		{"delete the sessions bucket", "$JS.API.STREAM.DELETE.KV_UIAS_TICKET_SESSIONS", func(ctx context.Context) error {
			return js.DeleteKeyValue(ctx, kvstore.BucketSessions)
		}},
		{"purge the tickets bucket", "$JS.API.STREAM.PURGE.KV_UIAS_TICKET_TICKETS", func(ctx context.Context) error {
			s, err := js.Stream(ctx, "KV_"+kvstore.BucketTickets)
			if err != nil {
				return err
			}
			return s.Purge(ctx)
		}},
		{"purge AUDIT", "$JS.API.STREAM.PURGE.AUDIT", func(ctx context.Context) error {
			s, err := js.Stream(ctx, events.StreamAudit)
			if err != nil {
				return err
			}
			return s.Purge(ctx)
		}},
		{"create another bucket", "$JS.API.STREAM.CREATE.KV_OTHER", func(ctx context.Context) error {
			_, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "OTHER"})
			return err
		}},
		{"forge an identity record", "uias.audit.identity.login", func(ctx context.Context) error {
			_, err := js.Publish(ctx, "uias.audit.identity.login", []byte(`{}`))
			return err
		}},
	} {
		actx, c := short()
		err := a.run(actx)
		c()
		if err == nil {
			t.Errorf("%s with the ticket credentials succeeded", a.what)
			continue
		}
		eventually(t, "the server to report the refused "+a.what, func() bool { return viol.has(a.subject) })
	}
}
