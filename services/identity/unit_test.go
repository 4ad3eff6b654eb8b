package identity_test

import (
	"context"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/identity"
)

// Codes of one unit: its unified social credit code and the organisation
// code in it (characters 9-17), and another unit's code.
const (
	unitUSCC    = "91310115MA01A2B322"
	unitOrgCode = "MA01A2B3-2"
	otherUSCC   = "91350100M000100Y43"
)

func wantBad(t *testing.T, what string, err error, reason, field, msgPart string) {
	t.Helper()
	e, ok := apierr.As(err)
	if !ok || e.Code != apierr.InvalidArgument || e.Reason != reason || e.Meta[apierr.MetaField] != field {
		t.Fatalf("%s: %v, want INVALID_ARGUMENT %s on %s", what, err, reason, field)
	}
	if !strings.Contains(e.Message, msgPart) {
		t.Fatalf("%s: message %q, want %q in it", what, e.Message, msgPart)
	}
}

// A unit account: its code's check character is verified, it takes only
// a unit's ID types (and a person only the others), its code is one
// account's whichever of its two forms it was given in, and it is listed
// by user type.
func TestUnitAccounts(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	org := rootOrg(t, w.svc)
	unit, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "acme", DisplayName: "某某航运有限公司", OrgID: org,
		UserType: identity.UserTypeUnit, IDType: identity.IDTypeUSCC, IDNumber: " " + strings.ToLower(unitUSCC) + " "})
	if err != nil {
		t.Fatal(err)
	}
	if unit.UserType != identity.UserTypeUnit || unit.IDType != identity.IDTypeUSCC || unit.FeatureCode == "" || unit.IDKey == "" {
		t.Fatalf("unit %+v", unit)
	}
	if strings.Contains(unit.IDNumberMask, "MA01A2B3") || !strings.HasPrefix(unit.IDNumberMask, "913") {
		t.Fatalf("mask %q", unit.IDNumberMask)
	}
	got, err := w.svc.GetUser(ctx, unit.ID)
	if err != nil || got.UserType != identity.UserTypeUnit || got.FeatureCode != unit.FeatureCode {
		t.Fatalf("get: %+v %v", got, err)
	}

	// Check characters.
	_, err = w.svc.CreateUser(ctx, identity.NewUser{LoginName: "bad-uscc", DisplayName: "B", OrgID: org,
		UserType: identity.UserTypeUnit, IDType: identity.IDTypeUSCC, IDNumber: "91350100M000100Y44"})
	wantBad(t, "bad USCC", err, apierr.ReasonBadRequest, "id_number", "not a valid 18-character unified social credit code")
	_, err = w.svc.CreateUser(ctx, identity.NewUser{LoginName: "bad-oc", DisplayName: "B", OrgID: org,
		UserType: identity.UserTypeUnit, IDType: identity.IDTypeOrgCode, IDNumber: "12345678-9"})
	wantBad(t, "bad org code", err, apierr.ReasonBadRequest, "id_number", "not a valid 9-character organisation code")

	// Type and ID type go together.
	_, err = w.svc.CreateUser(ctx, identity.NewUser{LoginName: "p-uscc", DisplayName: "P", OrgID: org,
		IDType: identity.IDTypeUSCC, IDNumber: otherUSCC})
	wantBad(t, "person with a USCC", err, identity.ReasonIDTypeMismatch, "id_type", "set user_type to unit")
	_, err = w.svc.CreateUser(ctx, identity.NewUser{LoginName: "u-res", DisplayName: "U", OrgID: org,
		UserType: identity.UserTypeUnit, IDType: identity.IDTypeResidentID, IDNumber: residentIDWithX(t)})
	wantBad(t, "unit with a resident ID", err, identity.ReasonIDTypeMismatch, "id_type", "a unit account takes")
	_, err = w.svc.CreateUser(ctx, identity.NewUser{LoginName: "u-7", DisplayName: "U", OrgID: org, UserType: 7})
	wantBad(t, "unknown user type", err, apierr.ReasonBadRequest, "user_type", "not a known user type")

	// The organisation code in the USCC is the same unit's.
	_, err = w.svc.CreateUser(ctx, identity.NewUser{LoginName: "acme-2", DisplayName: "某某航运", OrgID: org,
		UserType: identity.UserTypeUnit, IDType: identity.IDTypeOrgCode, IDNumber: unitOrgCode})
	isIDNumberTaken(t, err, "MA01A2B3", "acme")
	other, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "other-unit", DisplayName: "另一单位", OrgID: org,
		UserType: identity.UserTypeUnit, IDType: identity.IDTypeOrgCode, IDNumber: "12345678-8"})
	if err != nil {
		t.Fatal(err)
	}
	if other.IDType != identity.IDTypeOrgCode {
		t.Fatalf("other %+v", other)
	}
	noID, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "no-code", DisplayName: "无代码单位", OrgID: org,
		UserType: identity.UserTypeUnit})
	if err != nil {
		t.Fatal(err)
	}

	// Listing by type.
	units, _, err := w.svc.ListUsers(ctx, identity.UserFilter{UserType: identity.UserTypeUnit}, 0, "")
	if err != nil || len(units) != 3 {
		t.Fatalf("units: %d %v", len(units), err)
	}
	people, _, err := w.svc.ListUsers(ctx, identity.UserFilter{UserType: identity.UserTypePerson}, 0, "")
	if err != nil || len(people) == 0 {
		t.Fatalf("people: %d %v", len(people), err)
	}
	for _, p := range people {
		if p.UserType.Norm() != identity.UserTypePerson {
			t.Fatalf("person listing holds %+v", p)
		}
	}
	_ = noID
}

// A unit's feature code is its own: the same name and login name without
// an ID give another code as a person's, and changing the type, the code
// or the name derives it anew; the type changes only with a fitting ID.
func TestUnitFeatureCode(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	org := rootOrg(t, w.svc)
	u, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "shipco", DisplayName: "Ship Co", OrgID: org})
	if err != nil {
		t.Fatal(err)
	}
	personCode := u.FeatureCode
	// Person -> unit, no ID: same strings, another domain.
	u, err = w.svc.UpdateUser(ctx, u.ID, identity.UserUpdate{Mask: []string{"user_type"}, UserType: identity.UserTypeUnit})
	if err != nil {
		t.Fatal(err)
	}
	if u.UserType != identity.UserTypeUnit || u.FeatureCode == personCode || u.FeatureCode == "" {
		t.Fatalf("unit %v code %q (person's %q)", u.UserType, u.FeatureCode, personCode)
	}
	noCode := u.FeatureCode
	// Its USCC, then the organisation code in it: one unit, one feature
	// code (the design's organisation code + name + login name).
	u, err = w.svc.UpdateUser(ctx, u.ID, identity.UserUpdate{Mask: []string{"id_type", "id_number"},
		IDType: identity.IDTypeUSCC, IDNumber: unitUSCC})
	if err != nil {
		t.Fatal(err)
	}
	withCode := u.FeatureCode
	if withCode == noCode {
		t.Fatal("feature code unchanged by the code")
	}
	u, err = w.svc.UpdateUser(ctx, u.ID, identity.UserUpdate{Mask: []string{"id_type", "id_number"},
		IDType: identity.IDTypeOrgCode, IDNumber: unitOrgCode})
	if err != nil {
		t.Fatal(err)
	}
	if u.FeatureCode != withCode {
		t.Fatalf("org code's feature code %q, the USCC's %q", u.FeatureCode, withCode)
	}
	u, err = w.svc.UpdateUser(ctx, u.ID, identity.UserUpdate{Mask: []string{"display_name"}, DisplayName: "Ship Co Ltd"})
	if err != nil || u.FeatureCode == withCode {
		t.Fatalf("renamed: %q %v", u.FeatureCode, err)
	}
	// Back to a person while holding a unit's code: refused, unchanged.
	_, err = w.svc.UpdateUser(ctx, u.ID, identity.UserUpdate{Mask: []string{"user_type"}, UserType: identity.UserTypePerson})
	wantBad(t, "person with an org code", err, identity.ReasonIDTypeMismatch, "id_type", "set user_type to unit")
	got, err := w.svc.GetUser(ctx, u.ID)
	if err != nil || got.UserType != identity.UserTypeUnit || got.IDType != identity.IDTypeOrgCode {
		t.Fatalf("after refusal: %+v %v", got, err)
	}
	// With a person's document it is a person again.
	u, err = w.svc.UpdateUser(ctx, u.ID, identity.UserUpdate{Mask: []string{"user_type", "id_type", "id_number"},
		UserType: identity.UserTypePerson, IDType: identity.IDTypePassport, IDNumber: "E7654321"})
	if err != nil || u.UserType.Norm() != identity.UserTypePerson || u.IDType != identity.IDTypePassport {
		t.Fatalf("back to a person: %+v %v", u, err)
	}
	// The unit's code is free again.
	if _, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "shipco-2", DisplayName: "Ship Co", OrgID: org,
		UserType: identity.UserTypeUnit, IDType: identity.IDTypeUSCC, IDNumber: unitUSCC}); err != nil {
		t.Fatal(err)
	}
}

// TestUnitCodeAcrossCentres (ADR 0032 for units): a unit registered at
// level 1 by its unified social credit code is refused at a level-2 centre
// registering it by its organisation code (lower case, hyphen), and the
// other way round between two level-2 centres; another unit's code is
// free.
func TestUnitCodeAcrossCentres(t *testing.T) {
	u := newUniqCentres(t)
	if _, err := u.svc1.CreateUser(u.admin1, identity.NewUser{LoginName: "acme", DisplayName: "某某航运有限公司", OrgID: evRoot(t, u.svc1).ID,
		UserType: identity.UserTypeUnit, IDType: identity.IDTypeUSCC, IDNumber: unitUSCC}); err != nil {
		t.Fatal(err)
	}
	_, err := u.svc2a.CreateUser(u.admin2a, identity.NewUser{LoginName: "acme-a", DisplayName: "某某航运", OrgID: u.bureauA.ID,
		UserType: identity.UserTypeUnit, IDType: identity.IDTypeOrgCode, IDNumber: strings.ToLower(unitOrgCode)})
	wantRefused(t, "the unit's org code held at level 1", err, apierr.AlreadyExists, identity.ReasonIDNumberTaken, "another centre")
	if _, err := u.svc2a.CreateUser(u.admin2a, identity.NewUser{LoginName: "other-a", DisplayName: "另一单位", OrgID: u.bureauA.ID,
		UserType: identity.UserTypeUnit, IDType: identity.IDTypeOrgCode, IDNumber: "12345678-8"}); err != nil {
		t.Fatalf("another unit: %v", err)
	}
	_, err = u.svc2b.CreateUser(u.admin2b, identity.NewUser{LoginName: "other-b", DisplayName: "另一单位", OrgID: u.bureauB.ID,
		UserType: identity.UserTypeUnit, IDType: identity.IDTypeUSCC, IDNumber: "91440300123456788M"})
	wantRefused(t, "a USCC holding the org code l2a reserved", err, apierr.AlreadyExists, identity.ReasonIDNumberTaken, "another centre")
}
