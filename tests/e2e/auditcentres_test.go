package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/cmd/uias/app"
	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	auditcomponent "github.com/uias/uias/services/audit/component"
	identitycomponent "github.com/uias/uias/services/identity/component"
	synccomponent "github.com/uias/uias/services/sync/component"
	"github.com/uias/uias/services/sync/synctest"
)

// auditFile is the audit section of a deploy/centres/uias-*.yaml file.
func auditFile(t testing.TB, name string) auditcomponent.Config {
	t.Helper()
	cfg, err := app.LoadConfig(filepath.Join(deployCentres, name), func(string) (string, bool) { return "", false }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return *auditcomponent.Settings(&cfg)
}

// TestAuditAcrossCentres (004 §2.1.7.1, ADR 0029): a level-2 centre's
// audit records reach level 1 over the leaf-node link (its AUDIT_LOG
// sourced through its JetStream domain), kept per origin: a login at l2a
// is queried at level 1 with origin l2a.audit; level 1 verifies both logs,
// each against its own tree and signed checkpoints, and catches a record of
// l2a changed in its database; a cut link and a restart of level 1 deliver
// the backlog once; a unit administrator at level 1 does not see another
// unit's records; level 1's absence report counts the logins made at l2a.
func TestAuditAcrossCentres(t *testing.T) {
	if testing.Short() {
		t.Skip("two UIAS processes")
	}
	dir := t.TempDir()
	l1 := &syncCentre{name: "l1", nats: synctest.StartLevel1(t, "l1"), dir: filepath.Join(dir, "l1")}
	l2 := &syncCentre{name: "l2a", dir: filepath.Join(dir, "l2a")}
	l2.nats = synctest.StartLevel2(t, "l2a", l1.nats)

	// l2a set up on its own first: its bureau and two of its people.
	l2.e = start(t, l2.config(t, nil))
	l2.e.login()
	o, err := l2.e.admin.CreateOrg(l2.e.adm(), &identityv1.CreateOrgRequest{Code: "bureau-l2a", Name: "Bureau l2a", ParentId: l2.e.root})
	if err != nil {
		t.Fatal(err)
	}
	l2.bureau = o.GetId()
	l2.e.root = l2.bureau
	seen := l2.e.seed("l2a-oa0", "l2a-p0", nil, nil)
	away := l2.e.seed("l2a-oa1", "l2a-p1", nil, nil)
	l2.stop(t)

	// The settings of deploy/centres (docs/operators.md).
	a2 := auditFile(t, "uias-l2a.yaml")
	if a2.Origin != "l2a.audit" || !a2.Share {
		t.Fatalf("deploy/centres/uias-l2a.yaml: audit %+v", a2)
	}
	f2 := centreFile(t, "uias-l2a.yaml")
	f2.HomeSubtrees = []string{l2.bureau}
	cfg2 := l2.config(t, func(s *synccomponent.Config) { *s = f2 })
	set2 := auditcomponent.Settings(&cfg2)
	set2.Origin, set2.Share, set2.CheckpointInterval, set2.CheckpointEvery = a2.Origin, a2.Share, time.Second, 5
	l2.e = start(t, cfg2)
	l2.e.login()
	var l2keys []string
	eventuallyWithin(t, time.Minute, "l2a signs a checkpoint", func() bool {
		c, err := auditv1.NewAuditLogServiceClient(l2.e.conn).GetCheckpoint(l2.e.aud(), &auditv1.GetCheckpointRequest{})
		l2keys = c.GetVerifierKeys()
		return err == nil && len(l2keys) > 0
	})

	a1 := auditFile(t, "uias-l1.yaml")
	if a1.Origin != "l1.audit" || len(a1.Peers) != 1 || a1.Peers[0].Centre != "l2a" || a1.Peers[0].Origin != "l2a.audit" {
		t.Fatalf("deploy/centres/uias-l1.yaml: audit %+v", a1)
	}
	a1.Peers[0].VerifierKeys = l2keys
	f1 := centreFile(t, "uias-l1.yaml")
	f1.Peers = f1.Peers[:1]
	f1.Peers[0].Subtrees = []string{l2.bureau}
	cfg1 := l1.config(t, func(s *synccomponent.Config) { *s = f1 })
	set1 := auditcomponent.Settings(&cfg1)
	set1.Origin, set1.Peers, set1.CheckpointInterval = a1.Origin, a1.Peers, time.Second
	l1.e = start(t, cfg1)
	l1.e.login()

	// A login at l2a is a record of origin l2a.audit at level 1.
	res, err := l2.e.authPW(seen, seen.login, seen.password)
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	q1 := auditv1.NewAuditQueryServiceClient(l1.e.conn)
	loginsAt1 := func(ctx context.Context, origin string) []*auditv1.Record {
		t.Helper()
		r, err := q1.QueryRecords(ctx, &auditv1.QueryRecordsRequest{Subject: "user:" + seen.userID, Api: "authenticate", Origin: origin})
		if err != nil {
			t.Fatalf("query at level 1: %v", err)
		}
		return r.GetRecords()
	}
	eventuallyWithin(t, 2*time.Minute, "l2a's login reaches level 1", func() bool {
		return len(loginsAt1(l1.e.aud(), "")) == 1
	})
	if r := loginsAt1(l1.e.aud(), "")[0]; r.GetOrigin() != "l2a.audit" || r.GetResult() != "success" {
		t.Fatalf("l2a's login at level 1: %v", r)
	}
	if n := len(loginsAt1(l1.e.aud(), "l1.audit")); n != 0 {
		t.Fatalf("l2a's login among level 1's own records: %d", n)
	}
	own, err := q1.QueryRecords(l1.e.aud(), &auditv1.QueryRecordsRequest{Api: "admin.login", PageSize: 1000})
	if err != nil {
		t.Fatal(err)
	}
	origins := map[string]bool{}
	for _, r := range own.GetRecords() {
		origins[r.GetOrigin()] = true
	}
	if !origins["l1.audit"] || !origins["l2a.audit"] {
		t.Fatalf("administrators' logins at level 1: origins %v, want both centres'", origins)
	}
	// The system administrator of level 1 sees them too.
	if n := len(loginsAt1(l1.e.adm(), "l2a.audit")); n != 1 {
		t.Fatalf("level 1's system administrator sees %d of l2a's logins", n)
	}

	// Verify at level 1: both logs, each against its own checkpoints.
	logs1 := auditv1.NewAuditLogServiceClient(l1.e.conn)
	verified := func() *auditv1.VerifyLogResponse {
		t.Helper()
		v, err := logs1.VerifyLog(l1.e.aud(), &auditv1.VerifyLogRequest{})
		if err != nil {
			t.Fatalf("verify at level 1: %v", err)
		}
		return v
	}
	byOrigin := func(v *auditv1.VerifyLogResponse, origin string) *auditv1.OriginVerification {
		for _, o := range v.GetOrigins() {
			if o.GetOrigin() == origin {
				return o
			}
		}
		t.Fatalf("verify names no log %s: %v", origin, v)
		return nil
	}
	eventuallyWithin(t, time.Minute, "level 1 holds a checkpoint of l2a", func() bool {
		return byOrigin(verified(), "l2a.audit").GetCheckpoints() > 0
	})
	if v := verified(); !v.GetOk() || len(v.GetOrigins()) != 2 || !v.GetOrigins()[0].GetOwn() || v.GetOrigins()[0].GetOrigin() != "l1.audit" ||
		!byOrigin(v, "l2a.audit").GetOk() || byOrigin(v, "l2a.audit").GetCompleteUntil() == nil {
		t.Fatalf("verify at level 1: %v", v)
	}
	_, err = logs1.VerifyLog(l1.e.aud(), &auditv1.VerifyLogRequest{Origin: "l9.audit"})
	if st := wantCode(t, err, codes.NotFound, ""); st.Message() == "" {
		t.Fatal("no message for an unknown origin")
	}

	// The link cut: l2a keeps logging people in; healed, level 1 gets
	// each record once. Then level 1 restarts while l2a logs in more.
	l2log := l2.e.app.Value(auditcomponent.Name).(*auditcomponent.Handle)
	l1log := l1.e.app.Value(auditcomponent.Name).(*auditcomponent.Handle)
	q2 := auditv1.NewAuditQueryServiceClient(l2.e.conn)
	caughtUp := func(what string, logins int, h func() *auditcomponent.Handle) {
		t.Helper()
		// l2a's own log holds the logins first (they reach it through
		// its AUDIT stream), then level 1 holds all of l2a's log.
		eventuallyWithin(t, time.Minute, "l2a's log holds its logins", func() bool {
			r, err := q2.QueryRecords(l2.e.aud(), &auditv1.QueryRecordsRequest{Subject: "user:" + seen.userID, Api: "authenticate"})
			return err == nil && len(r.GetRecords()) == logins
		})
		eventuallyWithin(t, 3*time.Minute, what, func() bool {
			want, err := l2log.Store.Size(context.Background())
			if err != nil {
				return false
			}
			peers, err := h().Store.Peers(context.Background())
			return err == nil && len(peers) == 1 && peers[0].Size == want
		})
		var n, distinct, maxSeq int64
		if err := h().DB.QueryRowContext(context.Background(), "SELECT COUNT(*), COUNT(DISTINCT event_id), MAX(seq) FROM audit_peer_records "+
			"WHERE origin = 'l2a.audit'").Scan(&n, &distinct, &maxSeq); err != nil {
			t.Fatal(err)
		}
		if n != distinct || n != maxSeq+1 {
			t.Fatalf("%s: level 1 holds %d records of l2a, %d distinct, up to seq %d", what, n, distinct, maxSeq)
		}
	}
	caughtUp("level 1 holds l2a's whole log", 1, func() *auditcomponent.Handle { return l1log })
	l2.nats.Link.Cut()
	synctest.WaitLeaf(t, l2.nats.Server, false)
	for range 3 {
		res, err := l2.e.authPW(seen, seen.login, seen.password)
		wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	}
	eventuallyWithin(t, time.Minute, "l2a's log holds the logins of the cut", func() bool {
		r, err := q2.QueryRecords(l2.e.aud(), &auditv1.QueryRecordsRequest{Subject: "user:" + seen.userID, Api: "authenticate"})
		return err == nil && len(r.GetRecords()) == 4
	})
	if n := len(loginsAt1(l1.e.aud(), "l2a.audit")); n != 1 {
		t.Fatalf("level 1 holds %d of l2a's logins while the link is cut", n)
	}
	l2.nats.Link.Heal()
	synctest.WaitLeaf(t, l2.nats.Server, true)
	caughtUp("the backlog of the cut reaches level 1 once", 4, func() *auditcomponent.Handle { return l1log })
	if n := len(loginsAt1(l1.e.aud(), "l2a.audit")); n != 4 {
		t.Fatalf("level 1 holds %d of l2a's 4 logins", n)
	}
	l1.stop(t)
	for range 2 {
		res, err := l2.e.authPW(seen, seen.login, seen.password)
		wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	}
	l1.e = start(t, cfg1)
	l1.e.login()
	q1 = auditv1.NewAuditQueryServiceClient(l1.e.conn)
	logs1 = auditv1.NewAuditLogServiceClient(l1.e.conn)
	caughtUp("after level 1's restart, each record once", 6, func() *auditcomponent.Handle {
		return l1.e.app.Value(auditcomponent.Name).(*auditcomponent.Handle)
	})
	if n := len(loginsAt1(l1.e.aud(), "l2a.audit")); n != 6 {
		t.Fatalf("level 1 holds %d of l2a's 6 logins", n)
	}
	if v := verified(); !v.GetOk() {
		t.Fatalf("verify at level 1 after the cut and the restart: %v", v)
	}

	// A unit administrator at level 1 sees their unit's records only.
	// (level 1 holds l2a's first root too, as a replica: the unit goes
	// under level 1's own)
	orgs, err := l1.e.admin.ListOrgs(l1.e.adm(), &identityv1.ListOrgsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var unit *identityv1.Org
	for _, o := range orgs.GetOrgs() {
		if o.GetParentId() == "" && unit == nil {
			unit, err = l1.e.admin.CreateOrg(l1.e.adm(), &identityv1.CreateOrgRequest{Code: "l1-unit", Name: "Unit", ParentId: o.GetId()})
		}
	}
	if unit == nil {
		t.Fatalf("no unit under level 1's root: %v", err)
	}
	ux, err := l1.e.admin.CreateUser(l1.e.adm(), &identityv1.CreateUserRequest{LoginName: "l1-ux", DisplayName: "Unit admin",
		OrgId: unit.GetId(), Password: escalationPassword, PasswordNeverExpires: true})
	if err != nil {
		t.Fatal(err)
	}
	g, err := authzv1.NewAuthzAdminServiceClient(l1.e.conn).CreateGrant(l1.e.adm(), &authzv1.Grant{RoleId: "unit_admin",
		Subject: &authzv1.Subject{Kind: "user", Id: ux.GetId()}, ScopeOrg: unit.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	l1.e.noteGrant("l1-ux", g)
	var uxToken string
	eventually(t, "the unit administrator logs in at level 1", func() bool {
		uxToken, err = l1.e.firstAdminLogin(t, "l1-ux", escalationPassword)
		return err == nil
	})
	uxCtx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+uxToken)
	if n := len(loginsAt1(uxCtx, "")); n != 0 {
		t.Fatalf("a unit administrator of level 1 sees %d logins of l2a's bureau", n)
	}
	if n := len(loginsAt1(uxCtx, "l2a.audit")); n != 0 {
		t.Fatalf("a unit administrator of level 1 sees %d logins of l2a's bureau (origin l2a.audit)", n)
	}
	mine, err := q1.QueryRecords(uxCtx, &auditv1.QueryRecordsRequest{PageSize: 1000})
	if err != nil {
		t.Fatalf("a unit administrator queries their unit's records: %v", err)
	}
	for _, r := range mine.GetRecords() {
		if r.GetOrigin() == "l2a.audit" {
			t.Fatalf("a unit administrator of level 1 sees a record of l2a: %v", r)
		}
	}

	// Level 1's absence report counts the logins made at l2a: of l2a's two
	// people (their accounts made a month ago), the one who logged in at
	// l2a is not absent, the other is.
	idDB := l1.e.app.Value(identitycomponent.Name).(*identitycomponent.Handle).DB
	month := time.Now().Add(-30 * 24 * time.Hour).UnixMilli()
	if _, err := idDB.ExecContext(context.Background(), idDB.Rebind("UPDATE users SET created_at = ? WHERE id IN (?, ?)"), month,
		seen.userID, away.userID); err != nil {
		t.Fatal(err)
	}
	an1 := auditv1.NewAuditAnalyticsServiceClient(l1.e.conn)
	abs, err := an1.Absences(l1.e.aud(), &auditv1.AbsencesRequest{Days: 7})
	if err != nil {
		t.Fatalf("absence report at level 1: %v", err)
	}
	listed := map[string]bool{}
	for _, a := range abs.GetAbsences() {
		listed[a.GetUserId()] = true
	}
	if listed[seen.userID] || !listed[away.userID] {
		t.Fatalf("absence report at level 1: l2a's person who logged in at l2a listed %v, the one who never did %v (%v)",
			listed[seen.userID], listed[away.userID], abs)
	}
	var l2status *auditv1.OriginStatus
	for _, o := range abs.GetOrigins() {
		if o.GetOrigin() == "l2a.audit" {
			l2status = o
		}
	}
	if l2status == nil || l2status.GetCompleteUntil() == nil || l2status.GetRecords() == 0 {
		t.Fatalf("the absence report does not say up to when l2a's log is complete: %v", abs.GetOrigins())
	}
	// Online now at level 1: its own SSO sessions, and l2a's people who
	// logged in there lately (their sessions are at l2a).
	on, err := an1.OnlineNow(l1.e.aud(), &auditv1.OnlineNowRequest{})
	if err != nil {
		t.Fatalf("online now at level 1: %v", err)
	}
	online := false
	for _, p := range on.GetPeople() {
		online = online || p.GetUserId() == seen.userID
	}
	if !online || on.GetSource() != "ticket+logins" || len(on.GetOrigins()) != 2 {
		t.Fatalf("online now at level 1 does not show l2a's person logged in there: %v", on)
	}
	hist, err := an1.LoginHistory(l1.e.aud(), &auditv1.LoginHistoryRequest{UserId: seen.userID})
	if err != nil || len(hist.GetLogins()) != 6 || hist.GetLogins()[0].GetOrigin() != "l2a.audit" {
		t.Fatalf("login history at level 1 of l2a's person: %v %v", hist, err)
	}

	// A record of l2a changed in level 1's database: verify fails for
	// l2a's log, level 1's own still verifies.
	if _, err := l1.e.app.Value(auditcomponent.Name).(*auditcomponent.Handle).DB.ExecContext(context.Background(),
		"UPDATE audit_peer_records SET result = 'failure' WHERE origin = 'l2a.audit' AND seq = 1"); err != nil {
		t.Fatal(err)
	}
	v := verified()
	if v.GetOk() || !byOrigin(v, "l1.audit").GetOk() || byOrigin(v, "l2a.audit").GetOk() || byOrigin(v, "l2a.audit").GetUnverified() ||
		byOrigin(v, "l2a.audit").GetProblem() == "" {
		t.Fatalf("verify at level 1 after l2a's record 1 was changed there: %v", v)
	}
	if v, err := logs1.VerifyLog(l1.e.aud(), &auditv1.VerifyLogRequest{Origin: "l1.audit"}); err != nil || !v.GetOk() || len(v.GetOrigins()) != 1 {
		t.Fatalf("verify of level 1's own log: %v %v", v, err)
	}
	// l2a's own log is whole at l2a, and l2a holds no record of level 1.
	v2, err := auditv1.NewAuditLogServiceClient(l2.e.conn).VerifyLog(l2.e.aud(), &auditv1.VerifyLogRequest{})
	if err != nil || !v2.GetOk() || len(v2.GetOrigins()) != 1 || v2.GetOrigins()[0].GetOrigin() != "l2a.audit" {
		t.Fatalf("verify at l2a: %v %v", v2, err)
	}
}
