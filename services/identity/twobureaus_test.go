package identity_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// twoBureaus is one database seen by services with different centre
// settings: set up as a single centre (the root and two bureaus), then
// opened again as level 1 or level 2 with newSvc.
type twoBureaus struct {
	one   *identity.Service // the single centre that set it up
	admin context.Context   // the bootstrap administrator at one
	root  *identity.Org
	a, b  *identity.Org // bureau-a and bureau-b, under root
	// newSvc opens the same database with the centre settings h (nil: a
	// single centre); open does too, through the store wrap makes of it.
	newSvc func(h *centre.Homes) *identity.Service
	open   func(h *centre.Homes, wrap func(identity.Store) identity.Store) *identity.Service
	db     *store.DB
}

func newTwoBureaus(t *testing.T) *twoBureaus {
	t.Helper()
	ctx := context.Background()
	db, sealer, hasher := testDB(t), testSealer(t), cheapHasher()
	tb := &twoBureaus{db: db}
	tb.open = func(h *centre.Homes, wrap func(identity.Store) identity.Store) *identity.Service {
		return testService(t, identity.Deps{Store: wrap(sqlstore.New(db)), Hasher: hasher, Sealer: sealer,
			Sleep: func(context.Context, time.Duration) error { return nil }, Homes: h})
	}
	tb.newSvc = func(h *centre.Homes) *identity.Service {
		return tb.open(h, func(st identity.Store) identity.Store { return st })
	}
	tb.one = tb.newSvc(nil)
	if _, _, err := tb.one.Bootstrap(ctx, evAdminPass); err != nil {
		t.Fatal(err)
	}
	tb.admin, _ = adminCtx(t, tb.one, "10.0.0.1", "r1")
	tb.root = evRoot(t, tb.one)
	var err error
	if tb.a, err = tb.one.CreateOrg(tb.admin, "bureau-a", "Bureau A", tb.root.ID); err != nil {
		t.Fatal(err)
	}
	if tb.b, err = tb.one.CreateOrg(tb.admin, "bureau-b", "Bureau B", tb.root.ID); err != nil {
		t.Fatal(err)
	}
	return tb
}

// person creates a person in org at the single centre, with the password
// "Mx-Pass-5511" (an administrator when isAdmin).
func (tb *twoBureaus) person(t *testing.T, login, org string, isAdmin bool) *identity.User {
	t.Helper()
	u, err := tb.one.CreateUser(tb.admin, identity.NewUser{LoginName: login, DisplayName: login, OrgID: org,
		Password: "Mx-Pass-5511", IsAdmin: isAdmin})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// audited returns the audit records of api written so far.
func (tb *twoBureaus) audited(t *testing.T, api string) []events.AuditRecord {
	t.Helper()
	rows, err := tb.db.QueryContext(context.Background(), `SELECT payload FROM events_outbox WHERE subject = ? ORDER BY seq`,
		"uias.audit.identity."+api)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []events.AuditRecord
	for rows.Next() {
		var payload []byte
		var rec events.AuditRecord
		if err := rows.Scan(&payload); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(payload, &rec); err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
