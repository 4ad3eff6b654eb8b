package identity_test

import (
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// cheapArgon2 is the cheapest valid argon2id: tests count hashes, never
// time them.
var cheapArgon2 = crypto.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func cheapHasher() *crypto.Hasher { return crypto.NewHasher(crypto.HasherConfig{Params: cheapArgon2}) }

// testDB is a migrated identity database (SQLite in a temporary directory).
func testDB(t testing.TB) *store.DB {
	return storetest.Migrated(t, storetest.OpenSQLite(t), sqlstore.Migrate)
}

// testSealer seals with a key ring of its own.
func testSealer(t testing.TB) *crypto.Sealer {
	t.Helper()
	keys, active, err := crypto.LoadOrCreateKeyFile(t.TempDir() + "/keys.json")
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := crypto.NewSealer(keys, active)
	if err != nil {
		t.Fatal(err)
	}
	return sealer
}

// newTestClock is the test clock at the fixed start all tests use.
func newTestClock() *clock { return &clock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)} }

// testService is identity.New(d) with what d leaves out filled in for a
// test: a sealer of its own, no logging, the cheapest argon2id.
func testService(t testing.TB, d identity.Deps) *identity.Service {
	t.Helper()
	if d.Sealer == nil && d.Keys == nil {
		d.Sealer = testSealer(t)
	}
	if d.Logger == nil {
		d.Logger = zap.NewNop()
	}
	if d.Hasher == nil {
		d.Hasher = cheapHasher()
	}
	svc, err := identity.New(d)
	if err != nil {
		t.Fatal(err)
	}
	return svc
}
