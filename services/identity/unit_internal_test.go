package identity

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/apierr"
)

func TestUnitCodeCheckCharacters(t *testing.T) {
	for _, c := range []struct {
		code string
		t    IDType
		ok   bool
	}{
		{"91350100M000100Y43", IDTypeUSCC, true}, // a published code
		{"91310115MA01A2B322", IDTypeUSCC, true},
		{"91440300123456788M", IDTypeUSCC, true},
		{"91350100M000100Y44", IDTypeUSCC, false}, // wrong check character
		{"91350100M000100Y4", IDTypeUSCC, false},  // short
		{"91350100I000100Y43", IDTypeUSCC, false}, // I is no code character
		{"12345678-8", IDTypeOrgCode, true},
		{"123456788", IDTypeOrgCode, true},
		{"ma01a2b3-2", IDTypeOrgCode, true}, // lower case, as typed
		{"10000018-X", IDTypeOrgCode, true}, // check 10 is X
		{"100000040", IDTypeOrgCode, true},  // check 11 is 0
		{"12345678-9", IDTypeOrgCode, false},
		{"1234567-88", IDTypeOrgCode, false}, // hyphen misplaced
		{"12345678", IDTypeOrgCode, false},
		{"1234567#8", IDTypeOrgCode, false},
	} {
		n := normalIDNumber(c.t, c.code)
		err := checkIDNumber(c.t, n)
		if (err == nil) != c.ok {
			t.Errorf("%s (type %d): err %v, want ok %v", c.code, c.t, err, c.ok)
		}
	}
	if n := normalIDNumber(IDTypeOrgCode, " 12345678-8 "); n != "123456788" {
		t.Errorf("normal org code: %q", n)
	}
}

func TestOrgCodeOf(t *testing.T) {
	if oc := orgCodeOf(IDTypeUSCC, "91310115MA01A2B322"); oc != "MA01A2B32" {
		t.Errorf("USCC's org code: %q", oc)
	}
	if oc := orgCodeOf(IDTypeOrgCode, "MA01A2B3-2"); oc != "MA01A2B32" {
		t.Errorf("org code: %q", oc)
	}
	if oc := orgCodeOf(IDTypeResidentID, "11010519491231002X"); oc != "" {
		t.Errorf("a person's: %q", oc)
	}
}

func TestCheckUserIDType(t *testing.T) {
	for _, c := range []struct {
		ut     UserType
		t      IDType
		reason string
	}{
		{0, IDTypeResidentID, ""},
		{UserTypePerson, IDTypePassport, ""},
		{UserTypePerson, IDTypeNone, ""},
		{UserTypeUnit, IDTypeNone, ""},
		{UserTypeUnit, IDTypeUSCC, ""},
		{UserTypeUnit, IDTypeOrgCode, ""},
		{UserTypeUnit, IDTypeResidentID, ReasonIDTypeMismatch},
		{UserTypeUnit, IDTypeOther, ReasonIDTypeMismatch},
		{UserTypePerson, IDTypeUSCC, ReasonIDTypeMismatch},
		{0, IDTypeOrgCode, ReasonIDTypeMismatch},
		{7, IDTypeNone, "BAD_REQUEST"},
	} {
		err := checkUserIDType(c.ut, c.t)
		got := ""
		if err != nil {
			var ae *apierr.Error
			if errors.As(err, &ae) {
				got = ae.Reason
			}
		}
		if got != c.reason {
			t.Errorf("user type %d, ID type %d: %q (%v), want %q", c.ut, c.t, got, err, c.reason)
		}
	}
}

func TestContainsUnitCode(t *testing.T) {
	for _, c := range []struct {
		subject string
		t       IDType
		id      string
		ok      bool
	}{
		{"某某航运有限公司 91310115MA01A2B322", IDTypeUSCC, "91310115MA01A2B322", true},
		{"ORGCODE MA01A2B3-2", IDTypeUSCC, "91310115MA01A2B322", true}, // the USCC's org code
		{"MA01A2B32", IDTypeOrgCode, "MA01A2B32", true},
		{"91310115MA01A2B322", IDTypeOrgCode, "MA01A2B32", true},  // the USCC holding it
		{"91310115MA01A2B323", IDTypeOrgCode, "MA01A2B32", false}, // not a valid USCC
		{"X91310115MA01A2B322", IDTypeUSCC, "91310115MA01A2B322", false},
		{"MA01A2B320", IDTypeOrgCode, "MA01A2B32", false},
		{"91350100M000100Y43", IDTypeUSCC, "91310115MA01A2B322", false}, // another unit
	} {
		if got := containsUnitCode(c.subject, c.t, c.id); got != c.ok {
			t.Errorf("%q holds %s: %v, want %v", c.subject, c.id, got, c.ok)
		}
	}
}

// A replica record carries the type only for a unit: a person's is what
// a centre of an older version sends and reads, and a record without the
// field (from such a centre) is a person's.
func TestUserRecordType(t *testing.T) {
	person, err := json.Marshal(userReplica(&User{LoginName: "p", UserType: UserTypePerson}, false))
	if err != nil || strings.Contains(string(person), "user_type") {
		t.Fatalf("person's record %s %v", person, err)
	}
	unit, err := json.Marshal(userReplica(&User{LoginName: "u", UserType: UserTypeUnit}, false))
	if err != nil || !strings.Contains(string(unit), `"user_type":2`) {
		t.Fatalf("unit's record %s %v", unit, err)
	}
	var r userRecord
	if err := json.Unmarshal([]byte(`{"login_name":"old","id_type":1}`), &r); err != nil || r.UserType.Norm() != UserTypePerson {
		t.Fatalf("old record: %+v %v", r, err)
	}
	if err := json.Unmarshal(unit, &r); err != nil || r.UserType != UserTypeUnit {
		t.Fatalf("unit's record read: %+v %v", r, err)
	}
	if v := userView(&User{UserType: UserTypeUnit}); v["user_type"] != UserTypeUnit {
		t.Fatalf("unit's view %v", v)
	}
	if _, ok := userView(&User{})["user_type"]; ok {
		t.Fatal("a person's view names a type")
	}
}
