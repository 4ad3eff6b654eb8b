package identity_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

const day = 24 * time.Hour

// secretWorld is a service on SQLite with a test clock and a server
// default secret lifetime; logs are observed.
type secretWorld struct {
	svc  *identity.Service
	clk  *clock
	db   *store.DB
	logs *observer.ObservedLogs
}

func newSecretWorld(t *testing.T, lifetime time.Duration) *secretWorld {
	t.Helper()
	core, logs := observer.New(zapcore.InfoLevel)
	db, clk := testDB(t), newTestClock()
	svc := testService(t, identity.Deps{Store: sqlstore.New(db), Now: clk.now, Sleep: clk.sleep, Logger: zap.New(core),
		Config: identity.Config{AppSecretLifetime: lifetime}})
	return &secretWorld{svc: svc, clk: clk, db: db, logs: logs}
}

func (w *secretWorld) create(t *testing.T, code string, lifetime time.Duration) (*identity.App, string) {
	t.Helper()
	a, secret, err := w.svc.CreateApp(context.Background(), identity.NewApp{Type: "OA", Code: code, Name: code, SecretLifetime: lifetime})
	if err != nil {
		t.Fatal(err)
	}
	return a, secret
}

func (w *secretWorld) call(id, secret string) error {
	_, err := w.svc.AuthenticateApp(context.Background(), id, secret, netip.MustParseAddr("192.0.2.1"))
	return err
}

// auditRecords are the audit records of api so far (from the outbox).
func (w *secretWorld) auditRecords(t *testing.T, api string) []events.AuditRecord {
	t.Helper()
	rows, err := w.db.QueryContext(context.Background(), `SELECT payload FROM events_outbox WHERE subject = ? ORDER BY seq`,
		"uias.audit.identity."+api)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []events.AuditRecord
	for rows.Next() {
		var p []byte
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		var rec events.AuditRecord
		if err := json.Unmarshal(p, &rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	return out
}

// deniedReasons are the reasons of the caller.denied audit records so far.
func (w *secretWorld) deniedReasons(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, rec := range w.auditRecords(t, "caller.denied") {
		out = append(out, rec.Reason)
	}
	return out
}

// auditDetails are the details of the audit records of api so far.
func (w *secretWorld) auditDetails(t *testing.T, api string) []map[string]string {
	t.Helper()
	var out []map[string]string
	for _, rec := range w.auditRecords(t, api) {
		out = append(out, rec.Detail)
	}
	return out
}

func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func wantBadField(t *testing.T, err error, field string) {
	t.Helper()
	ae, ok := apierr.As(err)
	if !ok || ae.Code != apierr.InvalidArgument || ae.Meta[apierr.MetaField] != field || !strings.Contains(ae.Message, field) {
		t.Fatalf("error = %v, want INVALID_ARGUMENT naming %s", err, field)
	}
}

func TestAppSecretExpires(t *testing.T) {
	w := newSecretWorld(t, 90*day)
	start := w.clk.t
	a, secret := w.create(t, "oa", 0)
	wantTime(t, "issued", a.SecretIssuedAt, start)
	wantTime(t, "expires (server default)", a.SecretExpires, start.Add(90*day))
	got, err := w.svc.GetApp(context.Background(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantTime(t, "stored expiry", got.SecretExpires, a.SecretExpires)

	w.clk.t = a.SecretExpires.Add(-time.Second)
	if err := w.call(a.ID, secret); err != nil {
		t.Fatalf("secret refused before its expiry: %v", err)
	}
	w.clk.t = a.SecretExpires
	err = w.call(a.ID, secret)
	if reasonOf(err) != caller.ReasonAppSecretExpired {
		t.Fatalf("expired secret: %v, want %s", err, caller.ReasonAppSecretExpired)
	}
	if ae, _ := apierr.As(err); ae.Code != apierr.Unauthenticated ||
		!strings.Contains(ae.Message, "expired at "+a.SecretExpires.Format(time.RFC3339)) ||
		!strings.Contains(ae.Message, "uias ctl app rotate-secret "+a.ID) {
		t.Fatalf("expired secret error %v", err)
	}
	// Without the secret nothing is learnt.
	if err := w.call(a.ID, "not-the-secret-0123456789"); reasonOf(err) != "BAD_APP_CREDENTIALS" {
		t.Fatalf("wrong secret: %v", err)
	}
	if got := w.deniedReasons(t); strings.Join(got, ",") != caller.ReasonAppSecretExpired+",BAD_APP_CREDENTIALS" {
		t.Fatalf("audited refusals %v", got)
	}

	// Rotating an expired secret issues a fresh one with a fresh expiry;
	// the expired one is not revived by the overlap.
	w.clk.t = w.clk.t.Add(time.Hour)
	overlap := day
	r, secret2, err := w.svc.RotateAppSecret(context.Background(), a.ID, &overlap, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantTime(t, "rotated issue time", r.SecretIssuedAt, w.clk.t)
	wantTime(t, "rotated expiry", r.SecretExpires, w.clk.t.Add(90*day))
	if r.PrevSecretHash != "" {
		t.Fatalf("an expired secret was kept for the overlap (until %v)", r.PrevSecretExpires)
	}
	if err := w.call(a.ID, secret2); err != nil {
		t.Fatalf("new secret refused: %v", err)
	}
	if err := w.call(a.ID, secret); reasonOf(err) != "BAD_APP_CREDENTIALS" {
		t.Fatalf("the expired secret after a rotation: %v", err)
	}

	// A rotation before the expiry: the previous secret works for the
	// overlap, but not beyond its own expiry.
	w.clk.t = r.SecretExpires.Add(-time.Hour)
	r2, secret3, err := w.svc.RotateAppSecret(context.Background(), a.ID, &overlap, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantTime(t, "overlap end", r2.PrevSecretExpires, r.SecretExpires)
	for _, s := range []string{secret2, secret3} {
		if err := w.call(a.ID, s); err != nil {
			t.Fatalf("secret refused within the overlap: %v", err)
		}
	}
	w.clk.t = r.SecretExpires
	// its holder is told it was replaced
	if err := w.call(a.ID, secret2); reasonOf(err) != caller.ReasonAppSecretReplaced || !strings.Contains(err.Error(), "replaced by a newer one") {
		t.Fatalf("previous secret after its overlap: %v", err)
	}
	if err := w.call(a.ID, secret3); err != nil {
		t.Fatalf("new secret: %v", err)
	}
	// No overlap: the previous secret stops at once, and its holder is
	// told it was replaced.
	none := time.Duration(0)
	if _, secret4, err := w.svc.RotateAppSecret(context.Background(), a.ID, &none, nil); err != nil {
		t.Fatal(err)
	} else if err := w.call(a.ID, secret4); err != nil {
		t.Fatalf("new secret after a rotation without overlap: %v", err)
	}
	if err := w.call(a.ID, secret3); reasonOf(err) != caller.ReasonAppSecretReplaced {
		t.Fatalf("previous secret after a rotation without overlap: %v", err)
	}
	// ended before the rotation, so that a clock a little behind does not
	// take it either
	w.clk.t = w.clk.t.Add(-time.Minute)
	if err := w.call(a.ID, secret3); reasonOf(err) != caller.ReasonAppSecretReplaced {
		t.Fatalf("previous secret, a clock a minute behind: %v", err)
	}
}

func TestAppSecretLifetimeUpdateRecomputes(t *testing.T) {
	w := newSecretWorld(t, 90*day)
	start := w.clk.t
	a, secret := w.create(t, "oa", 30*day)
	wantTime(t, "own lifetime expiry", a.SecretExpires, start.Add(30*day))
	if a.SecretLifetime != 30*day {
		t.Fatalf("lifetime %v", a.SecretLifetime)
	}
	w.clk.t = start.Add(40 * day)
	if err := w.call(a.ID, secret); reasonOf(err) != caller.ReasonAppSecretExpired {
		t.Fatalf("after 40 days of 30: %v", err)
	}
	// Longer: recomputed from the issue time, and the secret works again
	// (at once: the update drops this instance's cached app).
	up, err := w.svc.UpdateApp(context.Background(), a.ID, identity.AppUpdate{Mask: []string{"secret_lifetime_seconds"}, SecretLifetime: 60 * day})
	if err != nil {
		t.Fatal(err)
	}
	wantTime(t, "recomputed expiry", up.SecretExpires, start.Add(60*day))
	wantTime(t, "issue time kept", up.SecretIssuedAt, start)
	// the audit record says what changed: the lifetime and the new expiry
	if ds := w.auditDetails(t, "app.update"); len(ds) != 1 || ds[0]["fields"] != "secret_lifetime_seconds" ||
		ds[0]["secret_lifetime_seconds"] != "5184000" || ds[0]["secret_expire_time"] != start.Add(60*day).UTC().Format(time.RFC3339) {
		t.Fatalf("app.update audit details %v", ds)
	}
	if err := w.call(a.ID, secret); err != nil {
		t.Fatalf("after the lifetime was lengthened: %v", err)
	}
	// Back to the server default.
	up, err = w.svc.UpdateApp(context.Background(), a.ID, identity.AppUpdate{Mask: []string{"secret_lifetime_seconds"}})
	if err != nil {
		t.Fatal(err)
	}
	wantTime(t, "default expiry", up.SecretExpires, start.Add(90*day))
	// Another field leaves the expiry alone.
	up, err = w.svc.UpdateApp(context.Background(), a.ID, identity.AppUpdate{Mask: []string{"name"}, Name: "Renamed"})
	if err != nil {
		t.Fatal(err)
	}
	wantTime(t, "expiry after a rename", up.SecretExpires, start.Add(90*day))

	// Bad lifetimes name the field.
	for _, d := range []time.Duration{-time.Second, identity.MaxSecretLifetime + time.Second} {
		_, err := w.svc.UpdateApp(context.Background(), a.ID, identity.AppUpdate{Mask: []string{"secret_lifetime_seconds"}, SecretLifetime: d})
		wantBadField(t, err, "secret_lifetime_seconds")
		_, _, err = w.svc.CreateApp(context.Background(), identity.NewApp{Type: "OA", Code: "bad", Name: "bad", SecretLifetime: d})
		wantBadField(t, err, "secret_lifetime_seconds")
	}
}

func TestAppSecretsDoNotExpireByDefault(t *testing.T) {
	w := newSecretWorld(t, 0)
	a, secret := w.create(t, "oa", 0)
	if !a.SecretExpires.IsZero() || a.SecretIssuedAt.IsZero() {
		t.Fatalf("without a lifetime: expires %v, issued %v", a.SecretExpires, a.SecretIssuedAt)
	}
	w.clk.t = w.clk.t.Add(20 * 365 * day)
	if err := w.call(a.ID, secret); err != nil {
		t.Fatalf("a secret without a lifetime refused: %v", err)
	}
	// Its own lifetime applies from its issue time: one shorter than the
	// secret's age (20 years here) would cut the application off at once,
	// and is refused, saying to rotate first; nothing changes.
	_, err := w.svc.UpdateApp(context.Background(), a.ID, identity.AppUpdate{Mask: []string{"secret_lifetime_seconds"}, SecretLifetime: 365 * day})
	if e, ok := apierr.As(err); !ok || e.Reason != identity.ReasonSecretLifetimeTooShort || !strings.Contains(e.Message, "rotate the secret first") {
		t.Fatalf("a lifetime shorter than the secret's age: %v", err)
	}
	got, err := w.svc.GetApp(context.Background(), a.ID)
	if err != nil || !got.SecretExpires.IsZero() || got.SecretLifetime != 0 {
		t.Fatalf("after the refusal: %+v %v", got, err)
	}
	if err := w.call(a.ID, secret); err != nil {
		t.Fatalf("after the refused lifetime: %v", err)
	}
	// After a rotation the lifetime runs from the new secret's issue.
	if _, secret, err = w.svc.RotateAppSecret(context.Background(), a.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	up, err := w.svc.UpdateApp(context.Background(), a.ID, identity.AppUpdate{Mask: []string{"secret_lifetime_seconds"}, SecretLifetime: 365 * day})
	if err != nil {
		t.Fatal(err)
	}
	wantTime(t, "expiry", up.SecretExpires, w.clk.t.Add(365*day))
	w.clk.t = w.clk.t.Add(366 * day)
	if err := w.call(a.ID, secret); reasonOf(err) != caller.ReasonAppSecretExpired {
		t.Fatalf("after its own lifetime: %v", err)
	}
}

func TestListAppsSecretExpiring(t *testing.T) {
	w := newSecretWorld(t, 0)
	start := w.clk.t
	expired, _ := w.create(t, "expired", day)
	soon, _ := w.create(t, "soon", 20*day)
	later, _ := w.create(t, "later", 60*day)
	never, _ := w.create(t, "never", 0)
	w.clk.t = start.Add(10 * day)
	list := func(within *time.Duration) []string {
		t.Helper()
		apps, _, err := w.svc.ListApps(context.Background(), identity.AppFilter{SecretExpiresWithin: within}, 0, "")
		if err != nil {
			t.Fatal(err)
		}
		var codes []string
		for _, a := range apps {
			codes = append(codes, a.Code)
		}
		// listed by id: apps made at one instant of the test clock come in
		// any order
		slices.Sort(codes)
		return codes
	}
	d14, d0 := 14*day, time.Duration(0)
	if got := strings.Join(list(&d14), ","); got != codes(expired, soon) {
		t.Fatalf("expiring within 14 days: %s", got)
	}
	if got := strings.Join(list(&d0), ","); got != expired.Code {
		t.Fatalf("expired: %s", got)
	}
	if got := len(list(nil)); got != 4 {
		t.Fatalf("no filter: %d apps", got)
	}
	_ = later
	_ = never
	neg := -time.Second
	_, _, err := w.svc.ListApps(context.Background(), identity.AppFilter{SecretExpiresWithin: &neg}, 0, "")
	wantBadField(t, err, "secret_expires_within_seconds")

	// The warning: one per application expiring within 14 days, no secret
	// in it; the counts for the gauges.
	if err := w.svc.WarnExpiringSecrets(context.Background()); err != nil {
		t.Fatal(err)
	}
	warned := map[string]string{}
	for _, e := range w.logs.FilterLevelExact(zapcore.WarnLevel).All() {
		f := e.ContextMap()
		warned[f["app_code"].(string)] = e.Message
		for k, v := range f {
			if strings.Contains(strings.ToLower(k), "secret_hash") || strings.Contains(k, "hash") {
				t.Fatalf("warning logs %s=%v", k, v)
			}
		}
	}
	if len(warned) != 2 || !strings.Contains(warned["expired"], "has expired") || !strings.Contains(warned["soon"], "expires soon") {
		t.Fatalf("warnings %v", warned)
	}
	if c := w.svc.SecretExpiry(); c.Expiring != 2 || c.Expired != 1 || !c.Checked {
		t.Fatalf("counts %+v", c)
	}
}

func codes(apps ...*identity.App) string {
	var out []string
	for _, a := range apps {
		out = append(out, a.Code)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// A peer centre holding an application's replica refuses its expired
// secret too, and follows a lifetime change made at the home centre.
func TestReplicaAppSecretExpiry(t *testing.T) {
	ctx := context.Background()
	l2, l1 := newReplicaCentre(t), newReplicaCentre(t)
	admin2, _ := adminCtx(t, l2.svc, "10.0.0.2", "l2")
	bureau, err := l2.svc.CreateOrg(admin2, "bureau-a", "Bureau A", evRoot(t, l2.svc).ID)
	if err != nil {
		t.Fatal(err)
	}
	subtrees := map[string]string{bureau.ID: "l2a"}
	clk := newTestClock()
	at := func(c *replicaCentre, h *centre.Homes) *identity.Service {
		return testService(t, identity.Deps{Store: sqlstore.New(c.db), Homes: h, Now: clk.now, Sleep: clk.sleep,
			Config: identity.Config{AppSecretLifetime: 90 * day}})
	}
	svc2 := at(l2, &centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: subtrees})
	svc1 := at(l1, &centre.Homes{Self: "l1", Level: 1, Subtrees: subtrees})

	start := clk.t
	app, secret, err := svc2.CreateApp(admin2, identity.NewApp{Type: "OA", Code: "harbour", Name: "Harbour", SecretLifetime: 30 * day})
	if err != nil {
		t.Fatal(err)
	}
	cs, last, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	rep, err := svc1.GetApp(ctx, app.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantTime(t, "replica expiry", rep.SecretExpires, start.Add(30*day))
	wantTime(t, "replica issue time", rep.SecretIssuedAt, start)
	if rep.SecretLifetime != 30*day {
		t.Fatalf("replica lifetime %v", rep.SecretLifetime)
	}
	if _, err := svc1.AuthenticateApp(ctx, app.ID, secret, netip.Addr{}); err != nil {
		t.Fatalf("at the peer before the expiry: %v", err)
	}
	clk.t = start.Add(30 * day)
	if _, err := svc1.AuthenticateApp(ctx, app.ID, secret, netip.Addr{}); reasonOf(err) != caller.ReasonAppSecretExpired {
		t.Fatalf("at the peer after the expiry: %v", err)
	}
	// The home centre lengthens the lifetime: the peer follows.
	if _, err := svc2.UpdateApp(admin2, app.ID, identity.AppUpdate{Mask: []string{"secret_lifetime_seconds"}, SecretLifetime: 60 * day}); err != nil {
		t.Fatal(err)
	}
	cs, _, _ = l2.changes(t, last)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	if _, err := svc1.AuthenticateApp(ctx, app.ID, secret, netip.Addr{}); err != nil {
		t.Fatalf("at the peer after the lifetime was lengthened: %v", err)
	}
	d1, err := svc1.ReplicaDigest(ctx, "l2a")
	if err != nil {
		t.Fatal(err)
	}
	d2, err := svc2.ReplicaDigest(ctx, "l2a")
	if err != nil {
		t.Fatal(err)
	}
	for i := range d1 {
		if d1[i].Table == "apps" && d1[i] != d2[i] {
			t.Fatalf("apps digests differ: %+v, %+v", d1[i], d2[i])
		}
	}
}

// The gauges' counts follow a rotation within moments (a recount after
// each secret change made here), while the warnings stay daily: one per
// application at the start, none at the recounts.
func TestSecretExpiryCountsFollowRotation(t *testing.T) {
	w := newSecretWorld(t, 0)
	a, _ := w.create(t, "soon-gone", day)
	w.clk.t = w.clk.t.Add(2 * day) // expired (set before the loop reads the clock)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.svc.RunSecretExpiryWarnings(ctx, 24*time.Hour, time.Hour, time.Hour)
	}()
	defer func() { cancel(); <-done }()
	waitCounts := func(what string, expired int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			c := w.svc.SecretExpiry()
			if c.Checked && c.Expired == expired {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: counts %+v, want %d expired", what, c, expired)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCounts("at the start", 1)
	if _, _, err := w.svc.RotateAppSecret(context.Background(), a.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	waitCounts("after the rotation", 0)
	warnings := 0
	for _, e := range w.logs.FilterLevelExact(zapcore.WarnLevel).All() {
		if strings.Contains(e.Message, "application secret") {
			warnings++
		}
	}
	if warnings != 1 {
		t.Fatalf("%d secret warnings, want the start's one only", warnings)
	}
}

// With identity.policy.require_ip_allow_list every application has an IP
// allow-list: one is not created or updated without (BAD_FIELD naming
// ip_allow_list), and the calls of one left without (made before the
// policy) are refused IP_ALLOW_LIST_REQUIRED, audited; with a list it is
// served (gap2 G25; the fingerprint server design 3.4.2).
func TestRequireIPAllowList(t *testing.T) {
	db, clk := testDB(t), newTestClock()
	open := testService(t, identity.Deps{Store: sqlstore.New(db), Now: clk.now, Sleep: clk.sleep})
	old, oldSecret, err := open.CreateApp(context.Background(), identity.NewApp{Type: "OA", Code: "old", Name: "Old"})
	if err != nil {
		t.Fatal(err)
	}
	w := &secretWorld{svc: testService(t, identity.Deps{Store: sqlstore.New(db), Now: clk.now, Sleep: clk.sleep,
		Config: identity.Config{Policy: identity.Policy{RequireIPAllowList: true}}}), clk: clk, db: db}
	_, _, err = w.svc.CreateApp(context.Background(), identity.NewApp{Type: "OA", Code: "new", Name: "New"})
	wantBadField(t, err, "ip_allow_list")
	a, secret, err := w.svc.CreateApp(context.Background(), identity.NewApp{Type: "OA", Code: "new", Name: "New", IPAllowList: []string{"192.0.2.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.call(a.ID, secret); err != nil {
		t.Fatalf("an application with a list: %v", err)
	}
	_, err = w.svc.UpdateApp(context.Background(), a.ID, identity.AppUpdate{Mask: []string{"ip_allow_list"}})
	wantBadField(t, err, "ip_allow_list")
	err = w.call(old.ID, oldSecret)
	if reasonOf(err) != caller.ReasonAllowListRequired {
		t.Fatalf("an application without a list: %v", err)
	}
	if got := w.deniedReasons(t); len(got) == 0 || got[len(got)-1] != caller.ReasonAllowListRequired {
		t.Fatalf("refusal not audited: %v", got)
	}
	if _, err := w.svc.UpdateApp(context.Background(), old.ID, identity.AppUpdate{Mask: []string{"name"}, Name: "Old app"}); err != nil {
		t.Fatalf("an update that leaves the list alone: %v", err)
	}
}

// TestRotateAppSecretIfUnchanged (review sec29b M4): a rotation naming
// the secret it was asked from issues one secret; the same request again
// (a double click, a reload) is refused SECRET_ROTATED_SINCE, and the
// secret the application runs with keeps its overlap.
func TestRotateAppSecretIfUnchanged(t *testing.T) {
	w := newSecretWorld(t, 0)
	a, inUse := w.create(t, "oa", 0)
	seen := a.SecretIssuedAt
	w.clk.t = w.clk.t.Add(time.Second)
	_, shown, err := w.svc.RotateAppSecret(context.Background(), a.ID, nil, &seen)
	if err != nil {
		t.Fatal(err)
	}
	w.clk.t = w.clk.t.Add(time.Second)
	_, _, err = w.svc.RotateAppSecret(context.Background(), a.ID, nil, &seen)
	if e, ok := apierr.As(err); !ok || e.Reason != identity.ReasonSecretRotatedSince || e.Code != apierr.FailedPrecondition {
		t.Fatalf("the same rotation again: %v", err)
	}
	for what, secret := range map[string]string{"the secret in use (overlap)": inUse, "the secret shown": shown} {
		if err := w.call(a.ID, secret); err != nil {
			t.Fatalf("%s refused after the repeated rotation: %v", what, err)
		}
	}
}
