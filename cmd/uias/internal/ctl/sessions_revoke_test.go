package ctl

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/uias/uias/services/ticket"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// TestSessionsRevoke: "sessions revoke" ends one named session of a person
// or all of them, in a real monolith, leaving other people's sessions; a
// session that is not the person's is refused with the server's sentence,
// and a missing USER_ID is a usage error.
func TestSessionsRevoke(t *testing.T) {
	a, h := startMonolith(t, "Revoke-Ctl-Pass-4", nil)
	th, ok := a.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	if !ok {
		t.Fatal("no ticket component in the monolith")
	}
	open := func(user string) string {
		t.Helper()
		_, sess, err := th.Service.CreateSession(context.Background(), ticket.NewSession{UserID: user, Login: user, OrgID: "org-r",
			AuthLevel: 1, ClientIP: "192.0.2.9"})
		if err != nil {
			t.Fatal(err)
		}
		return sess.ID
	}
	first, second, other := open("rev-person-1"), open("rev-person-1"), open("rev-person-2")
	live := func(user string) string {
		t.Helper()
		return h.mustRun("sessions", "list", "--user", user)
	}

	// one session, by its id
	out := h.mustRun("sessions", "revoke", "rev-person-1", "--session", first)
	if !strings.Contains(out, "Sessions ended:") || !strings.Contains(out, " 1\n") {
		t.Errorf("sessions revoke --session: %q", out)
	}
	if l := live("rev-person-1"); strings.Contains(l, first) || !strings.Contains(l, second) {
		t.Errorf("after revoking %s, rev-person-1 should have one session left:\n%s", first, l)
	}
	// a session of someone else is not ended through this person
	code, _, errs := h.run("sessions", "revoke", "rev-person-1", "--session", other)
	if code != 1 || !strings.Contains(errs, "no live session with this id") {
		t.Errorf("revoking another person's session: exit %d %q", code, errs)
	}
	// every remaining session of the person, JSON answer
	var res struct {
		Ended int `json:"ended"`
	}
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "sessions", "revoke", "rev-person-1")), &res); err != nil || res.Ended != 1 {
		t.Errorf("sessions revoke -o json: %+v %v", res, err)
	}
	if l := live("rev-person-1"); strings.Contains(l, "rev-person-1") {
		t.Errorf("rev-person-1 still has sessions:\n%s", l)
	}
	if l := live("rev-person-2"); !strings.Contains(l, other) {
		t.Errorf("rev-person-2's session should be untouched:\n%s", l)
	}
	// nothing left: 0 ended, not an error
	if out := h.mustRun("sessions", "revoke", "rev-person-1"); !strings.Contains(out, " 0\n") {
		t.Errorf("second sessions revoke: %q", out)
	}
	if code, _, errs := h.run("sessions", "revoke"); code != exitUsage || !strings.Contains(errs, "missing USER_ID") {
		t.Errorf("sessions revoke without USER_ID: exit %d %q", code, errs)
	}
}
