package identity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/services/identity"
)

// TestLevelOneDisablesALevelTwoPerson: level 1 manages every user (004
// §2.1.1, ADR 0048): an administrator there disables a person homed at
// level 2. They are refused at level 1 at once and, once the change
// arrives (here after the home changed them meanwhile: the link was cut),
// at their home; the disable is kept apart from the home's status (a
// change of the person at the home leaves it at level 1, an enable at the
// home does not lift it, level 1's enable does not lift the home's own
// disable); both centres audit it, the home naming level 1; a replay of
// the disable after the enable undoes nothing.
func TestLevelOneDisablesALevelTwoPerson(t *testing.T) {
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-q")
	svc2, svc1 := l2.svc, l1.svc
	admin1, _ := adminCtx(t, svc1, "10.0.0.1", "l1")
	const pw = "Harbour-Pass-1"
	u, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "stoker", DisplayName: "Stoker", OrgID: bureau.ID, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	cs, homeMark, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	login := func(svc *identity.Service) identity.Reason {
		t.Helper()
		r, err := svc.SSOLogin(browserAt("192.0.2.61"), "stoker", pw)
		if err != nil {
			t.Fatal(err)
		}
		return r.Reason
	}
	if login(svc1) != identity.ReasonOK || login(svc2) != identity.ReasonOK {
		t.Fatal("the person does not sign in before")
	}

	_, mark, _ := l1.changes(t, 0)
	got, err := svc1.SetUserStatus(admin1, u.ID, identity.StatusDisabled)
	if err != nil || got.DisabledCentre != "l1" || got.DisabledCentreBy == "" || got.Status != identity.StatusActive {
		t.Fatalf("level 1 disables a level-2 person: %+v %v", got, err)
	}
	if login(svc1) != identity.ReasonAccountDisabled {
		t.Fatal("level 1 lets the person it disabled sign in")
	}
	down, _, audits := l1.changes(t, mark)
	if len(down) != 1 || down[0].Subject != "uias.changes.identity.lock.disabled" {
		t.Fatalf("level 1's changes: %+v", down)
	}
	disabled := down
	// Its event names exactly the state time level 1 stored (ADR 0047).
	var ev struct {
		Data struct {
			StateAt time.Time `json:"state_at"`
		} `json:"data"`
	}
	if err := json.Unmarshal(down[0].Payload, &ev); err != nil || ev.Data.StateAt.IsZero() {
		t.Fatalf("level 1's disable names no state time: %s %v", down[0].Payload, err)
	}
	if got, err := svc1.GetUser(ctx, u.ID); err != nil || !got.StateChangedAt.Equal(ev.Data.StateAt) {
		t.Fatalf("level 1's state time of the disable: %+v %v, event %v", got, err, ev.Data.StateAt)
	}
	if len(audits) == 0 || !bytes.Contains(audits[0], []byte(`"home_centre":"l2a"`)) || !bytes.Contains(audits[0], []byte(`"status":"disabled"`)) {
		t.Fatalf("level 1's audit record: %s", audits)
	}

	// The link is cut: the home changes the person meanwhile, which
	// reaches level 1 first and leaves level 1's disable.
	if _, err := svc2.UpdateUser(admin2, u.ID, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: "Chief Stoker"}); err != nil {
		t.Fatal(err)
	}
	if login(svc2) != identity.ReasonOK {
		t.Fatal("the home refuses before level 1's disable arrives")
	}
	up, homeMark2, _ := l2.changes(t, homeMark)
	if _, err := svc1.ApplyReplica(ctx, "l2a", up); err != nil {
		t.Fatal(err)
	}
	if got, err := svc1.GetUser(ctx, u.ID); err != nil || got.DisplayName != "Chief Stoker" || got.DisabledCentre != "l1" || login(svc1) != identity.ReasonAccountDisabled {
		t.Fatalf("level 1 after the home's change: %+v %v", got, err)
	}

	// The link returns: the home applies it, audits it naming level 1.
	if out, err := svc2.ApplyReplica(ctx, "l1", disabled); err != nil || out[0] != identity.ReplicaApplied {
		t.Fatalf("the disable at the home: %v %v", out, err)
	}
	home, err := svc2.GetUser(ctx, u.ID)
	if err != nil || home.DisabledCentre != "l1" || home.Status != identity.StatusActive || home.DisabledCentreBy == "" {
		t.Fatalf("the person at their home: %+v %v", home, err)
	}
	if login(svc2) != identity.ReasonAccountDisabled {
		t.Fatal("the home lets the person level 1 disabled sign in")
	}
	local, homeMark3, homeAudits := l2.changes(t, homeMark2)
	if len(local) != 1 || local[0].Subject != "uias.changes.identity.lock.replica.disabled" {
		t.Fatalf("the home's local event of level 1's disable: %+v", local)
	}
	if len(homeAudits) == 0 || !bytes.Contains(homeAudits[0], []byte(`"home_centre":"l1"`)) || !bytes.Contains(homeAudits[0], []byte(`"status":"disabled"`)) {
		t.Fatalf("the home's audit record: %s", homeAudits)
	}

	// The home's enable does not lift level 1's disable; level 1 may
	// not change anything else of the person.
	if _, err := svc2.SetUserStatus(admin2, u.ID, identity.StatusActive); err != nil {
		t.Fatal(err)
	}
	if login(svc2) != identity.ReasonAccountDisabled {
		t.Fatal("the home's enable lifted level 1's disable")
	}
	if err := svc1.DeleteUser(admin1, u.ID); reasonOf(err) != centre.ReasonElsewhere {
		t.Fatalf("a deletion at level 1: %v", err)
	}

	// The home disables the person too; level 1 enables: its disable is
	// lifted everywhere, the home's stays.
	if _, err := svc2.SetUserStatus(admin2, u.ID, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	_, mark, _ = l1.changes(t, 0)
	if got, err := svc1.SetUserStatus(admin1, u.ID, identity.StatusActive); err != nil || got.DisabledCentre != "" {
		t.Fatalf("level 1 enables: %+v %v", got, err)
	}
	enabled, _, _ := l1.changes(t, mark)
	if len(enabled) != 1 || enabled[0].Subject != "uias.changes.identity.lock.enabled" {
		t.Fatalf("level 1's enable: %+v", enabled)
	}
	if out, err := svc2.ApplyReplica(ctx, "l1", enabled); err != nil || out[0] != identity.ReplicaApplied {
		t.Fatalf("the enable at the home: %v %v", out, err)
	}
	if got, err := svc2.GetUser(ctx, u.ID); err != nil || got.DisabledCentre != "" || got.Status != identity.StatusDisabled || login(svc2) != identity.ReasonAccountDisabled {
		t.Fatalf("the home after level 1's enable: %+v %v", got, err)
	}
	// The home enables its own: the person signs in again at both.
	if _, err := svc2.SetUserStatus(admin2, u.ID, identity.StatusActive); err != nil {
		t.Fatal(err)
	}
	up, _, _ = l2.changes(t, homeMark3)
	if _, err := svc1.ApplyReplica(ctx, "l2a", up); err != nil {
		t.Fatal(err)
	}
	if login(svc2) != identity.ReasonOK || login(svc1) != identity.ReasonOK {
		t.Fatal("the person does not sign in after both enables")
	}
	// The disable again (a replay, after the enable) undoes nothing.
	if out, err := svc2.ApplyReplica(ctx, "l1", disabled); err != nil || out[0] == identity.ReplicaApplied {
		t.Fatalf("the disable again at the home: %v %v", out, err)
	}
	if login(svc2) != identity.ReasonOK {
		t.Fatal("a replayed disable disabled the person again")
	}
}

// TestLevelOneDisableRefusals: a level-1 disable names level 1: the same
// change from another origin is not applied; nobody disables themselves
// (OWN_ACCOUNT).
func TestLevelOneDisableRefusals(t *testing.T) {
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-r")
	svc2, svc1 := l2.svc, l1.svc
	admin1, self1 := adminCtx(t, svc1, "10.0.0.1", "l1")
	u, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "cook", DisplayName: "Cook", OrgID: bureau.ID, Password: "Harbour-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	cs, _, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	_, mark, _ := l1.changes(t, 0)
	if _, err := svc1.SetUserStatus(admin1, u.ID, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	down, _, _ := l1.changes(t, mark)
	if out, err := svc2.ApplyReplica(ctx, "l2b", down); err != nil || out[0] == identity.ReplicaApplied {
		t.Fatalf("level 1's disable from another origin: %v %v", out, err)
	}
	if got, err := svc2.GetUser(ctx, u.ID); err != nil || got.DisabledCentre != "" {
		t.Fatalf("the person at their home after a disable from another origin: %+v %v", got, err)
	}
	if _, err := svc1.SetUserStatus(admin1, self1.ID, identity.StatusDisabled); reasonOf(err) != "OWN_ACCOUNT" {
		t.Fatalf("level 1's administrator disables themselves: %v", err)
	}
}

// TestLevelOneManagementAtTheHome (review sec32c L1, L2, L3, I1): level
// 1's requirement of a new password holds at level 1 at once (its stored
// record, so its own sign-ins ask for the change while the link is cut),
// the answer is the stored record; at the home, level 1's disable carries
// the home's own state time in the local event its ticket component reads
// (ADR 0047); the home's audit of level 1's enable and password
// requirement names level 1's administrator; an enable from a centre that
// is not the home's level 1, or lifting another centre's disable, is not
// applied, nor is a password requirement from another origin.
func TestLevelOneManagementAtTheHome(t *testing.T) {
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-s")
	svc2, svc1 := l2.svc, l1.svc
	admin1, self1 := adminCtx(t, svc1, "10.0.0.1", "l1")
	const pw = "Harbour-Pass-1"
	u, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "steward", DisplayName: "Steward", OrgID: bureau.ID, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	cs, homeMark, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	by := []byte(`"by":"user:` + self1.ID + `"`)

	// L1: the requirement holds at level 1 at once (the link is cut).
	_, mark, _ := l1.changes(t, 0)
	got, err := svc1.UpdateUser(admin1, u.ID, identity.UserUpdate{Mask: []string{"must_change_password"}, MustChange: true})
	if err != nil || !got.MustChange {
		t.Fatalf("level 1 requires a password change: %+v %v", got, err)
	}
	if stored, err := svc1.GetUser(ctx, u.ID); err != nil || !stored.MustChange {
		t.Fatalf("level 1's stored record after its requirement: %+v %v", stored, err)
	}
	if r, err := svc1.SSOLogin(browserAt("192.0.2.62"), "steward", pw); err != nil || r.Reason != identity.ReasonOK || r.User == nil || !r.User.MustChange {
		t.Fatalf("a sign-in at level 1 after its requirement (link cut) is not sent to the change: %+v %v", r, err)
	}
	asks, _, _ := l1.changes(t, mark)
	// I1: not from another origin
	if out, err := svc2.ApplyReplica(ctx, "l2b", asks); err != nil || out[0] == identity.ReplicaApplied {
		t.Fatalf("a requirement from another origin: %v %v", out, err)
	}
	if home, err := svc2.GetUser(ctx, u.ID); err != nil || home.MustChange {
		t.Fatalf("the home after a requirement from another origin: %+v %v", home, err)
	}
	// L3: the home's audit of it names level 1's administrator
	if out, err := svc2.ApplyReplica(ctx, "l1", asks); err != nil || out[0] != identity.ReplicaApplied {
		t.Fatalf("the requirement at the home: %v %v", out, err)
	}
	up, _, homeAudits := l2.changes(t, homeMark)
	var audited bool
	for _, a := range homeAudits {
		if bytes.Contains(a, []byte(`"must_change_password":"true"`)) && bytes.Contains(a, by) {
			audited = true
		}
	}
	if !audited {
		t.Fatalf("the home's audit of the requirement names no level-1 administrator: %s", homeAudits)
	}
	for _, c := range up {
		if bytes.Contains(c.Payload, []byte(`"by"`)) {
			t.Fatalf("the administrator in the person's change: %s", c.Payload)
		}
	}
	// The home's new password, coming back up, clears it at level 1.
	if _, err := svc2.SetPassword(admin2, u.ID, "Harbour-Pass-2", false); err != nil {
		t.Fatal(err)
	}
	up, homeMark2, _ := l2.changes(t, homeMark)
	if _, err := svc1.ApplyReplica(ctx, "l2a", up); err != nil {
		t.Fatal(err)
	}
	if got, err := svc1.GetUser(ctx, u.ID); err != nil || got.MustChange {
		t.Fatalf("level 1 after the home's new password: %+v %v", got, err)
	}

	// L2: the disable at the home carries the home's state time.
	_, mark, _ = l1.changes(t, 0)
	if _, err := svc1.SetUserStatus(admin1, u.ID, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	disabled, _, _ := l1.changes(t, mark)
	if out, err := svc2.ApplyReplica(ctx, "l1", disabled); err != nil || out[0] != identity.ReplicaApplied {
		t.Fatalf("the disable at the home: %v %v", out, err)
	}
	home, err := svc2.GetUser(ctx, u.ID)
	if err != nil || home.DisabledCentre != "l1" {
		t.Fatalf("the person at their home: %+v %v", home, err)
	}
	local, homeMark3, _ := l2.changes(t, homeMark2)
	var ev struct {
		Origin string `json:"origin"`
		Data   struct {
			StateAt      *time.Time `json:"state_at"`
			LocalStateAt time.Time  `json:"local_state_at"`
		} `json:"data"`
	}
	if len(local) != 1 || json.Unmarshal(local[0].Payload, &ev) != nil || ev.Origin != "l1" || ev.Data.StateAt != nil ||
		!ev.Data.LocalStateAt.Equal(home.StateChangedAt) || home.StateChangedAt.IsZero() {
		t.Fatalf("the home's local event of level 1's disable (home state time %v): %+v", home.StateChangedAt, local)
	}

	// I1: an enable from another origin lifts nothing.
	_, mark, _ = l1.changes(t, 0)
	if _, err := svc1.SetUserStatus(admin1, u.ID, identity.StatusActive); err != nil {
		t.Fatal(err)
	}
	enabled, _, _ := l1.changes(t, mark)
	if out, err := svc2.ApplyReplica(ctx, "l2b", enabled); err != nil || out[0] == identity.ReplicaApplied {
		t.Fatalf("level 1's enable from another origin: %v %v", out, err)
	}
	if got, err := svc2.GetUser(ctx, u.ID); err != nil || got.DisabledCentre != "l1" {
		t.Fatalf("the home after an enable from another origin: %+v %v", got, err)
	}
	// L3: level 1's enable, applied, is audited naming its administrator.
	if out, err := svc2.ApplyReplica(ctx, "l1", enabled); err != nil || out[0] != identity.ReplicaApplied {
		t.Fatalf("the enable at the home: %v %v", out, err)
	}
	_, _, homeAudits = l2.changes(t, homeMark3)
	if len(homeAudits) == 0 || !bytes.Contains(homeAudits[0], []byte(`"status":"active"`)) || !bytes.Contains(homeAudits[0], by) {
		t.Fatalf("the home's audit of level 1's enable names no administrator: %s", homeAudits)
	}
	if r, err := svc2.SSOLogin(browserAt("192.0.2.63"), "steward", "Harbour-Pass-2"); err != nil || r.Reason != identity.ReasonOK {
		t.Fatalf("the home after level 1's enable: %+v %v", r, err)
	}
}
