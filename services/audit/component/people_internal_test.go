package component

import (
	"context"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/pkg/centre"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/audit/analytics"
)

// orgTree answers ListOrgs (descendants) and ListUsers over a fixed tree:
// the two calls People makes of identity's AdminService.
type orgTree struct {
	identityv1.AdminServiceClient
	parent map[string]string // org: parent
	people map[string]string // person: org
}

func (o orgTree) below(root string) []*identityv1.Org {
	var out []*identityv1.Org
	for org := range o.parent {
		for p := o.parent[org]; p != ""; p = o.parent[p] {
			if p == root {
				out = append(out, &identityv1.Org{Id: org})
				break
			}
		}
	}
	return out
}

func (o orgTree) ListOrgs(_ context.Context, r *identityv1.ListOrgsRequest, _ ...grpc.CallOption) (*identityv1.ListOrgsResponse, error) {
	return &identityv1.ListOrgsResponse{Orgs: o.below(r.GetParentId())}, nil
}

func (o orgTree) ListUsers(_ context.Context, _ *identityv1.ListUsersRequest, _ ...grpc.CallOption) (*identityv1.ListUsersResponse, error) {
	var out []*identityv1.User
	for id, org := range o.people {
		out = append(out, &identityv1.User{Id: id, OrgId: org})
	}
	return &identityv1.ListUsersResponse{Users: out}, nil
}

// The people of the absence reports are those homed at this centre (gap1
// G11): level 1 leaves out the level-2 bureaus' people it holds as
// replicas (they log in at their own centre), but keeps a subtree of its
// own inside a bureau; a level-2 centre keeps only its bureau's; one
// centre keeps everyone.
func TestPeopleHomedHere(t *testing.T) {
	tree := orgTree{
		parent: map[string]string{"root": "", "hq": "root", "bureau": "root", "harbour": "bureau", "annex": "bureau", "annex-desk": "annex"},
		people: map[string]string{"p-root": "root", "p-hq": "hq", "p-bureau": "bureau", "p-harbour": "harbour", "p-annex": "annex-desk"},
	}
	list := func(h *centre.Homes, received map[string]bool) []string {
		var got []string
		err := identityPeople{c: tree, homes: h, received: received}.People(context.Background(), nil, func(page []analytics.Person) error {
			for _, p := range page {
				got = append(got, p.ID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(got)
		return got
	}
	subtrees := map[string]string{"bureau": "l2a", "annex": "l1"}
	for _, c := range []struct {
		name     string
		homes    *centre.Homes
		received map[string]bool
		want     []string
	}{
		{"one centre", nil, nil, []string{"p-annex", "p-bureau", "p-harbour", "p-hq", "p-root"}},
		{"level 1", &centre.Homes{Self: "l1", Level: 1, Subtrees: subtrees}, nil, []string{"p-annex", "p-hq", "p-root"}},
		// level 1 receiving l2a's log (audit.peers): l2a's people's
		// logins reach its reports, so they are counted again
		{"level 1 with l2a's log", &centre.Homes{Self: "l1", Level: 1, Subtrees: subtrees}, map[string]bool{"l2a": true},
			[]string{"p-annex", "p-bureau", "p-harbour", "p-hq", "p-root"}},
		{"level 2", &centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: subtrees}, nil, []string{"p-bureau", "p-harbour"}},
	} {
		if got := list(c.homes, c.received); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// userViews answers GetViews of people: their org.
type userViews struct {
	identityv1.ViewServiceClient
	people map[string]string
}

func (u userViews) GetViews(_ context.Context, r *identityv1.GetViewsRequest, _ ...grpc.CallOption) (*identityv1.GetViewsResponse, error) {
	var out []*identityv1.View
	for _, id := range r.GetIds() {
		if org, ok := u.people[id]; ok {
			out = append(out, &identityv1.View{Id: id, Data: []byte(`{"org_id":"` + org + `"}`)})
		}
	}
	return &identityv1.GetViewsResponse{Views: out}, nil
}

// Each person's home log (sec28b M1): the people of l2a's bureau count
// l2a's logins, level 1's own people (a subtree of level 1's inside the
// bureau too) none of a peer's.
func TestPeopleHomeOrigins(t *testing.T) {
	tree := orgTree{
		parent: map[string]string{"root": "", "hq": "root", "bureau": "root", "harbour": "bureau", "annex": "bureau", "annex-desk": "annex"},
		people: map[string]string{"p-root": "root", "p-hq": "hq", "p-bureau": "bureau", "p-harbour": "harbour", "p-annex": "annex-desk"},
	}
	h := &centre.Homes{Self: "l1", Level: 1, Subtrees: map[string]string{"bureau": "l2a", "annex": "l1"}}
	p := newIdentityPeople(nil, h, []PeerConfig{{Centre: "l2a", Origin: "l2a.audit"}})
	p.c, p.v = tree, userViews{people: tree.people}
	want := map[string]string{"p-root": "", "p-hq": "", "p-bureau": "l2a.audit", "p-harbour": "l2a.audit", "p-annex": ""}
	got := map[string]string{}
	err := p.People(context.Background(), nil, func(page []analytics.Person) error {
		for _, x := range page {
			got[x.ID] = x.Home
		}
		return nil
	})
	if err != nil || len(got) != len(want) {
		t.Fatalf("people %v %v", got, err)
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("People: home of %s %q, want %q", id, got[id], w)
		}
	}
	homes, err := p.HomeOrigins(context.Background(), []string{"p-root", "p-harbour", "p-annex", "nobody"})
	if err != nil || homes["p-harbour"] != "l2a.audit" || homes["p-root"] != "" || homes["p-annex"] != "" || len(homes) != 3 {
		t.Fatalf("HomeOrigins %v %v", homes, err)
	}
}

// countingTree counts the ListOrgs calls.
type countingTree struct {
	orgTree
	calls *int
}

func (c countingTree) ListOrgs(ctx context.Context, r *identityv1.ListOrgsRequest, o ...grpc.CallOption) (*identityv1.ListOrgsResponse, error) {
	*c.calls++
	return c.orgTree.ListOrgs(ctx, r, o...)
}

// TestHomeOriginsKept (review rr29 C1): a caller's map of orgs to centres
// is asked of identity (ListOrgs per subtree) once per homesTTL, not on
// every report; another caller's is asked for them.
func TestHomeOriginsKept(t *testing.T) {
	tree := orgTree{
		parent: map[string]string{"root": "", "bureau": "root", "harbour": "bureau", "annex": "bureau"},
		people: map[string]string{"p-root": "root", "p-harbour": "harbour", "p-annex": "annex"},
	}
	h := &centre.Homes{Self: "l1", Level: 1, Subtrees: map[string]string{"bureau": "l2a", "annex": "l1"}}
	p := newIdentityPeople(nil, h, []PeerConfig{{Centre: "l2a", Origin: "l2a.audit"}})
	calls := 0
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	p.c, p.v, p.now = countingTree{orgTree: tree, calls: &calls}, userViews{people: tree.people}, func() time.Time { return at }
	caller := func(tok string) context.Context {
		return metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+tok))
	}
	ask := func(ctx context.Context) {
		t.Helper()
		homes, err := p.HomeOrigins(ctx, []string{"p-root", "p-harbour", "p-annex"})
		if err != nil || homes["p-harbour"] != "l2a.audit" || homes["p-annex"] != "" || len(homes) != 3 {
			t.Fatalf("HomeOrigins %v %v", homes, err)
		}
	}
	ask(caller("ada"))
	if calls != 2 {
		t.Fatalf("%d ListOrgs calls for two subtrees", calls)
	}
	ask(caller("ada"))
	if calls != 2 {
		t.Fatalf("asked again within homesTTL: %d ListOrgs calls", calls)
	}
	ask(caller("bob"))
	if calls != 4 {
		t.Fatalf("another caller's answer taken: %d ListOrgs calls", calls)
	}
	at = at.Add(homesTTL)
	ask(caller("ada"))
	if calls != 6 {
		t.Fatalf("not asked again after homesTTL: %d ListOrgs calls", calls)
	}
}
