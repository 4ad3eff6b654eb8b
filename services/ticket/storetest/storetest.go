// Package storetest is the conformance suite every ticket.ServiceStore
// implementation must pass (the SQL store on SQLite and PostgreSQL).
package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/ticket"
)

// Subject is one fresh store under test.
type Subject struct {
	Store ticket.ServiceStore
	// Credentials is the store's ticket.CredentialStore (nil: skipped).
	Credentials ticket.CredentialStore
	// Consents is the store's ticket.ConsentStore (nil: skipped).
	Consents ticket.ConsentStore
	// CountOutbox returns the number of events in the store's outbox.
	CountOutbox func(t *testing.T) int
}

// Run runs the suite; newSubject returns a fresh, empty store each call.
func Run(t *testing.T, newSubject func(t *testing.T) Subject) {
	for name, fn := range map[string]func(t *testing.T, s Subject){
		"CRUD":             testCRUD,
		"ListByApp":        testListByApp,
		"Missing":          testMissing,
		"Duplicate":        testDuplicate,
		"EventsInTx":       testEventsInTx,
		"AllFieldsRT":      testAllFields,
		"LegacyRT":         testLegacyFields,
		"AccessRuleRT":     testAccessRule,
		"Credentials":      testCredentials,
		"Consents":         testConsents,
		"ConsentRT":        testConsentSettings,
		"AttributeRelease": testAttributeRelease,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, newSubject(t))
		})
	}
}

var ctx = context.Background()

func svc(id, app string) *ticket.RegisteredService {
	now := time.Now().Truncate(time.Millisecond).UTC()
	return &ticket.RegisteredService{ID: id, AppID: app, Name: "Svc " + id, URL: "https://" + id + ".example.com:443/",
		MinAuthLevel: 1, Enabled: true, CreatedAt: now, UpdatedAt: now}
}

func event() events.Event {
	return events.Event{ID: ids.New(), Subject: "uias.changes.ticket.service.created", Type: "ticket.service.created",
		Time: time.Now().UTC(), Payload: []byte(`{}`)}
}

func testCRUD(t *testing.T, s Subject) {
	a := svc("a", "app1")
	if err := s.Store.CreateService(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.Store.GetService(ctx, "a")
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("get: %+v %v, want %+v", got, err, a)
	}
	a.Name, a.Enabled, a.UpdatedAt = "renamed", false, a.UpdatedAt.Add(time.Second)
	if err := s.Store.UpdateService(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Store.GetService(ctx, "a"); got.Name != "renamed" || got.Enabled || !got.UpdatedAt.Equal(a.UpdatedAt) {
		t.Fatalf("after update: %+v", got)
	}
	if err := s.Store.DeleteService(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Store.GetService(ctx, "a"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}

func testListByApp(t *testing.T, s Subject) {
	for _, r := range []*ticket.RegisteredService{svc("c", "app1"), svc("a", "app1"), svc("b", "app2")} {
		if err := s.Store.CreateService(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.Store.ListServices(ctx, "")
	if err != nil || len(all) != 3 || all[0].ID != "a" || all[1].ID != "b" || all[2].ID != "c" {
		t.Fatalf("all: %v %v", all, err)
	}
	one, err := s.Store.ListServices(ctx, "app1")
	if err != nil || len(one) != 2 || one[0].ID != "a" || one[1].ID != "c" {
		t.Fatalf("app1: %v %v", one, err)
	}
	none, err := s.Store.ListServices(ctx, "nope")
	if err != nil || len(none) != 0 {
		t.Fatalf("unknown app: %v %v", none, err)
	}
}

func testMissing(t *testing.T, s Subject) {
	if _, err := s.Store.GetService(ctx, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get: %v", err)
	}
	if err := s.Store.UpdateService(ctx, svc("x", "a")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update: %v", err)
	}
	if err := s.Store.DeleteService(ctx, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete: %v", err)
	}
}

func testDuplicate(t *testing.T, s Subject) {
	if err := s.Store.CreateService(ctx, svc("a", "app1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Store.CreateService(ctx, svc("a", "app2")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("duplicate id: %v", err)
	}
}

func testEventsInTx(t *testing.T, s Subject) {
	if s.CountOutbox == nil {
		t.Skip("no outbox")
	}
	if err := s.Store.CreateService(ctx, svc("a", "app1"), event(), event()); err != nil {
		t.Fatal(err)
	}
	if n := s.CountOutbox(t); n != 2 {
		t.Fatalf("outbox after create: %d", n)
	}
	// A failed change leaves no event.
	_ = s.Store.CreateService(ctx, svc("a", "app1"), event())
	_ = s.Store.UpdateService(ctx, svc("missing", "app1"), event())
	_ = s.Store.DeleteService(ctx, "missing", event())
	if n := s.CountOutbox(t); n != 2 {
		t.Fatalf("outbox after failed changes: %d", n)
	}
	if err := s.Store.DeleteService(ctx, "a", event()); err != nil {
		t.Fatal(err)
	}
	if n := s.CountOutbox(t); n != 3 {
		t.Fatalf("outbox after delete: %d", n)
	}
}

func testAllFields(t *testing.T, s Subject) {
	r := svc("p", "app9")
	r.URL, r.Pattern, r.LogoutURL, r.MinAuthLevel, r.AllowProxy, r.Name = "", `https://[a-z]+\.example\.com/.*`,
		"https://slo.example.com/logout", 2, true, "名称 with unicode"
	r.CertificateRequired, r.ReleaseRoles, r.ReleasePermissions = true, true, true
	r.ReleaseAttributes, r.MaskedAttributes = []string{"displayName", "orgName"}, []string{"displayName"}
	if err := s.Store.CreateService(ctx, r); err != nil {
		t.Fatal(err)
	}
	got, err := s.Store.GetService(ctx, "p")
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip: %+v %v, want %+v", got, err, r)
	}
	r.CertificateRequired, r.ReleaseRoles, r.UpdatedAt = false, false, r.UpdatedAt.Add(time.Second)
	if err := s.Store.UpdateService(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Store.GetService(ctx, "p"); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("after update: %+v %v, want %+v", got, err, r)
	}
}

// testAttributeRelease: a service's attribute release policy is kept in
// order and replaced whole; none reads back as none (nil), so a service
// registered before it releases everything.
func testAttributeRelease(t *testing.T, s Subject) {
	r := svc("ar", "app9")
	if err := s.Store.CreateService(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Store.GetService(ctx, "ar"); err != nil || got.ReleaseAttributes != nil || got.MaskedAttributes != nil {
		t.Fatalf("no policy: %+v %v, want none", got, err)
	}
	r.ReleaseAttributes, r.MaskedAttributes = []string{"login", "displayName", "groups"}, []string{"displayName"}
	r.UpdatedAt = r.UpdatedAt.Add(time.Second)
	if err := s.Store.UpdateService(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Store.GetService(ctx, "ar"); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("with a policy: %+v %v, want %+v", got, err, r)
	}
	list, err := s.Store.ListServices(ctx, "app9")
	if err != nil || len(list) != 1 || !reflect.DeepEqual(list[0], r) {
		t.Fatalf("listed: %+v %v", list, err)
	}
	r.ReleaseAttributes, r.MaskedAttributes = nil, nil
	if err := s.Store.UpdateService(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Store.GetService(ctx, "ar"); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("policy removed: %+v %v, want %+v", got, err, r)
	}
	created := svc("ar2", "app9")
	created.ReleaseAttributes, created.MaskedAttributes = []string{"userId"}, []string{}
	if err := s.Store.CreateService(ctx, created); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Store.GetService(ctx, "ar2"); err != nil || !reflect.DeepEqual(got.ReleaseAttributes, []string{"userId"}) ||
		len(got.MaskedAttributes) != 0 {
		t.Fatalf("created with a policy: %+v %v", got, err)
	}
}

func testLegacyFields(t *testing.T, s Subject) {
	r := svc("l", "app9")
	r.LegacyScheme, r.LegacyRequireSecret = 1, true
	if err := s.Store.CreateService(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Store.GetService(ctx, "l"); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip: %+v %v, want %+v", got, err, r)
	}
	r.LegacyScheme, r.LegacyRequireSecret = 2, false
	if err := s.Store.UpdateService(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Store.GetService(ctx, "l"); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("after update: %+v %v, want %+v", got, err, r)
	}
}

// testAccessRule: a service's access rule (account link, permission)
// round-trips through create, list and update, and clears.
func testAccessRule(t *testing.T, s Subject) {
	plain := svc("n", "app9")
	r := svc("r", "app9")
	r.RequireAccountLink, r.RequiredPermission = true, "docs.contract:approve"
	for _, x := range []*ticket.RegisteredService{plain, r} {
		if err := s.Store.CreateService(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.Store.GetService(ctx, "r"); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip: %+v %v, want %+v", got, err, r)
	}
	list, err := s.Store.ListServices(ctx, "app9")
	if err != nil || len(list) != 2 || !reflect.DeepEqual(list[0], plain) || !reflect.DeepEqual(list[1], r) {
		t.Fatalf("list: %+v %v", list, err)
	}
	if list[0].RequireAccountLink || list[0].RequiredPermission != "" {
		t.Fatalf("a service without a rule reads back with one: %+v", list[0])
	}
	r.RequireAccountLink, r.RequiredPermission = false, "docs:read"
	if err := s.Store.UpdateService(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Store.GetService(ctx, "r"); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("after update: %+v %v, want %+v", got, err, r)
	}
	r.RequireAccountLink, r.RequiredPermission = false, ""
	if err := s.Store.UpdateService(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Store.GetService(ctx, "r"); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("after clearing: %+v %v, want %+v", got, err, r)
	}
}

func testCredentials(t *testing.T, s Subject) {
	if s.Credentials == nil {
		t.Skip("no credential store")
	}
	if _, err := s.Credentials.GetCredential(ctx, "u1", "a1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing credential: %v", err)
	}
	c := &ticket.AppCredential{UserID: "u1", AppID: "a1", Account: "acct", SecretEnc: "k1:sealed",
		UpdatedAt: time.Now().Truncate(time.Millisecond).UTC()}
	if err := s.Credentials.PutCredential(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Put replaces the person's credential for the application.
	c2 := *c
	c2.Account, c2.SecretEnc = "acct2", "k1:other"
	if err := s.Credentials.PutCredential(ctx, &c2); err != nil {
		t.Fatal(err)
	}
	got, err := s.Credentials.GetCredential(ctx, "u1", "a1")
	if err != nil || !reflect.DeepEqual(got, &c2) {
		t.Fatalf("credential: %+v %v, want %+v", got, err, c2)
	}
	if _, err := s.Credentials.GetCredential(ctx, "u1", "a2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another application's credential: %v", err)
	}
}

func testConsentSettings(t *testing.T, s Subject) {
	r := svc("c", "app9")
	r.ConsentRequired, r.ConsentTTL = true, 30*24*time.Hour
	if err := s.Store.CreateService(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Store.GetService(ctx, "c"); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip: %+v %v, want %+v", got, err, r)
	}
	r.ConsentRequired, r.ConsentTTL, r.UpdatedAt = false, 0, r.UpdatedAt.Add(time.Second)
	if err := s.Store.UpdateService(ctx, r); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Store.GetService(ctx, "c"); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("after update: %+v %v, want %+v", got, err, r)
	}
}

func testConsents(t *testing.T, s Subject) {
	if s.Consents == nil {
		t.Skip("no consent store")
	}
	if _, err := s.Consents.GetConsent(ctx, "u1", "c1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing consent: %v", err)
	}
	if got, err := s.Consents.ListConsents(ctx, "u1"); err != nil || len(got) != 0 {
		t.Fatalf("no consents: %v %v", got, err)
	}
	now := time.Now().Truncate(time.Millisecond).UTC()
	c := &ticket.Consent{UserID: "u1", ClientID: "c1", Scope: "openid profile", GrantedAt: now, ExpiresAt: now.Add(time.Hour)}
	before := count(t, s)
	if err := s.Consents.PutConsent(ctx, c, event()); err != nil {
		t.Fatal(err)
	}
	if s.CountOutbox != nil && count(t, s) != before+1 {
		t.Fatalf("the consent's event is not in the outbox")
	}
	got, err := s.Consents.GetConsent(ctx, "u1", "c1")
	if err != nil || !reflect.DeepEqual(got, c) {
		t.Fatalf("consent: %+v %v, want %+v", got, err, c)
	}
	// Put replaces the person's record of the client (a revocation: no
	// scope, no expiry, the moment).
	rev := &ticket.Consent{UserID: "u1", ClientID: "c1", RevokedAt: now.Add(time.Minute)}
	if err := s.Consents.PutConsent(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Consents.GetConsent(ctx, "u1", "c1"); err != nil || !reflect.DeepEqual(got, rev) {
		t.Fatalf("after revocation: %+v %v, want %+v", got, err, rev)
	}
	// A consent read before that revocation and written after it (its
	// older RevokedAt) keeps the revocation: never moved back (review
	// sec30c L1).
	late := &ticket.Consent{UserID: "u1", ClientID: "c1", Scope: "openid", GrantedAt: now.Add(2 * time.Minute), ExpiresAt: now.Add(time.Hour),
		RevokedAt: now}
	if err := s.Consents.PutConsent(ctx, late); err != nil {
		t.Fatal(err)
	}
	want := *late
	want.RevokedAt = rev.RevokedAt
	if got, err := s.Consents.GetConsent(ctx, "u1", "c1"); err != nil || !reflect.DeepEqual(got, &want) {
		t.Fatalf("a consent written over a newer revocation: %+v %v, want %+v (the revocation kept)", got, err, &want)
	}
	if err := s.Consents.PutConsent(ctx, rev); err != nil {
		t.Fatal(err)
	}
	other := &ticket.Consent{UserID: "u2", ClientID: "c1", Scope: "openid", GrantedAt: now, ExpiresAt: now.Add(time.Hour)}
	c2 := &ticket.Consent{UserID: "u1", ClientID: "a0", Scope: "openid", GrantedAt: now, ExpiresAt: now.Add(time.Hour)}
	for _, x := range []*ticket.Consent{other, c2} {
		if err := s.Consents.PutConsent(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.Consents.ListConsents(ctx, "u1")
	if err != nil || len(list) != 2 || !reflect.DeepEqual(list[0], c2) || !reflect.DeepEqual(list[1], rev) {
		t.Fatalf("u1's consents (by client, never another person's): %+v %v", list, err)
	}
	if _, err := s.Consents.GetConsent(ctx, "u1", "c2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("another client's consent: %v", err)
	}
}

func count(t *testing.T, s Subject) int {
	if s.CountOutbox == nil {
		return 0
	}
	return s.CountOutbox(t)
}
