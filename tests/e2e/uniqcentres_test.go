package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/uias/uias/pkg/config"
	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
	identitycomponent "github.com/uias/uias/services/identity/component"
	"github.com/uias/uias/services/identity/uniqpeer"
	synccomponent "github.com/uias/uias/services/sync/component"
	"github.com/uias/uias/services/sync/synctest"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// TestUniquenessAcrossCentres runs a level-1 centre and a level-2 centre
// (l2a), each a whole UIAS process with its own NATS, the level-2 NATS a
// leaf of level 1's, both with the same identity.uniqueness.key_file. The
// level-2 centre asks level 1 before it creates a person or gives one a new
// ID number: a login name or ID number held at level 1 is refused there
// with the reasons of a local duplicate; a name level 1 reserved for
// another centre's person being created is refused; the person's own
// update is no conflict; level 1 refuses the name and number of a level-2
// person it holds as a replica. Cut off from level 1, l2a creates the
// person (audited UNIQUENESS_UNCHECKED), or, with peer_unreachable refuse,
// refuses with UNIQUENESS_UNAVAILABLE.
func TestUniquenessAcrossCentres(t *testing.T) {
	if testing.Short() {
		t.Skip("two UIAS processes")
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "centres.key")
	if err := os.WriteFile(keyFile, []byte("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l1 := &syncCentre{name: "l1", nats: synctest.StartLevel1File(t, filepath.Join(deployCentres, "nats-l1.conf")),
		dir: filepath.Join(dir, "l1")}
	l2 := &syncCentre{name: "l2a", dir: filepath.Join(dir, "l2a")}
	l2.nats = synctest.StartLevel2File(t, filepath.Join(deployCentres, "nats-l2a.conf"), "l2a", l1.nats)
	withKey := func(cfg config.Config, refuse bool) config.Config {
		u := &identitycomponent.Settings(&cfg).Uniqueness
		u.KeyFile = keyFile
		// ticket.centre must be sync.centre (rr29 B6); testConfig's "c1"
		// is no centre of these.
		if c := synccomponent.Settings(&cfg).Centre; c != "" {
			ticketcomponent.Settings(&cfg).Centre = c
		}
		if refuse {
			u.PeerUnreachable = "refuse"
		}
		return cfg
	}

	// The bureau of l2a, before it joins.
	l2.e = start(t, withKey(l2.config(t, nil), false))
	l2.e.login()
	o, err := l2.e.admin.CreateOrg(l2.e.adm(), &identityv1.CreateOrgRequest{Code: "bureau-l2a", Name: "Bureau l2a", ParentId: l2.e.root})
	if err != nil {
		t.Fatal(err)
	}
	l2.bureau = o.GetId()
	l2.stop(t)

	f1 := centreFile(t, "uias-l1.yaml")
	// l2b is known to level 1 (a subtree of its own, never linked): the
	// questions the test asks as l2b are answered (review sec29b M1: level
	// 1 answers the centres it knows only).
	f1.Peers = f1.Peers[:2]
	f1.Peers[0].Subtrees = []string{l2.bureau}
	f1.Peers[1].Subtrees = []string{"bureau-of-l2b"}
	l1.e = start(t, withKey(l1.config(t, func(s *synccomponent.Config) { *s = f1 }), false))
	l1.e.login()
	f2 := centreFile(t, "uias-l2a.yaml")
	f2.Centre, f2.HomeSubtrees = "l2a", []string{l2.bureau}
	l2Config := func(refuse bool) config.Config {
		return withKey(l2.config(t, func(s *synccomponent.Config) { *s = f2 }), refuse)
	}
	l2.e = start(t, l2Config(false))
	l2.e.login()
	synctest.WaitLeaf(t, l2.nats.Server, true)

	person := func(e *env, login, org, idNumber string) (*identityv1.User, error) {
		r := &identityv1.CreateUserRequest{LoginName: login, DisplayName: "Person " + login, OrgId: org}
		if idNumber != "" {
			r.IdType, r.IdNumber = identityv1.IdType_ID_TYPE_RESIDENT_ID, idNumber
		}
		return e.admin.CreateUser(e.adm(), r)
	}
	idHeld, idFree, idCut := residentID("11010519800101001"), residentID("11010519800101002"), residentID("11010519800101004")

	// Level 1's own person: their name and number are refused at l2a, with
	// the reasons of a local duplicate, naming no one.
	if _, err := person(l1.e, "harbourmaster", l1.e.root, idHeld); err != nil {
		t.Fatal(err)
	}
	_, err = person(l2.e, "HarbourMaster", l2.bureau, "")
	st := wantCode(t, err, codes.AlreadyExists, "ALREADY_EXISTS")
	if !strings.Contains(st.Message(), "login name already exists") || !strings.Contains(st.Message(), "another centre") {
		t.Fatalf("message %q", st.Message())
	}
	_, err = person(l2.e, "newcomer", l2.bureau, idHeld)
	st = wantCode(t, err, codes.AlreadyExists, identity.ReasonIDNumberTaken)
	if !strings.Contains(st.Message(), "another centre") || strings.Contains(st.Message(), "harbourmaster") {
		t.Fatalf("message %q", st.Message())
	}
	// REST answers it as a local duplicate: 409.
	code, body, _ := l2.e.rest("POST", "/v1/users", map[string]string{"authorization": "Bearer " + l2.e.token},
		map[string]any{"login_name": "harbourmaster", "display_name": "X", "org_id": l2.bureau})
	if code != 409 {
		t.Fatalf("REST create of a name held at level 1: %d %v", code, body)
	}

	// A name level 1 reserved for another centre's person being created
	// (a second level-2 centre asking over its own leaf) is refused here;
	// the same centre's question again is no conflict.
	nc, _ := l2.nats.Connect(t)
	other := uniqpeer.NewClient(nc, "l2b")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// A centre level 1 does not know is refused, and reserves nothing.
	if _, err := uniqpeer.NewClient(nc, "squatter").Claim(ctx, identity.UniqueClaim{PersonID: "x", Centre: "l2b", Login: "racer"}); err == nil ||
		!strings.Contains(err.Error(), identity.ReasonUniquenessRefused) {
		t.Fatalf("an unknown centre's claim: %v", err)
	}
	if v, err := other.Claim(ctx, identity.UniqueClaim{PersonID: "person-of-l2b", Centre: "l2b", Login: "racer"}); err != nil || v.LoginTaken {
		t.Fatalf("the other centre's claim: %+v %v", v, err)
	}
	_, err = person(l2.e, "racer", l2.bureau, "")
	wantCode(t, err, codes.AlreadyExists, "ALREADY_EXISTS")
	if v, err := other.Claim(ctx, identity.UniqueClaim{PersonID: "person-of-l2b", Centre: "l2b", Login: "racer"}); err != nil || v.LoginTaken {
		t.Fatalf("the other centre's claim again: %+v %v", v, err)
	}

	// A free name and number pass; the other centre may then not have them.
	pilot, err := person(l2.e, "pilot", l2.bureau, idFree)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := other.Claim(ctx, identity.UniqueClaim{PersonID: "person-of-l2b", Centre: "l2b", Login: "pilot"}); err != nil || !v.LoginTaken {
		t.Fatalf("the other centre claiming l2a's new name: %+v %v", v, err)
	}
	// The person's own update (the same number again, another one) is no
	// conflict; a number held at level 1 is refused.
	for _, n := range []string{idFree, residentID("11010519800101003")} {
		if _, err := l2.e.admin.UpdateUser(l2.e.adm(), &identityv1.UpdateUserRequest{Id: pilot.GetId(), UpdateMask: []string{"id_number"},
			IdNumber: n}); err != nil {
			t.Fatalf("own update: %v", err)
		}
	}
	_, err = l2.e.admin.UpdateUser(l2.e.adm(), &identityv1.UpdateUserRequest{Id: pilot.GetId(), UpdateMask: []string{"id_number"}, IdNumber: idHeld})
	wantCode(t, err, codes.AlreadyExists, identity.ReasonIDNumberTaken)

	// Level 1 holds the replica: its own create of the name is refused
	// locally, and of the number through the centres key.
	at2, err := l2.e.admin.GetUser(l2.e.adm(), &identityv1.GetUserRequest{Id: pilot.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	eventuallyWithin(t, 2*time.Minute, "the person and their new number replicated to level 1", func() bool {
		u, err := l1.e.admin.GetUser(l1.e.adm(), &identityv1.GetUserRequest{Id: pilot.GetId()})
		return err == nil && u.GetIdNumberMasked() == at2.GetIdNumberMasked()
	})
	_, err = person(l1.e, "PILOT", l1.e.root, "")
	wantCode(t, err, codes.AlreadyExists, "ALREADY_EXISTS")
	_, err = person(l1.e, "pilot-one", l1.e.root, residentID("11010519800101003"))
	wantCode(t, err, codes.AlreadyExists, identity.ReasonIDNumberTaken)

	// Cut off: l2a keeps creating its people (allow, the default), each
	// audited UNIQUENESS_UNCHECKED at l2a.
	l2.nats.Link.Cut()
	synctest.WaitLeaf(t, l2.nats.Server, false)
	islander, err := person(l2.e, "islander", l2.bureau, idCut)
	if err != nil {
		t.Fatalf("cut off, allow: %v", err)
	}
	q := auditv1.NewAuditQueryServiceClient(l2.e.conn)
	eventually(t, "the unchecked create audited", func() bool {
		res, err := q.QueryRecords(l2.e.aud(), &auditv1.QueryRecordsRequest{Api: "user.create", Subject: "user:" + islander.GetId(), PageSize: 10})
		return err == nil && len(res.GetRecords()) == 1 && res.GetRecords()[0].GetReason() == identity.ReasonUniquenessUnchecked
	})

	// refuse: nothing is created while level 1 does not answer.
	l2.stop(t)
	l2.e = start(t, l2Config(true))
	l2.e.login()
	_, err = person(l2.e, "castaway", l2.bureau, "")
	st = wantCode(t, err, codes.Unavailable, identity.ReasonUniquenessUnavailable)
	if !strings.Contains(st.Message(), "level-1 centre did not answer") {
		t.Fatalf("message %q", st.Message())
	}
	if _, err := l2.e.admin.ListUsers(l2.e.adm(), &identityv1.ListUsersRequest{}); err != nil {
		t.Fatal(err)
	}
	// Healed, the same create passes.
	l2.nats.Link.Heal()
	synctest.WaitLeaf(t, l2.nats.Server, true)
	eventually(t, "the create once level 1 answers again", func() bool {
		_, err := person(l2.e, "castaway", l2.bureau, "")
		return err == nil
	})
}
