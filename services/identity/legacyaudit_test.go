package identity_test

import (
	"testing"

	"github.com/uias/uias/services/identity"
)

// TestAuditMalformedLegacy: a legacy request that never became a call is
// audited as a failed Authenticate (BAD_REQUEST) with the transport, what
// was wrong and the byte offset; a mark outside the closed vocabulary
// (e.g. forged with request text in it) records nothing of it.
func TestAuditMalformedLegacy(t *testing.T) {
	e := newEvEnv(t, "")
	w := setupOn(t, e.svc, e.clk)
	mark := e.mark(t)
	if !w.svc.AuditMalformedLegacy(w.ctx, identity.LegacyMalformed("hessian", identity.LegacyMalformedCall, 12)) {
		t.Fatal("a Hessian mark was not taken")
	}
	if !w.svc.AuditMalformedLegacy(w.ctx, identity.LegacyMalformed("soap", identity.LegacyMalformedAuthType, -1)) {
		t.Fatal("a SOAP mark was not taken")
	}
	for _, bad := range []string{"", "hessian;call;12;x", "soap;password=secret", "ftp;call", "hessian;<b>;1"} {
		if w.svc.AuditMalformedLegacy(w.ctx, bad) {
			t.Fatalf("mark %q taken", bad)
		}
	}
	recs := auditRecords(t, e.outbox(t, mark), "authenticate")
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2: %+v", len(recs), recs)
	}
	want := []map[string]string{{"transport": "hessian", "malformed": "call", "at_byte": "12"},
		{"transport": "soap", "malformed": "auth_type"}}
	for i, r := range recs {
		if r.Result != "failure" || r.Reason != "BAD_REQUEST" || r.AppID == "" || len(r.Detail) != len(want[i]) {
			t.Fatalf("record %d: %+v", i, r)
		}
		for k, v := range want[i] {
			if r.Detail[k] != v {
				t.Fatalf("record %d: detail %v, want %v", i, r.Detail, want[i])
			}
		}
	}
}
