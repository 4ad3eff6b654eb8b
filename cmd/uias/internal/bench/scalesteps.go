package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/identity"
)

// stepStore times the store calls of a login (the logins-during-an-import
// rows): where a login's time goes with and without an import, the rest
// of a login being its hash and the waits for a CPU.
type stepStore struct {
	identity.Store
	cur atomic.Pointer[stepTimes] // nil: not recording
}

// LoginWritesAside passes the store's answer on (identity.LoginWritesAside).
func (s *stepStore) LoginWritesAside() bool {
	a, ok := s.Store.(identity.LoginWritesAside)
	return ok && a.LoginWritesAside()
}

// stepTimes are the durations of each kind of store call, and counts
// (the import's rows, the process's CPU time in the slices).
type stepTimes struct {
	mu sync.Mutex
	d  map[string][]time.Duration
	n  map[string]int64
}

// count adds v to the count named what.
func (t *stepTimes) count(what string, v int64) {
	t.mu.Lock()
	if t.n == nil {
		t.n = map[string]int64{}
	}
	t.n[what] += v
	t.mu.Unlock()
}

func (t *stepTimes) add(step string, d time.Duration) {
	t.mu.Lock()
	if t.d == nil {
		t.d = map[string][]time.Duration{}
	}
	t.d[step] = append(t.d[step], d)
	t.mu.Unlock()
}

// p is the q quantile of step's durations (0 without any).
func (t *stepTimes) p(step string, q float64) time.Duration {
	t.mu.Lock()
	v := slices.Clone(t.d[step])
	t.mu.Unlock()
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	return Quantile(v, q)
}

// summary is "step: n calls, p50/p99/total" for each step.
func (t *stepTimes) summary() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for _, k := range slices.Sorted(mapKeys(t.d)) {
		v := slices.Clone(t.d[k])
		slices.Sort(v)
		var sum time.Duration
		for _, x := range v {
			sum += x
		}
		p := func(q float64) time.Duration { return v[min(len(v)-1, int(q*float64(len(v))))] }
		out = append(out, fmt.Sprintf("%s %d× p50 %s p99 %s max %s total %s", k, len(v), ms(p(0.5)), ms(p(0.99)), ms(v[len(v)-1]), sum.Round(time.Millisecond)))
	}
	for _, k := range slices.Sorted(mapKeys(t.n)) {
		out = append(out, fmt.Sprintf("%s %d", k, t.n[k]))
	}
	return strings.Join(out, "; ")
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func (s *stepStore) time(step string, t0 time.Time) {
	if t := s.cur.Load(); t != nil {
		t.add(step, time.Since(t0))
	}
}

func (s *stepStore) UpdateLoginGate(ctx context.Context, userID, source string, decide func(identity.LoginGate) (identity.LoginGateWrite, bool)) error {
	defer s.time("gate write", time.Now())
	return s.Store.UpdateLoginGate(ctx, userID, source, decide)
}

func (s *stepStore) ReadLoginGate(ctx context.Context, userID, source string) (identity.LoginGate, error) {
	defer s.time("read", time.Now())
	return s.Store.ReadLoginGate(ctx, userID, source)
}

func (s *stepStore) FindLink(ctx context.Context, appID, account string) (*identity.AccountLink, error) {
	defer s.time("read", time.Now())
	return s.Store.FindLink(ctx, appID, account)
}

func (s *stepStore) GetUser(ctx context.Context, id string) (*identity.User, error) {
	defer s.time("read", time.Now())
	return s.Store.GetUser(ctx, id)
}

func (s *stepStore) DisabledInOrgChain(ctx context.Context, id string) (string, error) {
	defer s.time("read", time.Now())
	return s.Store.DisabledInOrgChain(ctx, id)
}

func (s *stepStore) AppendEvents(ctx context.Context, evs []events.Event) error {
	defer s.time("event write", time.Now())
	return s.Store.AppendEvents(ctx, evs)
}

// The import's store calls in the slices with an import: its
// transactions (each a commit; rows per transaction counted) and its
// waits for the logins' writes to go first.

func (s *stepStore) ImportBatch(ctx context.Context, importID string, items []identity.ImportItem, dryRun bool, chunk int,
	evs func(written []identity.ImportItem) []events.Event) ([]identity.ImportResult, error) {
	t0 := time.Now()
	res, err := s.Store.ImportBatch(ctx, importID, items, dryRun, chunk, evs)
	if t := s.cur.Load(); t != nil && err == nil {
		t.add("import tx", time.Since(t0))
		t.count("import tx rows", int64(len(res)))
	}
	return res, err
}

// sleep is the service's sleep: the import's pauses while logins wait
// for a hash worker (identity's giveWay), timed as "import pause".
func (s *stepStore) sleep(ctx context.Context, d time.Duration) error {
	t0 := time.Now()
	t := time.NewTimer(d)
	defer t.Stop()
	defer s.time("import pause", t0)
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *stepStore) YieldWrites(ctx context.Context) error {
	t0 := time.Now()
	err := s.Store.YieldWrites(ctx)
	if d := time.Since(t0); d >= time.Millisecond {
		s.time("import yield wait", t0)
	}
	return err
}
