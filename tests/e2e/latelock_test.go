package e2e

import (
	"context"
	"net/http"
	"testing"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/ticket"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// TestLateLockEventSparesNewSession: a person signed in at the CAS page
// is locked (their session ends), unlocked and signs in again; the lock's
// event, delivered again late (a lagging consumer, a stream catching up),
// ends a session opened before the lock that the first delivery did not
// see, and leaves the session opened after the unlock (ADR 0047). The
// whole path is real: identity's stored state time, its login answer
// through the CAS page, the session's record in JetStream, identity's own
// event payload.
func TestLateLockEventSparesNewSession(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("late", "lena", nil, nil)
	h, ok := e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	if !ok {
		t.Fatal("no ticket component in target all")
	}
	ctx := context.Background()
	casBase := e.http + "/cas/"
	signIn := func() (string, *ticket.Session) {
		t.Helper()
		br := newBrowser(t)
		_, body, _ := br.get(casBase + "login")
		if code, _, _ := br.loginForm(casBase, body, "lena", f.password); code != http.StatusOK {
			t.Fatalf("sign-in: %d", code)
		}
		tgt := br.cookie(t, casBase, "TGC")
		sess, err := h.Service.GetSession(ctx, tgt)
		if err != nil {
			t.Fatal(err)
		}
		return tgt, sess
	}
	before, sess := signIn()
	if sess.StateAt.IsZero() {
		t.Fatal("the session recorded no state time of the account")
	}
	if _, err := e.admin.LockUser(e.adm(), &identityv1.LockUserRequest{Id: f.userID}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the locked person's session to end", func() bool {
		_, err := h.Service.GetSession(ctx, before)
		return err != nil
	})
	var lockSubject, lockPayload string
	for _, ev := range appEvents(t, e.app, "CHANGES", "uias.changes.identity.user.locked") {
		if ev["id"] == f.userID {
			lockSubject, lockPayload = ev["_subject"].(string), ev["_raw"].(string)
		}
	}
	if lockPayload == "" {
		t.Fatal("no user.locked event in CHANGES")
	}
	if _, err := e.admin.UnlockUser(e.adm(), &identityv1.UnlockUserRequest{Id: f.userID}); err != nil {
		t.Fatal(err)
	}
	after, sess := signIn()
	// A session opened before the lock that its first delivery did not
	// see (one of an earlier version, with no state time).
	missed, _, err := h.Service.CreateSession(ctx, ticket.NewSession{UserID: f.userID, Login: "lena", AuthLevel: 1})
	if err != nil {
		t.Fatal(err)
	}

	nc, err := e.app.ConnectNATS()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := nc.Publish(lockSubject, []byte(lockPayload)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the late lock event to end the session it had not seen", func() bool {
		_, err := h.Service.GetSession(ctx, missed)
		return err != nil
	})
	if got, err := h.Service.GetSession(ctx, after); err != nil {
		t.Fatalf("the session opened after the unlock ended with the late lock event: %v", err)
	} else if !got.StateAt.Equal(sess.StateAt) {
		t.Fatalf("session state time %v, want %v", got.StateAt, sess.StateAt)
	}
}
