package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// The import tests' shared fixtures: a SQLite store with a root org
// (importStore), an import begun on it (begin), the people of an import
// batch (people) and the events of the store's other writes (otherEvent).

// importStoreOpts shapes importStore's store.
type importStoreOpts struct {
	// conns is the pool's size (2 or more: an import gets a connection
	// of its own; 1: it does not); 0 leaves store.Open's.
	conns int
	// user, when set, is the login name of a person created in the root
	// org before the import: ID "u-"+user, display name user with a
	// capital first letter.
	user string
	// opts are the store's options.
	opts []Option
}

// importFixture is a store of importStore and, once begin ran, an import
// on it.
type importFixture struct {
	s    *Store
	root *identity.Org
	user *identity.User // nil unless importStoreOpts.user
	// Set by begin: the import's context (for ImportBatch), its
	// connection (nil without one of its own) and its end.
	ictx context.Context
	ic   *importConn
	end  func()
}

// importStore is a migrated SQLite store on a file with a root org (and
// a person, o.user).
func importStore(t *testing.T, o importStoreOpts) *importFixture {
	t.Helper()
	ctx := context.Background()
	db := storetest.OpenSQLite(t)
	if err := Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if o.conns > 0 {
		db.SetMaxOpenConns(o.conns)
	}
	f := &importFixture{s: New(db, o.opts...)}
	f.root = &identity.Org{ID: "root", Code: "root", Name: "Root", Status: identity.StatusActive}
	if err := f.s.CreateOrg(ctx, f.root, nil); err != nil {
		t.Fatal(err)
	}
	if o.user != "" {
		now := time.Now()
		f.user = &identity.User{ID: "u-" + o.user, LoginName: o.user, DisplayName: strings.ToUpper(o.user[:1]) + o.user[1:],
			OrgID: f.root.ID, Status: identity.StatusActive, CreatedAt: now, UpdatedAt: now}
		if err := f.s.CreateUser(ctx, f.user, nil); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// begin begins an import (BeginImport). Its end runs again when the test
// ends (a second end does nothing) and must return then: a test that
// failed holding a turn does not hang there.
func (f *importFixture) begin(t *testing.T) *importFixture {
	t.Helper()
	ictx, end, err := f.s.BeginImport(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ended := make(chan struct{})
		go func() { end(); close(ended) }()
		select {
		case <-ended:
		case <-time.After(10 * time.Second):
			t.Error("end does not return: a turn is still held")
		}
	})
	f.ictx, f.end = ictx, end
	f.ic, _ = ictx.Value(importConnKey{}).(*importConn)
	return f
}

// newImportFixture is a store (a pool of four) with a person, "robust",
// and an import running on its own connection, which takes the store's
// other writes.
func newImportFixture(t *testing.T, opts ...Option) *importFixture {
	t.Helper()
	f := importStore(t, importStoreOpts{conns: 4, user: "robust", opts: opts}).begin(t)
	if f.ic == nil || f.s.imp.Load() != f.ic {
		t.Fatal("no import connection taking the other writes")
	}
	return f
}

// newLoggedImportFixture is newImportFixture with a store whose warnings
// and errors are kept in logs.
func newLoggedImportFixture(t *testing.T) (f *importFixture, logs *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.WarnLevel)
	return newImportFixture(t, WithLogger(zap.New(core))), logs
}

// logFieldsOnly fails the test unless each entry's fields are among
// fields and none holds people's data (a value with data in it: the
// tests' login names begin with it).
func logFieldsOnly(t *testing.T, entries []observer.LoggedEntry, data string, fields ...string) {
	t.Helper()
	for _, e := range entries {
		for k, v := range e.ContextMap() {
			if !slices.Contains(fields, k) || strings.Contains(fmt.Sprint(v), data) {
				t.Fatalf("%q: log field %s=%v", e.Message, k, v)
			}
		}
	}
}

// gate is a login's gate write (failed count n).
func (f *importFixture) gate(ctx context.Context, n int) error {
	return f.s.UpdateLoginGate(ctx, f.user.ID, "src", func(identity.LoginGate) (identity.LoginGateWrite, bool) {
		return identity.LoginGateWrite{FailedCount: n}, true
	})
}

func (f *importFixture) failedCount(t *testing.T) int {
	t.Helper()
	u, err := f.s.GetUser(context.Background(), f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	return u.FailedCount
}

// importUsers runs one import batch of n new people in the import's
// context (prefix and their number name them).
func (f *importFixture) importUsers(t *testing.T, prefix string, n int) error {
	t.Helper()
	items := people{org: f.root, prefix: prefix}.items(n)
	res, err := f.s.ImportBatch(f.ictx, "robust-1", items, false, 0, noImportEvents)
	if err == nil && len(res) != n {
		return fmt.Errorf("%d results for %d rows", len(res), n)
	}
	return err
}

// waitWaiting waits until n writes wait (store.DB.WritesWaiting).
func (f *importFixture) waitWaiting(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for f.s.db.WritesWaiting() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d writes waiting, want %d", f.s.db.WritesWaiting(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// people are the new people of an import batch, in org.
type people struct {
	org *identity.Org
	// prefix and each one's number (formatted with num, "%d" when empty)
	// are the login name; the ID is "u-" and the login name.
	prefix, num string
	// display is written before the login name in the display name.
	display string
	// email: each has an e-mail, the login name @example.com.
	email bool
	// row is the first one's row in the file (2 when 0: after a header).
	row int
}

// items is n people, active, created now.
func (p people) items(n int) []identity.ImportItem {
	num, row := p.num, p.row
	if num == "" {
		num = "%d"
	}
	if row == 0 {
		row = 2
	}
	now := time.Now()
	items := make([]identity.ImportItem, 0, n)
	for i := range n {
		login := p.prefix + fmt.Sprintf(num, i)
		u := &identity.User{ID: "u-" + login, LoginName: login, DisplayName: p.display + login, OrgID: p.org.ID,
			Status: identity.StatusActive, CreatedAt: now, UpdatedAt: now}
		if p.email {
			u.Email = login + "@example.com"
		}
		items = append(items, identity.ImportItem{Row: row + i, Key: "user:" + login, At: now, User: u})
	}
	return items
}

// noImportEvents is an ImportBatch's events of the rows it wrote: none.
func noImportEvents([]identity.ImportItem) []events.Event { return nil }

// importWritten imports items in one ImportBatch (transactions of chunk
// rows, 0: the store's) and fails the test unless every one is written.
func importWritten(t *testing.T, ctx context.Context, s *Store, importID string, items []identity.ImportItem, chunk int) {
	t.Helper()
	res, err := s.ImportBatch(ctx, importID, items, false, chunk, noImportEvents)
	if err != nil || len(res) != len(items) {
		t.Fatalf("import of rows %d-: %d results for %d, %v", items[0].Row, len(res), len(items), err)
	}
	for i, r := range res {
		if r.Err != nil || r.Skipped {
			t.Fatalf("import, row %d: %+v", items[i].Row, r)
		}
	}
}

// otherEvent is an audit event written by one of the store's other
// writes (AppendEvents) during an import.
func otherEvent(id string) []events.Event {
	return []events.Event{{ID: id, Subject: "uias.audit.identity.x", Type: "x", Time: time.Now(), Payload: []byte("{}")}}
}
