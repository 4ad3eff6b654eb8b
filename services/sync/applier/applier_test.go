package applier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
	"github.com/uias/uias/pkg/store/storetest"
	usync "github.com/uias/uias/services/sync"
	"github.com/uias/uias/services/sync/applier"
	"github.com/uias/uias/services/sync/sqlstore"
	"github.com/uias/uias/services/sync/synctest"
)

func newStore(t testing.TB) *sqlstore.Store {
	t.Helper()
	db := storetest.OpenSQLite(t)
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return sqlstore.New(db)
}

// publish writes a change the way the outbox relay does (event id as the
// message id, type and time headers) and returns its event id.
func publish(t *testing.T, js jetstream.JetStream, subject, id string, data any) string {
	t.Helper()
	ev := ids.New()
	payload, _ := json.Marshal(map[string]any{"id": id, "data": data})
	m := nats.NewMsg(subject)
	m.Data = payload
	m.Header.Set(jetstream.MsgIDHeader, ev)
	m.Header.Set(events.HeaderType, "x")
	m.Header.Set(events.HeaderTime, time.Now().UTC().Format(time.RFC3339Nano))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	return ev
}

func ensureChanges(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := events.EnsureStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, a *applier.Applier) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSourcedChangesApplyOnceAndInOrderAcrossACut(t *testing.T) {
	l1 := synctest.StartLevel1(t, "l1")
	l2 := synctest.StartLevel2(t, "l2a", l1)
	_, js1 := l1.Connect(t)
	_, js2 := l2.Connect(t)
	ensureChanges(t, js1)
	ensureChanges(t, js2)

	st1, st2 := newStore(t), newStore(t)
	log := zaptest.NewLogger(t)
	a1 := applier.New(js1, st1, []applier.Link{applier.LocalLink("l1"), applier.PeerLink("l2a", applier.Up)},
		applier.Options{Logger: log.Named("l1")})
	a2 := applier.New(js2, st2, []applier.Link{applier.LocalLink("l2a"), applier.PeerLink("l1", applier.Down)},
		applier.Options{Logger: log.Named("l2a")})
	run(t, a1)
	run(t, a2)

	// Level 2 writes people; level 1 writes an application; a ticket change
	// stays home.
	for i := range 5 {
		publish(t, js2, "uias.changes.identity.user.updated", "u1", map[string]any{"n": i})
	}
	publish(t, js2, "uias.changes.identity.org.created", "o1", map[string]any{"name": "bureau"})
	publish(t, js1, "uias.changes.identity.app.created", "app1", map[string]any{"name": "mail"})
	publish(t, js1, "uias.changes.ticket.service.created", "svc1", map[string]any{})
	publish(t, js2, "uias.changes.identity.app.created", "harbour", map[string]any{}) // a level-2 business system: up
	publish(t, js2, "uias.changes.ticket.service.created", "svc2", map[string]any{})  // stays home

	digests := func(f usync.DigestFilter) error {
		d1, err := st1.Digest(context.Background(), f)
		if err != nil {
			return err
		}
		d2, err := st2.Digest(context.Background(), f)
		if err != nil {
			return err
		}
		if fmt.Sprint(d1) != fmt.Sprint(d2) {
			return fmt.Errorf("digests differ: l1 %v, l2a %v", d1, d2)
		}
		return nil
	}
	eventually(t, "l1 applies l2a's people", func() error {
		o, err := st1.Object(context.Background(), "identity.user", "u1")
		if err != nil {
			return err
		}
		if string(o.Data) != `{"n":4}` || o.Home != "l2a" {
			return fmt.Errorf("object %+v %s", o, o.Data)
		}
		return digests(usync.DigestFilter{Homes: []string{"l2a"}, KindPrefixes: []string{"identity.user", "identity.org"}})
	})
	eventually(t, "l2a applies l1's applications", func() error {
		return digests(usync.DigestFilter{Homes: []string{"l1"}, KindPrefixes: []string{"identity.app"}})
	})
	eventually(t, "l1 applies l2a's business system", func() error {
		o, err := st1.Object(context.Background(), "identity.app", "harbour")
		if err == nil && o.Home != "l2a" {
			err = fmt.Errorf("object %+v", o)
		}
		return err
	})
	if _, err := st1.Object(context.Background(), "ticket.service", "svc2"); err == nil {
		t.Fatal("a ticket change travelled up")
	}
	if _, err := st2.Object(context.Background(), "ticket.service", "svc1"); err == nil {
		t.Fatal("a ticket change travelled down")
	}

	// Cut the link, keep writing on both sides, heal.
	l2.Link.Cut()
	synctest.WaitLeaf(t, l2.Server, false)
	for i := range 20 {
		publish(t, js2, "uias.changes.identity.user.updated", fmt.Sprintf("u%d", i%4), map[string]any{"during": i})
		publish(t, js1, "uias.changes.identity.app.updated", "app1", map[string]any{"during": i})
	}
	l2.Link.Heal()
	synctest.WaitLeaf(t, l2.Server, true)
	eventually(t, "converged after the heal", func() error {
		if err := digests(usync.DigestFilter{Homes: []string{"l2a"}, KindPrefixes: applier.KindPrefixes(applier.Up)}); err != nil {
			return err
		}
		return digests(usync.DigestFilter{Homes: []string{"l1"}, KindPrefixes: applier.KindPrefixes(applier.Down)})
	})
	o, _ := st1.Object(context.Background(), "identity.user", "u3")
	if string(o.Data) != `{"during":19}` {
		t.Fatalf("u3 at l1: %s", o.Data)
	}
	for _, st := range []*sqlstore.Store{st1, st2} {
		if sk, _, _ := st.ListSkipped(context.Background(), usync.SkippedFilter{}, 10, ""); len(sk) != 0 {
			t.Fatalf("skipped changes without a replay: %+v", sk)
		}
	}
	// 7 + 20 changes of l2a applied once at level 1.
	c, _ := st1.Cursor(context.Background(), "l2a")
	if c.Applied != 27 || c.Skipped != 0 {
		t.Fatalf("l1's cursor of l2a: %+v", c)
	}
	status, err := a1.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range status {
		if s.Pending != 0 || s.Err != "" {
			t.Errorf("status %+v", s)
		}
	}
}

// TestReplayIsRecordedNotApplied: a cursor lost (e.g. a store restored from
// an older backup) makes the link read its stream again; every change comes
// again and is recorded as a DUPLICATE, none is applied twice.
func TestReplayIsRecordedNotApplied(t *testing.T) {
	l1 := synctest.StartLevel1(t, "l1")
	_, js := l1.Connect(t)
	ensureChanges(t, js)
	db := storetest.OpenSQLite(t)
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	st := sqlstore.New(db)
	for i := range 5 {
		publish(t, js, "uias.changes.identity.user.updated", "u1", map[string]any{"n": i})
	}
	publish(t, js, "uias.changes.ticket.service.created", "s1", map[string]any{}) // not replicated: moves the cursor only
	runFor := func(want func(c usync.Cursor) error) {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		a := applier.New(js, st, []applier.Link{applier.LocalLink("l1")}, applier.Options{Logger: zaptest.NewLogger(t)})
		go func() { a.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		eventually(t, "cursor", func() error {
			c, err := st.Cursor(context.Background(), "l1")
			if err != nil {
				return err
			}
			return want(c)
		})
	}
	runFor(func(c usync.Cursor) error {
		if c.Seq != 6 || c.Applied != 5 {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
	before, _ := st.Digest(context.Background(), usync.DigestFilter{})
	if _, err := db.ExecContext(context.Background(), "UPDATE sync_cursors SET seq = 0"); err != nil {
		t.Fatal(err)
	}
	runFor(func(c usync.Cursor) error {
		if c.Seq != 6 || c.Applied != 5 || c.Skipped != 0 || c.Duplicates != 5 {
			return fmt.Errorf("%+v", c)
		}
		return nil
	})
	after, _ := st.Digest(context.Background(), usync.DigestFilter{})
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("the replay changed the replica:\n%v\n%v", before, after)
	}
	sk, _, err := st.ListSkipped(context.Background(), usync.SkippedFilter{}, 10, "")
	if err != nil || len(sk) != 5 {
		t.Fatalf("skipped %+v %v", sk, err)
	}
	for _, k := range sk {
		if k.Reason != usync.Duplicate || k.Kind != "identity.user" || k.AppliedVersion != 5 {
			t.Fatalf("skipped %+v", k)
		}
	}
}
