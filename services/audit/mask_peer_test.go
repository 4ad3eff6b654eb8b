package audit_test

import (
	"testing"

	"github.com/uias/uias/services/audit"
)

// MaskPeerRecord (sec28b I3) masks as the own log does, says whether it
// changed anything, and leaves the caller's detail map alone.
func TestMaskPeerRecord(t *testing.T) {
	detail := map[string]string{"note": "card 6222021234567890123"}
	r := audit.Record{Subject: "user:u1", Detail: detail}
	if !audit.MaskPeerRecord(&r) || r.Detail["note"] == detail["note"] || detail["note"] != "card 6222021234567890123" {
		t.Fatalf("masked: %+v (given %v)", r, detail)
	}
	if audit.MaskPeerRecord(&r) {
		t.Fatal("masking a masked record changed it")
	}
	clean := audit.Record{Subject: "user:u1", Actor: "app:a", Detail: map[string]string{"n": "1"}}
	if audit.MaskPeerRecord(&clean) {
		t.Fatal("a clean record changed")
	}
}
