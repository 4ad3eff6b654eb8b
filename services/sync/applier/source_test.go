package applier_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/uias/uias/services/sync/applier"
	"github.com/uias/uias/services/sync/synctest"
)

// TestSourceRestartedDuringACutCopiesOnce: while the link is cut the
// applier restarts the silent source of its peer stream (removing it and
// adding it back); after the heal the source resumes where it stopped:
// the peer stream holds each change once, and each is applied once.
func TestSourceRestartedDuringACutCopiesOnce(t *testing.T) {
	const n = 40
	l1 := synctest.StartLevel1(t, "l1")
	l2 := synctest.StartLevel2(t, "l2a", l1)
	_, js1 := l1.Connect(t)
	_, js2 := l2.Connect(t)
	ensureChanges(t, js1)
	ensureChanges(t, js2)
	var ids []string
	write := func(from, to int) {
		for i := from; i < to; i++ {
			ids = append(ids, publish(t, js2, "uias.changes.identity.user.updated", fmt.Sprintf("u%d", i%7), map[string]any{"n": i}))
		}
	}
	write(0, n)
	st, target, reg := newStore(t), newVersionTarget(), prometheus.NewRegistry()
	a := applier.New(js1, st, []applier.Link{applier.PeerLink("l2a", applier.Up)},
		applier.Options{Logger: zaptest.NewLogger(t), Targets: []applier.Target{target}, Metrics: reg, SourceRetry: 300 * time.Millisecond})
	run(t, a)
	waitApplied(t, st, "l2a", n)

	l2.Link.Cut()
	synctest.WaitLeaf(t, l2.Server, false)
	write(n, 2*n)
	before := restarts(t, reg)
	eventually(t, "the silent source is restarted during the cut", func() error {
		if restarts(t, reg) <= before {
			return errors.New("not restarted yet")
		}
		return nil
	})
	l2.Link.Heal()
	waitApplied(t, st, "l2a", 2*n)
	target.check(t, ids)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js1.Stream(ctx, applier.StreamFor("l2a"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 2*n || len(info.Config.Sources) != 1 {
		t.Fatalf("the peer stream holds %d messages (want %d, each once) and %d sources", info.State.Msgs, 2*n, len(info.Config.Sources))
	}
}

// TestRepointedSourcePutBack: a SYNC_<PEER> stream re-pointed at another
// centre's CHANGES (by someone with JetStream rights at this centre, or
// over a leaf link given them: review sec28b M4 for audit, rr29 B1 for
// sync) is put back by the applier's source watch and counted; what the
// peer writes afterwards is applied from the peer.
func TestRepointedSourcePutBack(t *testing.T) {
	l1 := synctest.StartLevel1(t, "l1")
	l2 := synctest.StartLevel2(t, "l2a", l1)
	_, js1 := l1.Connect(t)
	_, js2 := l2.Connect(t)
	ensureChanges(t, js1)
	ensureChanges(t, js2)
	ids := []string{publish(t, js2, "uias.changes.identity.user.updated", "u1", map[string]any{"n": 1})}
	st, target, reg := newStore(t), newVersionTarget(), prometheus.NewRegistry()
	link := applier.PeerLink("l2a", applier.Up)
	a := applier.New(js1, st, []applier.Link{link},
		applier.Options{Logger: zaptest.NewLogger(t), Targets: []applier.Target{target}, Metrics: reg, SourceRetry: 300 * time.Millisecond})
	run(t, a)
	waitApplied(t, st, "l2a", 1)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bad := applier.StreamConfig(applier.PeerLink("l1", applier.Up)) // SYNC_L2A sourcing l1's own CHANGES
	bad.Name = link.Stream
	if _, err := js1.UpdateStream(ctx, bad); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the re-pointed source is put back and counted", func() error {
		if n := counter(t, reg, "uias_sync_source_repointed_total"); n < 1 {
			return errors.New("not counted yet")
		}
		s, err := js1.Stream(ctx, link.Stream)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx)
		if err != nil {
			return err
		}
		if src := info.Config.Sources; len(src) != 1 || src[0].External == nil || src[0].External.APIPrefix != "$JS.l2a.API" ||
			len(src[0].SubjectTransforms) != len(applier.Up) {
			return fmt.Errorf("sources: %+v", src)
		}
		return nil
	})
	ids = append(ids, publish(t, js2, "uias.changes.identity.user.updated", "u2", map[string]any{"n": 2}))
	waitApplied(t, st, "l2a", 2)
	target.check(t, ids)
}

// restarts is the applier's count of source restarts.
func restarts(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	return counter(t, reg, "uias_sync_source_restarts_total")
}

// counter is the sum of the applier's counter name.
func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
