package identity_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/services/identity"
)

// TestLevelOneRequiresALevelTwoPasswordChange: level 1 manages every user
// (004 §2.1.1, ADR 0048): an administrator there requires a person homed
// at level 2 to change their password at their next sign-in. The
// requirement travels down as a lock.must_change change (here after the
// home changed the person meanwhile: the link was cut), is set at the home
// and audited there naming level 1, and comes back up as the home's own
// change of the person; a replay sets nothing again once the person has a
// new password. Level 1 clears nothing and changes nothing else of the
// person (HOME_CENTRE_ELSEWHERE).
func TestLevelOneRequiresALevelTwoPasswordChange(t *testing.T) {
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-m")
	svc2, svc1 := l2.svc, l1.svc
	admin1, _ := adminCtx(t, svc1, "10.0.0.1", "l1")
	u, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "purser", DisplayName: "Purser", OrgID: bureau.ID, Password: "Harbour-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	cs, homeMark, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	if got, err := svc1.GetUser(ctx, u.ID); err != nil || got.MustChange {
		t.Fatalf("the person at level 1 before: %+v %v", got, err)
	}

	// Refused at level 1: clearing it, or anything more than it.
	for name, up := range map[string]identity.UserUpdate{
		"clear":     {Mask: []string{"must_change_password"}, MustChange: false},
		"and more":  {Mask: []string{"must_change_password", "display_name"}, MustChange: true, DisplayName: "X"},
		"name only": {Mask: []string{"display_name"}, DisplayName: "X"},
	} {
		if _, err := svc1.UpdateUser(admin1, u.ID, up); reasonOf(err) != centre.ReasonElsewhere {
			t.Errorf("%s at level 1: %v", name, err)
		}
	}

	_, mark, _ := l1.changes(t, 0)
	got, err := svc1.UpdateUser(admin1, u.ID, identity.UserUpdate{Mask: []string{"must_change_password"}, MustChange: true})
	if err != nil || !got.MustChange {
		t.Fatalf("level 1 requires a level-2 person's password change: %+v %v", got, err)
	}
	down, _, audits := l1.changes(t, mark)
	var asks []identity.ReplicaChange
	for _, c := range down {
		if c.Subject == "uias.changes.identity.lock.must_change" {
			asks = append(asks, c)
		}
	}
	if len(asks) != 1 || bytes.Contains(asks[0].Payload, []byte("password_hash")) {
		t.Fatalf("level 1's changes: %+v", down)
	}
	if len(audits) != 1 || !bytes.Contains(audits[0], []byte(`"home_centre":"l2a"`)) || !bytes.Contains(audits[0], []byte(`"centre":"l1"`)) {
		t.Fatalf("level 1's audit record: %s", audits)
	}

	// Meanwhile (the link is cut) the home changes the person.
	if _, err := svc2.UpdateUser(admin2, u.ID, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: "Chief Purser"}); err != nil {
		t.Fatal(err)
	}
	// The link returns: the requirement is applied at the home.
	if out, err := svc2.ApplyReplica(ctx, "l1", asks); err != nil || out[0] != identity.ReplicaApplied {
		t.Fatalf("the requirement at the home: %v %v", out, err)
	}
	home, err := svc2.GetUser(ctx, u.ID)
	if err != nil || !home.MustChange || home.DisplayName != "Chief Purser" {
		t.Fatalf("the person at their home: %+v %v", home, err)
	}
	up, _, homeAudits := l2.changes(t, homeMark)
	var sent bool
	for _, c := range up {
		if c.Subject == "uias.changes.identity.user.updated" && bytes.Contains(c.Payload, []byte(`"must_change_password":true`)) {
			sent = true
		}
	}
	if !sent {
		t.Fatalf("the home sends no change of the person with the requirement: %+v", up)
	}
	var audited bool
	for _, a := range homeAudits {
		if bytes.Contains(a, []byte(`"home_centre":"l1"`)) && bytes.Contains(a, []byte(`"must_change_password":"true"`)) {
			audited = true
		}
	}
	if !audited {
		t.Fatalf("the home's audit records name no level-1 requirement: %s", homeAudits)
	}
	// It comes back up: level 1 shows it.
	if _, err := svc1.ApplyReplica(ctx, "l2a", up); err != nil {
		t.Fatal(err)
	}
	if got, err := svc1.GetUser(ctx, u.ID); err != nil || !got.MustChange || got.DisplayName != "Chief Purser" {
		t.Fatalf("the person at level 1 after: %+v %v", got, err)
	}

	// A new password at the home clears it; level 1's change again sets
	// nothing.
	if _, err := svc2.SetPassword(admin2, u.ID, "Harbour-Pass-2", false); err != nil {
		t.Fatal(err)
	}
	if out, err := svc2.ApplyReplica(ctx, "l1", asks); err != nil || out[0] == identity.ReplicaApplied {
		t.Fatalf("the requirement again at the home: %v %v", out, err)
	}
	if home, err := svc2.GetUser(ctx, u.ID); err != nil || home.MustChange {
		t.Fatalf("the person at their home after a new password and a replay: %+v %v", home, err)
	}
}

// TestMustChangeOfLevelOneStaysAtLevelOne: a requirement for a person of
// level 1 is level 1's own update (no lock change).
func TestMustChangeOfLevelOneStaysAtLevelOne(t *testing.T) {
	_, l1, _, _ := newBureauCentres(t, "bureau-n")
	svc1 := l1.svc
	admin1, _ := adminCtx(t, svc1, "10.0.0.1", "l1")
	own, err := svc1.CreateUser(admin1, identity.NewUser{LoginName: "master", DisplayName: "Master", OrgID: evRoot(t, svc1).ID, Password: "Harbour-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	_, mark, _ := l1.changes(t, 0)
	if got, err := svc1.UpdateUser(admin1, own.ID, identity.UserUpdate{Mask: []string{"must_change_password"}, MustChange: true}); err != nil || !got.MustChange {
		t.Fatalf("level 1's own person: %+v %v", got, err)
	}
	cs, _, _ := l1.changes(t, mark)
	for _, c := range cs {
		if c.Subject == "uias.changes.identity.lock.must_change" {
			t.Fatalf("a lock change for level 1's own person: %+v", cs)
		}
	}
}

// TestLevelOneRequirementOfAPersonWhoCannotChange: a person who may not
// change their own password is not required to change it (they could sign
// in nowhere): refused at level 1 (INVALID_ARGUMENT, BAD_REQUEST, saying why), and
// not applied at the home when cannot-change was turned on there before
// the requirement arrived.
func TestLevelOneRequirementOfAPersonWhoCannotChange(t *testing.T) {
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-c")
	svc2, svc1 := l2.svc, l1.svc
	admin1, _ := adminCtx(t, svc1, "10.0.0.1", "l1")
	fixed, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "kiosk", DisplayName: "Kiosk", OrgID: bureau.ID,
		Password: "Harbour-Pass-1", CannotChange: true})
	if err != nil {
		t.Fatal(err)
	}
	later, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "deckhand", DisplayName: "Deckhand", OrgID: bureau.ID, Password: "Harbour-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	cs, _, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	ask := identity.UserUpdate{Mask: []string{"must_change_password"}, MustChange: true}
	if _, err := svc1.UpdateUser(admin1, fixed.ID, ask); reasonOf(err) != "BAD_REQUEST" || !strings.Contains(err.Error(), "cannot be required to change it") {
		t.Fatalf("level 1 requires a change of a person who cannot change: %v", err)
	}
	_, mark, _ := l1.changes(t, 0)
	if _, err := svc1.UpdateUser(admin1, later.ID, ask); err != nil {
		t.Fatal(err)
	}
	down, _, _ := l1.changes(t, mark)
	// meanwhile the home turns cannot-change on
	if _, err := svc2.UpdateUser(admin2, later.ID, identity.UserUpdate{Mask: []string{"user_cannot_change_password"}, CannotChange: true}); err != nil {
		t.Fatal(err)
	}
	if out, err := svc2.ApplyReplica(ctx, "l1", down); err != nil || out[0] == identity.ReplicaApplied {
		t.Fatalf("the requirement at the home: %v %v", out, err)
	}
	if got, err := svc2.GetUser(ctx, later.ID); err != nil || got.MustChange {
		t.Fatalf("the person at the home: %+v %v", got, err)
	}
}
