package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
)

// permTest is the common start of the tests of one deploy/nats user: the
// NATS server of the deployed configuration, the streams made by the setup
// user, the identity user (who writes what the others read) and the
// test's context (90 s) and directory.
type permTest struct {
	*permNATS
	ctx        context.Context
	dir        string
	setupJS    jetstream.JetStream
	identityJS jetstream.JetStream
}

func startPermTest(t *testing.T) *permTest {
	t.Helper()
	dir := t.TempDir()
	p := &permTest{permNATS: startPermNATS(t, dir), dir: dir}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	p.ctx = ctx
	p.setupJS, _, _ = p.user(t, p.setup, "setup")
	if err := events.EnsureStreams(ctx, p.setupJS); err != nil {
		t.Fatalf("setup: %v", err)
	}
	p.identityJS, _, _ = p.user(t, p.identity, "identity")
	return p
}

// user connects as the client name with the deploy user n: its JetStream,
// its connection and the permission violations the server reports.
func (p *permTest) user(t *testing.T, n config.NATS, name string) (jetstream.JetStream, *nats.Conn, *violations) {
	t.Helper()
	nc, viol := p.connect(t, n, name)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js, nc, viol
}

// publishAsIdentity publishes ev as the identity user (a change or a
// record that the user under test reads).
func (p *permTest) publishAsIdentity(t *testing.T, ev events.Event) {
	t.Helper()
	if _, err := p.identityJS.PublishMsg(p.ctx, events.Msg(ev), jetstream.WithMsgID(ev.ID)); err != nil {
		t.Fatal(err)
	}
}

// sqlite opens the SQLite database name in the test's directory, migrated
// by migrate, closed when the test ends.
func (p *permTest) sqlite(t *testing.T, name string, migrate func(context.Context, *store.DB) error) *store.DB {
	t.Helper()
	db, err := store.Open(p.ctx, "sqlite", filepath.Join(p.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := migrate(p.ctx, db); err != nil {
		t.Fatal(err)
	}
	return db
}
