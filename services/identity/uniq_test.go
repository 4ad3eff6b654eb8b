package identity_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// centresKey is the key the centres of these tests share
// (identity.uniqueness.key_file).
var centresKey = []byte("0123456789abcdef0123456789abcdef")

// directPeer asks level 1's service in this process (the NATS request of
// the component, without NATS).
type directPeer struct{ l1 *identity.Service }

func (p directPeer) Claim(ctx context.Context, c identity.UniqueClaim) (identity.UniqueVerdict, error) {
	return p.l1.AnswerPeerClaim(ctx, c.Centre, c)
}

// deadPeer is a level 1 that is cut off: it answers nothing until the
// question's wait ends.
type deadPeer struct{}

func (deadPeer) Claim(ctx context.Context, _ identity.UniqueClaim) (identity.UniqueVerdict, error) {
	<-ctx.Done()
	return identity.UniqueVerdict{}, ctx.Err()
}

// uniqCentres is level 1 and two level-2 centres (l2a, l2b), each with a
// bureau of its own, checking uniqueness with level 1.
type uniqCentres struct {
	l1, l2a, l2b             *replicaCentre
	svc1, svc2a, svc2b       *identity.Service
	admin1, admin2a, admin2b context.Context
	bureauA, bureauB         *identity.Org
	homes1, homesA           *centre.Homes
}

// uniqSealers: each centre's one sealer, kept across its services (a
// centre's own values open whatever its settings).
var uniqSealers sync.Map

func (c *replicaCentre) withUniq(t *testing.T, h *centre.Homes, u identity.UniquenessConfig) *identity.Service {
	t.Helper()
	sealer, _ := uniqSealers.LoadOrStore(c, testSealer(t))
	svc := testService(t, identity.Deps{Store: sqlstore.New(c.db), Homes: h, Sealer: sealer.(*crypto.Sealer),
		Config: identity.Config{Uniqueness: u},
		Sleep:  func(context.Context, time.Duration) error { return nil }})
	c.svc = svc
	return svc
}

func newUniqCentres(t *testing.T) *uniqCentres {
	t.Helper()
	u := &uniqCentres{l1: newReplicaCentre(t), l2a: newReplicaCentre(t), l2b: newReplicaCentre(t)}
	a2a, _ := adminCtx(t, u.l2a.svc, "10.0.0.2", "l2a")
	a2b, _ := adminCtx(t, u.l2b.svc, "10.0.0.3", "l2b")
	var err error
	if u.bureauA, err = u.l2a.svc.CreateOrg(a2a, "bureau-a", "Bureau A", evRoot(t, u.l2a.svc).ID); err != nil {
		t.Fatal(err)
	}
	if u.bureauB, err = u.l2b.svc.CreateOrg(a2b, "bureau-b", "Bureau B", evRoot(t, u.l2b.svc).ID); err != nil {
		t.Fatal(err)
	}
	subtrees := map[string]string{u.bureauA.ID: "l2a", u.bureauB.ID: "l2b"}
	u.homes1 = &centre.Homes{Self: "l1", Level: 1, Subtrees: subtrees}
	u.svc1 = u.l1.withUniq(t, u.homes1,
		identity.UniquenessConfig{CentresKey: centresKey})
	u.homesA = &centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: subtrees}
	u.svc2a = u.l2a.withUniq(t, u.homesA, identity.UniquenessConfig{CentresKey: centresKey, Peer: directPeer{u.svc1}})
	u.svc2b = u.l2b.withUniq(t, &centre.Homes{Self: "l2b", Level: 2, Parent: "l1", Subtrees: subtrees},
		identity.UniquenessConfig{CentresKey: centresKey, Peer: directPeer{u.svc1}})
	u.admin1, _ = adminCtx(t, u.svc1, "10.0.0.1", "l1")
	u.admin2a, _ = adminCtx(t, u.svc2a, "10.0.0.2", "l2a")
	u.admin2b, _ = adminCtx(t, u.svc2b, "10.0.0.3", "l2b")
	return u
}

// wantRefused checks err is the API error code/reason whose message has
// every part of want.
func wantRefused(t *testing.T, what string, err error, code apierr.Code, reason string, want ...string) {
	t.Helper()
	e, ok := apierr.As(err)
	if !ok || e.Code != code || e.Reason != reason {
		t.Fatalf("%s: got %v, want %v %s", what, err, code, reason)
	}
	for _, w := range want {
		if !strings.Contains(e.Message, w) {
			t.Fatalf("%s: message %q lacks %q", what, e.Message, w)
		}
	}
}

// TestUniquenessAcrossCentres: a level-2 centre refuses a login name or ID
// number that level 1 holds (its own person's or another level-2 centre's
// replica), with the reasons of a local duplicate and a message naming no
// one; the person's own name and number are no conflict (a retry, an
// update), nor a retry of a failed create at the same centre; level 1 refuses a name or number held by a replica of a level-2
// person; of two level-2 centres creating the same name before either's
// replica arrives, the second is refused (level 1's reservation).
func TestUniquenessAcrossCentres(t *testing.T) {
	ctx := context.Background()
	u := newUniqCentres(t)
	idHeld, idFree, idOther := residentID("11010519800101001"), residentID("11010519800101002"), residentID("11010519800101003")

	// Level 1's own person.
	if _, err := u.svc1.CreateUser(u.admin1, identity.NewUser{LoginName: "harbourmaster", DisplayName: "Harbour Master",
		OrgID: evRoot(t, u.svc1).ID, IDType: identity.IDTypeResidentID, IDNumber: idHeld}); err != nil {
		t.Fatal(err)
	}
	// Its name (in any case) and its number are refused at l2a.
	_, err := u.svc2a.CreateUser(u.admin2a, identity.NewUser{LoginName: "HarbourMaster", DisplayName: "Other", OrgID: u.bureauA.ID})
	wantRefused(t, "name held at level 1", err, apierr.AlreadyExists, "ALREADY_EXISTS", "login name already exists", "another centre")
	_, err = u.svc2a.CreateUser(u.admin2a, identity.NewUser{LoginName: "newcomer", DisplayName: "Newcomer", OrgID: u.bureauA.ID,
		IDType: identity.IDTypeResidentID, IDNumber: strings.ToLower(idHeld)})
	wantRefused(t, "ID number held at level 1", err, apierr.AlreadyExists, identity.ReasonIDNumberTaken, "another centre")
	if strings.Contains(err.Error(), "harbourmaster") || strings.Contains(err.Error(), idHeld[:6]) {
		t.Fatalf("the refusal tells of the other person: %v", err)
	}
	// Nothing was written at l2a.
	if _, err := sqlstore.New(u.l2a.db).GetUserByLogin(ctx, "newcomer"); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("refused person stored: %v", err)
	}

	// A person of l2a with a free name and number passes, and the same
	// person's own claim again (a retry) is no conflict.
	pilot, err := u.svc2a.CreateUser(u.admin2a, identity.NewUser{LoginName: "pilot", DisplayName: "Pilot", OrgID: u.bureauA.ID,
		IDType: identity.IDTypeResidentID, IDNumber: idFree})
	if err != nil {
		t.Fatal(err)
	}
	if pilot.CentresKey == "" || pilot.CentresKey == pilot.IDKey {
		t.Fatalf("centres key %q (ID key %q)", pilot.CentresKey, pilot.IDKey)
	}
	if v, err := u.svc1.AnswerClaim(ctx, identity.UniqueClaim{PersonID: pilot.ID, Centre: "l2a", Login: "pilot", IDKey: pilot.CentresKey}); err != nil || v.LoginTaken || v.IDTaken {
		t.Fatalf("the person's own claim again: %+v %v", v, err)
	}
	// Before the replica arrives, l2b may not take the name or number.
	_, err = u.svc2b.CreateUser(u.admin2b, identity.NewUser{LoginName: "PILOT", DisplayName: "Pilot B", OrgID: u.bureauB.ID})
	wantRefused(t, "name reserved for l2a's person", err, apierr.AlreadyExists, "ALREADY_EXISTS", "another centre")
	_, err = u.svc2b.CreateUser(u.admin2b, identity.NewUser{LoginName: "pilot-b", DisplayName: "Pilot B", OrgID: u.bureauB.ID,
		IDType: identity.IDTypeResidentID, IDNumber: idFree})
	wantRefused(t, "number reserved for l2a's person", err, apierr.AlreadyExists, identity.ReasonIDNumberTaken, "another centre")

	// The replica reaches level 1: it carries the centres key, and level
	// 1's own creates are refused for the replica's name and number.
	cs, _, _ := u.l2a.changes(t, 0)
	if _, err := u.svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	rep, err := sqlstore.New(u.l1.db).GetUserByLogin(ctx, "pilot")
	if err != nil || rep.CentresKey != pilot.CentresKey {
		t.Fatalf("replica at level 1: %+v %v", rep, err)
	}
	_, err = u.svc1.CreateUser(u.admin1, identity.NewUser{LoginName: "Pilot", DisplayName: "Pilot 1", OrgID: evRoot(t, u.svc1).ID})
	wantRefused(t, "level 1: name of a level-2 replica", err, apierr.AlreadyExists, "ALREADY_EXISTS", "login name already exists")
	_, err = u.svc1.CreateUser(u.admin1, identity.NewUser{LoginName: "pilot-one", DisplayName: "Pilot 1", OrgID: evRoot(t, u.svc1).ID,
		IDType: identity.IDTypeResidentID, IDNumber: idFree})
	wantRefused(t, "level 1: number of a level-2 replica", err, apierr.AlreadyExists, identity.ReasonIDNumberTaken)

	// The person's own updates are no conflict; a number held elsewhere is
	// refused, and nothing changes.
	if _, err := u.svc2a.UpdateUser(u.admin2a, pilot.ID, identity.UserUpdate{Mask: []string{"id_number"}, IDNumber: idFree}); err != nil {
		t.Fatalf("own number again: %v", err)
	}
	_, err = u.svc2a.UpdateUser(u.admin2a, pilot.ID, identity.UserUpdate{Mask: []string{"id_number"}, IDNumber: idHeld})
	wantRefused(t, "update to a number held at level 1", err, apierr.AlreadyExists, identity.ReasonIDNumberTaken, "another centre")
	if got, _ := u.svc2a.GetUser(u.admin2a, pilot.ID); got.CentresKey != pilot.CentresKey {
		t.Fatal("a refused update changed the person")
	}
	if _, err := u.svc2a.UpdateUser(u.admin2a, pilot.ID, identity.UserUpdate{Mask: []string{"id_number"}, IDNumber: idOther}); err != nil {
		t.Fatalf("a free number: %v", err)
	}

	// Each centre's bootstrap administrator ("admin") is its own: not asked.
	if v, err := u.svc1.AnswerClaim(ctx, identity.UniqueClaim{PersonID: "x", Centre: "l2a", Login: ""}); err != nil || v.LoginTaken {
		t.Fatalf("empty claim: %+v %v", v, err)
	}
	// Only level 1 answers.
	_, err = u.svc2a.AnswerClaim(ctx, identity.UniqueClaim{PersonID: "x", Login: "pilot"})
	wantRefused(t, "asked at level 2", err, apierr.FailedPrecondition, "REPLICA_NOT_A_CENTRE")
	_, err = u.svc1.AnswerClaim(ctx, identity.UniqueClaim{Login: "pilot"})
	wantRefused(t, "claim without a person", err, apierr.InvalidArgument, apierr.ReasonBadRequest, "person_id")
	_, err = u.svc1.AnswerClaim(ctx, identity.UniqueClaim{PersonID: "x", Login: "pilot"})
	wantRefused(t, "claim without a centre", err, apierr.InvalidArgument, apierr.ReasonBadRequest, "centre")

	// A create refused after level 1 was asked (a weak password) and made
	// again (another person id) is no conflict: the reservation is the
	// centre's.
	_, err = u.svc2a.CreateUser(u.admin2a, identity.NewUser{LoginName: "retry", DisplayName: "Retry", OrgID: u.bureauA.ID, Password: "weak"})
	wantRefused(t, "weak password", err, apierr.InvalidArgument, "WEAK_PASSWORD")
	if _, err := u.svc2a.CreateUser(u.admin2a, identity.NewUser{LoginName: "retry", DisplayName: "Retry", OrgID: u.bureauA.ID,
		Password: "Harbour-Pass-2026"}); err != nil {
		t.Fatalf("the retry: %v", err)
	}
}

// auditReasons are the reasons of the audit records api in c's outbox.
func auditReasons(t *testing.T, c *replicaCentre, api string) []string {
	t.Helper()
	_, _, audits := c.changes(t, 0)
	var out []string
	for _, p := range audits {
		var r events.AuditRecord
		if err := json.Unmarshal(p, &r); err != nil {
			t.Fatal(err)
		}
		if r.API == api {
			out = append(out, r.Reason)
		}
	}
	return out
}

// TestUniquenessLevelOneUnreachable: a level-2 centre whose level 1 does not
// answer within the wait creates the person (peer_unreachable allow, the
// default), audited UNIQUENESS_UNCHECKED; with refuse it refuses with
// UNAVAILABLE UNIQUENESS_UNAVAILABLE and writes nothing. A collision that
// so reaches level 1 is applied and audited there.
func TestUniquenessLevelOneUnreachable(t *testing.T) {
	u := newUniqCentres(t)
	svc := u.l2a.withUniq(t, u.homesA, identity.UniquenessConfig{CentresKey: centresKey, Peer: deadPeer{}, Wait: 20 * time.Millisecond})
	admin, _ := adminCtx(t, svc, "10.0.0.2", "l2a")
	p, err := svc.CreateUser(admin, identity.NewUser{LoginName: "cut-off", DisplayName: "Cut Off", OrgID: u.bureauA.ID,
		IDType: identity.IDTypeResidentID, IDNumber: residentID("11010519800101009")})
	if err != nil {
		t.Fatalf("allow: %v", err)
	}
	if got := auditReasons(t, u.l2a, "user.create"); got[len(got)-1] != identity.ReasonUniquenessUnchecked {
		t.Fatalf("audit reasons of user.create: %v", got)
	}
	if _, err := svc.UpdateUser(admin, p.ID, identity.UserUpdate{Mask: []string{"id_number"}, IDNumber: residentID("11010519800101010")}); err != nil {
		t.Fatalf("allow (update): %v", err)
	}
	if got := auditReasons(t, u.l2a, "user.update"); len(got) == 0 || got[len(got)-1] != identity.ReasonUniquenessUnchecked {
		t.Fatalf("audit reasons of user.update: %v", got)
	}

	// Level 1 has a person with the same number meanwhile: the replica
	// arrives, is applied (the person stays held there), and the
	// collision is audited at level 1.
	if _, err := u.svc1.CreateUser(u.admin1, identity.NewUser{LoginName: "twin", DisplayName: "Twin", OrgID: evRoot(t, u.svc1).ID,
		IDType: identity.IDTypeResidentID, IDNumber: residentID("11010519800101010")}); err != nil {
		t.Fatal(err)
	}
	cs, _, _ := u.l2a.changes(t, 0)
	if _, err := u.svc1.ApplyReplica(context.Background(), "l2a", cs); err != nil {
		t.Fatal(err)
	}
	if _, err := u.svc1.GetUser(u.admin1, p.ID); err != nil {
		t.Fatalf("the colliding person is not held at level 1: %v", err)
	}
	if got := auditReasons(t, u.l1, identity.APIReplicaIDCollision); len(got) == 0 || got[0] != identity.ReasonIDNumberTaken {
		t.Fatalf("collision audit at level 1: %v", got)
	}

	svc = u.l2a.withUniq(t, u.homesA, identity.UniquenessConfig{CentresKey: centresKey, Peer: deadPeer{},
		Wait: 20 * time.Millisecond, RefuseUnreachable: true})
	_, err = svc.CreateUser(admin, identity.NewUser{LoginName: "refused", DisplayName: "Refused", OrgID: u.bureauA.ID})
	wantRefused(t, "refuse", err, apierr.Unavailable, identity.ReasonUniquenessUnavailable, "level-1 centre did not answer")
	if _, err := sqlstore.New(u.l2a.db).GetUserByLogin(context.Background(), "refused"); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("refused person stored: %v", err)
	}
	_, err = svc.UpdateUser(admin, p.ID, identity.UserUpdate{Mask: []string{"id_number"}, IDNumber: residentID("11010519800101011")})
	wantRefused(t, "refuse (update)", err, apierr.Unavailable, identity.ReasonUniquenessUnavailable)
	// A change that touches neither the name nor the number is not asked.
	if _, err := svc.UpdateUser(admin, p.ID, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: "Renamed"}); err != nil {
		t.Fatalf("display name: %v", err)
	}
}

// importRows imports rows (field maps) of people into svc.
func importRows(t *testing.T, svc *identity.Service, ctx context.Context, id string, rows ...map[string]string) *identity.ImportReport {
	t.Helper()
	return importRowsAs(t, svc, ctx, id, false, rows...)
}

// importRowsAs is importRows, a dry run if dry.
func importRowsAs(t *testing.T, svc *identity.Service, ctx context.Context, id string, dry bool, rows ...map[string]string) *identity.ImportReport {
	t.Helper()
	i := 0
	rep, err := svc.Import(ctx, identity.ImportOptions{Kind: "users", ImportID: id, DryRun: dry}, func() (*identity.ImportRow, bool, error) {
		if i == len(rows) {
			return nil, false, nil
		}
		i++
		return &identity.ImportRow{Row: i + 1, Fields: rows[i-1]}, true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestUniquenessImport: a level-2 centre's import asks level 1 about each
// row: a login name or ID number held at level 1 is the row's error (with
// the reasons of a local duplicate), the other rows are written; cut off,
// the rows are written (allow; the batches audited UNIQUENESS_UNCHECKED
// with the count) or refused (refuse, UNIQUENESS_UNAVAILABLE).
func TestUniquenessImport(t *testing.T) {
	u := newUniqCentres(t)
	idHeld := residentID("11010519800101021")
	if _, err := u.svc1.CreateUser(u.admin1, identity.NewUser{LoginName: "harbourmaster", DisplayName: "Harbour Master",
		OrgID: evRoot(t, u.svc1).ID, IDType: identity.IDTypeResidentID, IDNumber: idHeld}); err != nil {
		t.Fatal(err)
	}
	row := func(login, idNumber string) map[string]string {
		r := map[string]string{"login_name": login, "display_name": "Person " + login, "org_code": "bureau-a"}
		if idNumber != "" {
			r["id_type"], r["id_number"] = "resident_id", idNumber
		}
		return r
	}
	// A dry run reports the same and reserves nothing: the import proper
	// (its people get other ids) is not refused by it.
	var rep *identity.ImportReport
	for _, dry := range []bool{true, false} {
		rep = importRowsAs(t, u.svc2a, u.admin2a, "imp-1", dry, row("Harbourmaster", ""), row("fresh", idHeld),
			row("fine", residentID("11010519800101022")))
	}
	if rep.Written != 1 || rep.Failed != 2 || len(rep.Errors) != 2 {
		t.Fatalf("report %+v", rep)
	}
	if e := rep.Errors[0]; e.Row != 2 || e.Field != "login_name" || e.Reason != "ALREADY_EXISTS" || !strings.Contains(e.Message, "another centre") {
		t.Fatalf("row of a name held at level 1: %+v", e)
	}
	if e := rep.Errors[1]; e.Row != 3 || e.Field != "id_number" || e.Reason != identity.ReasonIDNumberTaken || !strings.Contains(e.Message, "another centre") {
		t.Fatalf("row of a number held at level 1: %+v", e)
	}

	svc := u.l2a.withUniq(t, u.homesA, identity.UniquenessConfig{CentresKey: centresKey, Peer: deadPeer{}, Wait: 20 * time.Millisecond})
	admin, _ := adminCtx(t, svc, "10.0.0.2", "l2a")
	rep = importRows(t, svc, admin, "imp-2", row("cut-1", ""), row("cut-2", ""), row("cut-3", ""))
	if rep.Written != 3 || rep.Failed != 0 {
		t.Fatalf("cut off, allow: %+v", rep)
	}
	if got := auditReasons(t, u.l2a, "user.import"); got[len(got)-1] != identity.ReasonUniquenessUnchecked {
		t.Fatalf("audit of the unchecked import: %v", got)
	}
	svc = u.l2a.withUniq(t, u.homesA, identity.UniquenessConfig{CentresKey: centresKey, Peer: deadPeer{}, Wait: 20 * time.Millisecond,
		RefuseUnreachable: true})
	rep = importRows(t, svc, admin, "imp-3", row("cut-4", ""), row("cut-5", ""))
	if rep.Written != 0 || rep.Failed != 2 || rep.Errors[1].Reason != identity.ReasonUniquenessUnavailable {
		t.Fatalf("cut off, refuse: %+v", rep)
	}
}

// TestUniquenessLevelOneImport: level 1's own import refuses a row whose ID
// number a level-2 replica holds (the centres key), and a local duplicate
// is answered as before.
func TestUniquenessLevelOneImport(t *testing.T) {
	u := newUniqCentres(t)
	idL2 := residentID("11010519800101031")
	if _, err := u.svc2a.CreateUser(u.admin2a, identity.NewUser{LoginName: "deckhand", DisplayName: "Deckhand", OrgID: u.bureauA.ID,
		IDType: identity.IDTypeResidentID, IDNumber: idL2}); err != nil {
		t.Fatal(err)
	}
	cs, _, _ := u.l2a.changes(t, 0)
	if _, err := u.svc1.ApplyReplica(context.Background(), "l2a", cs); err != nil {
		t.Fatal(err)
	}
	rep := importRows(t, u.svc1, u.admin1, "imp-l1", map[string]string{"login_name": "deck", "display_name": "Deck", "org_code": "root",
		"id_type": "resident_id", "id_number": idL2}, map[string]string{"login_name": "DECKHAND", "display_name": "Deck", "org_code": "root"},
		map[string]string{"login_name": "clerk", "display_name": "Clerk", "org_code": "root"})
	if rep.Written != 1 || len(rep.Errors) != 2 || rep.Errors[0].Reason != identity.ReasonIDNumberTaken || rep.Errors[0].Field != "id_number" ||
		rep.Errors[1].Reason != "ALREADY_EXISTS" {
		t.Fatalf("report %+v", rep)
	}
}

// TestCentresKeyBackfill: people created before the key was set get their
// centres key at start at their home (the same as a create with the key
// would give); other centres' people are marked, never keyed; level 1 then
// refuses their numbers once the home's resend brings the keys.
func TestCentresKeyBackfill(t *testing.T) {
	u := newUniqCentres(t)
	id := residentID("11010519800101041")
	// Created at l2a before the key was set.
	before := u.l2a.withUniq(t, u.homesA, identity.UniquenessConfig{Peer: directPeer{u.svc1}})
	admin, _ := adminCtx(t, before, "10.0.0.2", "l2a")
	p, err := before.CreateUser(admin, identity.NewUser{LoginName: "veteran", DisplayName: "Veteran", OrgID: u.bureauA.ID,
		IDType: identity.IDTypeResidentID, IDNumber: id})
	if err != nil || p.CentresKey != "" {
		t.Fatalf("created without the key: %+v %v", p, err)
	}
	cs, _, _ := u.l2a.changes(t, 0)
	if _, err := u.svc1.ApplyReplica(context.Background(), "l2a", cs); err != nil {
		t.Fatal(err)
	}
	// The key set: each centre's start fills in its own people's.
	svc2 := u.l2a.withUniq(t, u.homesA, identity.UniquenessConfig{CentresKey: centresKey, Peer: directPeer{u.svc1}})
	r, err := svc2.BackfillCentresKeys(context.Background())
	if err != nil || r.Set != 1 || r.Unreadable != 0 {
		t.Fatalf("l2a backfill: %+v %v", r, err)
	}
	if r, err := svc2.BackfillCentresKeys(context.Background()); err != nil || r.Set != 0 {
		t.Fatalf("l2a backfill again: %+v %v", r, err)
	}
	r, err = u.svc1.BackfillCentresKeys(context.Background())
	if err != nil || r.Set != 0 || r.Replicas != 1 {
		t.Fatalf("level 1 backfill (a replica): %+v %v", r, err)
	}
	got, err := svc2.GetUser(u.admin2a, p.ID)
	if err != nil || len(got.CentresKey) != 32 {
		t.Fatalf("key after the backfill: %+v %v", got, err)
	}
	// The resend of the bureau brings it to level 1, which then refuses
	// the number.
	_, last, _ := u.l2a.changes(t, 0)
	if _, err := svc2.ResendOrg(u.admin2a, u.bureauA.ID); err != nil {
		t.Fatal(err)
	}
	cs, _, _ = u.l2a.changes(t, last)
	if _, err := u.svc1.ApplyReplica(context.Background(), "l2a", cs); err != nil {
		t.Fatal(err)
	}
	_, err = u.svc1.CreateUser(u.admin1, identity.NewUser{LoginName: "copy", DisplayName: "Copy", OrgID: evRoot(t, u.svc1).ID,
		IDType: identity.IDTypeResidentID, IDNumber: id})
	wantRefused(t, "level 1 after the resend", err, apierr.AlreadyExists, identity.ReasonIDNumberTaken)
}

// TestUniquenessAskingCentre (review sec29b M1): level 1 answers the
// centres it knows only, and takes the asking centre from the transport
// (AnswerPeerClaim's centre), not from the question: a made-up centre
// reserves nothing (level 1 and l2b still create the name), a question
// naming another centre is answered as the asker's own (l2a's reservation
// holds against l2b whatever l2b writes in it), and no peer may ask as
// level 1 itself.
func TestUniquenessAskingCentre(t *testing.T) {
	ctx := context.Background()
	u := newUniqCentres(t)
	for _, centre := range []string{"squatter", "", "l1"} {
		_, err := u.svc1.AnswerPeerClaim(ctx, centre, identity.UniqueClaim{PersonID: "x", Centre: "l2a", Login: "zhangwei"})
		wantRefused(t, "centre "+centre, err, apierr.PermissionDenied, identity.ReasonUniquenessRefused)
	}
	_, err := u.svc1.AnswerClaim(ctx, identity.UniqueClaim{PersonID: "x", Centre: "squatter", Login: "zhangwei"})
	wantRefused(t, "unknown centre, AnswerClaim", err, apierr.PermissionDenied, identity.ReasonUniquenessRefused)
	if _, err := u.svc2b.CreateUser(u.admin2b, identity.NewUser{LoginName: "zhangwei", DisplayName: "Zhang Wei", OrgID: u.bureauB.ID}); err != nil {
		t.Fatalf("l2b's create after a made-up centre's question: %v", err)
	}
	if _, err := u.svc1.CreateUser(u.admin1, identity.NewUser{LoginName: "wangfang", DisplayName: "Wang Fang", OrgID: evRoot(t, u.svc1).ID}); err != nil {
		t.Fatalf("level 1's create: %v", err)
	}

	// l2a reserves "pilot"; l2b's question, naming l2a, is l2b's.
	if v, err := u.svc1.AnswerPeerClaim(ctx, "l2a", identity.UniqueClaim{PersonID: "p-l2a", Centre: "l2a", Login: "pilot"}); err != nil || v.LoginTaken {
		t.Fatal(v, err)
	}
	v, err := u.svc1.AnswerPeerClaim(ctx, "l2b", identity.UniqueClaim{PersonID: "p-l2b", Centre: "l2a", Login: "pilot"})
	if err != nil || !v.LoginTaken {
		t.Fatalf("l2b naming l2a: %+v %v", v, err)
	}
}

// TestUniquenessQuestionsLimited (review sec29b H1, M2): level 1 answers
// each centre's questions at peer_rate at most (refused
// UNIQUENESS_RATE_LIMITED beyond the burst, counted, the other centres still
// answered), audits each answered question with the centre and what was
// asked but neither the login name nor the key, check-only questions too,
// and a level-2 dry run's rows are audited at level 2 although the dry run
// writes nothing.
func TestUniquenessQuestionsLimited(t *testing.T) {
	ctx := context.Background()
	u := newUniqCentres(t)
	var mu sync.Mutex
	seen := map[string]int{}
	svc1 := u.l1.withUniq(t, u.homes1, identity.UniquenessConfig{CentresKey: centresKey, PeerRate: 0.001, PeerBurst: 3,
		Observe: func(centre, outcome string) { mu.Lock(); seen[centre+" "+outcome]++; mu.Unlock() }})
	ask := func(centre, login string) error {
		_, err := svc1.AnswerPeerClaim(ctx, centre, identity.UniqueClaim{PersonID: "probe", Login: login, IDKey: "k", CheckOnly: true})
		return err
	}
	for i := range 3 {
		if err := ask("l2b", fmt.Sprintf("probe-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	wantRefused(t, "over the burst", ask("l2b", "probe-3"), apierr.ResourceExhausted, identity.ReasonUniquenessRateLimited)
	if err := ask("l2a", "other"); err != nil {
		t.Fatalf("another centre: %v", err)
	}
	_ = ask("nowhere", "x")
	mu.Lock()
	if seen["l2b free"] != 3 || seen["l2b rate_limited"] != 1 || seen["l2a free"] != 1 || seen["unknown refused_unknown"] != 1 {
		t.Fatalf("counted %v", seen)
	}
	mu.Unlock()
	_, _, audits := u.l1.changes(t, 0)
	n := 0
	for _, p := range audits {
		var r events.AuditRecord
		if err := json.Unmarshal(p, &r); err != nil {
			t.Fatal(err)
		}
		if r.API != identity.APIUniquenessQuestion {
			continue
		}
		n++
		if r.Detail["centre"] == "" || r.Detail["check_only"] != "true" || r.Detail["login"] != "true" || r.Detail["id_number"] != "true" ||
			strings.Contains(string(p), "probe-") || strings.Contains(string(p), "other") {
			t.Fatalf("audit record %s", p)
		}
	}
	if n != 4 {
		t.Fatalf("%d questions audited, want 4 (the refused ones are counted, not audited)", n)
	}

	// A dry run at l2a: its batch record survives the rollback.
	before := len(auditReasons(t, u.l2a, "user.import"))
	rep := importRowsAs(t, u.svc2a, u.admin2a, "dry-1", true,
		map[string]string{"login_name": "drydock", "display_name": "Dry Dock", "org_code": "bureau-a"})
	if rep.Written != 1 {
		t.Fatalf("dry run %+v", rep)
	}
	if got := auditReasons(t, u.l2a, "user.import"); len(got) != before+1 {
		t.Fatalf("dry run's audit records: %v (before %d)", got, before)
	}
}

// TestUniquenessIDNumberNormalised (review sec29b I1): the centres key
// normalises the number as the local check does: two passport numbers
// differing in case are two people across centres as at one centre.
func TestUniquenessIDNumberNormalised(t *testing.T) {
	u := newUniqCentres(t)
	if _, err := u.svc1.CreateUser(u.admin1, identity.NewUser{LoginName: "sailor1", DisplayName: "Sailor", OrgID: evRoot(t, u.svc1).ID,
		IDType: identity.IDTypePassport, IDNumber: "e1234567"}); err != nil {
		t.Fatal(err)
	}
	if _, err := u.svc2a.CreateUser(u.admin2a, identity.NewUser{LoginName: "sailor2", DisplayName: "Sailor", OrgID: u.bureauA.ID,
		IDType: identity.IDTypePassport, IDNumber: "E1234567"}); err != nil {
		t.Fatalf("a passport number differing in case: %v", err)
	}
	_, err := u.svc2a.CreateUser(u.admin2a, identity.NewUser{LoginName: "sailor3", DisplayName: "Sailor", OrgID: u.bureauA.ID,
		IDType: identity.IDTypePassport, IDNumber: " e1234567 "})
	wantRefused(t, "the same passport number", err, apierr.AlreadyExists, identity.ReasonIDNumberTaken, "another centre")
}

// TestUniquenessIDNumbersOff (review sec29b M3): a level-2 centre without
// the centres key (identity.uniqueness.id_numbers false) compares its ID
// numbers within itself only, and sends level 1 no centres key, not even
// one stored before the switch.
func TestUniquenessIDNumbersOff(t *testing.T) {
	u := newUniqCentres(t)
	idHeld := residentID("11010519800101031")
	if _, err := u.svc1.CreateUser(u.admin1, identity.NewUser{LoginName: "harbourmaster", DisplayName: "Harbour Master",
		OrgID: evRoot(t, u.svc1).ID, IDType: identity.IDTypeResidentID, IDNumber: idHeld}); err != nil {
		t.Fatal(err)
	}
	keyed, err := u.svc2a.CreateUser(u.admin2a, identity.NewUser{LoginName: "keyed", DisplayName: "Keyed", OrgID: u.bureauA.ID,
		IDType: identity.IDTypeResidentID, IDNumber: residentID("11010519800101032")})
	if err != nil {
		t.Fatal(err)
	}
	_, seq, _ := u.l2a.changes(t, 0)
	svc := u.l2a.withUniq(t, u.homesA, identity.UniquenessConfig{Peer: directPeer{u.svc1}})
	admin, _ := adminCtx(t, svc, "10.0.0.2", "l2a")
	if _, err := svc.CreateUser(admin, identity.NewUser{LoginName: "unkeyed", DisplayName: "Unkeyed", OrgID: u.bureauA.ID,
		IDType: identity.IDTypeResidentID, IDNumber: idHeld}); err != nil {
		t.Fatalf("a number held at level 1, not compared: %v", err)
	}
	if _, err := svc.UpdateUser(admin, keyed.ID, identity.UserUpdate{Mask: []string{"phone"}, Phone: "13800000000"}); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range replicaPayloads(t, u.l2a, seq) {
		n++
		if strings.Contains(string(c), "centres_key") {
			t.Fatalf("a centres key sent: %s", c)
		}
	}
	if n == 0 {
		t.Fatal("no change events")
	}
}

// replicaPayloads are the payloads of c's change events after seq.
func replicaPayloads(t *testing.T, c *replicaCentre, after int64) [][]byte {
	t.Helper()
	rows, err := c.db.QueryContext(context.Background(),
		`SELECT payload FROM events_outbox WHERE seq > ? AND subject LIKE 'uias.changes.%' ORDER BY seq`, after)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var p []byte
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}
