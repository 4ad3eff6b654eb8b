package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/audit"
	auditcomponent "github.com/uias/uias/services/audit/component"
	"github.com/uias/uias/services/audit/ingest"
	"github.com/uias/uias/services/audit/sqlstore"
)

// The audit user of the deployed NATS configuration can do what the audit
// component does (its durable consumer on AUDIT: create, fetch,
// acknowledge; publish its own records and checkpoints) and nothing that
// would lose or forge records: no purge, no delete of the stream, a record
// or its consumer, no stream edits, no records of other components.
func TestNATSAuditUserOfDeployConfig(t *testing.T) {
	p := startPermTest(t)
	ctx := p.ctx
	p.publishAsIdentity(t, events.Event{ID: "ev-1", Subject: "uias.audit.identity.authenticate", Type: "audit.authenticate",
		Time: time.Now(), Payload: []byte(`{"result":"success","api":"authenticate"}`)})

	auditJS, auditConn, viol := p.user(t, p.audit, "audit")
	if err := events.EnsureStreams(ctx, auditJS); err != nil {
		t.Fatalf("the audit user checking the streams: %v", err)
	}
	db := p.sqlite(t, "audit.db", sqlstore.Migrate)
	ring, err := crypto.NewRingFile(filepath.Join(p.dir, "ring.json"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ring.Ed25519(audit.KeyPurpose)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := audit.NewSigner("uias.audit/test", keys)
	if err != nil {
		t.Fatal(err)
	}
	st := sqlstore.New(db)
	l := audit.NewLog(st, signer, audit.LogOptions{Policy: audit.Policy{Every: 1, Interval: time.Hour},
		OnCheckpoint: func(cp audit.Checkpoint) { _ = auditConn.Publish(auditcomponent.CheckpointSubject, cp.Note) }})
	in := ingest.New(auditJS, l, ingest.Options{Batch: 10, MaxWait: 50 * time.Millisecond})
	ictx, icancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = in.Run(ictx) }()
	eventually(t, "the audit user's ingest to store the identity record", func() bool {
		n, err := st.Size(ctx)
		return err == nil && n == 1
	})
	// Its own records.
	own := events.Event{ID: "ev-2", Subject: "uias.audit.audit.access", Type: "access", Time: time.Now(), Payload: []byte(`{}`)}
	if _, err := auditJS.PublishMsg(ctx, events.Msg(own), jetstream.WithMsgID(own.ID)); err != nil {
		t.Fatalf("the audit user publishing its own record: %v", err)
	}
	eventually(t, "its own record stored too", func() bool {
		n, err := st.Size(ctx)
		return err == nil && n == 2
	})
	icancel()
	<-done
	if err := auditConn.Flush(); err != nil {
		t.Fatal(err)
	}
	if viol.has(auditcomponent.CheckpointSubject) {
		t.Fatal("the server refused the audit user's checkpoint")
	}

	attacks := append(streamAttacks(auditJS, events.StreamConfigs()[1]),
		natsAttack{"delete its consumer", "$JS.API.CONSUMER.DELETE.AUDIT." + ingest.Durable, func(ctx context.Context) error {
			return auditJS.DeleteConsumer(ctx, events.StreamAudit, ingest.Durable)
		}},
		natsAttack{"forge an identity record", "uias.audit.identity.authenticate", func(ctx context.Context) error {
			_, err := auditJS.Publish(ctx, "uias.audit.identity.authenticate", []byte(`{"result":"success"}`))
			return err
		}},
	)
	wantRefused(t, ctx, "audit", viol, attacks)
	s, err := p.setupJS.Stream(ctx, events.StreamAudit)
	if err != nil {
		t.Fatal(err)
	}
	if info := s.CachedInfo(); info.State.Msgs != 2 || info.Config.MaxAge != 0 {
		t.Fatalf("AUDIT after the attacks: %d messages, max age %v; want 2 and unchanged", info.State.Msgs, info.Config.MaxAge)
	}
	cctx, c := context.WithTimeout(ctx, 2*time.Second)
	defer c()
	if _, err := auditJS.Consumer(cctx, events.StreamAudit, ingest.Durable); err != nil {
		t.Fatalf("the audit consumer is gone: %v", err)
	}
}

// The audit user of the deployed NATS configuration can do what the audit
// component does across centres (ADR 0029): at a level-2 centre create and
// read AUDIT_LOG and publish its log there; at level 1 create the stream
// sourcing the example peer's AUDIT_LOG (AUDIT_L2A) and read it through its
// durable consumer. It may purge or delete none of them, nor create a
// stream of another name.
func TestNATSAuditUserAcrossCentres(t *testing.T) {
	p := startPermTest(t)
	ctx := p.ctx
	js, conn, viol := p.user(t, p.audit, "audit")

	logStream, err := js.CreateStream(ctx, auditcomponent.LogStreamConfig())
	if err != nil {
		t.Fatalf("the audit user creating AUDIT_LOG: %v", err)
	}
	if _, err := js.CreateStream(ctx, auditcomponent.LogStreamConfig()); err != nil {
		t.Fatalf("the audit user creating AUDIT_LOG again, as it is (a restart): %v", err)
	}
	m := audit.RecordMessage("l2a.audit", &audit.Record{Seq: 0, EventID: "ev-0", Type: "audit.authenticate", Component: "identity",
		Time: time.Now().UTC().Truncate(time.Millisecond)})
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: audit.SubjectLogRecord, Data: b}, jetstream.WithMsgID(m.MsgID())); err != nil {
		t.Fatalf("the audit user sharing a record: %v", err)
	}
	last, err := logStream.GetLastMsgForSubject(ctx, audit.SubjectLogRecord)
	if err != nil {
		t.Fatalf("the audit user reading how far it shared: %v", err)
	}
	if lm, err := audit.ParseLogMessage(last.Data); err != nil || lm.Record.Seq != 0 {
		t.Fatalf("last shared: %+v %v", lm, err)
	}

	peer := auditcomponent.PeerConfig{Centre: "l2a", Origin: "l2a.audit"}
	peerStream, err := js.CreateOrUpdateStream(ctx, auditcomponent.PeerStreamConfig(peer))
	if err != nil {
		t.Fatalf("the audit user creating %s: %v", audit.PeerStreamFor("l2a"), err)
	}
	c, err := peerStream.CreateOrUpdateConsumer(ctx, auditcomponent.PeerConsumerConfig(100))
	if err != nil {
		t.Fatalf("the audit user creating its consumer on %s: %v", audit.PeerStreamFor("l2a"), err)
	}
	batch, err := c.Fetch(10, jetstream.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
	}
	if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
		t.Fatalf("the audit user reading %s: %v", audit.PeerStreamFor("l2a"), err)
	}
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}
	viol.mu.Lock()
	refused := slices.Clone(viol.errs)
	viol.mu.Unlock()
	if len(refused) > 0 {
		t.Fatalf("the server refused the audit user's own calls: %v", refused)
	}

	request := func(subject, body string) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			_, err := js.Conn().RequestWithContext(ctx, subject, []byte(body))
			return err
		}
	}
	wantRefused(t, ctx, "audit", viol, []natsAttack{
		{"purge AUDIT_LOG", "$JS.API.STREAM.PURGE.AUDIT_LOG", request("$JS.API.STREAM.PURGE.AUDIT_LOG", "{}")},
		{"delete a message of AUDIT_LOG", "$JS.API.STREAM.MSG.DELETE.AUDIT_LOG", request("$JS.API.STREAM.MSG.DELETE.AUDIT_LOG", `{"seq":1}`)},
		{"delete AUDIT_LOG", "$JS.API.STREAM.DELETE.AUDIT_LOG", request("$JS.API.STREAM.DELETE.AUDIT_LOG", "")},
		// sec28b L6: an update that keeps one message amounts to a purge
		{"update AUDIT_LOG", "$JS.API.STREAM.UPDATE.AUDIT_LOG", func(ctx context.Context) error {
			cfg := auditcomponent.LogStreamConfig()
			cfg.MaxMsgs = 1
			_, err := js.UpdateStream(ctx, cfg)
			return err
		}},
		{"delete AUDIT_L2A", "$JS.API.STREAM.DELETE.AUDIT_L2A", request("$JS.API.STREAM.DELETE.AUDIT_L2A", "")},
		{"delete its consumer on AUDIT_L2A", "$JS.API.CONSUMER.DELETE.AUDIT_L2A.audit", request("$JS.API.CONSUMER.DELETE.AUDIT_L2A.audit", "")},
		{"create another stream", "$JS.API.STREAM.CREATE.OTHER", func(ctx context.Context) error {
			_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other.>"}})
			return err
		}},
		{"forge a change", "uias.changes.identity.user.updated", func(ctx context.Context) error {
			_, err := js.Publish(ctx, "uias.changes.identity.user.updated", []byte(`{"id":"u1"}`))
			return err
		}},
	})
	info, err := logStream.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("AUDIT_LOG after the attacks: %+v %v", info, err)
	}
}
