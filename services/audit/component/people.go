package component

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/cache"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/grpcx"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/analytics"
)

// identityPeople is analytics.PeopleSource over the identity component's
// ListUsers (active people, in pages), asked with the calling
// administrator's token: identity answers only what they may read.
type identityPeople struct {
	c identityv1.AdminServiceClient
	v identityv1.ViewServiceClient
	// homes are the centres' subtrees (nil: one centre): the people this
	// centre holds as replicas of another centre's are left out (review
	// gap1 G11: they log in at their own centre, whose log this centre
	// does not hold, so they would all look absent here).
	homes *centre.Homes
	// received are the centres whose logs this centre receives
	// (audit.peers, ADR 0029): their people log in there and their
	// logins reach this centre's reports, so they are counted too.
	received map[string]bool
	// origins are the logs of the received centres, by centre: a person
	// homed at one counts the logins of that log only (sec28b M1).
	origins map[string]string
	// homesCache keeps homeCentre's answer for homesTTL per caller (their
	// token's hash: identity answers what the caller may read), so that
	// OnlineNow and LoginHistory do not page ListOrgs over every subtree
	// on each call (review rr29 C1); nil: not kept. An org moved into or
	// out of a subtree counts after at most homesTTL.
	homesCache *cache.TTL[func(org string) string]
	now        func() time.Time
}

// homesTTL is how long a caller's map of orgs to centres is kept.
const homesTTL = time.Minute

func newIdentityPeople(conn grpc.ClientConnInterface, homes *centre.Homes, peers []PeerConfig) identityPeople {
	p := identityPeople{c: identityv1.NewAdminServiceClient(conn), v: identityv1.NewViewServiceClient(conn), homes: homes,
		origins: map[string]string{}, homesCache: cache.NewTTL[func(string) string](homesTTL, 1000), now: time.Now}
	for _, pe := range peers {
		if p.received == nil {
			p.received = map[string]bool{}
		}
		p.received[pe.Centre] = true
		p.origins[pe.Centre] = pe.Origin
	}
	return p
}

// peoplePage is the page size asked of identity (its largest).
const peoplePage = 500

// namesTimeout bounds the look-up of a page's actor names.
const namesTimeout = 2 * time.Second

// errScopeUnknown is the fault of a scoped audit call whose subtrees
// identity cannot list now.
var errScopeUnknown = apierr.ErrUnavailable.WithMessage("the orgs of the subtrees you administer cannot be listed now (identity did not answer); retry later")

// People implements analytics.PeopleSource: the active people homed at
// this centre or at a centre whose log it receives.
func (p identityPeople) People(ctx context.Context, orgs []string, fn func([]analytics.Person) error) error {
	ctx = asCaller(ctx)
	if orgs == nil {
		orgs = []string{""}
	}
	homeOf, err := p.homeCentre(ctx)
	if err != nil {
		return err
	}
	if homeOf != nil {
		inner := fn
		fn = func(page []analytics.Person) error {
			page = slices.DeleteFunc(page, func(x analytics.Person) bool {
				c := homeOf(x.Org)
				return c != p.homes.Self && !p.received[c]
			})
			for i := range page {
				page[i].Home = p.origins[homeOf(page[i].Org)]
			}
			return inner(page)
		}
	}
	for _, org := range orgs {
		tok := ""
		for {
			// orgs are every org of the caller's subtrees already (the
			// scope): each is asked for its own people only.
			res, err := p.c.ListUsers(ctx, &identityv1.ListUsersRequest{PageSize: peoplePage, PageToken: tok, OrgId: org,
				Status: identityv1.UserStatus_USER_STATUS_ACTIVE})
			if err != nil {
				return unreachable(err, analytics.ErrNoPeople)
			}
			page := make([]analytics.Person, len(res.GetUsers()))
			for i, u := range res.GetUsers() {
				page[i] = analytics.Person{ID: u.GetId(), Login: u.GetLoginName(), Org: u.GetOrgId()}
				if u.GetCreateTime() != nil {
					page[i].Created = u.GetCreateTime().AsTime()
				}
			}
			if err := fn(page); err != nil {
				return err
			}
			if tok = res.GetNextPageToken(); tok == "" {
				break
			}
		}
	}
	return nil
}

// homeCentre returns the centre an org is homed at (nil when every org is
// homed here: one centre). Each listed subtree root is expanded over identity's
// ListOrgs; the deepest root above an org decides, an org below none is
// homed at the level-1 centre (centre.Homes.HomeOfPath's rule). A root the
// caller may not read, or that identity does not hold, adds nothing.
func (p identityPeople) homeCentre(ctx context.Context) (func(org string) string, error) {
	h := p.homes
	if h == nil || len(h.Subtrees) == 0 {
		return nil, nil
	}
	var key string
	if p.homesCache != nil {
		sum := sha256.Sum256([]byte(grpcx.BearerToken(ctx)))
		key = hex.EncodeToString(sum[:])
		if f, ok := p.homesCache.Get(key, p.now()); ok {
			return f, nil
		}
	}
	f, err := p.listHomes(ctx, h)
	if err == nil && p.homesCache != nil {
		p.homesCache.Put(key, f, p.now())
	}
	return f, err
}

// listHomes is homeCentre's answer, asked of identity.
func (p identityPeople) listHomes(ctx context.Context, h *centre.Homes) (func(org string) string, error) {
	below := map[string][]string{} // root: the orgs of its subtree
	for root := range h.Subtrees {
		orgs := []string{root}
		tok := ""
		for {
			res, err := p.c.ListOrgs(ctx, &identityv1.ListOrgsRequest{ParentId: root, IncludeDescendants: true,
				PageSize: peoplePage, PageToken: tok})
			if c := status.Code(err); c == codes.NotFound || c == codes.PermissionDenied {
				break
			}
			if err != nil {
				return nil, unreachable(err, analytics.ErrNoPeople)
			}
			for _, o := range res.GetOrgs() {
				orgs = append(orgs, o.GetId())
			}
			if tok = res.GetNextPageToken(); tok == "" {
				break
			}
		}
		below[root] = orgs
	}
	// a root's depth: the other roots whose subtree holds it
	depth := func(root string) int {
		n := 0
		for other, orgs := range below {
			if other != root && slices.Contains(orgs, root) {
				n++
			}
		}
		return n
	}
	roots := make([]string, 0, len(below))
	for r := range below {
		roots = append(roots, r)
	}
	slices.SortFunc(roots, func(a, b string) int { return depth(a) - depth(b) })
	home := map[string]string{}
	for _, r := range roots { // shallow first: a deeper root overrides
		for _, o := range below[r] {
			home[o] = h.Subtrees[r]
		}
	}
	top := h.Top()
	return func(org string) string {
		c, ok := home[org]
		if !ok {
			c = top
		}
		return c
	}, nil
}

// HomeOrigins implements analytics.HomeSource: for each person, the log of
// the received centre whose subtree holds their org (as identity's views
// hold it). A person identity does not hold has none.
func (p identityPeople) HomeOrigins(ctx context.Context, userIDs []string) (map[string]string, error) {
	out := make(map[string]string, len(userIDs))
	if len(p.origins) == 0 || len(userIDs) == 0 {
		return out, nil
	}
	homeOf, err := p.homeCentre(asCaller(ctx))
	if err != nil || homeOf == nil {
		return out, err
	}
	for len(userIDs) > 0 {
		k := min(len(userIDs), peoplePage)
		res, err := p.v.GetViews(ctx, &identityv1.GetViewsRequest{Entity: "user", Ids: userIDs[:k]})
		if err != nil {
			return nil, unreachable(err, analytics.ErrNoHomes)
		}
		for _, v := range res.GetViews() {
			var d struct {
				Org string `json:"org_id"`
			}
			if json.Unmarshal(v.GetData(), &d) == nil && d.Org != "" {
				out[v.GetId()] = p.origins[homeOf(d.Org)]
			}
		}
		userIDs = userIDs[k:]
	}
	return out, nil
}

// MayRead implements analytics.PersonScope: the person's org, as
// identity's views hold it (a component's question: it does not depend on
// what else the caller may read of identity), must be one of orgs. A
// person identity does not hold (deleted, or no such id) is left to the
// scoped filter, as is any failure to ask.
func (p identityPeople) MayRead(ctx context.Context, userID string, orgs []string) error {
	ctx, cancel := context.WithTimeout(ctx, namesTimeout)
	defer cancel()
	res, err := p.v.GetViews(ctx, &identityv1.GetViewsRequest{Entity: "user", Ids: []string{userID}})
	if err != nil || len(res.GetViews()) == 0 {
		return nil
	}
	var d struct {
		Org string `json:"org_id"`
	}
	if json.Unmarshal(res.GetViews()[0].GetData(), &d) != nil || slices.Contains(orgs, d.Org) {
		return nil
	}
	return audit.ErrPersonOutOfScope
}

// ResolveApps implements analytics.AppResolver over identity's ListApps
// (every application, in pages), asked with the caller's token.
func (p identityPeople) ResolveApps(ctx context.Context, names []string) (map[string]string, bool) {
	ctx, cancel := context.WithTimeout(asCaller(ctx), namesTimeout)
	defer cancel()
	known := make(map[string]string, len(names))
	tok := ""
	for {
		res, err := p.c.ListApps(ctx, &identityv1.ListAppsRequest{PageSize: peoplePage, PageToken: tok})
		if status.Code(err) == codes.PermissionDenied {
			// a caller who may not list the applications (a unit
			// administrator): App_IDs only, from the views
			return p.appsByID(ctx, names)
		}
		if err != nil {
			return nil, false
		}
		for _, a := range res.GetApps() {
			for _, n := range names {
				if n == a.GetId() || n == a.GetAppCode() && n != "" {
					known[n] = a.GetId()
				}
			}
		}
		if tok = res.GetNextPageToken(); tok == "" {
			return known, true
		}
	}
}

// appsByID is ResolveApps over identity's views: the names that are
// App_IDs (codes are not looked up there).
func (p identityPeople) appsByID(ctx context.Context, names []string) (map[string]string, bool) {
	res, err := p.v.GetViews(ctx, &identityv1.GetViewsRequest{Entity: "app", Ids: names})
	if err != nil {
		return nil, false
	}
	known := make(map[string]string, len(names))
	for _, v := range res.GetViews() {
		known[v.GetId()] = v.GetId()
	}
	return known, true
}

// identityOrgs expands org subtrees over the identity component's ListOrgs
// (with descendants, in pages), asked with the calling administrator's
// token: identity answers only the orgs they may read.
type identityOrgs struct {
	c identityv1.AdminServiceClient
}

func newIdentityOrgs(conn grpc.ClientConnInterface) identityOrgs {
	return identityOrgs{c: identityv1.NewAdminServiceClient(conn)}
}

// Subtrees returns tops and every org below them, each once: the orgs
// whose records a unit administrator of those subtrees reads.
func (o identityOrgs) Subtrees(ctx context.Context, tops []string) ([]string, error) {
	ctx = asCaller(ctx)
	seen := map[string]bool{}
	var out []string
	add := func(id string) {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	for _, top := range tops {
		add(top)
		tok := ""
		for {
			res, err := o.c.ListOrgs(ctx, &identityv1.ListOrgsRequest{ParentId: top, IncludeDescendants: true,
				PageSize: peoplePage, PageToken: tok})
			if status.Code(err) == codes.NotFound {
				// a grant scoped to an org since deleted (or not held
				// here): it adds nothing; the other subtrees stand
				delete(seen, top)
				out = slices.DeleteFunc(out, func(id string) bool { return id == top })
				break
			}
			if err != nil {
				return nil, unreachable(err, errScopeUnknown)
			}
			for _, org := range res.GetOrgs() {
				add(org.GetId())
			}
			if tok = res.GetNextPageToken(); tok == "" {
				break
			}
		}
	}
	return out, nil
}

// identityNames is audit.Names over identity's ViewService (components
// only: the people's current login and display names, without asking as
// the administrator who reads the records: a unit administrator reading the
// records of their subtree also sees who acted on it, e.g. the system
// administrator, by name, as the maritime design's log shows it).
type identityNames struct {
	c identityv1.ViewServiceClient
}

func newIdentityNames(conn grpc.ClientConnInterface) identityNames {
	return identityNames{c: identityv1.NewViewServiceClient(conn)}
}

// PersonNames implements audit.Names.
func (n identityNames) PersonNames(ctx context.Context, ids []string) (map[string]string, error) {
	// the names are an extra: a slow identity does not hold the records up
	ctx, cancel := context.WithTimeout(ctx, namesTimeout)
	defer cancel()
	out := make(map[string]string, len(ids))
	for len(ids) > 0 {
		k := min(len(ids), 1000)
		res, err := n.c.GetViews(ctx, &identityv1.GetViewsRequest{Entity: "user", Ids: ids[:k]})
		if err != nil {
			return nil, err
		}
		for _, v := range res.GetViews() {
			var d struct {
				Login string `json:"login_name"`
				Name  string `json:"display_name"`
			}
			if json.Unmarshal(v.GetData(), &d) != nil || d.Login == "" {
				continue
			}
			out[v.GetId()] = d.Login
			if d.Name != "" && d.Name != d.Login {
				out[v.GetId()] += " (" + d.Name + ")"
			}
		}
		ids = ids[k:]
	}
	return out, nil
}
