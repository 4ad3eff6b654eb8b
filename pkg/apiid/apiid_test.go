package apiid_test

import (
	"testing"

	"github.com/uias/uias/pkg/apiid"
)

// An id is 24 ASCII characters laid out as Appendix B's table B.1: OP,
// the institution, the type, the category, the sequence, 00; malformed
// entries and institution codes are refused with a sentence.
func TestID(t *testing.T) {
	i := apiid.Interface{Operation: "AuthService_Authenticate", Type: apiid.A2, Category: apiid.CategoryIdentity, Seq: 1}
	if err := i.Check(); err != nil {
		t.Fatal(err)
	}
	id := i.ID("C10010")
	if id != "OPC10010"+"02"+"080101"+"000001"+"00" || len(id) != 24 {
		t.Fatalf("id %q (%d characters)", id, len(id))
	}
	for _, bad := range []apiid.Interface{
		{Type: apiid.A1, Category: "080101", Seq: 1},
		{Operation: "x", Type: 3, Category: "080101", Seq: 1},
		{Operation: "x", Type: apiid.A1, Category: "000101", Seq: 1},
		{Operation: "x", Type: apiid.A1, Category: "08010", Seq: 1},
		{Operation: "x", Type: apiid.A1, Category: "080101", Seq: 0},
		{Operation: "x", Type: apiid.A1, Category: "080101", Seq: 1000000},
	} {
		if bad.Check() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	for _, code := range []string{"", "C1001", "c10010", "C1001-", "C100100"} {
		if apiid.CheckInstitution(code) == nil {
			t.Errorf("institution %q accepted", code)
		}
	}
	if apiid.CheckInstitution(apiid.DefaultInstitution) != nil {
		t.Error("the default institution refused")
	}
}
