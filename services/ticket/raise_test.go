package ticket_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/uias/uias/services/ticket"
)

const (
	svcB  = "https://b.example.com/x"
	svcL2 = "https://strong.example.com/"
)

// endings records the sessions ended with single logout (Ending).
type endings struct {
	mu   sync.Mutex
	list []string // reason:user:services
}

func (e *endings) ended(s *ticket.Session, reason string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var svcs []string
	for _, u := range s.Services {
		svcs = append(svcs, u.Service)
	}
	slices.Sort(svcs)
	e.list = append(e.list, reason+":"+s.UserID+":"+joinComma(svcs))
}

func (e *endings) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

func joinComma(s []string) string { return strings.Join(s, ",") }

// A step-up raises the person's session: a new TGT at the new level that
// takes over the services of the old one, the old TGT dead, and no single
// logout until the raised session ends, which then tells every service.
func TestRaiseSessionKeepsServicesWithoutLogout(t *testing.T) {
	f := newFixture(t, ticket.Config{})
	e := &endings{}
	f.svc.SetEnding(e.ended)
	ctx := context.Background()
	old := f.login(t, "u1")
	stA := f.st(t, old, svcA)
	f.validate(t, stA, svcA)
	f.st(t, old, svcB)
	if _, _, err := f.svc.IssueServiceTicket(ctx, old, svcL2, false); err == nil {
		t.Fatal("a level-1 session got a level-2 ticket")
	}

	tgt, sess, replaced, err := f.svc.RaiseSession(ctx, old, ticket.NewSession{UserID: "u1", Login: "login-u1", AuthLevel: 2, AuthMethod: 3})
	if err != nil || !replaced {
		t.Fatalf("raise: %v replaced %v", err, replaced)
	}
	if tgt == old || sess.ID == ticket.SessionID(old) || sess.AuthLevel != 2 || sess.AuthMethod != 3 {
		t.Fatalf("raised session: tgt changed %v, %+v", tgt != old, sess)
	}
	if got := e.all(); len(got) != 0 {
		t.Fatalf("the raise sent single logout: %v", got)
	}
	if _, err := f.svc.GetSession(ctx, old); err == nil {
		t.Fatal("the old TGT still opens a session")
	}
	if !f.audit.find("session.end", "success", "RAISED") {
		t.Error("no session.end RAISED record")
	}
	got, err := f.svc.GetSession(ctx, tgt)
	if err != nil {
		t.Fatal(err)
	}
	var svcs []string
	for _, u := range got.Services {
		svcs = append(svcs, u.Service)
	}
	if !slices.Contains(svcs, svcA) || !slices.Contains(svcs, svcB) {
		t.Fatalf("raised session's services %v, want %s and %s", svcs, svcA, svcB)
	}
	f.validate(t, f.st(t, tgt, svcL2), svcL2)

	// The final logout reaches every service, the old ones included.
	if ok, err := f.svc.DestroySession(ctx, tgt); !ok || err != nil {
		t.Fatalf("logout: %v %v", ok, err)
	}
	want := "LOGOUT:u1:" + joinComma(slices.Sorted(slices.Values([]string{svcA, svcB, svcL2})))
	if got := e.all(); len(got) != 1 || got[0] != want {
		t.Fatalf("single logout %v, want [%s]", got, want)
	}
}

// Another person's session is not raised: it ends as at logout, with
// single logout; an ended one is ignored.
func TestRaiseSessionOfAnotherPersonLogsOut(t *testing.T) {
	f := newFixture(t, ticket.Config{})
	e := &endings{}
	f.svc.SetEnding(e.ended)
	ctx := context.Background()
	other := f.login(t, "u2")
	f.st(t, other, svcA)
	tgt, sess, replaced, err := f.svc.RaiseSession(ctx, other, ticket.NewSession{UserID: "u1", Login: "login-u1", AuthLevel: 2})
	if err != nil || replaced || sess.UserID != "u1" || len(sess.Services) != 0 {
		t.Fatalf("raise over another person's session: %v replaced %v %+v", err, replaced, sess)
	}
	if got := e.all(); len(got) != 1 || got[0] != "LOGOUT:u2:"+svcA {
		t.Fatalf("single logout %v", got)
	}
	if _, err := f.svc.GetSession(ctx, other); err == nil {
		t.Fatal("the other person's session survived")
	}
	if _, _, replaced, err := f.svc.RaiseSession(ctx, other, ticket.NewSession{UserID: "u1", Login: "login-u1", AuthLevel: 2}); err != nil || replaced {
		t.Fatalf("raise over an ended session: %v %v", replaced, err)
	}
	if _, err := f.svc.GetSession(ctx, tgt); err != nil {
		t.Fatal(err)
	}
}
