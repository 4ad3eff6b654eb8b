package identity_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// heldTokenReads is a store whose token reads can be held once they have
// read (hold), and counted.
type heldTokenReads struct {
	identity.Store
	reads   atomic.Int64
	hold    atomic.Bool
	read    chan struct{} // a held read has read
	release chan struct{}
}

func (s *heldTokenReads) GetAdminToken(ctx context.Context, hash string) (*identity.AdminToken, error) {
	t, err := s.Store.GetAdminToken(ctx, hash)
	s.reads.Add(1)
	if s.hold.CompareAndSwap(true, false) {
		s.read <- struct{}{}
		<-s.release
	}
	return t, err
}

// TestTokenMissReadOnce: calls with one administrator token that miss the
// token cache at the same time (its reuse just ended) share one store read
// (a burst of calls does not read the token once per call); a call that
// begins after a logout does not share a read that began before it.
func TestTokenMissReadOnce(t *testing.T) {
	db := storetest.OpenSQLite(t)
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	keys, active, err := crypto.LoadOrCreateKeyFile(t.TempDir() + "/keys.json")
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := crypto.NewSealer(keys, active)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)}
	st := &heldTokenReads{Store: sqlstore.New(db), read: make(chan struct{}), release: make(chan struct{})}
	svc, err := identity.New(identity.Deps{Store: st, Sealer: sealer, Logger: zap.NewNop(), Now: clk.now, Sleep: clk.sleep,
		Config: identity.Config{AdminTokenCacheTTL: time.Second},
		Hasher: crypto.NewHasher(crypto.HasherConfig{Params: crypto.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})})
	if err != nil {
		t.Fatal(err)
	}
	setupOn(t, svc, clk)
	tok, ctx := adminLogin(t, svc, "admin", "Boot-Strap-Pass1")

	// A burst: the first call's read is held; 20 more calls come meanwhile.
	burst := func(n int) []error {
		st.hold.Store(true)
		errs := make([]error, n)
		var wg sync.WaitGroup
		wg.Go(func() { _, errs[0] = svc.AuthenticateAdmin(context.Background(), tok) })
		<-st.read
		for i := 1; i < n; i++ {
			wg.Go(func() { _, errs[i] = svc.AuthenticateAdmin(context.Background(), tok) })
		}
		time.Sleep(50 * time.Millisecond) // let them reach the read under way (if not, they find the cache)
		close(st.release)
		wg.Wait()
		st.release = make(chan struct{})
		return errs
	}
	before := st.reads.Load()
	for i, err := range burst(21) {
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if n := st.reads.Load() - before; n != 1 {
		t.Fatalf("21 calls missing the cache at once read the token %d times, want 1", n)
	}

	// The reuse ends; a read begins and is held; the token is logged out
	// meanwhile: a call after the logout reads for itself and is refused.
	clk.t = clk.t.Add(2 * time.Second)
	st.hold.Store(true)
	first := make(chan error, 1)
	go func() { _, err := svc.AuthenticateAdmin(context.Background(), tok); first <- err }()
	<-st.read
	if err := svc.AdminLogout(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if tokenOK(t, svc, tok) {
		t.Fatal("a call after the logout took the read that began before it")
	}
	close(st.release)
	<-first // began before the logout: either answer stands
	if tokenOK(t, svc, tok) {
		t.Fatal("the token read before the logout was kept")
	}
}
