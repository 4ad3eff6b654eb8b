package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/services/identity"
)

// legacy_ip_only (docs/adr/0035-legacy-ip-only.md): set only on an A1
// application with an IP allow-list, no certificate binding and no
// required signatures (each refusal says why); audited; unset again.
func TestLegacyIPOnlySetting(t *testing.T) {
	w := newSecretWorld(t, 0)
	ctx := context.Background()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	list := []string{"192.0.2.0/24"}
	for _, tc := range []struct {
		what string
		n    identity.NewApp
		why  string
	}{
		{"no allow-list", identity.NewApp{}, "no IP allow-list"},
		{"certificate", identity.NewApp{IPAllowList: list, ClientCertSHA256: strings.Repeat("ab", 32)}, "client certificate"},
		{"signatures", identity.NewApp{IPAllowList: list, SigningKeys: [][]byte{pubPEM(t, k)}, RequireSignatures: true}, "signed requests"},
		{"A2", identity.NewApp{IPAllowList: list, SigningKeys: [][]byte{pubPEM(t, k)}, RequireSignatures: true, SecurityLevel: 2}, "A2"},
	} {
		n := tc.n
		n.Type, n.Code, n.Name, n.LegacyIPOnly = "OA", "x", "X", true
		_, _, err := w.svc.CreateApp(ctx, n)
		ae := wantReason(t, tc.what, err, apierr.FailedPrecondition, identity.ReasonLegacyIPOnly)
		if !strings.Contains(ae.Message, tc.why) {
			t.Fatalf("%s: message %q does not say %q", tc.what, ae.Message, tc.why)
		}
	}
	a, _, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "oa", Name: "OA", IPAllowList: list, LegacyIPOnly: true})
	if err != nil || !a.LegacyIPOnly {
		t.Fatalf("created %+v %v", a, err)
	}
	if got, _ := w.svc.GetApp(ctx, a.ID); !got.LegacyIPOnly {
		t.Fatal("legacy_ip_only not stored")
	}
	if d := w.auditDetails(t, "app.create"); d[len(d)-1]["legacy_ip_only"] != "true" {
		t.Fatalf("app.create detail %v", d[len(d)-1])
	}
	a, err = w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"legacy_ip_only"}})
	if err != nil || a.LegacyIPOnly {
		t.Fatalf("unset: %+v %v", a, err)
	}
	if d := w.auditDetails(t, "app.update"); d[len(d)-1]["legacy_ip_only"] != "false" {
		t.Fatalf("app.update detail %v", d[len(d)-1])
	}
	// Set again with an empty allow-list in the same update: refused.
	_, err = w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"ip_allow_list", "legacy_ip_only"}, LegacyIPOnly: true})
	wantReason(t, "update emptying the list", err, apierr.FailedPrecondition, identity.ReasonLegacyIPOnly)
	b, _, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "bound", Name: "Bound", IPAllowList: list,
		ClientCertSHA256: strings.Repeat("cd", 32)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.UpdateApp(ctx, b.ID, identity.AppUpdate{Mask: []string{"legacy_ip_only"}, LegacyIPOnly: true})
	wantReason(t, "update of a bound app", err, apierr.FailedPrecondition, identity.ReasonLegacyIPOnly)
	a, err = w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"legacy_ip_only"}, LegacyIPOnly: true})
	if err != nil || !a.LegacyIPOnly {
		t.Fatalf("set: %+v %v", a, err)
	}
}

// A legacy caller named by (app_type, app_code): admitted from the
// allow-list when the application opted in, as that application; an
// unknown pair, an application that did not opt in or became
// certificate-bound later, an address off the list, a suspended
// application: refused with the caller check's reason and audited as
// refused callers.
func TestAuthenticateLegacyApp(t *testing.T) {
	w := newSecretWorld(t, 0)
	ctx := context.Background()
	in, out := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("198.51.100.7")
	a, _, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "oa", Name: "OA", IPAllowList: []string{"192.0.2.0/24"},
		LegacyIPOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	plain, _, err := w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "plain", Name: "Plain", IPAllowList: []string{"192.0.2.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	app, err := w.svc.AuthenticateLegacyApp(ctx, "OA", "oa", in, caller.APIAuthenticate)
	if err != nil || app.ID != a.ID {
		t.Fatalf("admitted %+v %v", app, err)
	}
	if id, err := w.svc.ResolveLegacyApp(ctx, "OA", "plain"); err != nil || id != plain.ID {
		t.Fatalf("resolved %q %v", id, err)
	}
	_, err = w.svc.AuthenticateLegacyApp(ctx, "OA", "nope", in, caller.APIAuthenticate)
	wantReason(t, "unknown pair", err, apierr.Unauthenticated, "BAD_APP_CREDENTIALS")
	_, err = w.svc.AuthenticateLegacyApp(ctx, "OA", "plain", in, caller.APIAuthenticate)
	wantReason(t, "not opted in", err, apierr.Unauthenticated, "BAD_APP_CREDENTIALS")
	_, err = w.svc.AuthenticateLegacyApp(ctx, "OA", "oa", out, caller.APIAuthenticate)
	wantReason(t, "off the list", err, apierr.PermissionDenied, "IP_NOT_ALLOWED")
	if _, err := w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"client_cert_sha256"}, ClientCertSHA256: strings.Repeat("ef", 32)}); err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.AuthenticateLegacyApp(ctx, "OA", "oa", in, caller.APIAuthenticate)
	wantReason(t, "bound later", err, apierr.Unauthenticated, "CLIENT_CERT_REQUIRED")
	if _, err := w.svc.UpdateApp(ctx, a.ID, identity.AppUpdate{Mask: []string{"client_cert_sha256", "status"}, Status: identity.AppSuspended}); err != nil {
		t.Fatal(err)
	}
	_, err = w.svc.AuthenticateLegacyApp(ctx, "OA", "oa", in, caller.APIAuthenticate)
	wantReason(t, "suspended", err, apierr.PermissionDenied, "APP_SUSPENDED")
	want := []string{"BAD_APP_CREDENTIALS", "BAD_APP_CREDENTIALS", "IP_NOT_ALLOWED", "CLIENT_CERT_REQUIRED", "APP_SUSPENDED"}
	if got := w.deniedReasons(t); !slices.Equal(got, want) {
		t.Fatalf("caller.denied reasons %v, want %v", got, want)
	}
}

// TestLegacyIPOnlyRefusalRecords: a refused legacy IP-only attempt's
// caller.denied record says auth_mode ip_only, and an unknown pair's
// names the pair claimed (claimed_app_type, claimed_app_code, cut at 128
// bytes); a refusal by the address check (IP_NOT_ALLOWED) names the
// application (review sec30b L2). No personal data: codes only.
func TestLegacyIPOnlyRefusalRecords(t *testing.T) {
	w := newSecretWorld(t, 0)
	out := netip.MustParseAddr("198.51.100.7")
	a, _, err := w.svc.CreateApp(context.Background(), identity.NewApp{Type: "OA", Code: "oa", Name: "OA",
		IPAllowList: []string{"192.0.2.0/24"}, LegacyIPOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	call := func() context.Context {
		return caller.With(context.Background(), &caller.Caller{ClientIP: out, RequestID: "r-l2"})
	}
	_, err = w.svc.AuthenticateLegacyApp(call(), "OA", "spoofed", out, caller.APIAuthenticate)
	wantReason(t, "unknown pair", err, apierr.Unauthenticated, "BAD_APP_CREDENTIALS")
	long := strings.Repeat("c", 200)
	_, err = w.svc.AuthenticateLegacyApp(call(), "OA", long, out, caller.APIAuthenticate)
	wantReason(t, "too long a pair", err, apierr.Unauthenticated, "BAD_APP_CREDENTIALS")
	_, err = w.svc.AuthenticateLegacyApp(call(), "OA", "oa", out, caller.APIAuthenticate)
	wantReason(t, "off the list", err, apierr.PermissionDenied, "IP_NOT_ALLOWED")
	d := w.auditDetails(t, "caller.denied")
	if len(d) != 3 {
		t.Fatalf("caller.denied records %v", d)
	}
	for i, m := range d {
		if m["auth_mode"] != caller.AuthModeIPOnly {
			t.Errorf("record %d: auth_mode %q, want ip_only: %v", i, m["auth_mode"], m)
		}
	}
	if d[0]["claimed_app_type"] != "OA" || d[0]["claimed_app_code"] != "spoofed" || d[0]["app_id"] != "" {
		t.Errorf("unknown pair: %v", d[0])
	}
	if d[1]["claimed_app_code"] != strings.Repeat("c", 128) {
		t.Errorf("a long code is cut at 128 bytes: %q", d[1]["claimed_app_code"])
	}
	if d[2]["app_id"] != a.ID {
		t.Errorf("off the list: %v", d[2])
	}
}
