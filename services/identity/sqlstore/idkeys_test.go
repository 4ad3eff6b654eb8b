package sqlstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
)

// The race backstop of one account per person: a write that slips past
// the look-up (a concurrent writer) breaks the unique index users.id_key,
// and that violation, only that one, is answered as ID_NUMBER_TAKEN on
// SQLite and PostgreSQL. NULLs are many.
func TestIDKeyViolationIsIDNumberTaken(t *testing.T) {
	for name, db := range storetest.DBs(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			if err := Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			s := New(db)
			at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			for _, id := range []string{"a", "b", "c", "d"} {
				u := &identity.User{ID: id, LoginName: "login-" + id, Status: identity.StatusActive, CreatedAt: at, UpdatedAt: at}
				if id == "a" {
					u.IDKey = "idk-a"
				}
				if err := s.CreateUser(ctx, u, nil); err != nil {
					t.Fatal(err)
				}
			}
			// Past the store's look-up, as a concurrent writer would be.
			_, err := db.ExecContext(ctx, s.q("UPDATE users SET id_key = ? WHERE id = ?"), "idk-a", "b")
			if !store.IsUniqueViolation(err) {
				t.Fatalf("second holder of an ID key: %v, want a unique violation", err)
			}
			c := classify(err, "update user", "user")
			if !errors.Is(c, identity.ErrIDNumberTaken) {
				t.Fatalf("classified as %v, want ID_NUMBER_TAKEN", c)
			}
			// Another unique key keeps its own answer.
			_, err = db.ExecContext(ctx, s.q("UPDATE users SET login_name = ? WHERE id = ?"), "login-a", "b")
			if c := classify(err, "update user", "user"); !errors.Is(c, store.ErrConflict) || errors.Is(c, identity.ErrIDNumberTaken) {
				t.Fatalf("login name violation classified as %v, want ALREADY_EXISTS", c)
			}
			var nulls int
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM users WHERE id_key IS NULL").Scan(&nulls); err != nil || nulls != 3 {
				t.Fatalf("%d people without an ID key (%v), want 3", nulls, err)
			}
		})
	}
}
