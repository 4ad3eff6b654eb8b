package identity_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/services/identity"
)

// TestLogoutPublishesTokenRevoked: a logout writes, with its audit record,
// the CHANGES event uias.changes.identity.admin_token.revoked naming the
// administrator, and neither the token nor its hash.
func TestLogoutPublishesTokenRevoked(t *testing.T) {
	e := newEvEnv(t, "")
	setupOn(t, e.svc, e.clk)
	tok, ctx := adminLogin(t, e.svc, "admin", "Boot-Strap-Pass1")
	u, err := e.svc.AuthenticateAdmin(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	m := e.mark(t)
	if err := e.svc.AdminLogout(ctx, tok); err != nil {
		t.Fatal(err)
	}
	row := oneRow(t, e.outbox(t, m), "uias.changes.identity.admin_token.revoked")
	var ev struct {
		Entity, Op, ID string
	}
	if err := json.Unmarshal(row.Payload, &ev); err != nil || ev.Entity != "admin_token" || ev.Op != "revoked" || ev.ID != u.ID {
		t.Fatalf("event %s: %+v %v", row.Payload, ev, err)
	}
	if p := string(row.Payload); strings.Contains(p, tok) || strings.Contains(p, crypto.HashToken(tok)) {
		t.Fatalf("the event carries the token or its hash: %s", p)
	}
	// A second logout of the same token finds nothing to revoke: no event.
	m = e.mark(t)
	if err := e.svc.AdminLogout(ctx, tok); err != nil {
		t.Fatal(err)
	}
	for _, r := range e.outbox(t, m) {
		if strings.HasPrefix(r.Subject, "uias.changes.") {
			t.Fatalf("a logout of a token already gone published %s", r.Subject)
		}
	}
}

// TestLogoutEventEndsReuseElsewhere: an instance that keeps what a token
// resolved to (identity.admin_decision_ttl) still accepts it after a
// logout through another instance until the logout's CHANGES event
// reaches it (ForgetRevokedTokens), then refuses it; events it cannot read
// change nothing.
func TestLogoutEventEndsReuseElsewhere(t *testing.T) {
	svcs, clk := newInstances(t, 2, identity.Config{AdminTokenCacheTTL: time.Second})
	a, b := svcs[0], svcs[1]
	setupOn(t, a, clk)
	tok, ctx := adminLogin(t, a, "admin", "Boot-Strap-Pass1")
	other, _ := adminLogin(t, a, "admin", "Boot-Strap-Pass1")
	if !tokenOK(t, b, tok) || !tokenOK(t, b, other) {
		t.Fatal("fresh token refused")
	}
	u, err := b.AuthenticateAdmin(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.AdminLogout(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if !tokenOK(t, b, tok) {
		t.Fatal("instance b: the resolved token was not reused within the TTL (nothing left for the event to end)")
	}
	for _, p := range []string{``, `{`, `{"id": ""}`, `{"id": 7}`, `{"id": "someone-else"}`} {
		b.ForgetRevokedTokens([]byte(p))
	}
	if !tokenOK(t, b, tok) {
		t.Fatal("an unreadable or unrelated event ended the reuse")
	}
	b.ForgetRevokedTokens([]byte(`{"entity": "admin_token", "op": "revoked", "id": "` + u.ID + `"}`))
	if tokenOK(t, b, tok) {
		t.Fatal("instance b accepted a token logged out through a after the logout's event")
	}
	if !tokenOK(t, b, other) {
		t.Fatal("the administrator's other token was refused")
	}
}
