package identity_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// gateStore is the real store counting the login gate's calls. With hold
// set, the next UpdateLoginGate waits before its transaction until hold
// is closed (held is closed when it arrives); readErr fails the next
// ReadLoginGate.
type gateStore struct {
	identity.Store
	mu      sync.Mutex
	reads   int // ReadLoginGate calls
	updates int // UpdateLoginGate transactions
	writes  int // of which decide wrote
	hold    chan struct{}
	held    chan struct{}
	readErr error
	// With settles set, each source's second UpdateLoginGate (a check's
	// settle, after its admission) is sent to settles and waits until
	// settled is closed.
	settles chan<- struct{}
	settled chan struct{}
	calls   map[string]int
}

func (s *gateStore) ReadLoginGate(ctx context.Context, userID, source string) (identity.LoginGate, error) {
	s.mu.Lock()
	s.reads++
	err := s.readErr
	s.readErr = nil
	s.mu.Unlock()
	if err != nil {
		return identity.LoginGate{}, err
	}
	return s.Store.ReadLoginGate(ctx, userID, source)
}

func (s *gateStore) UpdateLoginGate(ctx context.Context, userID, source string, decide func(identity.LoginGate) (identity.LoginGateWrite, bool)) error {
	s.mu.Lock()
	s.updates++
	hold, held := s.hold, s.held
	s.hold, s.held = nil, nil
	if hold == nil && s.settles != nil {
		s.calls[source]++
		if s.calls[source] == 2 {
			hold = s.settled
			held = nil
			s.settles <- struct{}{}
		}
	}
	s.mu.Unlock()
	if hold != nil {
		if held != nil {
			close(held)
		}
		<-hold
	}
	return s.Store.UpdateLoginGate(ctx, userID, source, func(g identity.LoginGate) (identity.LoginGateWrite, bool) {
		w, ok := decide(g)
		if ok {
			s.mu.Lock()
			s.writes++
			s.mu.Unlock()
		}
		return w, ok
	})
}

// counts returns the calls counted so far and forgets them.
func (s *gateStore) counts() (reads, updates, writes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	reads, updates, writes = s.reads, s.updates, s.writes
	s.reads, s.updates, s.writes = 0, 0, 0
	return reads, updates, writes
}

// holdNext makes the next UpdateLoginGate wait until release is called;
// arrived is closed when it waits.
func (s *gateStore) holdNext() (arrived <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	hold, held := make(chan struct{}), make(chan struct{})
	s.hold, s.held = hold, held
	return held, func() { close(hold) }
}

// holdSettles makes every check admitted through the store from now on
// wait at its settle (one an arrival on the channel returned) until
// release is called.
func (s *gateStore) holdSettles() (arrivals <-chan struct{}, release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, settled := make(chan struct{}, 1000), make(chan struct{})
	s.settles, s.settled, s.calls = ch, settled, map[string]int{}
	return ch, func() { close(settled) }
}

// gateWorld is setup's world on instances of one database, each with its
// own gateStore, and an outbox reader.
type gateWorld struct {
	*world
	st  []*gateStore
	svc []*identity.Service
	ev  *evEnv
}

func newGateWorld(t *testing.T, n int, cfg identity.Config, sleep func(context.Context, time.Duration) error) *gateWorld {
	t.Helper()
	db, sealer, clk := testDB(t), testSealer(t), newTestClock()
	gw := &gateWorld{ev: &evEnv{db: db}}
	for range n {
		st := &gateStore{Store: sqlstore.New(db)}
		sl := clk.sleep
		if sleep != nil {
			sl = func(ctx context.Context, d time.Duration) error {
				if err := sleep(ctx, d); err != nil {
					return err
				}
				return clk.sleep(ctx, d)
			}
		}
		gw.st = append(gw.st, st)
		gw.svc = append(gw.svc, testService(t, identity.Deps{Store: st, Sealer: sealer, Now: clk.now, Sleep: sl, Config: cfg}))
	}
	gw.world = setupOn(t, gw.svc[0], clk)
	for _, st := range gw.st {
		st.counts()
	}
	return gw
}

// authOn is authFrom on instance i, returning the error too.
func (gw *gateWorld) authOn(i int, pw, ip string) (*identity.AuthResult, error) {
	return gw.svc[i].Authenticate(gw.ctx, identity.AuthRequest{AppUserID: "m001", Password: pw, AuthType: identity.AuthPassword,
		Extend: map[string]string{identity.ClientIPExtend: ip}})
}

func (gw *gateWorld) failed(t *testing.T) int {
	t.Helper()
	u, err := gw.svc[0].GetUser(context.Background(), gw.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	return u.FailedCount
}

// TestCleanLoginWritesTheGateOnce: a successful login on an account whose
// gate is clean reads the gate and writes it once (with its audit
// record), leaving nothing listed as running.
func TestCleanLoginWritesTheGateOnce(t *testing.T) {
	gw := newGateWorld(t, 1, identity.Config{}, nil)
	for i := range 3 {
		m := gw.ev.mark(t)
		res, err := gw.authOn(0, "First-Pass-1", fmt.Sprintf("198.51.100.%d", i%2))
		if err != nil || res.Reason != identity.ReasonOK {
			t.Fatalf("login %d: %v %v", i, res, err)
		}
		if r, u, w := gw.st[0].counts(); r != 1 || u != 1 || w != 1 {
			t.Fatalf("login %d: %d gate reads, %d gate transactions (%d writing); want 1, 1, 1", i, r, u, w)
		}
		if recs := auditRecords(t, gw.ev.outbox(t, m), "authenticate"); len(recs) != 1 || recs[0].Reason != "OK" {
			t.Fatalf("login %d: audit %+v", i, recs)
		}
		if n := identity.RunningChecks(gw.svc[0]); n != 0 {
			t.Fatalf("login %d: %d accounts listed as running after it", i, n)
		}
	}
}

// TestCleanFailureIsCounted: a wrong password on a clean account is
// counted with its source's count in its one write; the next checks take
// the store's path; the source's budget (2) and the lock (5) hold as
// before.
func TestCleanFailureIsCounted(t *testing.T) {
	gw := newGateWorld(t, 1, identity.Config{}, nil)
	wrong := func(ip string) identity.Reason {
		t.Helper()
		res, err := gw.authOn(0, "Wrong-Pass-1", ip)
		if err != nil {
			t.Fatalf("wrong password from %s: %v", ip, err)
		}
		return res.Reason
	}
	if r := wrong("198.51.100.1"); r != identity.ReasonBadCredentials {
		t.Fatalf("first failure: %v", r)
	}
	if r, u, w := gw.st[0].counts(); r != 1 || u != 1 || w != 1 || gw.failed(t) != 1 {
		t.Fatalf("first failure: %d reads, %d transactions (%d writing), %d counted; want 1, 1, 1, 1", r, u, w, gw.failed(t))
	}
	// Not clean any more: admitted and settled through the store.
	wrong("198.51.100.1")
	if r, u, _ := gw.st[0].counts(); r != 1 || u != 2 || gw.failed(t) != 2 {
		t.Fatalf("second failure: %d reads, %d transactions, %d counted; want 1, 2, 2", r, u, gw.failed(t))
	}
	// The source's count of the first failure was written with it: its
	// third failure is past its budget and not counted.
	wrong("198.51.100.1")
	if n := gw.failed(t); n != 2 {
		t.Fatalf("a third failure from one source counted: %d", n)
	}
	wrong("198.51.100.2")
	wrong("198.51.100.2")
	if r := wrong("198.51.100.3"); r != identity.ReasonAccountLocked {
		t.Fatalf("fifth counted failure: %v", r)
	}
	if res, err := gw.authOn(0, "First-Pass-1", "198.51.100.4"); err != nil || res.Reason != identity.ReasonAccountLocked {
		t.Fatalf("right password while locked: %v %v", res, err)
	}
	if n := identity.RunningChecks(gw.svc[0]); n != 0 {
		t.Fatalf("%d accounts listed as running", n)
	}
}

// TestMemoryFailureKeepsTheSourceBudget: a check admitted in memory on one
// instance settles after the same source spent its budget through
// another instance: it is not counted, so one source still counts at most
// source_failures (2) failures against the account.
func TestMemoryFailureKeepsTheSourceBudget(t *testing.T) {
	gw := newGateWorld(t, 2, identity.Config{}, nil)
	arrived, release := gw.st[0].holdNext()
	done := make(chan identity.Reason)
	go func() {
		res, err := gw.authOn(0, "Wrong-Pass-1", "198.51.100.1")
		if err != nil {
			t.Error(err)
		}
		done <- res.Reason
	}()
	<-arrived // instance 0's check is hashed, its settle waits
	for range 2 {
		if res, err := gw.authOn(1, "Wrong-Pass-1", "198.51.100.1"); err != nil || res.Reason != identity.ReasonBadCredentials {
			t.Fatalf("instance 1: %v %v", res, err)
		}
	}
	if n := gw.failed(t); n != 2 {
		t.Fatalf("instance 1 counted %d", n)
	}
	release()
	if r := <-done; r != identity.ReasonBadCredentials {
		t.Fatalf("instance 0: %v", r)
	}
	if n := gw.failed(t); n != 2 {
		t.Fatalf("one source counted %d failures (budget 2)", n)
	}
}

// TestMemoryCheckTakesASlackSlot: while a check admitted in memory runs,
// 50 parallel wrong guesses on the same instance are admitted with one
// slot fewer, so that of all of them at most max_failures + hash workers
// are hashed, and the account ends locked.
func TestMemoryCheckTakesASlackSlot(t *testing.T) {
	workers := runtime.GOMAXPROCS(0) // the test hasher's
	for round := range 3 {
		gw := newGateWorld(t, 1, identity.Config{}, nil)
		m := gw.ev.mark(t)
		arrived, release := gw.st[0].holdNext()
		first := make(chan error)
		go func() {
			_, err := gw.authOn(0, "Wrong-Pass-1", "203.0.113.1")
			first <- err
		}()
		<-arrived
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				if _, err := gw.authOn(0, "Wrong-Pass-1", fmt.Sprintf("198.51.100.%d", i+1)); err != nil {
					wantThrottled(t, "parallel guess", err)
				}
			})
		}
		wg.Wait()
		release()
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		bad := 0
		for _, rec := range auditRecords(t, gw.ev.outbox(t, m), "authenticate") {
			if rec.Reason == "BAD_CREDENTIALS" {
				bad++
			}
		}
		max := gw.svc[0].Policy().MaxFailures
		u, _ := gw.svc[0].GetUser(context.Background(), gw.user.ID)
		if bad > max+workers || bad < max || !u.Locked(gw.clk.t) {
			t.Fatalf("round %d: %d hashed (want %d to %d), locked=%v", round, bad, max, max+workers, u.Locked(gw.clk.t))
		}
		if n := identity.RunningChecks(gw.svc[0]); n != 0 {
			t.Fatalf("round %d: %d accounts listed as running", round, n)
		}
	}
}

// TestRefusedMemoryCheckLeavesNothing: a check admitted in memory whose
// caller leaves during its source's wait, or whose gate read fails, is
// taken back without a write and leaves nothing listed as running; the
// account's next check is admitted in memory again.
func TestRefusedMemoryCheckLeavesNothing(t *testing.T) {
	leave := false
	gw := newGateWorld(t, 1, identity.Config{Throttle: identity.Throttle{AddressFailures: 1}},
		func(context.Context, time.Duration) error {
			if leave {
				return context.DeadlineExceeded
			}
			return nil
		})
	// The source's failure delays its next check; a right password from
	// elsewhere leaves the account's gate clean.
	if res, err := gw.authOn(0, "Wrong-Pass-1", "198.51.100.1"); err != nil || res.Reason != identity.ReasonBadCredentials {
		t.Fatalf("failure: %v %v", res, err)
	}
	if res, err := gw.authOn(0, "First-Pass-1", "198.51.100.2"); err != nil || res.Reason != identity.ReasonOK {
		t.Fatalf("success: %v %v", res, err)
	}
	gw.st[0].counts()
	leave = true
	if _, err := gw.authOn(0, "First-Pass-1", "198.51.100.1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("caller gone during the wait: %v", err)
	}
	leave = false
	if r, u, _ := gw.st[0].counts(); r != 1 || u != 0 {
		t.Fatalf("a check taken back made %d reads, %d gate transactions; want 1, 0", r, u)
	}
	if n := identity.RunningChecks(gw.svc[0]); n != 0 {
		t.Fatalf("%d accounts listed as running after a check taken back", n)
	}

	// The gate's read fails: the check fails, nothing is listed.
	gw.st[0].readErr = store.ErrUnavailable
	if _, err := gw.authOn(0, "First-Pass-1", "198.51.100.3"); err == nil {
		t.Fatal("a failed gate read answered")
	}
	if n := identity.RunningChecks(gw.svc[0]); n != 0 {
		t.Fatalf("%d accounts listed as running after a failed read", n)
	}
	gw.st[0].counts()
	if res, err := gw.authOn(0, "First-Pass-1", "198.51.100.3"); err != nil || res.Reason != identity.ReasonOK {
		t.Fatalf("next login: %v %v", res, err)
	}
	if r, u, w := gw.st[0].counts(); r != 1 || u != 1 || w != 1 {
		t.Fatalf("next login: %d reads, %d transactions (%d writing); want 1, 1, 1", r, u, w)
	}
}

// TestRunningChecksBound: of parallel checks of one account, how many are
// admitted to run at once. One instance: a check admitted in memory takes
// one slot of the slack, so checks admitted through the store stop at
// max_failures + hash workers - 1 and, with it, max_failures + hash
// workers run (as without it). K instances each running a check admitted
// in memory from the clean gate (none of them sees the others): max_failures
// + hash workers + K - 1.
func TestRunningChecksBound(t *testing.T) {
	workers := runtime.GOMAXPROCS(0) // the test hasher's
	for _, k := range []int{1, 2} {
		gw := newGateWorld(t, k, identity.Config{}, nil)
		max := gw.svc[0].Policy().MaxFailures
		var (
			firsts   = make(chan error, k)
			releases []func()
		)
		for i := range k {
			arrived, release := gw.st[i].holdNext()
			go func() {
				_, err := gw.authOn(i, "Wrong-Pass-1", fmt.Sprintf("203.0.113.%d", i+1))
				firsts <- err
			}()
			<-arrived // admitted in memory and hashed; its settle waits
			releases = append(releases, release)
		}
		arrivals, release := gw.st[0].holdSettles()
		var (
			admitted int
			rest     = make(chan error, 100)
		)
	guess:
		for i := range 100 {
			answer := make(chan error, 1)
			go func() {
				_, err := gw.authOn(0, "Wrong-Pass-1", fmt.Sprintf("198.51.100.%d", i+1))
				answer <- err
				rest <- err
			}()
			select {
			case <-arrivals:
				admitted++
			case err := <-answer:
				wantThrottled(t, "guess beyond the bound", err)
				break guess
			}
		}
		if want := max + workers - 1; admitted != want {
			t.Errorf("%d instances: %d checks admitted through the store beside the in-memory ones, want %d", k, admitted, want)
		}
		t.Logf("%d instance(s), %d hash workers: %d checks running at once (max_failures %d)", k, workers, admitted+k, max)
		release()
		for _, r := range releases {
			r()
		}
		for range k {
			if err := <-firsts; err != nil {
				t.Fatal(err)
			}
		}
		for range admitted + 1 {
			<-rest
		}
		if n := identity.RunningChecks(gw.svc[0]); n != 0 {
			t.Fatalf("%d accounts listed as running", n)
		}
	}
}

// TestLockDuringHashIsAudited: a right password whose account is locked
// while its hash runs is answered ACCOUNT_LOCKED, and its one audit record
// says so (the locked verdict's record is built only on that path).
func TestLockDuringHashIsAudited(t *testing.T) {
	gw := newGateWorld(t, 1, identity.Config{}, nil)
	m := gw.ev.mark(t)
	arrived, release := gw.st[0].holdNext()
	done := make(chan *identity.AuthResult)
	go func() {
		res, err := gw.authOn(0, "First-Pass-1", "198.51.100.1")
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-arrived // hashed and right; its settle waits
	if _, err := gw.svc[0].LockUser(context.Background(), gw.user.ID, time.Hour); err != nil {
		t.Fatal(err)
	}
	release()
	if res := <-done; res == nil || res.Reason != identity.ReasonAccountLocked || res.User != nil {
		t.Fatalf("right password locked during its hash: %+v", res)
	}
	recs := auditRecords(t, gw.ev.outbox(t, m), "authenticate")
	if len(recs) != 1 || recs[0].Reason != "ACCOUNT_LOCKED" || recs[0].Result != "failure" {
		t.Fatalf("audit: %+v", recs)
	}
	// Unlocked, the next right password is audited OK.
	if _, err := gw.svc[0].UnlockUser(context.Background(), gw.user.ID); err != nil {
		t.Fatal(err)
	}
	m = gw.ev.mark(t)
	if res, err := gw.authOn(0, "First-Pass-1", "198.51.100.1"); err != nil || res.Reason != identity.ReasonOK {
		t.Fatalf("after unlock: %v %v", res, err)
	}
	if recs := auditRecords(t, gw.ev.outbox(t, m), "authenticate"); len(recs) != 1 || recs[0].Reason != "OK" {
		t.Fatalf("audit after unlock: %+v", recs)
	}
}
