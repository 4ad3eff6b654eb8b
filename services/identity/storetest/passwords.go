package storetest

import (
	"testing"

	"github.com/uias/uias/services/identity"
)

// ReplacePasswordHash swaps a hash only while it is the expected one.
func testReplacePasswordHash(t *testing.T, f *fixture) {
	u := f.user("")
	f.expectEvents(1, func() {
		must(t, f.s.ReplacePasswordHash(f.ctx, u.ID, u.PasswordHash, "{SSHA}new", f.evs(1)))
	})
	got, err := f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eq(t, "replaced hash", got.PasswordHash, "{SSHA}new")
	hist, err := f.s.PasswordHistory(f.ctx, u.ID, 5)
	must(t, err)
	eq(t, "history after a replace", len(hist), 0)
	f.expectEvents(0, func() {
		err := f.s.ReplacePasswordHash(f.ctx, u.ID, u.PasswordHash, "{SSHA}other", f.evs(1))
		isErr(t, err, identity.ErrConflict)
		err = f.s.ReplacePasswordHash(f.ctx, "missing", "x", "y", f.evs(1))
		isErr(t, err, identity.ErrNotFound)
	})
	got, err = f.s.GetUser(f.ctx, u.ID)
	must(t, err)
	eq(t, "hash after a refused replace", got.PasswordHash, "{SSHA}new")
}
