package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/events"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	syncv1 "github.com/uias/uias/proto/gen/uias/sync/v1"
	"github.com/uias/uias/services/authz"
	authzcomponent "github.com/uias/uias/services/authz/component"
	identitycomponent "github.com/uias/uias/services/identity/component"
	"github.com/uias/uias/services/sync/applier"
	synccomponent "github.com/uias/uias/services/sync/component"
	"github.com/uias/uias/services/sync/synctest"
	"github.com/uias/uias/services/ticket"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// syncCentre is one centre of the two-level test: its NATS, its data
// directory and (while running) its process.
type syncCentre struct {
	name   string
	nats   *synctest.Centre
	dir    string
	e      *env
	bureau string // a level-2 centre's home subtree (its bureau org)
	f      []fixture
}

func (c *syncCentre) config(t *testing.T, set func(s *synccomponent.Config)) config.Config {
	cfg := testConfig(c.dir)
	cfg.NATS.URL, cfg.NATS.Embedded = c.nats.URL(), false
	if set != nil {
		set(synccomponent.Settings(&cfg))
	}
	return cfg
}

// centreFile is the sync section of a deploy/centres/uias-*.yaml file, the
// configuration docs/operators.md shows.
func centreFile(t testing.TB, name string) synccomponent.Config {
	t.Helper()
	cfg, err := app.LoadConfig(filepath.Join(deployCentres, name), func(string) (string, bool) { return "", false }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return *synccomponent.Settings(&cfg)
}

const deployCentres = "../../deploy/centres"

func (c *syncCentre) stop(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.e.app.Stop(ctx); err != nil {
		t.Fatalf("stop %s: %v", c.name, err)
	}
}

func (c *syncCentre) sync() syncv1.SyncAdminServiceClient {
	return syncv1.NewSyncAdminServiceClient(c.e.conn)
}

func (c *syncCentre) digest(t *testing.T, homes, kinds []string) (string, error) {
	d, err := c.sync().GetReplicaDigest(c.e.adm(), &syncv1.GetReplicaDigestRequest{Homes: homes, Kinds: kinds})
	if err != nil {
		return "", err
	}
	out := ""
	for _, tb := range d.GetTables() {
		out += fmt.Sprintf("%s:%d:%s ", tb.GetTable(), tb.GetRows(), tb.GetSha256())
	}
	return out, nil
}

// changesOf counts the messages of a centre's own CHANGES stream whose
// subjects match filters: what its peers must apply, once each.
func changesOf(t *testing.T, c *syncCentre, filters []string) uint64 {
	t.Helper()
	_, js := c.nats.Connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, events.StreamChanges)
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range filters {
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(f))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range info.State.Subjects {
			n += c
		}
	}
	return n
}

// TestTwoLevelCentresCutOffAndHealed runs a level-1 and two level-2
// centres (each a whole UIAS process with its own NATS and SQLite), cuts
// one level-2 centre's leaf-node link, keeps logging in and changing people
// on both sides, heals it and compares the replicas: a digest per table of
// what each pair of centres must share is equal, and each centre applied
// exactly the changes its peers wrote (nothing lost, nothing doubled).
func TestTwoLevelCentresCutOffAndHealed(t *testing.T) {
	if testing.Short() {
		t.Skip("three UIAS processes")
	}
	dir := t.TempDir()
	// The NATS servers and the sync settings are those of deploy/centres
	// (docs/operators.md), with test ports, directories and org ids.
	l1 := &syncCentre{name: "l1", nats: synctest.StartLevel1File(t, filepath.Join(deployCentres, "nats-l1.conf")),
		dir: filepath.Join(dir, "l1")}
	l2 := []*syncCentre{
		{name: "l2a", dir: filepath.Join(dir, "l2a")},
		{name: "l2b", dir: filepath.Join(dir, "l2b")},
	}
	for _, c := range l2 {
		c.nats = synctest.StartLevel2File(t, filepath.Join(deployCentres, "nats-l2a.conf"), c.name, l1.nats)
	}

	// Each level-2 bureau was set up on its own first: its org, the
	// business system its people log in to, its people. Then it joins.
	for _, c := range l2 {
		c.e = start(t, c.config(t, nil))
		c.e.login()
		o, err := c.e.admin.CreateOrg(c.e.adm(), &identityv1.CreateOrgRequest{Code: "bureau-" + c.name, Name: "Bureau " + c.name,
			ParentId: c.e.root})
		if err != nil {
			t.Fatal(err)
		}
		c.bureau = o.GetId()
		c.e.root = c.bureau // seed puts people under e.root
		for i := range 3 {
			// Application codes, like login names, are unique across
			// the centres (level 1 holds every bureau's).
			c.f = append(c.f, c.e.seed(fmt.Sprintf("%s-oa%d", c.name, i), fmt.Sprintf("%s-p%d", c.name, i), nil, nil))
		}
		c.stop(t)
	}
	f1 := centreFile(t, "uias-l1.yaml")
	if len(f1.Peers) != 2 || f1.Peers[0].Name != "l2a" || f1.Peers[1].Name != "l2b" {
		t.Fatalf("deploy/centres/uias-l1.yaml: peers %+v", f1.Peers)
	}
	f1.Peers[0].Subtrees, f1.Peers[1].Subtrees = []string{l2[0].bureau}, []string{l2[1].bureau}
	l1.e = start(t, l1.config(t, func(s *synccomponent.Config) { *s = f1 }))
	l1.e.login()
	for _, c := range l2 {
		f2 := centreFile(t, "uias-l2a.yaml")
		if f2.Level != 2 || f2.Parent != "l1" {
			t.Fatalf("deploy/centres/uias-l2a.yaml: %+v", f2)
		}
		f2.Centre, f2.HomeSubtrees = c.name, []string{c.bureau}
		c.e = start(t, c.config(t, func(s *synccomponent.Config) { *s = f2 }))
		c.e.login()
	}

	// Home centres: level 2 may not write outside its bureau; it registers
	// its own business systems (homed there).
	_, err := l2[0].e.admin.CreateOrg(l2[0].e.adm(), &identityv1.CreateOrgRequest{Code: "x", Name: "X", ParentId: rootOf(t, l2[0])})
	st := wantCode(t, err, codes.FailedPrecondition, centre.ReasonElsewhere)
	if want := `homed at centre "l1"`; !strings.Contains(st.Message(), want) {
		t.Fatalf("message %q does not name the home centre", st.Message())
	}
	harbour, err := l2[0].e.admin.CreateApp(l2[0].e.adm(), &identityv1.CreateAppRequest{AppType: "OA", AppCode: "harbour", Name: "Harbour"})
	if err != nil {
		t.Fatalf("a level-2 centre registers its business systems: %v", err)
	}

	// Level 1 writes global data.
	portal, err := l1.e.admin.CreateApp(l1.e.adm(), &identityv1.CreateAppRequest{AppType: "OA", AppCode: "portal", Name: "Portal"})
	if err != nil {
		t.Fatal(err)
	}
	up, down := applier.KindPrefixes(applier.Up), applier.KindPrefixes(applier.Down)
	// Converged: the sync replicas and identity's tables (what a login
	// reads) hold the same rows at level 1 and at each level-2 centre: every
	// table of what the bureau is home for, and level 1's applications.
	converged := func(what string) {
		t.Helper()
		eventuallyWithin(t, 2*time.Minute, what, func() bool {
			for _, c := range l2 {
				a, err1 := l1.digest(t, []string{c.name}, up)
				b, err2 := c.digest(t, []string{c.name}, up)
				g1, err3 := l1.digest(t, []string{"l1"}, down)
				g2, err4 := c.digest(t, []string{"l1"}, down)
				if err1 != nil || err2 != nil || err3 != nil || err4 != nil || a != b || g1 != g2 {
					return false
				}
				if l1.identityDigest(t, c.name, "") != c.identityDigest(t, c.name, "") ||
					l1.identityDigest(t, "l1", "apps") != c.identityDigest(t, "l1", "apps") {
					return false
				}
				// authz: the model and level 1's grants at each level-2
				// centre, each level-2 centre's grants at level 1.
				if l1.authzDigest(t, c.name) != c.authzDigest(t, c.name) || l1.authzDigest(t, "l1") != c.authzDigest(t, "l1") {
					return false
				}
			}
			return true
		})
	}
	converged("replicas converge while connected")
	if d := l1.identityDigest(t, "l2a", ""); !strings.Contains(d, "users:3:") || !strings.Contains(d, "apps:4:") {
		t.Fatalf("level 1's identity holds not what l2a is home for: %s", d)
	}
	// A person of l2a logs in at level 1 through l2a's business system, and
	// an application registered at level 1 logs l2a's people in at l2a.
	f0 := l2[0].f[0]
	res, err := l1.e.authPW(f0, f0.login, f0.password)
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	if _, err := l2[0].e.admin.CreateAccountLink(l2[0].e.adm(), &identityv1.CreateAccountLinkRequest{UserId: f0.userID,
		AppId: portal.GetApp().GetId(), AppAccountId: "portal-" + f0.login}); err != nil {
		t.Fatalf("link to a level-1 application at level 2: %v", err)
	}
	viaPortal := fixture{appID: portal.GetApp().GetId(), secret: portal.GetAppSecret()}
	res, err = l2[0].e.authPW(viaPortal, "portal-"+f0.login, f0.password)
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	// Replicas refuse writes, naming their home.
	_, err = l1.e.admin.UpdateUser(l1.e.adm(), &identityv1.UpdateUserRequest{Id: f0.userID, UpdateMask: []string{"display_name"},
		DisplayName: "x"})
	if st := wantCode(t, err, codes.FailedPrecondition, centre.ReasonElsewhere); !strings.Contains(st.Message(), `"l2a"`) {
		t.Fatalf("message %q does not name the home centre", st.Message())
	}
	_, err = l2[0].e.admin.UpdateApp(l2[0].e.adm(), &identityv1.UpdateAppRequest{Id: portal.GetApp().GetId(),
		UpdateMask: []string{"name"}, Name: "x"})
	wantCode(t, err, codes.FailedPrecondition, centre.ReasonElsewhere)
	_, err = l1.e.admin.UpdateApp(l1.e.adm(), &identityv1.UpdateAppRequest{Id: harbour.GetApp().GetId(),
		UpdateMask: []string{"name"}, Name: "x"})
	wantCode(t, err, codes.FailedPrecondition, centre.ReasonElsewhere)

	// Authz: level 1 writes the model (global data) of its portal; a
	// level-2 centre refuses to, naming level 1, and grants the model's
	// roles to its own people, which level 1 refuses.
	adm1 := authzv1.NewAuthzAdminServiceClient(l1.e.conn)
	adm2 := authzv1.NewAuthzAdminServiceClient(l2[0].e.conn)
	portalID := portal.GetApp().GetId()
	clerk, approver := authzOA(t, adm1, l1.e.adm(), portalID)
	_, err = adm2.CreateRole(l2[0].e.adm(), &authzv1.Role{App: portalID, Code: "local"})
	if st := wantCode(t, err, codes.FailedPrecondition, centre.ReasonElsewhere); !strings.Contains(st.Message(), `homed at centre "l1"`) {
		t.Fatalf("message %q does not name the home centre", st.Message())
	}
	converged("the authz model reaches level 2")
	if _, err := adm2.CreateGrant(l2[0].e.adm(), &authzv1.Grant{RoleId: clerk, Subject: &authzv1.Subject{Kind: "user", Id: f0.userID}}); err != nil {
		t.Fatalf("a level-2 centre grants its person a role of level 1's model: %v", err)
	}
	eventuallyWithin(t, 2*time.Minute, "level 1's authz learns where l2a's people are", func() bool {
		return l1.authzIndexOrg(l2[0].f[2].userID) != ""
	})
	_, err = adm1.CreateGrant(l1.e.adm(), &authzv1.Grant{RoleId: clerk, Subject: &authzv1.Subject{Kind: "user", Id: l2[0].f[2].userID}})
	if st := wantCode(t, err, codes.FailedPrecondition, centre.ReasonElsewhere); !strings.Contains(st.Message(), `homed at centre "l2a"`) {
		t.Fatalf("message %q does not name the home centre", st.Message())
	}
	converged("grants reach level 1")
	portalCheck := func(c *syncCentre, person, resource, op string) bool {
		t.Helper()
		r, err := authzv1.NewAuthzServiceClient(c.e.conn).Check(viaPortal.ctx(), &authzv1.CheckRequest{Person: person,
			Resource: resource, Operation: op})
		if err != nil {
			t.Fatalf("check at %s: %v", c.name, err)
		}
		return r.GetAllowed()
	}
	if !portalCheck(l1, f0.userID, "docs.inbox", "read") || !portalCheck(l2[0], f0.userID, "docs.inbox", "read") {
		t.Fatal("a grant made at level 2 does not allow at level 1 and level 2")
	}

	// Cut l2a off; keep logging in and changing people on both sides.
	cut := l2[0]
	cut.nats.Link.Cut()
	synctest.WaitLeaf(t, cut.nats.Server, false)
	logins, ok := 0, 0
	for round := range 5 {
		for _, f := range cut.f {
			res, err := cut.e.authPW(f, f.login, f.password)
			logins++
			if err == nil && res.GetResultCode() == 0 {
				ok++
			}
		}
		for i, f := range cut.f {
			if _, err := cut.e.admin.UpdateUser(cut.e.adm(), &identityv1.UpdateUserRequest{Id: f.userID, UpdateMask: []string{"display_name"},
				DisplayName: fmt.Sprintf("cut %d.%d", round, i)}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := cut.e.admin.CreateUser(cut.e.adm(), &identityv1.CreateUserRequest{LoginName: fmt.Sprintf("new-%d", round),
			DisplayName: "New", OrgId: cut.bureau}); err != nil {
			t.Fatal(err)
		}
		if _, err := l1.e.admin.UpdateApp(l1.e.adm(), &identityv1.UpdateAppRequest{Id: portal.GetApp().GetId(),
			UpdateMask: []string{"name"}, Name: fmt.Sprintf("Portal %d", round)}); err != nil {
			t.Fatal(err)
		}
		other := l2[1]
		if _, err := other.e.admin.UpdateUser(other.e.adm(), &identityv1.UpdateUserRequest{Id: other.f[0].userID,
			UpdateMask: []string{"display_name"}, DisplayName: fmt.Sprintf("other %d", round)}); err != nil {
			t.Fatal(err)
		}
	}
	if ok != logins {
		t.Fatalf("logins at the cut-off level-2 centre: %d of %d succeeded", ok, logins)
	}
	// Grants on both sides during the cut, and a new role at level 1.
	if _, err := adm2.CreateGrant(cut.e.adm(), &authzv1.Grant{RoleId: approver, Subject: &authzv1.Subject{Kind: "user", Id: cut.f[1].userID}}); err != nil {
		t.Fatalf("grant at the cut-off centre: %v", err)
	}
	reader, err := adm1.CreateRole(l1.e.adm(), &authzv1.Role{App: portalID, Code: "reader",
		Permissions: []*authzv1.Permission{{App: portalID, Resource: "docs", Operation: "read"}}})
	if err != nil {
		t.Fatal(err)
	}
	hq, err := l1.e.admin.CreateOrg(l1.e.adm(), &identityv1.CreateOrgRequest{Code: "hq", Name: "HQ", ParentId: rootOf(t, l1)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm1.CreateGrant(l1.e.adm(), &authzv1.Grant{RoleId: reader.GetRole().GetId(),
		Subject: &authzv1.Subject{Kind: "org", Id: hq.GetId()}}); err != nil {
		t.Fatalf("grant at level 1 during the cut: %v", err)
	}
	if portalCheck(l1, cut.f[1].userID, "docs.contract", "approve") {
		t.Fatal("level 1 allows what was granted at the cut-off centre during the cut")
	}
	// Level 1 requires a person of the cut-off centre to change their
	// password at their next sign-in (ADR 0048), over REST; it may not
	// clear the requirement nor change anything else of them.
	asked := cut.f[2]
	l1admin := map[string]string{"Authorization": "Bearer " + l1.e.token}
	code, body, _ := l1.e.rest(http.MethodPatch, "/v1/users/"+asked.userID, l1admin,
		map[string]any{"update_mask": []string{"must_change_password"}, "must_change_password": true})
	if code != http.StatusOK || body["must_change_password"] != true {
		t.Fatalf("level 1 requires a password change of a level-2 person: %d %v", code, body)
	}
	// It holds at level 1 at once, while the link is cut (review sec32c L1).
	if res, err := l1.e.authPW(asked, asked.login, asked.password); err != nil || !res.GetMustChangePassword() {
		t.Fatalf("level 1 does not ask for the password change it required: %v %v", res, err)
	}
	for _, up := range []*identityv1.UpdateUserRequest{
		{Id: asked.userID, UpdateMask: []string{"must_change_password"}},
		{Id: asked.userID, UpdateMask: []string{"must_change_password", "display_name"}, MustChangePassword: true, DisplayName: "X"},
	} {
		_, err := l1.e.admin.UpdateUser(l1.e.adm(), up)
		if st := wantCode(t, err, codes.FailedPrecondition, centre.ReasonElsewhere); !strings.Contains(st.Message(), `"l2a"`) {
			t.Fatalf("message %q does not name the home centre", st.Message())
		}
	}
	// Level 1 disables a person of the cut-off centre (ADR 0048), over
	// REST: refused at level 1 at once, at their home once the link
	// returns, where their SSO session then ends.
	stopped := cut.f[0]
	tkCut := cut.e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle).Service
	if _, _, err := tkCut.CreateSession(context.Background(), ticket.NewSession{UserID: stopped.userID, Login: stopped.login, AuthLevel: 1}); err != nil {
		t.Fatal(err)
	}
	code, body, _ = l1.e.rest(http.MethodPost, "/v1/users/"+stopped.userID+":setStatus", l1admin,
		map[string]any{"status": "USER_STATUS_DISABLED"})
	if code != http.StatusOK || body["disabled_by_centre"] != "l1" || body["status"] != "USER_STATUS_ACTIVE" || body["disabled_by_centre_actor"] == "" {
		t.Fatalf("level 1 disables a level-2 person: %d %v", code, body)
	}
	res, err = l1.e.authPW(stopped, stopped.login, stopped.password)
	wantResult(t, res, err, -1, identityv1.Reason_REASON_ACCOUNT_DISABLED)
	// Level 1's authz takes it as the person disabled: they hold nothing
	// (review sec32c M1).
	eventuallyWithin(t, 2*time.Minute, "level 1's authz refuses the person level 1 disabled", func() bool {
		return !portalCheck(l1, stopped.userID, "docs.inbox", "read")
	})
	if res, err := cut.e.authPW(stopped, stopped.login, stopped.password); err != nil || res.GetResultCode() != 0 {
		t.Fatalf("the cut-off centre refuses its person before level 1's disable arrives: %v %v", res, err)
	}
	// A password changed during the cut reaches level 1 after the heal.
	moved := cut.f[1]
	moved.password = "Cut-Off-Pass-7"
	if _, err := cut.e.admin.SetPassword(cut.e.adm(), &identityv1.SetPasswordRequest{Id: moved.userID, Password: moved.password}); err != nil {
		t.Fatal(err)
	}
	// The cut is real: once the cut-off centre's replica holds its last
	// change, level 1's does not.
	last := cut.f[0].userID
	nameAt := func(c *syncCentre) string {
		o, err := c.e.app.Value(synccomponent.Name).(*synccomponent.Handle).Store.Object(context.Background(), "identity.user", last)
		if err != nil {
			return err.Error()
		}
		return string(o.Data)
	}
	eventuallyWithin(t, 2*time.Minute, "the cut-off centre applies its own changes", func() bool { return strings.Contains(nameAt(cut), `"cut 4.0"`) })
	if got := nameAt(l1); strings.Contains(got, `"cut 4.0"`) {
		t.Fatalf("level 1 holds a change made at level 2 during the cut: %s", got)
	}
	st2, err := cut.sync().GetSyncStatus(cut.e.adm(), &syncv1.GetSyncStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("status of %s during the cut: %v", cut.name, st2)

	if res, err := cut.e.authPW(asked, asked.login, asked.password); err != nil || res.GetMustChangePassword() {
		t.Fatalf("the cut-off centre has level 1's requirement before the heal: %v %v", res, err)
	}

	cut.nats.Link.Heal()
	synctest.WaitLeaf(t, cut.nats.Server, true)
	converged("replicas converge after the heal")
	// Level 1's disable made during the cut holds at the home after the
	// heal and ends the session there; the home's enable does not lift
	// it, level 1's does.
	eventuallyWithin(t, 2*time.Minute, "the home refuses the person level 1 disabled", func() bool {
		res, err := cut.e.authPW(stopped, stopped.login, stopped.password)
		return err == nil && res.GetReason() == identityv1.Reason_REASON_ACCOUNT_DISABLED
	})
	eventuallyWithin(t, 2*time.Minute, "the home ends the session of the person level 1 disabled", func() bool {
		ss, err := tkCut.UserSessions(context.Background(), stopped.userID)
		return (err == nil || errors.Is(err, ticket.ErrNoSuchUserSession)) && len(ss) == 0
	})
	if u, err := cut.e.admin.GetUser(cut.e.adm(), &identityv1.GetUserRequest{Id: stopped.userID}); err != nil || u.GetDisabledByCentre() != "l1" {
		t.Fatalf("the person at their home: %v %v", u, err)
	}
	// ... and its authz and provisioning (review sec32c M1), as level 1's.
	provisioned := func(c *syncCentre) string {
		o, _, err := c.e.app.Value(synccomponent.Name).(*synccomponent.Handle).Provision.Store.Object(context.Background(), "identity.user", stopped.userID)
		if err != nil || o == nil {
			return fmt.Sprint(err)
		}
		return string(o.Data)
	}
	for _, c := range []*syncCentre{cut, l1} {
		eventuallyWithin(t, 2*time.Minute, c.name+"'s authz and provisioning take level 1's disable", func() bool {
			ok := !portalCheck(c, stopped.userID, "docs.inbox", "read") &&
				strings.Contains(provisioned(c), `"disabled_by_centre":"l1"`)
			return ok
		})
	}
	if _, err := cut.e.admin.SetUserStatus(cut.e.adm(), &identityv1.SetUserStatusRequest{Id: stopped.userID,
		Status: identityv1.UserStatus_USER_STATUS_ACTIVE}); err != nil {
		t.Fatal(err)
	}
	res, err = cut.e.authPW(stopped, stopped.login, stopped.password)
	wantResult(t, res, err, -1, identityv1.Reason_REASON_ACCOUNT_DISABLED)
	if _, err := l1.e.admin.SetUserStatus(l1.e.adm(), &identityv1.SetUserStatusRequest{Id: stopped.userID,
		Status: identityv1.UserStatus_USER_STATUS_ACTIVE}); err != nil {
		t.Fatalf("level 1 enables a level-2 person: %v", err)
	}
	for _, c := range []*syncCentre{cut, l1} {
		eventuallyWithin(t, 2*time.Minute, c.name+" lets the person level 1 enabled sign in", func() bool {
			res, err := c.e.authPW(stopped, stopped.login, stopped.password)
			return err == nil && res.GetResultCode() == 0
		})
		eventuallyWithin(t, 2*time.Minute, c.name+"'s authz and provisioning take level 1's enable", func() bool {
			return portalCheck(c, stopped.userID, "docs.inbox", "read") &&
				strings.Contains(provisioned(c), `"disabled_by_centre":""`)
		})
	}
	// Level 1's requirement made during the cut holds at the home after
	// the heal, and at level 1 with the home's change of the person.
	for _, c := range []*syncCentre{cut, l1} {
		eventuallyWithin(t, 2*time.Minute, c.name+" asks for the password change level 1 required", func() bool {
			res, err := c.e.authPW(asked, asked.login, asked.password)
			return err == nil && res.GetResultCode() == 0 && res.GetMustChangePassword()
		})
	}
	// Level 1 logs in, with what was changed at level 2 during the cut, a
	// person level 1 did not hold a login for until then.
	res, err = l1.e.authPW(moved, moved.login, moved.password)
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	res, err = l1.e.authPW(moved, moved.login, cut.f[1].password)
	if err != nil || res.GetResultCode() == 0 {
		t.Fatalf("level 1 accepted the password replaced during the cut: %v %v", res, err)
	}
	// A level-2 person's permission granted during the cut is checked at
	// level 1; level 1's role made during the cut is at level 2.
	if !portalCheck(l1, cut.f[1].userID, "docs.contract", "approve") || !portalCheck(cut, cut.f[1].userID, "docs.contract", "approve") {
		t.Fatal("a grant made at the cut-off centre during the cut does not allow after the heal")
	}
	if d := cut.authzDigest(t, "l1"); !strings.Contains(d, "roles:3:") || !strings.Contains(d, "grants:1:") {
		t.Fatalf("the cut-off centre holds not level 1's model and grants: %s", d)
	}
	if d := l1.authzDigest(t, "l2a"); !strings.Contains(d, "grants:2:") {
		t.Fatalf("level 1 holds not l2a's grants: %s", d)
	}

	// Nothing lost, nothing doubled: each centre applied, once, every
	// change its peers wrote of what they share, and skipped none.
	for _, c := range l2 {
		want := changesOf(t, c, applier.Up)
		d, err := l1.sync().GetSyncStatus(l1.e.adm(), &syncv1.GetSyncStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range d.GetLinks() {
			if l.GetPeer() == c.name && (uint64(l.GetApplied()) != want || l.GetSkipped() != 0 || l.GetPending() != 0) {
				t.Errorf("l1's link of %s: applied %d skipped %d pending %d, want %d applied", c.name, l.GetApplied(),
					l.GetSkipped(), l.GetPending(), want)
			}
		}
		wantDown := changesOf(t, l1, applier.Down)
		s, err := c.sync().GetSyncStatus(c.e.adm(), &syncv1.GetSyncStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range s.GetLinks() {
			if l.GetPeer() == "l1" && (uint64(l.GetApplied()) != wantDown || l.GetSkipped() != 0) {
				t.Errorf("%s's link of l1: applied %d skipped %d, want %d", c.name, l.GetApplied(), l.GetSkipped(), wantDown)
			}
		}
	}

	// A centre's own components learn of the changes it applies as
	// replicas (local events): a person of l2b disabled at l2b loses the
	// session they had at level 1, and level 1's authz knows where l2b's
	// people are.
	other, ctx := l2[1], context.Background()
	tk := l1.e.app.Value(ticketcomponent.Name).(*ticketcomponent.Handle).Service
	p := other.f[1]
	if _, _, err := tk.CreateSession(ctx, ticket.NewSession{UserID: p.userID, Login: p.login, AuthLevel: 1}); err != nil {
		t.Fatal(err)
	}
	if l1.authzIndexOrg(p.userID) != other.bureau {
		t.Fatalf("level 1's authz holds %s's person in org %q, want %q", other.name, l1.authzIndexOrg(p.userID), other.bureau)
	}
	if _, err := other.e.admin.SetUserStatus(other.e.adm(), &identityv1.SetUserStatusRequest{Id: p.userID,
		Status: identityv1.UserStatus_USER_STATUS_DISABLED}); err != nil {
		t.Fatal(err)
	}
	eventuallyWithin(t, 2*time.Minute, "level 1 ends the session of a person disabled at their home centre", func() bool {
		ss, err := tk.UserSessions(ctx, p.userID)
		return (err == nil || errors.Is(err, ticket.ErrNoSuchUserSession)) && len(ss) == 0
	})

	// An org grant on level 1's root reaches the bureaus' people at level 1:
	// level 1's authz places each bureau where level 1's identity attached
	// it (under level 1's root), not under the bureau's parent at its home.
	q := other.f[0]
	if portalCheck(l1, q.userID, "docs", "read") {
		t.Fatal("level 1 allows before the grant")
	}
	az1 := l1.e.app.Value(authzcomponent.Name).(*authzcomponent.Handle)
	root1 := rootOf(t, l1)
	if anc := az1.Index.OrgAncestors(other.bureau); len(anc) != 2 || anc[1] != root1 {
		t.Fatalf("level 1's authz holds %s's bureau under %v, want level 1's root %s", other.name, anc, root1)
	}
	// (In process: the administrator of the test belongs to the root org,
	// and nobody grants roles to an org they belong to.)
	if _, _, err := az1.Service.CreateGrant(ctx, authz.Grant{Role: reader.GetRole().GetId(),
		Subject: authz.Subject{Kind: authz.SubjectOrg, ID: root1}}); err != nil {
		t.Fatal(err)
	}
	if !portalCheck(l1, q.userID, "docs", "read") {
		t.Fatalf("a grant on level 1's root does not reach a person of %s at level 1", other.name)
	}

	// Lockouts hold across centres: a person of l2b locked at level 1 (their
	// password failed there, from several addresses) is refused at l2b with
	// the right password, and one of l2a locked at l2a is refused at level 1.
	lockAt := func(c *syncCentre, f fixture) {
		t.Helper()
		var res *identityv1.AuthenticateResponse
		var err error
		for i := range 5 {
			res, err = c.e.auth.Authenticate(f.ctx(), &identityv1.AuthenticateRequest{AppUserId: f.login, Password: "Wrong-Pass-1",
				AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD, ExtendInfo: map[string]string{"client_ip": fmt.Sprintf("198.51.100.%d", i)}})
		}
		wantResult(t, res, err, -1, identityv1.Reason_REASON_ACCOUNT_LOCKED)
	}
	lockedAt := func(c *syncCentre, f fixture) func() bool {
		return func() bool {
			res, err := c.e.authPW(f, f.login, f.password)
			return err == nil && res.GetReason() == identityv1.Reason_REASON_ACCOUNT_LOCKED
		}
	}
	lockAt(l1, q)
	eventuallyWithin(t, 2*time.Minute, "l2b refuses its person locked at level 1", lockedAt(other, q))
	r := cut.f[2]
	lockAt(cut, r)
	eventuallyWithin(t, 2*time.Minute, "level 1 refuses a person locked at l2a", lockedAt(l1, r))
	converged("replicas converge after lockouts at both levels")

	// Separation of duty holds at level 1 for memberships made at level 2
	// (review sec13 M2): a level-1 group gives l2a's person the approver
	// role; l2a, which does not see that group, adds them to its group
	// holding the clerk role; level 1 leaves the membership out
	// (CONFLICT, a skipped change) and the person is no clerk there.
	if _, err := adm1.CreateExclusion(l1.e.adm(), &authzv1.Exclusion{RoleA: clerk, RoleB: approver, Name: "maker-checker"}); err != nil {
		t.Fatal(err)
	}
	s := cut.f[2]
	approvers, err := l1.e.admin.CreateGroup(l1.e.adm(), &identityv1.CreateGroupRequest{Code: "l1-approvers", Name: "Approvers", OrgId: root1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l1.e.admin.AddGroupMember(l1.e.adm(), &identityv1.GroupMemberRequest{GroupId: approvers.GetId(), UserId: s.userID}); err != nil {
		t.Fatalf("level 1 adds a level-2 person to its group: %v", err)
	}
	if _, err := adm1.CreateGrant(l1.e.adm(), &authzv1.Grant{RoleId: approver, Subject: &authzv1.Subject{Kind: "group", Id: approvers.GetId()}}); err != nil {
		t.Fatal(err)
	}
	clerks, err := cut.e.admin.CreateGroup(cut.e.adm(), &identityv1.CreateGroupRequest{Code: "l2a-clerks", Name: "Clerks", OrgId: cut.bureau})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm2.CreateGrant(cut.e.adm(), &authzv1.Grant{RoleId: clerk, Subject: &authzv1.Subject{Kind: "group", Id: clerks.GetId()}}); err != nil {
		t.Fatal(err)
	}
	eventuallyWithin(t, 2*time.Minute, "l2a's group grant reaches level 1", func() bool {
		return strings.Contains(l1.authzDigest(t, "l2a"), "grants:3:")
	})
	eventuallyWithin(t, 2*time.Minute, "the person is an approver at level 1", func() bool {
		return portalCheck(l1, s.userID, "docs.contract", "approve")
	})
	if _, err := cut.e.admin.AddGroupMember(cut.e.adm(), &identityv1.GroupMemberRequest{GroupId: clerks.GetId(), UserId: s.userID}); err != nil {
		t.Fatalf("l2a adds its person to its clerks: %v", err)
	}
	eventuallyWithin(t, 2*time.Minute, "level 1 leaves the membership out as a conflict", func() bool {
		sk, err := l1.sync().ListSkippedChanges(l1.e.adm(), &syncv1.ListSkippedChangesRequest{PageSize: 500})
		if err != nil {
			return false
		}
		for _, c := range sk.GetChanges() {
			if c.GetReason() == "CONFLICT" && c.GetObjectId() == clerks.GetId() && c.GetOrigin() == "l2a" {
				return true
			}
		}
		return false
	})
	members := func(c *syncCentre) []string {
		g, err := c.e.admin.GetGroup(c.e.adm(), &identityv1.GetGroupRequest{Id: clerks.GetId()})
		if err != nil {
			t.Fatalf("the clerks at %s: %v", c.name, err)
		}
		return g.GetMemberIds()
	}
	if slices.Contains(members(l1), s.userID) || !slices.Contains(members(cut), s.userID) {
		t.Fatalf("the clerks: %v at level 1 (without the person), %v at l2a (with them)", members(l1), members(cut))
	}
	if !portalCheck(cut, s.userID, "docs.inbox", "read") {
		t.Fatal("the membership does not serve at l2a, its home")
	}
	// The conflict stays open (sync status counts it) until l2a mends it
	// (here: takes the person out of the clerks); then it is listed as
	// resolved by that change (trial10 L5).
	membership := "group:" + clerks.GetId() + "/member:" + s.userID
	openConflict := func() (*syncv1.SkippedChange, int64) {
		sk, err := l1.sync().ListSkippedChanges(l1.e.adm(), &syncv1.ListSkippedChangesRequest{PageSize: 500, OpenOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		st, err := l1.sync().GetSyncStatus(l1.e.adm(), &syncv1.GetSyncStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var n int64
		for _, l := range st.GetLinks() {
			if l.GetPeer() == "l2a" {
				n = l.GetOpenConflicts()
			}
		}
		for _, c := range sk.GetChanges() {
			if c.GetObject() == membership {
				return c, n
			}
		}
		return nil, n
	}
	if c, n := openConflict(); c == nil || c.GetResolvedTime() != nil || n < 1 {
		t.Fatalf("the membership's conflict is not open at level 1: %v (open conflicts of l2a: %d)", c, n)
	}
	if _, err := cut.e.admin.RemoveGroupMember(cut.e.adm(), &identityv1.GroupMemberRequest{GroupId: clerks.GetId(), UserId: s.userID}); err != nil {
		t.Fatal(err)
	}
	eventuallyWithin(t, 2*time.Minute, "the membership's conflict is resolved at level 1", func() bool {
		c, _ := openConflict()
		return c == nil
	})
	all, err := l1.sync().ListSkippedChanges(l1.e.adm(), &syncv1.ListSkippedChangesRequest{PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	resolved := false
	for _, c := range all.GetChanges() {
		resolved = resolved || c.GetObject() == membership && c.GetResolvedTime() != nil && c.GetResolvedByEventId() != ""
	}
	if !resolved {
		t.Fatal("the membership's conflict is not listed as resolved at level 1")
	}
	// Refused again, it is resolved by hand at level 1 (the operator
	// accepts that the person is a clerk at l2a only); audited.
	if _, err := cut.e.admin.AddGroupMember(cut.e.adm(), &identityv1.GroupMemberRequest{GroupId: clerks.GetId(), UserId: s.userID}); err != nil {
		t.Fatal(err)
	}
	var again *syncv1.SkippedChange
	eventuallyWithin(t, 2*time.Minute, "the membership is refused again at level 1", func() bool {
		again, _ = openConflict()
		return again != nil
	})
	_, err = l1.sync().ResolveSkippedChanges(l1.e.adm(), &syncv1.ResolveSkippedChangesRequest{EventId: again.GetEventId(), Object: "user:nobody"})
	wantCode(t, err, codes.NotFound, "")
	byHand, err := l1.sync().ResolveSkippedChanges(l1.e.adm(), &syncv1.ResolveSkippedChangesRequest{EventId: again.GetEventId()})
	if err != nil || byHand.GetResolved() != 1 {
		t.Fatalf("resolving the conflict by hand: %v %v", byHand, err)
	}
	if c, _ := openConflict(); c != nil {
		t.Fatalf("resolved by hand, still open: %v", c)
	}
	_, err = l1.sync().ResolveSkippedChanges(l1.e.adm(), &syncv1.ResolveSkippedChangesRequest{EventId: again.GetEventId()})
	wantCode(t, err, codes.NotFound, "")
	eventuallyWithin(t, time.Minute, "the resolution by hand is in level 1's audit log", func() bool {
		for _, ev := range appEvents(t, l1.e.app, "AUDIT", "uias.audit.") {
			if ev["api"] == "sync.skipped.resolve" && ev["subject"] == "change:"+again.GetEventId() && ev["result"] == "success" {
				return true
			}
		}
		return false
	})

	// Level 1 appoints a person of l2a unit administrator of a unit of
	// l2a (004 §2.1.6.2.1): at l2a they log in to the console (choosing
	// their own password there) and administer that unit, and nothing
	// outside it; l2a does not revoke level 1's appointment.
	unit, err := cut.e.admin.CreateOrg(cut.e.adm(), &identityv1.CreateOrgRequest{Code: "l2a-unit", Name: "Unit", ParentId: cut.bureau})
	if err != nil {
		t.Fatal(err)
	}
	ua := cut.f[0]
	eventuallyWithin(t, 2*time.Minute, "level 1 holds the unit", func() bool {
		_, err := l1.e.admin.GetOrg(l1.e.adm(), &identityv1.GetOrgRequest{Id: unit.GetId()})
		return err == nil && len(az1.Index.OrgAncestors(unit.GetId())) > 1
	})
	appointed, err := adm1.CreateGrant(l1.e.adm(), &authzv1.Grant{RoleId: "unit_admin",
		Subject: &authzv1.Subject{Kind: "user", Id: ua.userID}, ScopeOrg: unit.GetId()})
	if err != nil {
		t.Fatalf("level 1 appoints a person of l2a unit administrator of l2a's unit: %v", err)
	}
	var uaToken string
	eventuallyWithin(t, 2*time.Minute, "the unit administrator logs in at l2a", func() bool {
		uaToken, err = cut.e.firstAdminLogin(t, ua.login, ua.password)
		return err == nil
	})
	uaCtx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+uaToken)
	if _, err := cut.e.admin.CreateOrg(uaCtx, &identityv1.CreateOrgRequest{Code: "l2a-unit-1", Name: "Unit one", ParentId: unit.GetId()}); err != nil {
		t.Fatalf("the unit administrator inside their unit at l2a: %v", err)
	}
	_, err = cut.e.admin.CreateOrg(uaCtx, &identityv1.CreateOrgRequest{Code: "l2a-other", Name: "Other", ParentId: cut.bureau})
	wantCode(t, err, codes.PermissionDenied, "")
	_, err = adm2.RevokeGrant(cut.e.adm(), &authzv1.RevokeGrantRequest{Id: appointed.GetGrant().GetId()})
	wantCode(t, err, codes.FailedPrecondition, centre.ReasonElsewhere)
}

// identityDigest is the digest of identity's tables of the rows homed at
// home, as c sees them (only table when not ""), read in process.
func (c *syncCentre) identityDigest(t *testing.T, home, table string) string {
	t.Helper()
	ds, err := c.e.app.Value(identitycomponent.Name).(*identitycomponent.Handle).Service.ReplicaDigest(context.Background(), home)
	if err != nil {
		t.Fatal(err)
	}
	out := ""
	for _, d := range ds {
		if table == "" || d.Table == table {
			out += fmt.Sprintf("%s:%d:%s ", d.Table, d.Rows, d.SHA256)
		}
	}
	return out
}

func rootOf(t *testing.T, c *syncCentre) string {
	t.Helper()
	orgs, err := c.e.admin.ListOrgs(c.e.adm(), &identityv1.ListOrgsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range orgs.GetOrgs() {
		if o.GetParentId() == "" {
			return o.GetId()
		}
	}
	t.Fatal("no root org")
	return ""
}

// eventuallyWithin is eventually with a deadline of its own: replicas
// converge through leaf-node reconnects and stream sourcing, slow on a
// loaded machine.
func eventuallyWithin(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// authzDigest is the digest of authz's tables of the objects homed at home,
// as c sees them, read in process.
func (c *syncCentre) authzDigest(t *testing.T, home string) string {
	t.Helper()
	ds, err := c.e.app.Value(authzcomponent.Name).(*authzcomponent.Handle).Service.ReplicaDigest(context.Background(), home)
	if err != nil {
		t.Fatal(err)
	}
	out := ""
	for _, d := range ds {
		out += fmt.Sprintf("%s:%d:%s ", d.Table, d.Rows, d.SHA256)
	}
	return out
}

// authzIndexOrg is the org of person as c's authz mirrors it.
func (c *syncCentre) authzIndexOrg(person string) string {
	return c.e.app.Value(authzcomponent.Name).(*authzcomponent.Handle).Index.UserOrg(person)
}
