package ctl

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	uiasapp "github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/services/ticket"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// sessionChecks runs "sessions list" and "audit online" as the security
// auditor h is logged in as, in TestAuditCommands' process: the live SSO
// sessions listed (paged, one person's, JSON), online now from them, and
// from the audit log with --from-logins; a bad page size is refused.
func sessionChecks(t *testing.T, a *uiasapp.App, h *harness) {
	t.Helper()
	th, ok := a.Value(ticketcomponent.Name).(*ticketcomponent.Handle)
	if !ok {
		t.Fatal("no ticket component in the monolith")
	}
	for i, u := range []string{"ctl-person-1", "ctl-person-2"} {
		// the second signed in at a peer centre (sign-in across centres)
		if _, _, err := th.Service.CreateSession(context.Background(), ticket.NewSession{UserID: u, Login: u, OrgID: "org-x",
			AuthLevel: 1, ClientIP: "192.0.2.7", Peer: []string{"", "l2a"}[i]}); err != nil {
			t.Fatal(err)
		}
	}
	out := h.mustRun("sessions", "list", "--page-size", "1", "--all")
	if !strings.Contains(out, "ctl-person-1") || !strings.Contains(out, "ctl-person-2") || !strings.Contains(out, "192.0.2.7") ||
		!strings.Contains(out, "org-x") || !strings.Contains(out, "STARTED") || !strings.Contains(out, "VIA") ||
		!strings.Contains(out, " l2a ") {
		t.Errorf("sessions list --all:\n%s", out)
	}
	var page struct {
		Sessions []struct {
			Session struct {
				UserID string `json:"user_id"`
			} `json:"session"`
		} `json:"sessions"`
		Next string `json:"next_page_token"`
	}
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "sessions", "list", "--page-size", "1")), &page); err != nil ||
		len(page.Sessions) != 1 || page.Next == "" {
		t.Errorf("sessions list --page-size 1 -o json: %+v %v", page, err)
	}
	if out := h.mustRun("sessions", "list", "--user", "ctl-person-2"); strings.Contains(out, "ctl-person-1") ||
		!strings.Contains(out, "ctl-person-2") {
		t.Errorf("sessions list --user ctl-person-2:\n%s", out)
	}
	code, out, errs := h.run("audit", "online")
	if code != 0 || !strings.Contains(out, "ctl-person-1") || !strings.Contains(out, "ctl-person-2") ||
		!strings.Contains(errs, "live SSO sessions") {
		t.Errorf("audit online: exit %d\n%s\n%s", code, out, errs)
	}
	// from the audit log (where the sessions' starts arrive a little later)
	code, out, errs = h.run("audit", "online", "--from-logins")
	if code != 0 || !strings.Contains(out, "SINCE") || !strings.Contains(errs, "from the audit log") {
		t.Errorf("audit online --from-logins: exit %d\n%s\n%s", code, out, errs)
	}
	// ctl refuses a page larger than the server answers, before calling
	if code, _, errs := h.run("sessions", "list", "--page-size", "5000"); code != exitUsage ||
		!strings.Contains(errs, "--page-size must be between 0 and 1000") {
		t.Errorf("sessions list --page-size 5000: exit %d %s", code, errs)
	}
	if code, _, errs := h.run("sessions", "list", "--page-size", "1000"); code != 0 {
		t.Errorf("sessions list --page-size 1000: exit %d %s", code, errs)
	}
}
