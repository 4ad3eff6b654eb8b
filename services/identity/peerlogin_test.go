package identity_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
)

// TestSSOPeerLogin: a peer centre's word signs in a person held here when
// they are active, not locked, and the peer's level reaches theirs; each
// answer is audited as sso.login with method peer and the peer's name, and
// nothing is counted towards a lockout.
func TestSSOPeerLogin(t *testing.T) {
	// Built as level 1 (the bootstrap writes the root org), then made the
	// level-2 centre l2a homing the person's org, vouched for by its level 1.
	homes := &centre.Homes{Self: "l1", Level: 1, Subtrees: map[string]string{}}
	pe := newProfileEnvWith(t, identity.Policy{MaxFailures: 50, SourceFailures: 40}, func(d *identity.Deps) { d.Homes = homes })
	admin, _ := adminCtx(t, pe.svc, "10.0.0.9", "r-level")
	e := &levelEnv{totpEnv: &totpEnv{pe}, admin: admin}
	homes.Self, homes.Level, homes.Parent, homes.Subtrees[pe.org.ID] = "l2a", 2, "l1", "l2a"
	ctx := browserAt("192.0.2.9")
	login := func(id string, level int) *identity.SSOLoginResult {
		t.Helper()
		res, err := e.svc.SSOPeerLogin(ctx, id, level, "l1")
		if err != nil {
			t.Fatal(err)
		}
		if (res.Reason == identity.ReasonOK) != (res.User != nil) {
			t.Fatalf("result %+v", res)
		}
		return res
	}
	r := login(e.user.ID, identity.AuthLevelAny)
	if r.Reason != identity.ReasonOK || r.User.ID != e.user.ID || r.Method != identity.MethodPeer || !r.NoPassword {
		t.Fatalf("ok: %+v", r)
	}
	recs := auditRecords(t, e.outbox(t, 0), "sso.login")
	if len(recs) == 0 || recs[len(recs)-1].Result != "success" || recs[len(recs)-1].Detail["method"] != "peer" ||
		recs[len(recs)-1].Detail["peer"] != "l1" {
		t.Fatalf("audit: %+v", recs)
	}
	// (sec28b H2) another centre's word for this centre's person, and its
	// level 1's for an administrator of this centre: refused, audited.
	if res, err := e.svc.SSOPeerLogin(ctx, e.user.ID, identity.AuthLevelAny, "l2b"); err != nil || res.Reason != identity.ReasonPasswordOnly ||
		!e.recorded(t, "sso.login", identity.ReasonPeerNotHome, "failure") {
		t.Fatalf("l2b's word for l2a's person: %+v %v", res, err)
	}
	adm, err := e.svc.CreateUser(e.admin, identity.NewUser{LoginName: "harbour-adm", DisplayName: "Adm", OrgID: pe.org.ID,
		Password: "Mx-Pass-5511", IsAdmin: true})
	if err != nil {
		t.Fatal(err)
	}
	if r := login(adm.ID, identity.AuthLevelCertificate); r.Reason != identity.ReasonPasswordOnly ||
		!e.recorded(t, "sso.login", identity.ReasonPeerAdministrator, "failure") {
		t.Fatalf("an administrator on level 1's word: %+v", r)
	}
	if r := login("no-such-person", identity.AuthLevelAny); r.Reason != identity.ReasonNoSuchUser {
		t.Fatalf("unknown: %+v", r)
	}
	if !e.recorded(t, "sso.login", "NO_SUCH_USER", "failure") {
		t.Fatal("unknown person not audited")
	}
	before := e.failedCount(t)

	// The person's own level: a one-factor sign-in at the peer does not
	// reach 2; two factors or a certificate there do.
	e.setLevel(t, identity.AuthLevelTwoFactor)
	if r := login(e.user.ID, identity.AuthLevelAny); r.Reason != identity.ReasonAuthLevelTooLow || r.RequiredLevel != 2 {
		t.Fatalf("level 2: %+v", r)
	}
	if r := login(e.user.ID, identity.AuthLevelTwoFactor); r.Reason != identity.ReasonOK {
		t.Fatalf("level 2 by two factors: %+v", r)
	}
	e.setLevel(t, identity.AuthLevelDefault)

	if _, err := e.svc.LockUser(e.admin, e.user.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	if r := login(e.user.ID, identity.AuthLevelCertificate); r.Reason != identity.ReasonAccountLocked {
		t.Fatalf("locked: %+v", r)
	}
	if _, err := e.svc.UnlockUser(e.admin, e.user.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetUserStatus(e.admin, e.user.ID, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	if r := login(e.user.ID, identity.AuthLevelCertificate); r.Reason != identity.ReasonAccountDisabled {
		t.Fatalf("disabled: %+v", r)
	}
	if got := e.failedCount(t); got != before {
		t.Fatalf("failures counted: %d, was %d", got, before)
	}
}

// TestSSOPeerLoginHomeCentre (sec28b H2): a peer vouches only for its own
// people. At level 1 (bureau-a homed at l2a, bureau-b at l2b), l2a's word
// signs in a person of bureau-a, never one of bureau-b nor a level-1
// person; administrators (the legacy flag) are never signed in on a
// peer's word, not even the peer's own; a single centre (no homes) takes
// nobody's word. Each refusal is audited with its reason and answered
// REASON_PASSWORD_ONLY (a password here).
func TestSSOPeerLoginHomeCentre(t *testing.T) {
	ctx := context.Background()
	tb := newTwoBureaus(t)
	one, a, b, root := tb.one, tb.a, tb.b, tb.root
	mk := func(login, org string, isAdmin bool) *identity.User { return tb.person(t, login, org, isAdmin) }
	inA, inB, l1Person, l1Admin, aAdmin := mk("in-a", a.ID, false), mk("in-b", b.ID, false), mk("l1-p", root.ID, false),
		mk("l1-adm", root.ID, true), mk("a-adm", a.ID, true)
	l1 := tb.newSvc(&centre.Homes{Self: "l1", Level: 1, Subtrees: map[string]string{a.ID: "l2a", b.ID: "l2b"}})
	for _, tc := range []struct {
		svc    *identity.Service
		u      *identity.User
		peer   string
		reason string // audited; "" for OK
	}{
		{l1, inA, "l2a", ""},
		{l1, inB, "l2a", identity.ReasonPeerNotHome},
		{l1, l1Person, "l2a", identity.ReasonPeerNotHome},
		{l1, l1Admin, "l2a", identity.ReasonPeerNotHome},
		{l1, aAdmin, "l2a", identity.ReasonPeerAdministrator},
		{l1, inA, "l1", identity.ReasonPeerNotHome},
		{l1, inA, "", identity.ReasonPeerNotHome},
		{one, inA, "l2a", identity.ReasonPeerNotHome},
	} {
		res, err := tc.svc.SSOPeerLogin(ctx, tc.u.ID, identity.AuthLevelCertificate, tc.peer)
		if err != nil {
			t.Fatal(err)
		}
		if ok := res.Reason == identity.ReasonOK; ok != (tc.reason == "") || (!ok && (res.Reason != identity.ReasonPasswordOnly || res.User != nil)) {
			t.Errorf("%s on %q's word: %+v, want %q", tc.u.LoginName, tc.peer, res, tc.reason)
		}
	}
}

// orgDownStore is the real store whose org reads fail (the database
// gone between two reads).
type orgDownStore struct{ identity.Store }

func (orgDownStore) GetOrg(context.Context, string) (*identity.Org, error) {
	return nil, fmt.Errorf("get org: %w", store.ErrUnavailable)
}

// TestSSOPeerLoginStoreDownAndOrgDisabled: a store failure while telling
// a person's home centre is answered as the failure it is (unavailable),
// never as the verdict "not the peer's person" blamed on the peer (review
// rr29 A5); a person below a disabled org is refused and audited
// ORG_DISABLED, as by password (rr29 B5).
func TestSSOPeerLoginStoreDownAndOrgDisabled(t *testing.T) {
	ctx := context.Background()
	tb := newTwoBureaus(t)
	inA := tb.person(t, "in-a", tb.a.ID, false)
	homes := &centre.Homes{Self: "l1", Level: 1, Subtrees: map[string]string{tb.a.ID: "l2a"}}
	down := tb.open(homes, func(st identity.Store) identity.Store { return orgDownStore{st} })
	res, err := down.SSOPeerLogin(ctx, inA.ID, identity.AuthLevelAny, "l2a")
	if !errors.Is(err, store.ErrUnavailable) || res != nil {
		t.Fatalf("org store down: %+v %v, want unavailable", res, err)
	}
	for _, r := range tb.audited(t, "sso.login") {
		if r.Reason == identity.ReasonPeerNotHome {
			t.Fatalf("a store failure audited as %s: %+v", r.Reason, r)
		}
	}
	l1 := tb.newSvc(homes)
	if _, err := tb.one.SetOrgStatus(tb.admin, tb.a.ID, identity.StatusDisabled); err != nil {
		t.Fatal(err)
	}
	res, err = l1.SSOPeerLogin(ctx, inA.ID, identity.AuthLevelAny, "l2a")
	if err != nil || res.Reason != identity.ReasonAccountDisabled || res.User != nil {
		t.Fatalf("below a disabled org: %+v %v", res, err)
	}
	recs := tb.audited(t, "sso.login")
	if last := recs[len(recs)-1]; last.Reason != "ORG_DISABLED" || last.Result != "failure" || last.Detail["method"] != identity.MethodPeer {
		t.Fatalf("audited %+v, want ORG_DISABLED as the password path", last)
	}
}
