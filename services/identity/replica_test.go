package identity_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// replicaCentre is one centre's identity on its own SQLite file.
type replicaCentre struct {
	db  *store.DB
	svc *identity.Service
	// keys: the centre's data keys under a key ring (newKeyedCentre);
	// nil: a sealer of its own.
	keys *identity.Keys
}

func newReplicaCentre(t *testing.T) *replicaCentre { return newKeyedCentre(t, nil) }

// newKeyedCentre is a centre whose data keys are wrapped by ring, as a
// deployed centre's (nil: a sealer of its own, no data keys).
func newKeyedCentre(t *testing.T, ring *crypto.Ring) *replicaCentre {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite", filepath.Join(t.TempDir(), "identity.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := sqlstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	c := &replicaCentre{db: db}
	if ring != nil {
		if c.keys, err = identity.OpenKeys(ctx, sqlstore.New(db), ring, false, zap.NewNop()); err != nil {
			t.Fatal(err)
		}
	}
	c.svc = c.with(t, nil)
	if _, _, err := c.svc.Bootstrap(ctx, evAdminPass); err != nil {
		t.Fatal(err)
	}
	return c
}

// with returns the centre's identity with centre settings h (its own
// keys: centres do not share data keys).
func (c *replicaCentre) with(t *testing.T, h *centre.Homes) *identity.Service {
	t.Helper()
	svc := testService(t, identity.Deps{Store: sqlstore.New(c.db), Homes: h, Keys: c.keys,
		Sleep: func(context.Context, time.Duration) error { return nil }})
	c.svc = svc
	return svc
}

// changes reads the identity CHANGES events of c's outbox after seq, with
// the outbox sequence as version (the order the relay publishes them in).
func (c *replicaCentre) changes(t *testing.T, after int64) ([]identity.ReplicaChange, int64, [][]byte) {
	t.Helper()
	rows, err := c.db.QueryContext(context.Background(),
		`SELECT seq, id, subject, payload FROM events_outbox WHERE seq > ? ORDER BY seq`, after)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var (
		out    []identity.ReplicaChange
		audits [][]byte
		last   = after
	)
	for rows.Next() {
		var (
			seq      int64
			id, subj string
			payload  []byte
		)
		if err := rows.Scan(&seq, &id, &subj, &payload); err != nil {
			t.Fatal(err)
		}
		last = seq
		if strings.HasPrefix(subj, "uias.changes.identity.") {
			out = append(out, identity.ReplicaChange{EventID: id, Subject: subj, Version: uint64(seq), Payload: payload})
		} else {
			audits = append(audits, payload)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out, last, audits
}

// TestReplicaAppliedIntoIdentity: the changes a level-2 centre writes of
// its bureau (org, person with a password, group, application with its
// secret, account link, later changes) applied at level 1 let level 1 log
// the person in and authenticate the application; a redelivered batch
// applies nothing twice; what is not the bureau's (the level-2 centre's own
// root and administrator) is not applied; the replicas refuse writes with
// HOME_CENTRE_ELSEWHERE; the digests of both centres are equal; and the
// hashes never reach an audit record.
func TestReplicaAppliedIntoIdentity(t *testing.T) {
	ctx := context.Background()
	l2, l1 := newReplicaCentre(t), newReplicaCentre(t)
	// The bureau is set up at l2 on its own, then l2 becomes a centre.
	admin2, _ := adminCtx(t, l2.svc, "10.0.0.2", "l2")
	bureau, err := l2.svc.CreateOrg(admin2, "bureau-a", "Bureau A", evRoot(t, l2.svc).ID)
	if err != nil {
		t.Fatal(err)
	}
	subtrees := map[string]string{bureau.ID: "l2a"}
	svc2 := l2.with(t, &centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: subtrees})
	svc1 := l1.with(t, &centre.Homes{Self: "l1", Level: 1, Subtrees: subtrees})
	admin1, _ := adminCtx(t, svc1, "10.0.0.1", "l1")

	sub, err := svc2.CreateOrg(admin2, "a-1", "A one", bureau.ID)
	if err != nil {
		t.Fatal(err)
	}
	const pw, pw2 = "Bureau-Pass-1", "Bureau-Pass-2"
	u, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "sailor", DisplayName: "Sailor", OrgID: sub.ID,
		IDType: identity.IDTypeResidentID, IDNumber: evIDNumber, Phone: evPhone, Password: pw, IsAdmin: true})
	if err != nil {
		t.Fatal(err)
	}
	g, err := svc2.CreateGroup(admin2, "crew", "Crew", sub.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.SetGroupMember(admin2, g.ID, u.ID, true); err != nil {
		t.Fatal(err)
	}
	// Level 2 registers its own business system (homed there).
	app, secret, err := svc2.CreateApp(admin2, identity.NewApp{Type: "OA", Code: "harbour", Name: "Harbour"})
	if err != nil {
		t.Fatalf("level 2 may register its business systems: %v", err)
	}
	if _, err := svc2.CreateLink(admin2, u.ID, app.ID, "acct-sailor"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.UpdateUser(admin2, u.ID, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: "Able Sailor"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.SetPassword(admin2, u.ID, pw2, false); err != nil {
		t.Fatal(err)
	}
	_, secret2, err := svc2.RotateAppSecret(admin2, app.ID, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.EnrollFinger(admin2, u.ID, 2, impression(2, 0)); err != nil {
		t.Fatal(err)
	}

	cs, _, audits := l2.changes(t, 0)
	out, err := svc1.ApplyReplica(ctx, "l2a", cs)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[identity.ReplicaOutcome]int{}
	for _, oc := range out {
		counts[oc]++
	}
	// Not the bureau's: l2's root org and its administrator.
	if counts[identity.ReplicaNotHomed] != 2 || counts[identity.ReplicaConflict] != 0 || counts[identity.ReplicaStale] != 0 {
		t.Fatalf("outcomes %v", out)
	}
	// Redelivered (a crash before the sync cursor moved): nothing twice.
	again, err := svc1.ApplyReplica(ctx, "l2a", cs)
	if err != nil {
		t.Fatal(err)
	}
	for i, oc := range again {
		if oc == identity.ReplicaApplied {
			t.Fatalf("change %d (%s) applied twice", i, cs[i].Subject)
		}
	}

	// The top of the bureau hangs under level 1's root here, and level 1's
	// local event says so (authz mirrors the org tree from it), not the
	// level-2 root it hangs under at its home.
	local, _, _ := l1.changes(t, 0)
	var attached string
	for _, c := range local {
		if c.Subject == "uias.changes.identity.org.replica.created" && strings.Contains(string(c.Payload), `"id":"`+bureau.ID+`"`) {
			var p struct {
				Data struct {
					ParentID string `json:"parent_id"`
				} `json:"data"`
			}
			if err := json.Unmarshal(c.Payload, &p); err != nil {
				t.Fatal(err)
			}
			attached = p.Data.ParentID
		}
	}
	if root1 := evRoot(t, svc1).ID; attached != root1 {
		t.Fatalf("level 1's event of the bureau names parent %q, want level 1's root %q", attached, root1)
	}
	// The sealed ID and phone numbers travel sealed, as the home stored
	// them (centres sharing the key ring open them).
	home, err := sqlstore.New(l2.db).GetUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := sqlstore.New(l1.db).GetUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if home.IDNumberEnc == "" || home.PhoneEnc == "" || rep.IDNumberEnc != home.IDNumberEnc || rep.PhoneEnc != home.PhoneEnc {
		t.Fatalf("sealed values at level 1 %q %q, at the home %q %q", rep.IDNumberEnc, rep.PhoneEnc, home.IDNumberEnc, home.PhoneEnc)
	}

	// Level 1 logs the level-2 person in through the level-2 application.
	ca, err := svc1.AuthenticateApp(ctx, app.ID, secret2, netip.MustParseAddr("10.0.0.9"))
	if err != nil {
		t.Fatalf("level-2 application at level 1: %v", err)
	}
	actx := caller.With(ctx, &caller.Caller{App: ca, ClientIP: netip.MustParseAddr("10.0.0.9"), RequestID: "r"})
	res, err := svc1.Authenticate(actx, identity.AuthRequest{AppUserID: "acct-sailor", Password: pw2, AuthType: identity.AuthPassword})
	if err != nil || res.Reason != identity.ReasonOK {
		t.Fatalf("level-2 person at level 1: %+v %v", res, err)
	}
	if res.User.IsAdmin {
		t.Fatal("a replica carries the legacy administrator flag")
	}
	if _, err := svc1.AuthenticateApp(ctx, app.ID, secret, netip.MustParseAddr("10.0.0.9")); err != nil {
		t.Fatalf("previous secret within its overlap at level 1: %v", err)
	}

	// Replicas refuse writes, naming their home.
	refused := func(err error) {
		t.Helper()
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Reason != centre.ReasonElsewhere || !strings.Contains(ae.Message, `"l2a"`) {
			t.Fatalf("want HOME_CENTRE_ELSEWHERE naming l2a, got %v", err)
		}
	}
	_, err = svc1.UpdateUser(admin1, u.ID, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: "X"})
	refused(err)
	_, err = svc1.UpdateApp(admin1, app.ID, identity.AppUpdate{Mask: []string{"name"}, Name: "X"})
	refused(err)
	_, _, err = svc1.RotateAppSecret(admin1, app.ID, nil, nil)
	refused(err)
	// the person's own password change too: made at level 1 it worked
	// there alone, the home keeping the old one (trial8 D1); and their
	// fingers are enrolled and deleted at home only (trial8 D4)
	refused(svc1.ChangePassword(actx, "acct-sailor", pw2, "Bureau-Pass-3"))
	if res, err := svc1.Authenticate(actx, identity.AuthRequest{AppUserID: "acct-sailor", Password: pw2, AuthType: identity.AuthPassword}); err != nil ||
		res.Reason != identity.ReasonOK {
		t.Fatalf("the refused change changed the password at level 1: %+v %v", res, err)
	}
	_, err = svc1.EnrollFinger(admin1, u.ID, 1, impression(3, 0))
	refused(err)
	refused(svc1.DeleteFinger(admin1, u.ID, 1))

	// Equal replicas: the digests of the bureau's rows are equal.
	d1, err := svc1.ReplicaDigest(ctx, "l2a")
	if err != nil {
		t.Fatal(err)
	}
	d2, err := svc2.ReplicaDigest(ctx, "l2a")
	if err != nil {
		t.Fatal(err)
	}
	if len(d1) != len(d2) {
		t.Fatalf("digests %v / %v", d1, d2)
	}
	for i := range d1 {
		if d1[i] != d2[i] || d1[i].Rows == 0 {
			t.Errorf("table %s: level 1 %+v, level 2 %+v", d1[i].Table, d1[i], d2[i])
		}
	}

	// An application level 1 registers is homed there: applied at level 2,
	// it authenticates there and refuses writes there.
	portal, psecret, err := svc1.CreateApp(admin1, identity.NewApp{Type: "OA", Code: "portal", Name: "Portal"})
	if err != nil {
		t.Fatal(err)
	}
	down, _, _ := l1.changes(t, 0)
	if _, err := svc2.ApplyReplica(ctx, "l1", down); err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.AuthenticateApp(ctx, portal.ID, psecret, netip.MustParseAddr("10.0.0.9")); err != nil {
		t.Fatalf("level-1 application at level 2: %v", err)
	}
	_, err = svc2.UpdateApp(admin2, portal.ID, identity.AppUpdate{Mask: []string{"name"}, Name: "X"})
	var ae *apierr.Error
	if !errors.As(err, &ae) || ae.Reason != centre.ReasonElsewhere || !strings.Contains(ae.Message, `"l1"`) {
		t.Fatalf("want HOME_CENTRE_ELSEWHERE naming l1, got %v", err)
	}
	if _, err := svc2.ApplyReplica(ctx, "l2a", nil); err == nil {
		t.Fatal("a centre applied its own changes as a replica")
	}

	// The hashes travel in the change events only, never in audit records.
	stored, err := sqlstore.New(l2.db).GetUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := sqlstore.New(l2.db).GetApp(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{stored.PasswordHash, a2.SecretHash, a2.PrevSecretHash} {
		if h == "" {
			t.Fatal("no hash to look for")
		}
		for _, p := range audits {
			if bytes.Contains(p, []byte(h)) {
				t.Fatalf("an audit record holds a hash: %s", p)
			}
		}
	}
	for _, c := range cs {
		if bytes.Contains(c.Payload, []byte(evIDNumber)) || bytes.Contains(c.Payload, []byte(pw)) || bytes.Contains(c.Payload, []byte(secret)) {
			t.Fatalf("a change event holds personal data or a secret in clear: %s", c.Payload)
		}
	}
}

// TestReplicaOfADeletedPerson: a person deleted at their home centre is
// deleted at the centre holding their replica too (else they would still
// log in there), with a local event (user.replica.deleted) that ends their
// sessions and leaves authz's mirror there.
func TestReplicaOfADeletedPerson(t *testing.T) {
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-d")
	svc2, svc1 := l2.svc, l1.svc
	u, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "deckhand", DisplayName: "Deckhand", OrgID: bureau.ID,
		Password: "Harbour-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	cs, last, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	if _, err := svc1.GetUser(ctx, u.ID); err != nil {
		t.Fatalf("the replica before the deletion: %v", err)
	}
	_, mark, _ := l1.changes(t, 0)

	if err := svc2.DeleteUser(admin2, u.ID); err != nil {
		t.Fatal(err)
	}
	cs, _, _ = l2.changes(t, last)
	out, err := svc1.ApplyReplica(ctx, "l2a", cs)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0] != identity.ReplicaApplied {
		t.Fatalf("outcomes of the deletion: %v (%d changes)", out, len(cs))
	}
	if _, err := svc1.GetUser(ctx, u.ID); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("the replica of a deleted person: %v", err)
	}
	local, _, _ := l1.changes(t, mark)
	if len(local) != 1 || local[0].Subject != "uias.changes.identity.user.replica.deleted" {
		t.Fatalf("level 1's local events of the deletion: %+v", local)
	}
	// Redelivered: nothing left to delete, nothing applied.
	again, err := svc1.ApplyReplica(ctx, "l2a", cs)
	if err != nil || len(again) != 1 || again[0] == identity.ReplicaApplied {
		t.Fatalf("redelivered deletion: %v %v", again, err)
	}
}

// TestReplicaOfDeletedGroupAndOrg: a group, then its (empty) org, deleted
// at their home centre are deleted at the centre holding their replicas.
func TestReplicaOfDeletedGroupAndOrg(t *testing.T) {
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-g")
	svc2, svc1 := l2.svc, l1.svc
	dock, err := svc2.CreateOrg(admin2, "dock", "Dock", bureau.ID)
	if err != nil {
		t.Fatal(err)
	}
	g, err := svc2.CreateGroup(admin2, "crane", "Crane", dock.ID)
	if err != nil {
		t.Fatal(err)
	}
	cs, last, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	if _, err := svc1.GetGroup(ctx, g.ID); err != nil {
		t.Fatalf("the group's replica: %v", err)
	}
	// A rename at home renames the replica; the replica is not renamed
	// where it is not homed.
	if _, err := svc2.UpdateGroup(admin2, g.ID, "Crane crew"); err != nil {
		t.Fatal(err)
	}
	cs, last, _ = l2.changes(t, last)
	if out, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil || len(out) != 1 || out[0] != identity.ReplicaApplied {
		t.Fatalf("the rename's replica: %v %v", out, err)
	}
	if rg, err := svc1.GetGroup(ctx, g.ID); err != nil || rg.Name != "Crane crew" || rg.Code != "crane" {
		t.Fatalf("the renamed group's replica: %+v %v", rg, err)
	}
	if _, err := svc1.UpdateGroup(ctx, g.ID, "Elsewhere"); err == nil {
		t.Fatal("a replica renamed away from its home centre")
	}
	if err := svc2.DeleteGroup(admin2, g.ID); err != nil {
		t.Fatal(err)
	}
	if err := svc2.DeleteOrg(admin2, dock.ID); err != nil {
		t.Fatal(err)
	}
	cs, _, _ = l2.changes(t, last)
	out, err := svc1.ApplyReplica(ctx, "l2a", cs)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || out[0] != identity.ReplicaApplied || out[1] != identity.ReplicaApplied {
		t.Fatalf("outcomes: %v", out)
	}
	if _, err := svc1.GetGroup(ctx, g.ID); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("the replica of a deleted group: %v", err)
	}
	if _, err := svc1.GetOrg(ctx, dock.ID); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("the replica of a deleted org: %v", err)
	}
}

// TestReplicaOfADeletedApp: an application deleted at its home centre is
// deleted at the centre holding its replica too (its App_ID and secret
// would still be accepted there), with its account links, and a local
// event (app.replica.deleted) for the components there.
func TestReplicaOfADeletedApp(t *testing.T) {
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-a")
	svc2, svc1 := l2.svc, l1.svc
	u, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "purser", DisplayName: "Purser", OrgID: bureau.ID,
		Password: "Harbour-Pass-2"})
	if err != nil {
		t.Fatal(err)
	}
	app, secret, err := svc2.CreateApp(admin2, identity.NewApp{Type: "OA", Code: "quay", Name: "Quay"})
	if err != nil {
		t.Fatal(err)
	}
	link, err := svc2.CreateLink(admin2, u.ID, app.ID, "acct-purser")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.UpdateApp(admin2, app.ID, identity.AppUpdate{Mask: []string{"status"}, Status: identity.AppSuspended}); err != nil {
		t.Fatal(err)
	}
	cs, last, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	if _, err := svc1.GetApp(ctx, app.ID); err != nil {
		t.Fatalf("the replica before the deletion: %v", err)
	}
	// The replica refuses the deletion: it is the home centre's.
	if err := svc1.DeleteApp(ctx, app.ID); err == nil {
		t.Fatal("a replica of an application deleted away from its home")
	}
	_, mark, _ := l1.changes(t, 0)

	if err := svc2.DeleteApp(admin2, app.ID); err != nil {
		t.Fatal(err)
	}
	cs, _, _ = l2.changes(t, last)
	out, err := svc1.ApplyReplica(ctx, "l2a", cs)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0] != identity.ReplicaApplied {
		t.Fatalf("outcomes of the deletion: %v (%d changes)", out, len(cs))
	}
	if _, err := svc1.GetApp(ctx, app.ID); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("the replica of a deleted application: %v", err)
	}
	if _, err := svc1.GetLink(ctx, link.ID); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("the replica of a deleted application's link: %v", err)
	}
	if _, err := svc1.AuthenticateApp(ctx, app.ID, secret, netip.Addr{}); reasonOf(err) != "BAD_APP_CREDENTIALS" {
		t.Fatalf("a deleted application's credentials at the replica: %v", err)
	}
	local, _, _ := l1.changes(t, mark)
	if len(local) != 1 || local[0].Subject != "uias.changes.identity.app.replica.deleted" {
		t.Fatalf("level 1's local events of the deletion: %+v", local)
	}
	// Redelivered: nothing left to delete, nothing applied.
	again, err := svc1.ApplyReplica(ctx, "l2a", cs)
	if err != nil || len(again) != 1 || again[0] == identity.ReplicaApplied {
		t.Fatalf("redelivered deletion: %v %v", again, err)
	}
}

// TestAppointmentRevokesTokensAtOtherCentres: an appointment at the
// person's home centre revokes the administrator tokens they hold at the
// centres holding them as a replica too (review sec10 M2): a token the
// person took at level 1 before, powerless since an earlier role was
// revoked, does not work again with the new one. A login after it works,
// and a redelivered batch revokes nothing more.
func TestAppointmentRevokesTokensAtOtherCentres(t *testing.T) {
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-t")
	svc2, svc1 := l2.svc, l1.svc
	// level 1's authz: the officer administers there (a replica never
	// carries the legacy flag)
	svc1.SetAdminGate(func(_ context.Context, u *identity.User) (bool, error) { return u.LoginName == "officer", nil })
	u, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "officer", DisplayName: "Officer", OrgID: bureau.ID,
		Password: "Harbour-Pass-1", IsAdmin: true})
	if err != nil {
		t.Fatal(err)
	}
	// the officer makes the password their own at home
	if _, _, _, err := svc2.AdminLoginNewPassword(from("10.0.0.5"), "officer", "Harbour-Pass-1", "Deckside-Own-22"); err != nil {
		t.Fatal(err)
	}
	cs, last, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	old, _, _, err := svc1.AdminLogin(from("10.0.1.5"), "officer", "Deckside-Own-22")
	if err != nil {
		t.Fatalf("administrator login at level 1: %v", err)
	}
	if _, err := svc1.AuthenticateAdmin(ctx, old); err != nil {
		t.Fatalf("level 1's token before the appointment: %v", err)
	}
	_, mark, _ := l1.changes(t, 0)

	if act, err := svc2.PrepareAppointment(ctx, u.ID, identity.RoleSystemAdmin); err != nil || act != "" {
		t.Fatalf("appointment at home: %q %v", act, err)
	}
	cs, _, _ = l2.changes(t, last)
	var sent bool
	for _, c := range cs {
		sent = sent || c.Subject == "uias.changes.identity.user.admin_tokens_revoked"
	}
	if !sent {
		t.Fatalf("the appointment sent no user.admin_tokens_revoked change: %+v", cs)
	}
	out, err := svc1.ApplyReplica(ctx, "l2a", cs)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(out, identity.ReplicaApplied) {
		t.Fatalf("outcomes of the appointment's changes: %v", out)
	}
	if _, err := svc1.AuthenticateAdmin(ctx, old); reasonOf(err) != "BAD_ADMIN_TOKEN" {
		t.Fatalf("level 1's token from before the appointment still works: %v", err)
	}
	local, _, audits := l1.changes(t, mark)
	var localEv, audited bool
	for _, c := range local {
		localEv = localEv || c.Subject == "uias.changes.identity.user.replica.admin_tokens_revoked"
	}
	for _, a := range audits {
		audited = audited || bytes.Contains(a, []byte(`"api":"admin.tokens_revoked"`)) && bytes.Contains(a, []byte(`"subject":"user:`+u.ID+`"`)) &&
			bytes.Contains(a, []byte(`"home_centre":"l2a"`))
	}
	if !localEv || !audited {
		t.Fatalf("level 1's local events of the revocation: %+v; audited: %v", local, audited)
	}
	fresh, _, _, err := svc1.AdminLogin(from("10.0.1.5"), "officer", "Deckside-Own-22")
	if err != nil {
		t.Fatalf("administrator login at level 1 after the appointment: %v", err)
	}
	// redelivered: nothing applied again, the new login stands
	if again, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil || slices.Contains(again, identity.ReplicaApplied) {
		t.Fatalf("redelivered batch: %v %v", again, err)
	}
	if _, err := svc1.AuthenticateAdmin(ctx, fresh); err != nil {
		t.Fatalf("level 1's token after the appointment: %v", err)
	}
}

// sealedPerson is a person of level 2 with everything that is sealed: ID
// and phone numbers, finger 2 and an authenticator app; and an
// application linked to them.
type sealedPerson struct {
	user        *identity.User
	app         *identity.App
	secret      string
	totpKey     []byte
	enrolStep   int64
	browser     context.Context
	fingerProbe []byte
	probes      int // fresh captures presented so far
}

func newSealedPerson(t *testing.T, svc2 *identity.Service, admin2 context.Context, bureau *identity.Org) *sealedPerson {
	t.Helper()
	p := &sealedPerson{browser: browserAt("192.0.2.45"), fingerProbe: withPosition(t, impression(4, 1), 2)}
	var err error
	p.user, err = svc2.CreateUser(admin2, identity.NewUser{LoginName: "pilot", DisplayName: "Pilot", OrgID: bureau.ID,
		IDType: identity.IDTypeResidentID, IDNumber: evIDNumber, Phone: evPhone, Password: "Harbour-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	if p.app, p.secret, err = svc2.CreateApp(admin2, identity.NewApp{Type: "OA", Code: "quay", Name: "Quay"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.CreateLink(admin2, p.user.ID, p.app.ID, "acct-pilot"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.EnrollFinger(admin2, p.user.ID, 2, withPosition(t, impression(4, 0), 2)); err != nil {
		t.Fatal(err)
	}
	en, err := svc2.BeginTOTPEnrolment(p.browser, p.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	p.totpKey, _ = base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(en.Secret)
	p.enrolStep = identity.TOTPStep(time.Now())
	if _, err := svc2.ConfirmTOTPEnrolment(p.browser, p.user.ID, "Harbour-Pass-1", en.Token, identity.TOTPCode(p.totpKey, p.enrolStep)); err != nil {
		t.Fatal(err)
	}
	return p
}

// finger is the verdict of svc on the person's right finger.
// appCtx is a call of the person's application to svc.
func (p *sealedPerson) appCtx(t *testing.T, svc *identity.Service) context.Context {
	t.Helper()
	ctx := context.Background()
	ca, err := svc.AuthenticateApp(ctx, p.app.ID, p.secret, netip.MustParseAddr("10.0.0.9"))
	if err != nil {
		t.Fatal(err)
	}
	return caller.With(ctx, &caller.Caller{App: ca, ClientIP: netip.MustParseAddr("10.0.0.9"), RequestID: "r"})
}

func (p *sealedPerson) finger(t *testing.T, svc *identity.Service) identity.Reason {
	t.Helper()
	// a fresh capture every time (the same bytes again are a replay)
	p.probes++
	probe := withPosition(t, impression(4, 1+p.probes), 2)
	res, err := svc.Authenticate(p.appCtx(t, svc), identity.AuthRequest{AppUserID: "acct-pilot", AuthType: identity.AuthFingerprint,
		Fingerprint: probe})
	if err != nil {
		t.Fatal(err)
	}
	return res.Reason
}

// totpLogin is the verdict of svc on the person's password and then the
// app's code of step.
func (p *sealedPerson) totpLogin(t *testing.T, svc *identity.Service, step int64) identity.Reason {
	t.Helper()
	res, err := svc.SSOLoginBound(p.browser, "pilot", "Harbour-Pass-1", "b")
	if err != nil || res.Reason != identity.ReasonOTPRequired {
		t.Fatalf("password: %+v %v", res, err)
	}
	res, err = svc.SSOLoginOTP(p.browser, res.OTPToken, identity.TOTPCode(p.totpKey, step), "b")
	if err != nil {
		t.Fatalf("code: %v", err)
	}
	return res.Reason
}

// passwordOTP is Authenticate with the password and the app's code otp.
func (p *sealedPerson) passwordOTP(t *testing.T, svc *identity.Service, otp string) identity.Reason {
	t.Helper()
	res, err := svc.Authenticate(p.appCtx(t, svc), identity.AuthRequest{AppUserID: "acct-pilot", AuthType: identity.AuthPassword,
		Password: "Harbour-Pass-1", OTP: otp})
	if err != nil {
		t.Fatal(err)
	}
	return res.Reason
}

// TestSealedDataBetweenCentres: centres that share the master key ring
// (each with data keys of its own) open what the other seals: a level-2
// person's finger and authenticator app serve at level 1, and their ID
// number opens there; level 1 holds them sealed with its own data key, so
// its rotation and re-encryption move them like its own values; the
// digests of both centres stay equal (trial8 D3).
func TestSealedDataBetweenCentres(t *testing.T) {
	ctx := context.Background()
	ring := newRing(t)
	l2, l1, admin2, bureau := newKeyedBureauCentres(t, "bureau-s", ring, ring)
	svc2, svc1 := l2.svc, l1.svc
	p := newSealedPerson(t, svc2, admin2, bureau)
	cs, _, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	if r := p.finger(t, svc1); r != identity.ReasonOK {
		t.Fatalf("the right finger at level 1: %v", r)
	}
	if r := p.totpLogin(t, svc1, p.enrolStep+1); r != identity.ReasonOK {
		t.Fatalf("the app's code at level 1: %v", r)
	}
	if n, err := svc1.PersonIDNumber(ctx, p.user.ID); err != nil || n != evIDNumber {
		t.Fatalf("the ID number at level 1: %q %v", n, err)
	}
	wantSameDigests(t, "sealed data replicated", svc1, svc2)
	// Level 1's own rotation and re-encryption move the person's values
	// to its new key, and they still serve.
	admin1, _ := adminCtx(t, svc1, "10.0.0.1", "l1")
	st, err := svc1.RotateKeys(admin1)
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc1.ReencryptData(admin1, 0)
	if err != nil || res.Failed != 0 || res.Remaining != 0 || res.Reencrypted == 0 {
		t.Fatalf("re-encrypt at level 1 (active key %s): %+v %v", st.ActiveKeyID, res, err)
	}
	if r := p.finger(t, svc1); r != identity.ReasonOK {
		t.Fatalf("the right finger at level 1 after its rotation: %v", r)
	}
	if n, err := svc1.PersonIDNumber(ctx, p.user.ID); err != nil || n != evIDNumber {
		t.Fatalf("the ID number at level 1 after its rotation: %q %v", n, err)
	}
	if r := p.finger(t, svc2); r != identity.ReasonOK {
		t.Fatalf("the right finger at home: %v", r)
	}
}

// TestFingersSealedElsewhere: a person's fingers, sealed at their home
// centre with its data keys, do not open at level 1 when its key ring is
// another: there the right finger answers NO_FINGERPRINT (-4), never a
// wrong finger, and the tries count nothing towards the lockout (trial8
// D2: five tries locked the person at every centre); the authenticator
// app's code and the ID number do not serve there either, with clear
// errors.
func TestFingersSealedElsewhere(t *testing.T) {
	ctx := context.Background()
	ring2, ring1 := newRing(t), newRing(t)
	l2, l1, admin2, bureau := newKeyedBureauCentres(t, "bureau-f", ring2, ring1)
	svc2, svc1 := l2.svc, l1.svc
	p := newSealedPerson(t, svc2, admin2, bureau)
	u := p.user
	cs, _, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	auth := func(svc *identity.Service) identity.Reason { return p.finger(t, svc) }
	_, err := svc1.PersonIDNumber(ctx, u.ID)
	wantReason(t, "the ID number at level 1, whose key ring is another", err, apierr.FailedPrecondition, "PERSONAL_DATA_UNREADABLE")
	// an export in clear at level 1 still serves, with the other
	// centre's person masked (trial10 M1)
	svc1.SetRevealGate(func(context.Context, *identity.User) (bool, error) { return true, nil })
	admin1, _ := adminCtx(t, svc1, "10.0.0.1", "l1")
	var pilotRow []string
	exported, err := svc1.ExportCounted(admin1, identity.ExportOptions{Kind: "users", Reveal: true}, func(vals []string) error {
		if slices.Contains(vals, "pilot") {
			pilotRow = append([]string(nil), vals...)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("an export in clear at level 1: %v", err)
	}
	if exported.MaskedOtherCentres != 1 || exported.Rows < 2 {
		t.Fatalf("an export in clear at level 1 answered %+v, want the one person of level 2 counted masked", exported)
	}
	if slices.Contains(pilotRow, evIDNumber) || !slices.Contains(pilotRow, u.IDNumberMask) {
		t.Fatalf("the other centre's person in the export: %v (mask %q)", pilotRow, u.IDNumberMask)
	}
	_, _, audits := l1.changes(t, 0)
	counted := false
	for _, a := range audits {
		counted = counted || bytes.Contains(a, []byte(`"user.export"`)) && bytes.Contains(a, []byte(`"masked_other_centres":"1"`))
	}
	if !counted {
		t.Fatal("the export's audit record does not count the person exported masked (review sec15 L5)")
	}
	// level 1's rotation and re-encryption keep them as they came, not
	// failures (trial10 M2)
	if _, err := svc1.RotateKeys(admin1); err != nil {
		t.Fatal(err)
	}
	if res, err := svc1.ReencryptData(admin1, 0); err != nil || res.Failed != 0 || res.Kept != 3 {
		t.Fatalf("re-encrypt at level 1: %+v %v (want the ID number, finger and app secret kept)", res, err)
	}
	// the app's code where the secret does not open: a result (no app
	// usable here), not an RPC error, and never a counted failure (trial10
	// design question 5)
	if r := p.totpLogin(t, svc1, p.enrolStep+1); r != identity.ReasonNoOTP {
		t.Fatalf("the app's code at the sign-in page of level 1, whose key ring is another: %v", r)
	}
	for range 6 {
		if r := p.passwordOTP(t, svc1, identity.TOTPCode(p.totpKey, p.enrolStep+1)); r != identity.ReasonNoOTP {
			t.Fatalf("Authenticate with the app's code at level 1, whose key ring is another: %v (legacy %d)", r, r.LegacyCode())
		}
	}
	_, _, audits = l1.changes(t, 0)
	unreadable := 0
	for _, a := range audits {
		if bytes.Contains(a, []byte(`"otp":"unreadable at this centre"`)) && bytes.Contains(a, []byte(`"NO_OTP"`)) {
			unreadable++
		}
	}
	if unreadable != 7 {
		t.Fatalf("%d audit records of a code that could not be checked at level 1, want 7", unreadable)
	}
	if r := auth(svc2); r != identity.ReasonOK {
		t.Fatalf("the right finger at home: %v", r)
	}
	for range 8 {
		if r := auth(svc1); r != identity.ReasonNoFingerprint {
			t.Fatalf("the right finger at level 1, where it does not open: %v", r)
		}
	}
	got, err := svc1.GetUser(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.LockedUntil.IsZero() || got.FailedCount != 0 {
		t.Fatalf("tries at level 1 counted: locked until %v, %d failures", got.LockedUntil, got.FailedCount)
	}
	if r := auth(svc2); r != identity.ReasonOK {
		t.Fatalf("the right finger at home after the tries at level 1: %v", r)
	}
}

// TestReplicaOfAPersonInAConflictingOrg: an org of level 2 whose code is
// used at level 1 too is left out there (CONFLICT); the people and orgs
// created in it are CONFLICT too, not NOT_HOMED, so that sync shows them as
// skipped changes (trial9 D3: they vanished at level 1 without a trace).
func TestReplicaOfAPersonInAConflictingOrg(t *testing.T) {
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-c")
	svc2, svc1 := l2.svc, l1.svc
	admin1, _ := adminCtx(t, svc1, "10.0.0.1", "l1")
	// the same org code at level 1 (in its own part of the tree)
	if _, err := svc1.CreateOrg(admin1, "dock", "Dock at level 1", evRoot(t, svc1).ID); err != nil {
		t.Fatal(err)
	}
	dock, err := svc2.CreateOrg(admin2, "dock", "Dock", bureau.ID)
	if err != nil {
		t.Fatal(err)
	}
	east, err := svc2.CreateOrg(admin2, "dock-east", "Dock East", dock.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.CreateOrg(admin2, "dock-east-1", "Dock East 1", east.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "stevedore", DisplayName: "Stevedore", OrgID: dock.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "crane", DisplayName: "Crane", OrgID: east.ID}); err != nil {
		t.Fatal(err)
	}
	// one change a batch (as a slow link delivers them): each finds the
	// org above it left out in an earlier batch, two levels down (review
	// sec13 M3)
	cs, _, _ := l2.changes(t, 0)
	out := make([]identity.ReplicaOutcome, len(cs))
	for i, c := range cs {
		o, err := svc1.ApplyReplica(ctx, "l2a", []identity.ReplicaChange{c})
		if err != nil {
			t.Fatal(err)
		}
		out[i] = o[0]
	}
	// a replay of them all is STALE, not a new conflict (review sec13 L1)
	again, err := svc1.ApplyReplica(ctx, "l2a", cs)
	if err != nil {
		t.Fatal(err)
	}
	for i, oc := range again {
		if oc == identity.ReplicaConflict || oc == identity.ReplicaApplied {
			t.Errorf("replayed change %d (%s): %s", i, cs[i].Subject, oc)
		}
	}
	got := map[string]identity.ReplicaOutcome{}
	for i, c := range cs {
		var p struct {
			Entity, Op, ID string
			Data           map[string]any
		}
		_ = json.Unmarshal(c.Payload, &p)
		switch {
		case p.Entity == "org" && p.ID == dock.ID:
			got["dock"] = out[i]
		case p.Entity == "org" && p.Data["code"] != nil:
			got[p.Data["code"].(string)] = out[i]
		case p.Entity == "user" && p.Data["login_name"] != nil:
			got[p.Data["login_name"].(string)] = out[i]
		}
	}
	for what, want := range map[string]identity.ReplicaOutcome{"dock": identity.ReplicaConflict,
		"dock-east": identity.ReplicaConflict, "dock-east-1": identity.ReplicaConflict, "stevedore": identity.ReplicaConflict,
		"crane": identity.ReplicaConflict} {
		if got[what] != want {
			t.Errorf("%s at level 1: %q, want %q (all: %v)", what, got[what], want, got)
		}
	}

	// A person held at level 1, moved at home into the org level 1 left
	// out, then disabled there: disabled at level 1 too, in the org they
	// are in there (review sec13 M4: they kept signing in).
	_, mark, _ := l2.changes(t, 0)
	pilot, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "harbourpilot", DisplayName: "Pilot", OrgID: bureau.ID})
	if err != nil {
		t.Fatal(err)
	}
	cs, mark2, _ := l2.changes(t, mark)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.UpdateUser(admin2, pilot.ID, identity.UserUpdate{Mask: []string{"org_id"}, OrgID: dock.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.SetUserStatus(admin2, pilot.ID, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	cs, _, _ = l2.changes(t, mark2)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	rep, err := svc1.GetUser(ctx, pilot.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != identity.StatusDisabled || rep.OrgID != bureau.ID {
		t.Fatalf("the person at level 1: status %v org %s (want disabled, in the bureau)", rep.Status, rep.OrgID)
	}
}

// newBureauCentres: a level-2 centre "l2a" homing the bureau org code,
// created under its root, and level 1 ("l1"), each on its own store and
// key ring with its centre settings; level 2's administrator context.
func newBureauCentres(t *testing.T, code string) (l2, l1 *replicaCentre, admin2 context.Context, bureau *identity.Org) {
	t.Helper()
	return newKeyedBureauCentres(t, code, nil, nil)
}

// newKeyedBureauCentres is newBureauCentres with data keys under key
// rings ring2 (level 2) and ring1 (level 1) (newKeyedCentre).
func newKeyedBureauCentres(t *testing.T, code string, ring2, ring1 *crypto.Ring) (l2, l1 *replicaCentre, admin2 context.Context, bureau *identity.Org) {
	t.Helper()
	l2, l1 = newKeyedCentre(t, ring2), newKeyedCentre(t, ring1)
	admin2, _ = adminCtx(t, l2.svc, "10.0.0.2", "l2")
	bureau, err := l2.svc.CreateOrg(admin2, code, "Bureau "+code, evRoot(t, l2.svc).ID)
	if err != nil {
		t.Fatal(err)
	}
	subtrees := map[string]string{bureau.ID: "l2a"}
	l2.with(t, &centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: subtrees})
	l1.with(t, &centre.Homes{Self: "l1", Level: 1, Subtrees: subtrees})
	return l2, l1, admin2, bureau
}

// TestLevelOneLocksALevelTwoPerson: level 1 manages every user (004
// §2.1.1): an administrator there locks a person homed at level 2 (an
// emergency stop while the home may be unreachable); the lock holds at
// level 1 at once and, as a lock change, at the home once it arrives; an
// unlock is made at the home only.
func TestLevelOneLocksALevelTwoPerson(t *testing.T) {
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-l")
	svc2, svc1 := l2.svc, l1.svc
	admin1, _ := adminCtx(t, svc1, "10.0.0.1", "l1")
	u, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "bosun", DisplayName: "Bosun", OrgID: bureau.ID, Password: "Harbour-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	cs, _, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	_, mark, _ := l1.changes(t, 0)
	if _, err := svc1.LockUser(admin1, u.ID, time.Hour); err != nil {
		t.Fatalf("level 1 locks a level-2 person: %v", err)
	}
	if got, err := svc1.GetUser(ctx, u.ID); err != nil || !got.Locked(time.Now()) {
		t.Fatalf("the person at level 1: %+v %v", got, err)
	}
	down, _, _ := l1.changes(t, mark)
	var locks []identity.ReplicaChange
	for _, c := range down {
		if c.Subject == "uias.changes.identity.lock.locked" {
			locks = append(locks, c)
		}
	}
	if len(locks) != 1 {
		t.Fatalf("level 1's lock changes: %+v", down)
	}
	// Level 1's lock names level 1's new state time of the person, which
	// its own record keeps (its ticket component judges its sessions by
	// it, ADR 0047).
	var lockEv struct {
		Data struct {
			StateAt time.Time `json:"state_at"`
		} `json:"data"`
	}
	if err := json.Unmarshal(locks[0].Payload, &lockEv); err != nil || lockEv.Data.StateAt.IsZero() {
		t.Fatalf("level 1's lock names no state time: %s %v", locks[0].Payload, err)
	}
	if got, err := svc1.GetUser(ctx, u.ID); err != nil || !got.StateChangedAt.Equal(lockEv.Data.StateAt) {
		t.Fatalf("level 1's record of the lock's state time: %+v %v", got, err)
	}
	_, homeMark, _ := l2.changes(t, 0)
	if out, err := svc2.ApplyReplica(ctx, "l1", locks); err != nil || out[0] != identity.ReplicaApplied {
		t.Fatalf("the lock at the home: %v %v", out, err)
	}
	// The home's local event of it names none (level 1's time is not the
	// home's record): its ticket component ends every session, as before.
	local, _, _ := l2.changes(t, homeMark)
	if len(local) != 1 || local[0].Subject != "uias.changes.identity.lock.replica.locked" ||
		bytes.Contains(local[0].Payload, []byte(`"state_at"`)) {
		t.Fatalf("the home's local event of level 1's lock: %+v", local)
	}
	if got, err := svc2.GetUser(ctx, u.ID); err != nil || !got.Locked(time.Now()) {
		t.Fatalf("the person at their home: %+v %v", got, err)
	}
	_, err = svc1.UnlockUser(admin1, u.ID)
	if reasonOf(err) != centre.ReasonElsewhere {
		t.Fatalf("an unlock at level 1: %v", err)
	}
}

// TestReplicaMembershipsHeldToSeparation: before a membership, a person's
// move or an org's move of level 2 is applied at level 1, level 1's
// separation check (authz's CheckReplicaSeparation) is asked with the
// person's groups and org as the batch leaves them; a change it finds
// breaking a pair is not applied (a membership or org move: CONFLICT; a
// person's move: the rest of the change applies, in their org here) and
// is audited; a failing check fails the batch, which applies nothing
// (review sec13 M2).
func TestReplicaMembershipsHeldToSeparation(t *testing.T) {
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-d")
	svc2, svc1 := l2.svc, l1.svc
	org := func(code, parent string) *identity.Org {
		o, err := svc2.CreateOrg(admin2, code, code, parent)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	east, west := org("east", bureau.ID), org("west", bureau.ID)
	person := func(login, orgID string) *identity.User {
		u, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: login, DisplayName: login, OrgID: orgID, Password: "Harbour-Pass-1"})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	ann, bob := person("ann", west.ID), person("bob", west.ID)
	group := func(code string) *identity.Group {
		g, err := svc2.CreateGroup(admin2, code, code, bureau.ID)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	clerks, readers := group("clerks"), group("readers")
	cs, last, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}

	for _, m := range []struct{ g, u string }{{clerks.ID, ann.ID}, {clerks.ID, bob.ID}, {readers.ID, ann.ID}} {
		if _, err := svc2.SetGroupMember(admin2, m.g, m.u, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc2.UpdateUser(admin2, ann.ID, identity.UserUpdate{Mask: []string{"org_id", "display_name"}, OrgID: east.ID, DisplayName: "Ann East"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.MoveOrg(admin2, west.ID, east.ID); err != nil {
		t.Fatal(err)
	}
	cs, _, _ = l2.changes(t, last)

	// a check that fails (authz unreachable) fails the batch
	svc1.SetSeparationCheck(func(context.Context, identity.SeparationQuestion) (identity.SeparationAnswer, error) {
		return identity.SeparationAnswer{}, apierr.ErrUnavailable
	})
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); !errors.Is(err, apierr.ErrUnavailable) {
		t.Fatalf("a batch whose check fails: %v", err)
	}
	users1 := sqlstore.New(l1.db)
	groupsOf := func(id string) []string {
		gs, err := users1.UserGroups(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, g := range gs {
			out = append(out, g.ID)
		}
		slices.Sort(out)
		return out
	}
	if got := groupsOf(bob.ID); len(got) != 0 {
		t.Fatalf("bob's groups at level 1 after the failed batch: %v", got)
	}
	// level 1's pairs: ann may not be a clerk, nor be in east; west may
	// not go under east
	var asked []identity.SeparationQuestion
	svc1.SetSeparationCheck(func(_ context.Context, q identity.SeparationQuestion) (identity.SeparationAnswer, error) {
		asked = append(asked, q)
		conflict := q.Person == ann.ID && (q.JoinGroup == clerks.ID || q.JoinOrg == east.ID) ||
			q.MoveOrg == west.ID && q.JoinOrg == east.ID
		if !conflict {
			return identity.SeparationAnswer{}, nil
		}
		return identity.SeparationAnswer{Conflict: `roles "clerk" and "approver" are mutually exclusive (maker-checker)`, Person: ann.ID}, nil
	})
	_, mark, _ := l1.changes(t, 0)
	out, err := svc1.ApplyReplica(ctx, "l2a", cs)
	if err != nil {
		t.Fatal(err)
	}
	want := []identity.ReplicaOutcome{identity.ReplicaConflict, identity.ReplicaApplied, identity.ReplicaApplied,
		identity.ReplicaApplied, identity.ReplicaConflict}
	if !slices.Equal(out, want) {
		t.Fatalf("outcomes %v, want %v", out, want)
	}
	// what was asked: ann's groups as the batch left them (not clerks)
	if len(asked) != 5 || len(asked[2].Groups) != 0 || asked[2].JoinGroup != readers.ID ||
		!slices.Equal(asked[3].Groups, []string{readers.ID}) || asked[3].Org != west.ID || asked[3].JoinOrg != east.ID {
		t.Fatalf("questions %+v", asked)
	}
	if got := groupsOf(ann.ID); !slices.Equal(got, []string{readers.ID}) {
		t.Fatalf("ann's groups at level 1: %v", got)
	}
	if got := groupsOf(bob.ID); !slices.Equal(got, []string{clerks.ID}) {
		t.Fatalf("bob's groups at level 1: %v", got)
	}
	a1, err := svc1.GetUser(ctx, ann.ID)
	if err != nil || a1.OrgID != west.ID || a1.DisplayName != "Ann East" {
		t.Fatalf("ann at level 1: %+v %v", a1, err)
	}
	w1, err := svc1.GetOrg(ctx, west.ID)
	if err != nil || w1.ParentID != bureau.ID {
		t.Fatalf("west at level 1: %+v %v", w1, err)
	}
	local, _, audits := l1.changes(t, mark)
	// the local event of ann's change names the org she is kept in, which
	// this centre's authz follows (trial10 H2)
	for _, c := range local {
		if strings.HasSuffix(c.Subject, ".user.replica.updated") && bytes.Contains(c.Payload, []byte(ann.ID)) &&
			(bytes.Contains(c.Payload, []byte(east.ID)) || !bytes.Contains(c.Payload, []byte(`"org_id":"`+west.ID+`"`))) {
			t.Fatalf("the local event of ann's refused move: %s", c.Payload)
		}
	}
	n := 0
	for _, a := range audits {
		if bytes.Contains(a, []byte(`"api":"admin.membership"`)) && bytes.Contains(a, []byte(`"SOD_CONFLICT"`)) &&
			bytes.Contains(a, []byte(`"centre:l2a"`)) &&
			bytes.Contains(a, []byte(`"home_centre":"l2a"`)) && bytes.Contains(a, []byte(`"subject":"user:`+ann.ID+`"`)) {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d refusals audited, want 3", n)
	}
}

// TestDeletionOfAPersonLeftOut: a person left out at level 1 (their login
// name is taken there) and deleted at home: the deletion applies nothing
// at level 1, and answers the person's objects as done with, so that sync
// resolves their conflicts (review sec16 M3).
func TestDeletionOfAPersonLeftOut(t *testing.T) {
	ctx := context.Background()
	ring := newRing(t)
	l2, l1, admin2, bureau := newKeyedBureauCentres(t, "bureau-d", ring, ring)
	admin1, _ := adminCtx(t, l1.svc, "10.0.0.1", "l1")
	if _, err := l1.svc.CreateUser(admin1, identity.NewUser{LoginName: "pilot", DisplayName: "Level 1 pilot",
		OrgID: evRoot(t, l1.svc).ID, Password: "Level-One-Pass-1"}); err != nil {
		t.Fatal(err)
	}
	p := newSealedPerson(t, l2.svc, admin2, bureau)
	crew := newCrew(t, l2.svc, admin2, bureau, "crew-d", 1)
	if _, err := l2.svc.SetGroupMember(admin2, crew.ID, p.user.ID, true); err != nil {
		t.Fatal(err)
	}
	links, _, err := l2.svc.ListLinks(admin2, identity.LinkFilter{UserID: p.user.ID}, 10, "")
	if err != nil || len(links) != 1 {
		t.Fatalf("the person's links: %v %v", links, err)
	}
	cs, last, _ := l2.changes(t, 0)
	_, objs, err := l1.svc.ApplyReplicaObjects(ctx, "l2a", cs)
	if err != nil {
		t.Fatal(err)
	}
	refused := objectKeys(objs, identity.ReplicaConflict)
	linkKey, memberKey := "link:"+links[0].ID, "group:"+crew.ID+"/member:"+p.user.ID
	if !refused[linkKey] || !refused[memberKey] {
		t.Fatalf("the left-out person's link and membership were not conflicts: %v", objs)
	}
	if err := l2.svc.DeleteUser(admin2, p.user.ID); err != nil {
		t.Fatal(err)
	}
	cs, _, _ = l2.changes(t, last)
	out, objs, err := l1.svc.ApplyReplicaObjects(ctx, "l2a", cs)
	if err != nil {
		t.Fatal(err)
	}
	done := objectKeys(objs, identity.ReplicaApplied)
	// the deletion settles the person's link and membership conflicts
	// too (review sec17 N6)
	for _, k := range []string{"user:" + p.user.ID + "/*", "totp:" + p.user.ID + "/*", "finger:" + p.user.ID + "/*",
		"link:" + links[0].ID + "/*", memberKey} {
		if !done[k] {
			t.Fatalf("the deletion of a person left out answered %v, objects %v: no %s", out, objs, k)
		}
	}
}

// objectKeys are the keys of the objects answered with outcome.
func objectKeys(objs []identity.ReplicaObject, outcome identity.ReplicaOutcome) map[string]bool {
	out := map[string]bool{}
	for _, o := range objs {
		if o.Outcome == outcome {
			out[o.Key] = true
		}
	}
	return out
}

// TestDeletionOfAHeldMember: a person held here and deleted at home
// answers their memberships done with besides themselves, which settles a
// membership refused here (review sec17 N6).
func TestDeletionOfAHeldMember(t *testing.T) {
	ctx := context.Background()
	ring := newRing(t)
	l2, l1, admin2, bureau := newKeyedBureauCentres(t, "bureau-m", ring, ring)
	crew := newCrew(t, l2.svc, admin2, bureau, "crew-m", 1)
	cs, last, _ := l2.changes(t, 0)
	if _, err := l1.svc.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	g, err := l2.svc.GetGroup(admin2, crew.ID)
	if err != nil || len(g.MemberIDs) != 1 {
		t.Fatalf("the crew: %+v %v", g, err)
	}
	member := g.MemberIDs[0]
	if err := l2.svc.DeleteUser(admin2, member); err != nil {
		t.Fatal(err)
	}
	cs, _, _ = l2.changes(t, last)
	_, objs, err := l1.svc.ApplyReplicaObjects(ctx, "l2a", cs)
	if err != nil {
		t.Fatal(err)
	}
	done := objectKeys(objs, identity.ReplicaApplied)
	if !done["user:"+member+"/*"] || !done["group:"+crew.ID+"/member:"+member] {
		t.Fatalf("the deletion of a held member answered %v", objs)
	}
}

// TestResentGroupDeletedInTheSameBatch: a resend of a group and the
// group's deletion reach level 1 in one batch: applied, no error after
// the batch committed (review sec17 N4: the link retried it for ever).
func TestResentGroupDeletedInTheSameBatch(t *testing.T) {
	ctx := context.Background()
	ring := newRing(t)
	l2, l1, admin2, bureau := newKeyedBureauCentres(t, "bureau-g", ring, ring)
	crew := newCrew(t, l2.svc, admin2, bureau, "crew-g", 2)
	cs, last, _ := l2.changes(t, 0)
	if _, err := l1.svc.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	if _, err := l2.svc.ResendOrg(admin2, bureau.ID); err != nil {
		t.Fatal(err)
	}
	if err := l2.svc.DeleteGroup(admin2, crew.ID); err != nil {
		t.Fatal(err)
	}
	cs, _, _ = l2.changes(t, last)
	out, _, err := l1.svc.ApplyReplicaObjects(ctx, "l2a", cs)
	if err != nil {
		t.Fatalf("a resent group deleted in the same batch: %v %v", out, err)
	}
	if _, err := l1.svc.GetGroup(ctx, crew.ID); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("the group at level 1: %v", err)
	}
}

// TestResendAfterAConflict: a level-2 person whose login name level 1
// also used is left out there (CONFLICT), with their finger, app, link
// and membership; once level 1 mends the collision, level 2's resend of
// its bureau brings them: they log in at level 1 with their password and
// finger, belong to their group, and the digests agree. A resend is made
// at the subtree's home only (004 §2.1.5.3, "事后同步").
func TestResendAfterAConflict(t *testing.T) {
	ctx := context.Background()
	ring := newRing(t)
	l2, l1, admin2, bureau := newKeyedBureauCentres(t, "bureau-r", ring, ring)
	svc2, svc1 := l2.svc, l1.svc
	admin1, _ := adminCtx(t, svc1, "10.0.0.1", "l1")
	taken, err := svc1.CreateUser(admin1, identity.NewUser{LoginName: "pilot", DisplayName: "Level 1 pilot",
		OrgID: evRoot(t, svc1).ID, Password: "Level-One-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	p := newSealedPerson(t, svc2, admin2, bureau)
	crew, err := svc2.CreateGroup(admin2, "crew", "Crew", bureau.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.SetGroupMember(admin2, crew.ID, p.user.ID, true); err != nil {
		t.Fatal(err)
	}
	cs, last, _ := l2.changes(t, 0)
	out, objs, err := svc1.ApplyReplicaObjects(ctx, "l2a", cs)
	if err != nil || !slices.Contains(out, identity.ReplicaConflict) {
		t.Fatalf("level 2's changes at level 1: %v %v", out, err)
	}
	if _, err := svc1.GetUser(ctx, p.user.ID); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("the person left out at level 1: %v", err)
	}
	// what was refused, by object, for sync to record and resolve
	refused := map[string]bool{}
	for _, o := range objs {
		if o.Outcome == identity.ReplicaConflict {
			if out[o.Change] != identity.ReplicaConflict {
				t.Fatalf("object %+v of a change answered %s", o, out[o.Change])
			}
			refused[o.Key] = true
		}
	}
	for _, k := range []string{"user:" + p.user.ID, "totp:" + p.user.ID} {
		if !refused[k] {
			t.Fatalf("refused objects %v: no %s", refused, k)
		}
	}
	// the same batch again (redelivered after a failure elsewhere): STALE,
	// with what it did then, so that sync records the conflicts it missed
	// (review sec16 M2)
	again, againObjs, err := svc1.ApplyReplicaObjects(ctx, "l2a", cs)
	if err != nil || slices.Contains(again, identity.ReplicaApplied) || slices.Contains(again, identity.ReplicaConflict) {
		t.Fatalf("the batch again: %v %v", again, err)
	}
	for _, o := range objs {
		// (an object written again later in the batch is STALE then)
		if o.Outcome == identity.ReplicaConflict && !slices.Contains(againObjs, o) {
			t.Fatalf("the batch again answers the objects %v, first %v", againObjs, objs)
		}
	}

	// A resend is the home's to make.
	_, err = svc1.ResendOrg(admin1, bureau.ID)
	wantReason(t, "a resend at level 1 of level 2's bureau", err, apierr.FailedPrecondition, centre.ReasonElsewhere)
	if _, err := svc2.ResendOrg(admin2, "no-such-org"); !errors.Is(err, identity.ErrNotFound) && reasonOf(err) != "NOT_FOUND" {
		t.Fatalf("a resend of an unknown org: %v", err)
	}
	single := newReplicaCentre(t)
	_, err = single.svc.ResendOrg(ctx, evRoot(t, single.svc).ID)
	wantReason(t, "a resend at a single centre", err, apierr.FailedPrecondition, "REPLICA_NOT_A_CENTRE")

	// Level 1 mends the collision; level 2 resends its bureau.
	if err := svc1.DeleteUser(admin1, taken.ID); err != nil {
		t.Fatal(err)
	}
	res, err := svc2.ResendOrg(admin2, bureau.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res.Orgs != 1 || res.People != 1 || res.Groups != 1 || res.Links != 1 || res.Fingers != 1 || res.TOTPApps != 1 || res.Events != 1 {
		t.Fatalf("resend: %+v", res)
	}
	cs, _, audits := l2.changes(t, last)
	audited := false
	for _, a := range audits {
		audited = audited || bytes.Contains(a, []byte(`"api":"org.resend"`)) && bytes.Contains(a, []byte(`"resend_id":"`+res.ResendID+`"`))
	}
	if !audited {
		t.Fatal("the resend is not audited at level 2")
	}
	for _, c := range cs {
		if bytes.Contains(c.Payload, []byte(`"hash"`)) && bytes.Contains(c.Payload, []byte("Harbour-Pass-1")) {
			t.Fatal("a clear password in the resend")
		}
	}
	out, objs, err = svc1.ApplyReplicaObjects(ctx, "l2a", cs)
	if err != nil || !slices.Equal(out, []identity.ReplicaOutcome{identity.ReplicaApplied}) {
		t.Fatalf("the resend at level 1: %v %v", out, err)
	}
	// each object refused before is applied now (whole, or as itself:
	// an org, a person, a membership), which settles the conflicts sync
	// recorded (trial10 L5)
	whole := map[string]bool{}
	for _, o := range objs {
		if o.Outcome != identity.ReplicaApplied || o.Change != 0 {
			t.Fatalf("object of the resend %+v", o)
		}
		whole[o.Key] = true
	}
	for k := range whole {
		if (strings.HasPrefix(k, "org:") || strings.HasPrefix(k, "user:")) && strings.HasSuffix(k, "/*") {
			t.Fatalf("the resend answers %s: an org or person held here is not moved by it, so it settles no refused move (review sec16 H1)", k)
		}
	}
	for k := range refused {
		// the object whole, or the membership itself
		if !whole[k+"/*"] && !whole[k] {
			t.Fatalf("%s refused before, not in the resend's objects %v", k, whole)
		}
	}
	if r, err := svc1.SSOLogin(browserAt("192.0.2.46"), "pilot", "Harbour-Pass-1"); err != nil || r.Reason != identity.ReasonOTPRequired {
		t.Fatalf("the person's password at level 1 after the resend: %+v %v", r, err)
	}
	if r := p.finger(t, svc1); r != identity.ReasonOK {
		t.Fatalf("the person's finger at level 1 after the resend: %v", r)
	}
	gs, err := sqlstore.New(l1.db).UserGroups(ctx, p.user.ID)
	if err != nil || len(gs) != 1 || gs[0].ID != crew.ID {
		t.Fatalf("the person's groups at level 1: %v %v", gs, err)
	}
	wantSameDigests(t, "after the resend", svc1, svc2)
	// Sent again, nothing changes (every object already as the home's).
	res, err = svc2.ResendOrg(admin2, bureau.ID)
	if err != nil {
		t.Fatal(err)
	}
	cs, _, _ = l2.changes(t, last)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs[len(cs)-res.Events:]); err != nil {
		t.Fatal(err)
	}
	wantSameDigests(t, "after a second resend", svc1, svc2)
}

// TestResendInChunks: a resend larger than one event (200 objects) is
// written in several, which another centre that never had the subtree
// applies into the same state as the home's.
func TestResendInChunks(t *testing.T) {
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-k")
	svc2, svc1 := l2.svc, l1.svc
	for i := range 250 {
		if _, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: fmt.Sprintf("deckhand%03d", i), DisplayName: "Deckhand",
			OrgID: bureau.ID, Password: "Harbour-Pass-1"}); err != nil {
			t.Fatal(err)
		}
	}
	_, last, _ := l2.changes(t, 0)
	res, err := svc2.ResendOrg(admin2, bureau.ID)
	if err != nil || res.Events != 2 || res.People != 250 || res.Orgs != 1 {
		t.Fatalf("resend: %+v %v", res, err)
	}
	cs, _, _ := l2.changes(t, last)
	if len(cs) != 2 {
		t.Fatalf("%d change events, want 2", len(cs))
	}
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	wantSameDigests(t, "after the resend", svc1, svc2)
}

// raceStore runs during, at the n-th ListLinks call, with the ids of the
// people whose links were listed before it.
type raceStore struct {
	identity.Store
	n      int
	seen   []string
	during func(seen []string)
}

func (r *raceStore) ListLinks(ctx context.Context, f identity.LinkFilter, p identity.Page) ([]*identity.AccountLink, string, error) {
	r.seen = append(r.seen, f.UserID)
	if len(r.seen) == r.n && r.during != nil {
		r.during(r.seen[:len(r.seen)-1])
	}
	return r.Store.ListLinks(ctx, f, p)
}

// TestResendDuringChanges: people deleted or disabled at home while a
// resend reads the subtree (after it read them) are not brought back or
// re-enabled at the other centres: the resend reads the subtree again and
// sends what changed meanwhile (review sec14 H1).
func TestResendDuringChanges(t *testing.T) {
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-x")
	svc2, svc1 := l2.svc, l1.svc
	var gone, disabled string
	resendWhile(t, l2, l1, admin2, bureau, bureau, func(seen []string) {
		gone, disabled = seen[0], seen[1]
		if err := svc2.DeleteUser(admin2, gone); err != nil {
			t.Error(err)
		}
		if _, err := svc2.SetUserStatus(admin2, disabled, identity.StatusDisabled); err != nil {
			t.Error(err)
		}
	})
	if _, err := svc1.GetUser(ctx, gone); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("the person deleted during the resend at level 1: %v", err)
	}
	if u, err := svc1.GetUser(ctx, disabled); err != nil || u.Status != identity.StatusDisabled {
		t.Fatalf("the person disabled during the resend at level 1: %+v %v", u, err)
	}
	wantSameDigests(t, "after the resend", svc1, svc2)
}

// TestResendOfALargeGroup: a resend's events stay within their byte bound
// (NATS refuses larger messages and the outbox would stop at one: review
// sec14 H2), and a group's members travel a part an item: the first sets
// them at the other centre, the rest add to them.
func TestResendOfALargeGroup(t *testing.T) {
	ctx := context.Background()
	defer identity.ResendLimits(2048, 3)()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-g")
	svc2, svc1 := l2.svc, l1.svc
	crew := newCrew(t, svc2, admin2, bureau, "crew", 8)
	_, last, _ := l2.changes(t, 0)
	res, err := svc2.ResendOrg(admin2, bureau.ID)
	if err != nil || res.Groups != 1 || res.People != 8 || res.Events < 3 {
		t.Fatalf("resend: %+v %v", res, err)
	}
	cs, _, _ := l2.changes(t, last)
	for _, c := range cs {
		if len(c.Payload) > 2048+1024 {
			t.Fatalf("a resend event of %d bytes", len(c.Payload))
		}
	}
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	wantSameDigests(t, "after the resend", svc1, svc2)
	g1, err := sqlstore.New(l1.db).GetGroup(ctx, crew.ID)
	if err != nil || len(g1.MemberIDs) != 8 {
		t.Fatalf("the crew at level 1: %+v %v", g1, err)
	}
}

// TestSealedValueSentBack: a peer that sends, as its own person's ID
// number, a value level 1 sealed for one of its people (the associated
// data binds an ID number to no person) does not get level 1 to reveal it:
// a value that opens with level 1's own data keys is left out (review
// sec14 M2).
func TestSealedValueSentBack(t *testing.T) {
	ctx := context.Background()
	ring2, ring1 := newRing(t), newRing(t)
	l2, l1, admin2, bureau := newKeyedBureauCentres(t, "bureau-t", ring2, ring1)
	svc2, svc1 := l2.svc, l1.svc
	admin1, _ := adminCtx(t, svc1, "10.0.0.1", "l1")
	own, err := svc1.CreateUser(admin1, identity.NewUser{LoginName: "chief", DisplayName: "Chief", OrgID: evRoot(t, svc1).ID,
		IDType: identity.IDTypeResidentID, IDNumber: evIDNumber, Password: "Level-One-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	var stolen string
	if err := l1.db.QueryRowContext(ctx, "SELECT id_number_enc FROM users WHERE id = ?", own.ID).Scan(&stolen); err != nil || stolen == "" {
		t.Fatalf("level 1's sealed ID number: %q %v", stolen, err)
	}
	q, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "mole", DisplayName: "Mole", OrgID: bureau.ID,
		IDType: identity.IDTypeResidentID, IDNumber: "11010519491231002X", Password: "Harbour-Pass-1"})
	if err != nil {
		t.Fatal(err)
	}
	cs, _, _ := l2.changes(t, 0)
	for i, c := range cs {
		var p map[string]any
		if err := json.Unmarshal(c.Payload, &p); err != nil || p["id"] != q.ID || p["op"] != "created" {
			continue
		}
		rep := p["replica"].(map[string]any)
		rep["sealed"] = map[string]any{"id_number_enc": stolen, "phone_enc": ""}
		cs[i].Payload, _ = json.Marshal(p)
	}
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	if n, err := svc1.PersonIDNumber(ctx, q.ID); err == nil && n == evIDNumber {
		t.Fatal("level 1 revealed its own person's ID number as the peer's person's")
	}
}

// newRing is a new key ring.
func newRing(t *testing.T) *crypto.Ring {
	t.Helper()
	ring, err := crypto.ParseRing(crypto.NewRingJSON())
	if err != nil {
		t.Fatal(err)
	}
	return ring
}

// wantSameDigests: level 1 (l1) and level 2 (l2) hold the same replica of
// l2a's objects.
func wantSameDigests(t *testing.T, what string, l1, l2 *identity.Service) {
	t.Helper()
	ctx := context.Background()
	d2, err := l2.ReplicaDigest(ctx, "l2a")
	if err != nil {
		t.Fatal(err)
	}
	if d1, err := l1.ReplicaDigest(ctx, "l2a"); err != nil || !slices.Equal(d1, d2) {
		t.Fatalf("%s: level 1 %v (%v), level 2 %v", what, d1, err, d2)
	}
}

// TestAppointedAtLevelOne: level 1 appoints a level-2 person a unit
// administrator (004 §2.1.6.2.1: the units' administrators are appointed
// at level 1): their tokens at level 1 are revoked, no password is set
// there (their first administrator login replaces one another set, at
// their home); any other administrator role is appointed at their home
// only (trial10 H1).
func TestAppointedAtLevelOne(t *testing.T) {
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-u")
	svc2, svc1 := l2.svc, l1.svc
	u, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "warden", DisplayName: "Warden", OrgID: bureau.ID,
		Password: "Set-By-Admin-1"})
	if err != nil {
		t.Fatal(err)
	}
	cs, _, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	_, err = svc1.PrepareAppointment(ctx, u.ID, identity.RoleSystemAdmin)
	wantReason(t, "a system administrator appointed at level 1", err, apierr.FailedPrecondition, centre.ReasonElsewhere)
	_, mark, _ := l1.changes(t, 0)
	if act, err := svc1.PrepareAppointment(ctx, u.ID, identity.RoleUnitAdmin); err != nil || act != "" {
		t.Fatalf("a unit administrator appointed at level 1: %q %v", act, err)
	}
	got, err := svc1.GetUser(ctx, u.ID)
	if err != nil || !got.PasswordByOther || got.PasswordHash == "" {
		t.Fatalf("the person at level 1 after the appointment: %+v %v", got, err)
	}
	down, _, audits := l1.changes(t, mark)
	revoked := false
	for _, a := range audits {
		revoked = revoked || bytes.Contains(a, []byte(`"api":"admin.tokens_revoked"`)) && bytes.Contains(a, []byte(u.ID))
	}
	if !revoked {
		t.Fatal("the appointment did not revoke the person's tokens at level 1")
	}
	// the revocation reaches their home, which revokes theirs there too
	// (review sec15 L1)
	_, mark2, _ := l2.changes(t, 0)
	out, err := svc2.ApplyReplica(ctx, "l1", down)
	if err != nil || !slices.Contains(out, identity.ReplicaApplied) {
		t.Fatalf("level 1's revocation at level 2: %v %v", out, err)
	}
	_, _, audits2 := l2.changes(t, mark2)
	revoked = false
	for _, a := range audits2 {
		revoked = revoked || bytes.Contains(a, []byte(`"api":"admin.tokens_revoked"`)) && bytes.Contains(a, []byte(u.ID)) &&
			bytes.Contains(a, []byte(`"home_centre":"l1"`))
	}
	if !revoked {
		t.Fatal("level 1's appointment did not revoke the person's tokens at their home")
	}
}

// TestResendWhileAPersonMovesOut: a person moved out of the resent org
// while the resend reads it is sent as they are now, in their new org,
// never as deleted (review sec15).
func TestResendWhileAPersonMovesOut(t *testing.T) {
	ctx := context.Background()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-m")
	svc2, svc1 := l2.svc, l1.svc
	dock, err := svc2.CreateOrg(admin2, "dock-m", "Dock", bureau.ID)
	if err != nil {
		t.Fatal(err)
	}
	yard, err := svc2.CreateOrg(admin2, "yard-m", "Yard", bureau.ID)
	if err != nil {
		t.Fatal(err)
	}
	var moved string
	resendWhile(t, l2, l1, admin2, bureau, dock, func(seen []string) {
		moved = seen[0]
		if _, err := svc2.UpdateUser(admin2, moved, identity.UserUpdate{Mask: []string{"org_id"}, OrgID: yard.ID}); err != nil {
			t.Error(err)
		}
	})
	if u, err := svc1.GetUser(ctx, moved); err != nil || u.OrgID != yard.ID {
		t.Fatalf("the person moved out during the resend, at level 1: %+v %v", u, err)
	}
	wantSameDigests(t, "after a resend during a move", svc1, svc2)
}

// TestResendOfALargeGroupHeld: a group level 1 holds, resent in parts and
// applied in one batch, leaves every member in it, and its local events
// (which authz's mirror follows) end with each member added, not removed
// (review sec15 M3).
func TestResendOfALargeGroupHeld(t *testing.T) {
	ctx := context.Background()
	defer identity.ResendLimits(2048, 3)()
	l2, l1, admin2, bureau := newBureauCentres(t, "bureau-h")
	svc2, svc1 := l2.svc, l1.svc
	crew := newCrew(t, svc2, admin2, bureau, "crew-h", 7)
	cs, last, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	_, mark, _ := l1.changes(t, 0)
	if _, err := svc2.ResendOrg(admin2, bureau.ID); err != nil {
		t.Fatal(err)
	}
	cs, _, _ = l2.changes(t, last)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	local, _, _ := l1.changes(t, mark)
	lastOp := map[string]string{}
	for _, c := range local {
		var p struct {
			Op   string `json:"op"`
			Data struct {
				UserID string `json:"user_id"`
			} `json:"data"`
		}
		if strings.Contains(c.Subject, ".group.replica.member_") && json.Unmarshal(c.Payload, &p) == nil {
			lastOp[p.Data.UserID] = p.Op
		}
	}
	for who, op := range lastOp {
		if op != "member_added" {
			t.Fatalf("the last local event of %s: %s", who, op)
		}
	}
	g1, err := sqlstore.New(l1.db).GetGroup(ctx, crew.ID)
	if err != nil || len(g1.MemberIDs) != 7 {
		t.Fatalf("the crew at level 1: %+v %v", g1, err)
	}
}

// newCrew is a group of bureau with n new people of it (logins
// "<code>-<i>").
func newCrew(t *testing.T, svc *identity.Service, admin context.Context, bureau *identity.Org, code string, n int) *identity.Group {
	t.Helper()
	crew, err := svc.CreateGroup(admin, code, "Crew", bureau.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		u, err := svc.CreateUser(admin, identity.NewUser{LoginName: fmt.Sprintf("%s-%d", code, i), DisplayName: "Crew",
			OrgID: bureau.ID, Password: "Harbour-Pass-1"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.SetGroupMember(admin, crew.ID, u.ID, true); err != nil {
			t.Fatal(err)
		}
	}
	return crew
}

// resendWhile creates three people in org of level 2 (bureau's centre),
// applies them at level 1, resends org from level 2 while during runs
// (at the third person's read, with the people read before it) and
// applies the resend at level 1.
func resendWhile(t *testing.T, l2, l1 *replicaCentre, admin2 context.Context, bureau, org *identity.Org, during func(seen []string)) {
	t.Helper()
	ctx := context.Background()
	for _, login := range []string{"ann", "bob", "cid"} {
		if _, err := l2.svc.CreateUser(admin2, identity.NewUser{LoginName: login, DisplayName: login, OrgID: org.ID,
			Password: "Harbour-Pass-1"}); err != nil {
			t.Fatal(err)
		}
	}
	cs, last, _ := l2.changes(t, 0)
	if _, err := l1.svc.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	ran := false
	race := &raceStore{Store: sqlstore.New(l2.db), n: 3, during: func(seen []string) { ran = true; during(seen) }}
	resender := testService(t, identity.Deps{Store: race, Homes: &centre.Homes{Self: "l2a", Level: 2, Parent: "l1",
		Subtrees: map[string]string{bureau.ID: "l2a"}}})
	if _, err := resender.ResendOrg(admin2, org.ID); err != nil {
		t.Fatal(err)
	}
	if !ran {
		t.Fatal("nothing happened during the resend")
	}
	cs, _, _ = l2.changes(t, last)
	if _, err := l1.svc.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
}
