package identity_test

import (
	"context"
	"testing"

	"github.com/uias/uias/services/identity"
)

// With a reveal gate (authz's identity.personal reveal) the gate alone
// decides personal data in clear, whatever the deprecated setting names;
// the setting's logins are recorded as personal_data_admin appointments.
func TestExportRevealGate(t *testing.T) {
	iw := newImportWorldWith(t, identity.Config{PersonalDataAdmins: []string{"admin"}})
	seedForExport(t, iw)
	allow := false
	var asked string
	iw.svc.SetRevealGate(func(_ context.Context, u *identity.User) (bool, error) {
		asked = u.LoginName
		return allow, nil
	})
	reveal := func() error {
		_, err := iw.svc.Export(iw.adminCtx(t), identity.ExportOptions{Kind: "users", Reveal: true}, func([]string) error { return nil })
		return err
	}
	if err := reveal(); reasonOf(err) != identity.ReasonPersonalDataDenied || asked != "admin" {
		t.Fatalf("gate refuses, setting names admin: %v (gate asked about %q)", err, asked)
	}
	allow = true
	if err := reveal(); err != nil {
		t.Fatalf("gate allows: %v", err)
	}

	ctx := context.Background()
	n, err := iw.svc.AppointPersonalDataAdmins(ctx, []string{"admin", "nobody-by-that-name"})
	if err != nil || n != 1 {
		t.Fatalf("appointments recorded: %d %v, want 1", n, err)
	}
	admin, err := iw.st.GetUserByLogin(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if _, err := iw.svc.MigrateAdmins(ctx, func(_ context.Context, userID, role string) error {
		if role == identity.RolePersonalData {
			got = append(got, userID)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != admin.ID {
		t.Fatalf("personal_data_admin appointed to %v, want admin %s", got, admin.ID)
	}
}
