package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/events/eventstest"
	"github.com/uias/uias/pkg/store"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/ingest"
	"github.com/uias/uias/services/audit/sqlstore"
)

// Environment of a child ingest process (TestIngestChild).
const (
	envChild = "UIAS_AUDIT_INGEST_CHILD"
	envNATS  = "UIAS_AUDIT_TEST_NATS"
	envDB    = "UIAS_AUDIT_TEST_DB"
	envRing  = "UIAS_AUDIT_TEST_RING"
	// envCrash makes the child kill itself (SIGKILL) after storing its
	// n-th batch, before acknowledging it.
	envCrash = "UIAS_AUDIT_TEST_CRASH_AFTER"
)

// openLog opens the log on the SQLite file path with the ring file.
func openLog(t testing.TB, path, ringFile string, opts audit.LogOptions) (*audit.Log, *store.DB) {
	t.Helper()
	db, err := store.Open(context.Background(), "sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlstore.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	ring, err := crypto.LoadRing(crypto.RingSource{File: ringFile})
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
	return audit.NewLog(sqlstore.New(db), signer, opts), db
}

// TestIngestChild is the child process of TestKillDuringIngest: it ingests
// until it is killed.
func TestIngestChild(t *testing.T) {
	if os.Getenv(envChild) == "" {
		t.Skip("runs as a child of TestKillDuringIngest")
	}
	l, _ := openLog(t, os.Getenv(envDB), os.Getenv(envRing), audit.LogOptions{Policy: audit.Policy{Every: 1000, Interval: time.Hour}})
	nc, err := nats.Connect(os.Getenv(envNATS))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	var crashAfter, batches int
	fmt.Sscan(os.Getenv(envCrash), &crashAfter)
	in := ingest.New(js, l, ingest.Options{Batch: 100, MaxWait: 100 * time.Millisecond, AckWait: 2 * time.Second,
		AfterAppend: func(audit.AppendResult) {
			batches++
			if crashAfter > 0 && batches == crashAfter {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL) // stored, not acknowledged
				select {}
			}
		}})
	_ = in.Run(context.Background())
}

// publish puts n audit events on AUDIT as the outbox relay does.
func publish(t testing.TB, js jetstream.JetStream, n int) []string {
	ctx := context.Background()
	ids := make([]string, n)
	for i := range n {
		ev := events.Event{ID: events.NewID(), Subject: "uias.audit.identity.authenticate", Type: "audit.authenticate", Time: time.Now().UTC()}
		ev.Payload, _ = json.Marshal(events.AuditRecord{Serial: fmt.Sprint("req-", i), API: "authenticate", Actor: "app:a",
			Subject: fmt.Sprint("user:u", i), Result: "failure", Reason: "BAD_CREDENTIALS", DurationMS: 1.5, ClientIP: "203.0.113.7", Time: ev.Time})
		msg := &nats.Msg{Subject: ev.Subject, Data: ev.Payload, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
		msg.Header.Set(events.HeaderType, ev.Type)
		msg.Header.Set(events.HeaderTime, ev.Time.Format(time.RFC3339Nano))
		if _, err := js.PublishMsgAsync(msg); err != nil {
			panic(err)
		}
		ids[i] = ev.ID
		if i%1000 == 999 {
			<-js.PublishAsyncComplete()
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(60 * time.Second):
		panic("publish did not complete")
	}
	_ = ctx
	return ids
}

func size(t *testing.T, db *store.DB) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRowContext(context.Background(), "SELECT size FROM audit_log WHERE id = 1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestKillDuringIngest kills ingest processes with SIGKILL while they
// store AUDIT events, once at a random moment of busy ingest, once right
// after a batch was committed and before it was acknowledged, and then
// lets an ingester finish: every event is stored exactly once and the log
// verifies.
func TestKillDuringIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	ns := eventstest.NATSIn(t, filepath.Join(dir, "nats"), -1)
	_, js := eventstest.Connect(t, ns)
	ctx := context.Background()
	if err := events.EnsureStreams(ctx, js); err != nil {
		t.Fatal(err)
	}
	const total = 6000
	ids := publish(t, js, total)
	ringFile := filepath.Join(dir, "keyring.json")
	if _, err := crypto.NewRingFile(ringFile); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(dir, "audit.db")
	l, db := openLog(t, dbPath, ringFile, audit.LogOptions{Policy: audit.Policy{Every: 1000, Interval: time.Hour}})
	t.Cleanup(func() { db.Close() })

	child := func(crashAfter int) *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^TestIngestChild$")
		cmd.Env = append(os.Environ(), envChild+"=1", envNATS+"="+ns.ClientURL(), envDB+"="+dbPath, envRing+"="+ringFile,
			fmt.Sprintf("%s=%d", envCrash, crashAfter))
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (size %d)", what, size(t, db))
			}
			time.Sleep(2 * time.Millisecond)
		}
	}

	// 1. killed at a moment of busy ingest
	cmd := child(0)
	waitFor("a first part stored", func() bool { return size(t, db) >= total/6 })
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	killedAt := size(t, db)
	t.Logf("first child killed with %d of %d stored", killedAt, total)

	// 2. killed between commit and acknowledgement (its 3rd batch)
	cmd = child(3)
	err := cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("crash-injected child ended with %v, want SIGKILL", err)
	}
	crashedAt := size(t, db)
	if crashedAt <= killedAt {
		t.Fatalf("crash-injected child stored nothing (%d then %d)", killedAt, crashedAt)
	}
	t.Logf("second child killed after storing up to %d, before acknowledging", crashedAt)

	// 3. killed again at a random moment
	cmd = child(0)
	waitFor("more stored", func() bool { return size(t, db) >= crashedAt+total/6 })
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()

	// 4. an ingester that finishes
	var dups int
	in := ingest.New(js, l, ingest.Options{Batch: 100, MaxWait: 50 * time.Millisecond, AckWait: 2 * time.Second, Logger: zap.NewNop(),
		StreamMaxAge: 8 * 24 * time.Hour,
		AfterAppend:  func(r audit.AppendResult) { dups += r.Duplicates }})
	stop := runIngester(t, in)
	cons, err := js.Consumer(ctx, events.StreamAudit, ingest.Durable)
	if err != nil {
		t.Fatal(err)
	}
	waitFor("everything stored and acknowledged", func() bool {
		info, err := cons.Info(ctx)
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0 && size(t, db) >= total
	})
	stop()
	if s, err := js.Stream(ctx, events.StreamAudit); err != nil || s.CachedInfo().Config.MaxAge != 8*24*time.Hour {
		t.Fatalf("AUDIT retention not applied: %v", err)
	}
	t.Logf("last ingester skipped %d redelivered events already stored", dups)

	if n := size(t, db); n != total {
		t.Fatalf("log size %d, want %d", n, total)
	}
	got := map[string]int{}
	err = l.Store().ScanRecords(ctx, 0, func(r *audit.Record) error { got[r.EventID]++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if got[id] != 1 {
			t.Fatalf("event %s stored %d times", id, got[id])
		}
	}
	if len(got) != total {
		t.Fatalf("%d distinct records, want %d", len(got), total)
	}
	if _, err := l.CheckpointIfDue(ctx); err != nil {
		t.Fatal(err)
	}
	known, _ := audit.VerifiersFromKeys(l.Signer().VerifierKeys())
	rep, err := audit.Verify(ctx, l.Store(), l.Signer().Origin(), known)
	if err != nil || !rep.OK() || rep.Records != total {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// runIngester runs in until stop is called or the test ends: stop cancels Run's
// context and waits for it to return (a second stop does nothing).
func runIngester(t testing.TB, in *ingest.Ingester) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = in.Run(ctx) }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return stop
}

// streamAndLog is an embedded NATS server with the streams and an audit
// log (SQLite, checkpoints every 1000 records) and its database in a
// test's temp dir.
func streamAndLog(t testing.TB) (jetstream.JetStream, *audit.Log, *store.DB) {
	t.Helper()
	dir := t.TempDir()
	_, js := eventstest.Connect(t, eventstest.NATSIn(t, filepath.Join(dir, "nats"), -1))
	if err := events.EnsureStreams(context.Background(), js); err != nil {
		t.Fatal(err)
	}
	ringFile := filepath.Join(dir, "keyring.json")
	if _, err := crypto.NewRingFile(ringFile); err != nil {
		t.Fatal(err)
	}
	l, db := openLog(t, filepath.Join(dir, "audit.db"), ringFile, audit.LogOptions{Policy: audit.Policy{Every: 1000, Interval: time.Hour}})
	t.Cleanup(func() { db.Close() })
	return js, l, db
}
