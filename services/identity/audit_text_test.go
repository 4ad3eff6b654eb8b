package identity_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"unicode"

	pkgaudit "github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
)

// An unauthenticated caller chooses the App_ID and login name written to
// audit records. A megabyte of App_ID, a newline followed by a forged
// record, or a right-to-left override must come out as one short, visibly
// escaped field: the audit log cannot be grown or forged by a request.
func TestAuditRecordsCapAndEscapeCallerText(t *testing.T) {
	e := newEvEnv(t, "")
	setupOn(t, e.svc, e.clk)
	ctx := caller.With(context.Background(), &caller.Caller{ClientIP: netip.MustParseAddr("10.9.9.9"), RequestID: "r-evil"})
	forged := "\n{\"api\":\"admin.login\",\"result\":\"success\",\"actor\":\"user:root\"}\n"

	m := e.mark(t)
	huge := strings.Repeat("A", 1<<20) + forged
	if _, err := e.svc.AuthenticateApp(ctx, huge, "secret", netip.MustParseAddr("10.9.9.9")); err == nil {
		t.Fatal("unknown App_ID accepted")
	}
	if _, err := e.svc.AuthenticateApp(ctx, "app"+forged+"\u202e", "secret", netip.MustParseAddr("10.9.9.9")); err == nil {
		t.Fatal("unknown App_ID accepted")
	}
	// A login name passes validation with a bidi override (not a control
	// character) and is written to the record of the failed login.
	if _, _, _, err := e.svc.AdminLogin(ctx, "evil\u202enimda", "whatever-Pass-1"); err == nil {
		t.Fatal("unknown login accepted")
	}
	rows := e.outbox(t, m)
	if len(rows) != 3 {
		t.Fatalf("%d audit rows, want 3", len(rows))
	}
	var subjects []string
	for _, r := range rows {
		if len(r.Payload) > 2048 {
			t.Errorf("%s: %d byte record", r.Subject, len(r.Payload))
		}
		var rec events.AuditRecord
		if err := json.Unmarshal(r.Payload, &rec); err != nil {
			t.Fatal(err)
		}
		fields := []string{rec.Subject, rec.AppID, rec.Actor, rec.Org}
		for k, v := range rec.Detail {
			fields = append(fields, k, v)
		}
		for _, f := range fields {
			if len(f) > pkgaudit.MaxText {
				t.Errorf("%s: field of %d bytes", r.Subject, len(f))
			}
			for _, c := range f {
				if unicode.IsControl(c) || unicode.Is(unicode.Cf, c) {
					t.Errorf("%s: raw %U in %q", r.Subject, c, f)
				}
			}
		}
		subjects = append(subjects, rec.Subject)
	}
	if !strings.HasPrefix(subjects[0], "app:AAAA") || !strings.HasSuffix(subjects[0], "…") {
		t.Errorf("huge App_ID: subject %.40q…%q", subjects[0], subjects[0][len(subjects[0])-10:])
	}
	if want := `app:app\u000a{"api":"admin.login","result":"success","actor":"user:root"}\u000a\u202e`; subjects[1] != want {
		t.Errorf("forged line: subject %q, want %q", subjects[1], want)
	}
	if want := `login:evil\u202enimda`; subjects[2] != want {
		t.Errorf("bidi login: subject %q, want %q", subjects[2], want)
	}
}
