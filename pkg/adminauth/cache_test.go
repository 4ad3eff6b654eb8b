package adminauth

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
)

// authzStub answers CheckAdmin as an authz replica would: allowed or not, at
// a revision; it counts the questions that reach it.
type authzStub struct {
	allowed bool
	sod     string
	rev     int64
	scopes  []string
	asked   int
}

func (a *authzStub) ask() (*authzv1.CheckAdminResponse, error) {
	a.asked++
	return &authzv1.CheckAdminResponse{Allowed: a.allowed, Revision: a.rev, SodConflict: a.sod, ScopeOrgs: a.scopes}, nil
}

type localGen struct{ g atomic.Uint64 }

func (l *localGen) DecisionGeneration() uint64 { return l.g.Load() }

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestCache(ttl time.Duration, local LocalDecisions, clk *clock) *decisionCache {
	v := &Verifier{}
	o := CacheOptions{TTL: ttl, Now: clk.now}
	if local != nil {
		o.Local = func() LocalDecisions { return local }
	}
	v.CacheDecisions(o)
	return v.cache
}

func readUser(orgs ...string) *authzv1.CheckAdminRequest {
	return &authzv1.CheckAdminRequest{Person: "adm1", Resource: "identity.users", Operation: "read", TargetPerson: "u1", Orgs: orgs}
}

func mustAsk(t *testing.T, c *decisionCache, a *authzStub, req *authzv1.CheckAdminRequest) bool {
	t.Helper()
	r, err := c.cachedCheckAdmin(req, a.ask)
	if err != nil {
		t.Fatal(err)
	}
	return r.GetAllowed()
}

// An allowed answer is reused for the same question only; every part of
// the question is in the key.
func TestCacheKeysOnTheWholeQuestion(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := newTestCache(time.Second, nil, clk)
	a := &authzStub{allowed: true, rev: 5}
	for range 3 {
		if !mustAsk(t, c, a, readUser("east")) {
			t.Fatal("refused")
		}
	}
	if a.asked != 1 {
		t.Fatalf("authz asked %d times for the same question, want 1", a.asked)
	}
	others := []*authzv1.CheckAdminRequest{
		readUser("west"),
		readUser("east", "west"),
		readUser(),
		{Person: "adm2", Resource: "identity.users", Operation: "read", TargetPerson: "u1", Orgs: []string{"east"}},
		{Person: "adm1", Resource: "identity.users", Operation: "write", TargetPerson: "u1", Orgs: []string{"east"}},
		{Person: "adm1", Resource: "identity.groups", Operation: "read", TargetPerson: "u1", Orgs: []string{"east"}},
		{Person: "adm1", Resource: "identity.users", Operation: "read", TargetPerson: "u2", Orgs: []string{"east"}},
		{Person: "adm1", Resource: "identity.users", Operation: "read", TargetPerson: "u1", Orgs: []string{"east"}, SystemAdminFlag: true},
		// No separator ambiguity: "ea"+"st" is not "east".
		{Person: "adm1", Resource: "identity.users", Operation: "read", TargetPerson: "u1", Orgs: []string{"ea", "st"}},
	}
	for i, q := range others {
		before := a.asked
		mustAsk(t, c, a, q)
		if a.asked != before+1 {
			t.Errorf("question %d answered from another question's answer", i)
		}
	}
}

// Refusals, separation-of-duty answers and membership changes are never
// reused.
func TestCacheKeepsOnlyPlainAllows(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := newTestCache(time.Second, nil, clk)
	denied := &authzStub{allowed: false, rev: 5}
	mustAsk(t, c, denied, readUser("east"))
	mustAsk(t, c, denied, readUser("east"))
	if denied.asked != 2 {
		t.Errorf("a refusal was reused (%d questions)", denied.asked)
	}
	sod := &authzStub{allowed: true, sod: "both roles", rev: 5}
	mustAsk(t, c, sod, readUser("north"))
	mustAsk(t, c, sod, readUser("north"))
	if sod.asked != 2 {
		t.Errorf("a separation-of-duty answer was reused (%d questions)", sod.asked)
	}
	join := &authzStub{allowed: true, rev: 5}
	for range 2 {
		mustAsk(t, c, join, &authzv1.CheckAdminRequest{Person: "adm1", Resource: "identity.groups", Operation: "write", TargetPerson: "u1", JoinGroup: "g1"})
		mustAsk(t, c, join, &authzv1.CheckAdminRequest{Person: "adm1", Resource: "identity.users", Operation: "write", TargetPerson: "u1", JoinOrg: "o1"})
	}
	if join.asked != 4 {
		t.Errorf("a membership change was answered from the cache (%d questions, want 4)", join.asked)
	}
}

// An allowed answer is not used once it is TTL old: the bound of a
// revocation this process cannot see.
func TestCacheTTLBound(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := newTestCache(time.Second, nil, clk)
	a := &authzStub{allowed: true, rev: 5}
	mustAsk(t, c, a, readUser("east"))
	clk.t = clk.t.Add(999 * time.Millisecond)
	mustAsk(t, c, a, readUser("east"))
	if a.asked != 1 {
		t.Fatalf("asked %d times within the TTL", a.asked)
	}
	// The grant is revoked elsewhere; at the TTL the next call asks.
	a.allowed = false
	clk.t = clk.t.Add(time.Millisecond)
	if mustAsk(t, c, a, readUser("east")) {
		t.Fatal("allowed from the cache at its TTL")
	}
	// A clock going back does not extend an answer either.
	a.allowed = true
	mustAsk(t, c, a, readUser("east"))
	clk.t = clk.t.Add(-time.Hour)
	before := a.asked
	mustAsk(t, c, a, readUser("east"))
	if a.asked != before+1 {
		t.Error("an answer from the future was used")
	}
}

// An answer from a newer revision (any question's) ends the reuse of every
// answer from an older one.
func TestCacheNewerRevisionEndsOlderAnswers(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := newTestCache(time.Second, nil, clk)
	a := &authzStub{allowed: true, rev: 5}
	mustAsk(t, c, a, readUser("east"))
	a.rev, a.allowed = 6, false // revoked at revision 6
	mustAsk(t, c, a, readUser("west"))
	if mustAsk(t, c, a, readUser("east")) {
		t.Fatal("an answer of revision 5 was used after one of revision 6")
	}
	if a.asked != 3 {
		t.Fatalf("asked %d times, want 3", a.asked)
	}
}

// With authz in the same process, any change of its index ends the reuse
// at once; before it has started nothing is cached.
func TestCacheLocalGeneration(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	l := &localGen{}
	c := newTestCache(time.Second, l, clk)
	a := &authzStub{allowed: true, rev: 5}
	mustAsk(t, c, a, readUser("east"))
	mustAsk(t, c, a, readUser("east"))
	if a.asked != 1 {
		t.Fatalf("asked %d times, want 1", a.asked)
	}
	l.g.Add(1) // the grant is revoked (or a membership mirrored)
	a.allowed = false
	if mustAsk(t, c, a, readUser("east")) {
		t.Fatal("allowed from the cache after the local index changed")
	}

	// A change while the question is asked makes its answer stale.
	a.allowed = true
	racing := func() (*authzv1.CheckAdminResponse, error) { l.g.Add(1); return a.ask() }
	if _, err := c.cachedCheckAdmin(readUser("north"), racing); err != nil {
		t.Fatal(err)
	}
	before := a.asked
	mustAsk(t, c, a, readUser("north"))
	if a.asked != before+1 {
		t.Error("an answer asked for while the index changed was reused")
	}

	v := &Verifier{}
	v.CacheDecisions(CacheOptions{TTL: time.Second, Now: clk.now, Local: func() LocalDecisions { return nil }})
	b := &authzStub{allowed: true, rev: 1}
	mustAsk(t, v.cache, b, readUser("east"))
	mustAsk(t, v.cache, b, readUser("east"))
	if b.asked != 2 {
		t.Errorf("cached while the local authz was not started (%d questions)", b.asked)
	}
}

// A listing's answer is kept under a key of its own, with the subtrees it
// is limited to, and ends as any other (here: a newer revision).
func TestCacheKeepsListingScopes(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := newTestCache(time.Second, nil, clk)
	a := &authzStub{allowed: true, rev: 5, scopes: []string{"east", "west"}}
	list := &authzv1.CheckAdminRequest{Person: "adm1", Resource: "identity.users", Operation: "read", Listing: true}
	for range 3 {
		r, err := c.cachedCheckAdmin(list, a.ask)
		if err != nil || !r.GetAllowed() || !slices.Equal(r.GetScopeOrgs(), []string{"east", "west"}) {
			t.Fatalf("listing answer %v %v", r, err)
		}
	}
	if a.asked != 1 {
		t.Fatalf("authz asked %d times for the same listing, want 1", a.asked)
	}
	// The same question that is not a listing is another question, and
	// so is a listing with the legacy flag.
	a.scopes = nil
	plain := &authzv1.CheckAdminRequest{Person: "adm1", Resource: "identity.users", Operation: "read"}
	if r, _ := c.cachedCheckAdmin(plain, a.ask); len(r.GetScopeOrgs()) != 0 || a.asked != 2 {
		t.Fatalf("a plain question answered from the listing's answer: %v (%d questions)", r, a.asked)
	}
	flagged := &authzv1.CheckAdminRequest{Person: "adm1", Resource: "identity.users", Operation: "read", Listing: true, SystemAdminFlag: true}
	if _, err := c.cachedCheckAdmin(flagged, a.ask); err != nil || a.asked != 3 {
		t.Fatalf("a flagged listing answered from another answer (%d questions)", a.asked)
	}
	// Revoked at revision 6 (the answer is then everything else: here no
	// scope at all).
	c.observe(6)
	a.rev, a.scopes = 6, []string{"east"}
	r, _ := c.cachedCheckAdmin(list, a.ask)
	if a.asked != 4 || !slices.Equal(r.GetScopeOrgs(), []string{"east"}) {
		t.Fatalf("after a newer revision: %v (%d questions)", r, a.asked)
	}
}

// An authz replica saying it applied an identity change that may take
// something away (DropDecisions) ends the reuse of every kept answer, and
// of an answer asked for while it came.
func TestCacheDropDecisions(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	v := &Verifier{}
	v.CacheDecisions(CacheOptions{TTL: time.Hour, Now: clk.now})
	a := &authzStub{allowed: true, rev: 5}
	mustAsk(t, v.cache, a, readUser("east"))
	mustAsk(t, v.cache, a, readUser("east"))
	if a.asked != 1 {
		t.Fatalf("asked %d times, want 1", a.asked)
	}
	v.DropDecisions(42) // e.g. the person moved out of east
	a.allowed = false
	if mustAsk(t, v.cache, a, readUser("east")) {
		t.Fatal("allowed from the cache after the drop")
	}
	if v.SeenMirrorSeq() != 42 {
		t.Fatalf("SeenMirrorSeq %d, want 42", v.SeenMirrorSeq())
	}
	v.DropDecisions(7) // an older sequence (another replica, late) still drops
	if v.SeenMirrorSeq() != 42 {
		t.Fatalf("SeenMirrorSeq went back to %d", v.SeenMirrorSeq())
	}

	a.allowed = true
	racing := func() (*authzv1.CheckAdminResponse, error) { v.DropDecisions(43); return a.ask() }
	if _, err := v.cache.cachedCheckAdmin(readUser("north"), racing); err != nil {
		t.Fatal(err)
	}
	before := a.asked
	mustAsk(t, v.cache, a, readUser("north"))
	if a.asked != before+1 {
		t.Error("an answer asked for while a drop came was reused")
	}
	if got := string(MirrorPayload(43)); got != `{"seq":43}` {
		t.Errorf("MirrorPayload %s", got)
	}
	// Without a cache it is a no-op.
	(&Verifier{}).DropDecisions(1)
}

// A TTL of 0 turns the cache off.
func TestCacheOff(t *testing.T) {
	v := &Verifier{}
	v.CacheDecisions(CacheOptions{TTL: 0})
	if v.cache != nil {
		t.Fatal("a zero TTL made a cache")
	}
}

// Check answers from a kept answer without building its question
// (allowedKept): the key it makes is the one of the question Check would
// ask (empty orgs left out, as Check leaves them out), so it finds what
// that question's answer left, and nothing else.
func TestCheckFindsTheKeptAnswerOfItsQuestion(t *testing.T) {
	clk := &clock{t: time.Unix(1000, 0)}
	c := newTestCache(time.Second, nil, clk)
	a := &authzStub{allowed: true, rev: 5}
	adm := &Admin{ID: "adm1"}
	read := Perm{Resource: "identity.users", Operation: "read"}
	rq := Request{Perm: read, Target: "u1", Orgs: []string{"east", ""}}
	if c.allowedKept(adm, rq) {
		t.Fatal("an answer found before any was kept")
	}
	mustAsk(t, c, a, readUser("east"))
	if !c.allowedKept(adm, rq) {
		t.Fatal("the kept answer of Check's own question was not found")
	}
	for name, other := range map[string]struct {
		a  *Admin
		rq Request
	}{
		"another org":         {adm, Request{Perm: read, Target: "u1", Orgs: []string{"west"}}},
		"another target":      {adm, Request{Perm: read, Target: "u2", Orgs: []string{"east"}}},
		"another operation":   {adm, Request{Perm: Perm{Resource: "identity.users", Operation: "write"}, Target: "u1", Orgs: []string{"east"}}},
		"another admin":       {&Admin{ID: "adm2"}, rq},
		"the is_admin flag":   {&Admin{ID: "adm1", SystemAdminFlag: true}, rq},
		"a membership change": {adm, Request{Perm: read, Target: "u1", Orgs: []string{"east"}, JoinGroup: "g1"}},
	} {
		if c.allowedKept(other.a, other.rq) {
			t.Errorf("%s: answered from another question's answer", name)
		}
	}
	clk.t = clk.t.Add(time.Second)
	if c.allowedKept(adm, rq) {
		t.Fatal("an answer found after its TTL")
	}
}
