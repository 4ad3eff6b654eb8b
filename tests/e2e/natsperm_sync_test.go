package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap/zaptest"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/sync/applier"
	"github.com/uias/uias/services/sync/sqlstore"
)

// The sync user of the deployed NATS configuration can do what the sync
// component does at a centre (read its CHANGES through ordered consumers;
// create, update and read the stream sourcing a peer, SYNC_L2A in the
// file) and nothing that would lose or forge changes: no purge, no delete
// of a stream or a message, no edit of CHANGES, no event of its own, no
// other stream.
func TestNATSSyncUserOfDeployConfig(t *testing.T) {
	p := startPermTest(t)
	ctx := p.ctx
	for i := range 3 {
		p.publishAsIdentity(t, events.Event{ID: fmt.Sprintf("ev-%d", i), Subject: "uias.changes.identity.user.updated",
			Type: "identity.user.updated", Time: time.Now(), Payload: []byte(fmt.Sprintf(`{"id":"u1","data":{"n":%d}}`, i))})
	}

	syncJS, _, viol := p.user(t, p.sync, "sync")
	db := p.sqlite(t, "sync.db", sqlstore.Migrate)
	st := sqlstore.New(db)
	a := applier.New(syncJS, st, []applier.Link{applier.LocalLink("l1"), applier.PeerLink("l2a", applier.Up)},
		applier.Options{Logger: zaptest.NewLogger(t)})
	actx, acancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); a.Run(actx) }()
	eventually(t, "the sync user's applier to apply the centre's changes and read the peer's stream", func() bool {
		c, err := st.Cursor(ctx, "l1")
		if err != nil || c.Applied != 3 {
			return false
		}
		ls, err := a.Status(ctx)
		if err != nil {
			return false
		}
		for _, l := range ls {
			if l.Err != "" {
				return false
			}
		}
		return true
	})
	acancel()
	<-done

	attacks := append(streamAttacks(syncJS, events.StreamConfigs()[0]),
		natsAttack{"delete the peer's stream", "$JS.API.STREAM.DELETE." + applier.StreamFor("l2a"), func(ctx context.Context) error {
			return syncJS.DeleteStream(ctx, applier.StreamFor("l2a"))
		}},
		natsAttack{"create another stream", "$JS.API.STREAM.CREATE.OTHER", func(ctx context.Context) error {
			_, err := syncJS.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}})
			return err
		}},
		natsAttack{"forge an identity change", "uias.changes.identity.user.updated", func(ctx context.Context) error {
			_, err := syncJS.Publish(ctx, "uias.changes.identity.user.updated", []byte(`{"id":"u1"}`))
			return err
		}},
	)
	wantRefused(t, ctx, "sync", viol, attacks)
	s, err := p.setupJS.Stream(ctx, events.StreamChanges)
	if err != nil {
		t.Fatal(err)
	}
	if info := s.CachedInfo(); info.State.Msgs != 3 || info.Config.MaxAge != events.StreamConfigs()[0].MaxAge {
		t.Fatalf("CHANGES after the attacks: %d messages, max age %v", info.State.Msgs, info.Config.MaxAge)
	}
}
