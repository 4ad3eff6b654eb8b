package sqlstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// BenchmarkLoginGate is a login's two gate writes on SQLite (the check
// admitted, then its outcome with one event), as on a gate that is not
// clean (and on every gate before checks were admitted in memory): the
// store's part of a login's CPU besides its hash. Compare the CPU per op
// (-benchmem and a CPU profile) of two builds.
func BenchmarkLoginGate(b *testing.B) {
	ctx := context.Background()
	s, u, now := gateBenchStore(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if err := s.UpdateLoginGate(ctx, u.ID, "src", func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
			return identity.LoginGateWrite{FailedCount: g.FailedCount, Pending: g.Pending + 1, PendingAt: now}, true
		}); err != nil {
			b.Fatal(err)
		}
		ev := events.Event{ID: fmt.Sprintf("ev-%d", i), Subject: "uias.audit.authenticate", Type: "audit"}
		if err := s.UpdateLoginGate(ctx, u.ID, "src", func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
			return identity.LoginGateWrite{Pending: g.Pending - 1, ClearSources: true, Events: []events.Event{ev}}, true
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoginGateClean is a login's gate store calls on a clean gate
// since the check is admitted in memory: one read (ReadLoginGate), then
// its outcome with one event (compare with BenchmarkLoginGate).
func BenchmarkLoginGateClean(b *testing.B) {
	ctx := context.Background()
	s, u, _ := gateBenchStore(b)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.ReadLoginGate(ctx, u.ID, "src"); err != nil {
			b.Fatal(err)
		}
		ev := events.Event{ID: fmt.Sprintf("ev-%d", i), Subject: "uias.audit.authenticate", Type: "audit"}
		if err := s.UpdateLoginGate(ctx, u.ID, "", func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
			return identity.LoginGateWrite{Pending: g.Pending, ClearSources: true, Events: []events.Event{ev}}, true
		}); err != nil {
			b.Fatal(err)
		}
	}
}

// gateBenchStore is a SQLite store with one user.
func gateBenchStore(b *testing.B) (*sqlstore.Store, *identity.User, time.Time) {
	b.Helper()
	ctx := context.Background()
	s := sqlstore.New(storetest.Migrated(b, storetest.OpenSQLite(b), sqlstore.Migrate))
	root := &identity.Org{ID: "root", Code: "root", Name: "Root", Status: identity.StatusActive}
	if err := s.CreateOrg(ctx, root, nil); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	u := &identity.User{ID: "u-gate", LoginName: "gate", DisplayName: "Gate", OrgID: root.ID,
		Status: identity.StatusActive, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateUser(ctx, u, nil); err != nil {
		b.Fatal(err)
	}
	return s, u, now
}

// BenchmarkDisabledInOrgChain is the org check every password check runs
// (checkPassword), for a person two levels below the root.
func BenchmarkDisabledInOrgChain(b *testing.B) {
	ctx := context.Background()
	s, _, now := gateBenchStore(b)
	parent := "root"
	for _, id := range []string{"dept", "team"} {
		if err := s.CreateOrg(ctx, &identity.Org{ID: id, Code: id, Name: id, ParentID: parent, Status: identity.StatusActive,
			CreatedAt: now, UpdatedAt: now}, nil); err != nil {
			b.Fatal(err)
		}
		parent = id
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if d, err := s.DisabledInOrgChain(ctx, "team"); err != nil || d != "" {
			b.Fatal(d, err)
		}
	}
}
