package ctl

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/config"
	pstoretest "github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/audit"
	auditcomponent "github.com/uias/uias/services/audit/component"
	"github.com/uias/uias/services/audit/sqlstore"
	"github.com/uias/uias/services/audit/storetest"
)

// "uias ctl audit" at a level-1 centre holding a level-2 centre's log
// (ADR 0029): query and verify take --origin and name each record's and
// each log's origin; verify fails naming the log whose record was changed;
// an unknown origin is refused in words; the absence report says up to
// when the level-2 log is complete.
func TestAuditCommandsAcrossOrigins(t *testing.T) {
	const pw = "Audit-Ctl-Pass-2"
	peer := storetest.Signer(t) // the level-2 centre's log: origin uias.audit/test
	a, h := startMonolith(t, pw, func(cfg *config.Config) {
		ac := auditcomponent.Settings(cfg)
		ac.Peers = []auditcomponent.PeerConfig{{Centre: "l2a", Origin: peer.Origin(), VerifierKeys: peer.VerifierKeys()},
			{Centre: "l2b", Origin: "l2b.audit"}} // l2b: its keys not configured

	})
	ctx := context.Background()
	hd := a.Value(auditcomponent.Name).(*auditcomponent.Handle)

	// What level 1 would have received of l2a: its records and checkpoints
	// (built in a log of their own, then stored as the receiver does).
	db := pstoretest.OpenSQLite(t)
	if err := sqlstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	src := storetest.Subject{Store: sqlstore.New(db)}
	l2 := audit.NewLog(src.Store, peer, audit.LogOptions{Policy: audit.Policy{Every: 3, Interval: time.Hour}})
	recs := storetest.Records("l2a", 6)
	for i := range recs {
		recs[i].Time = time.Now().Add(-time.Duration(6-i) * time.Minute).UTC().Truncate(time.Millisecond)
	}
	for _, part := range [][]audit.Record{recs[:3], recs[3:]} {
		if _, err := l2.Append(ctx, part); err != nil {
			t.Fatal(err)
		}
	}
	b := audit.PeerBatch{Origin: peer.Origin(), At: time.Now()}
	if err := src.Store.ScanRecords(ctx, 0, func(r *audit.Record) error { b.Records = append(b.Records, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := src.Store.Checkpoints(ctx, func(c *audit.Checkpoint) error { b.Checkpoints = append(b.Checkpoints, *c); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := hd.Store.AppendPeer(ctx, b); err != nil {
		t.Fatal(err)
	}

	out := h.mustRun("audit", "query", "--origin", peer.Origin(), "--since", "1h")
	if !strings.Contains(out, "ORIGIN") || strings.Count(out, peer.Origin()) != 6 {
		t.Fatalf("query --origin:\n%s", out)
	}
	// (the own log's records, e.g. the administrator's login, are stored
	// a moment after they happen)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out = h.mustRun("audit", "query", "--since", "1h", "--all")
		if strings.Contains(out, peer.Origin()) && strings.Contains(out, "uias.audit ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("query of every origin:\n%s", out)
		}
	}
	// l2b is configured without its keys: even with nothing of it held, it
	// is NOT VERIFIED, never ok (sec28b H3), so verify of every log fails
	code, out, _ := h.run("audit", "verify")
	if code == 0 || !strings.Contains(out, "log "+peer.Origin()) || !strings.Contains(out, "6 records, 2 checkpoints matched, signed up to 6") ||
		!strings.Contains(out, "log uias.audit") || !strings.Contains(out, "l2b.audit") || !strings.Contains(out, "NOT VERIFIED") ||
		strings.Contains(out, "TAMPERED") {
		t.Fatalf("verify of every log, l2b without keys: exit %d\n%s", code, out)
	}
	if out = h.mustRun("audit", "verify", "--origin", peer.Origin()); !strings.Contains(out, "6 records, 2 checkpoints matched, signed up to 6") {
		t.Fatalf("verify of l2a's log:\n%s", out)
	}
	code, _, errs := h.run("audit", "verify", "--origin", "l9.audit")
	if code == 0 || !strings.Contains(errs, "no audit log of origin l9.audit is held here") {
		t.Fatalf("verify of an unknown origin: exit %d, %s", code, errs)
	}
	_, _, errs = h.run("audit", "absent", "--days", "1")
	if !strings.Contains(errs, "the log "+peer.Origin()+" of a level-2 centre: complete until "+recs[5].Time.Format(time.RFC3339)) {
		t.Fatalf("absent does not say how complete the level-2 log is: %s", errs)
	}

	if _, err := hd.DB.ExecContext(ctx, "UPDATE audit_peer_records SET actor = 'app:forged' WHERE origin = ? AND seq = 4", peer.Origin()); err != nil {
		t.Fatal(err)
	}
	code, out, errs = h.run("audit", "verify", "--origin", peer.Origin())
	if code == 0 || !strings.Contains(out, "TAMPERED") || !strings.Contains(errs, peer.Origin()) ||
		!strings.Contains(errs, "signed checkpoint of size 6") {
		t.Fatalf("verify after a record of the level-2 log was changed: exit %d\n%s\n%s", code, out, errs)
	}
	if out = h.mustRun("audit", "verify", "--origin", "uias.audit"); strings.Contains(out, "TAMPERED") {
		t.Fatalf("verify of the own log only:\n%s", out)
	}

	// l2b's log, whose keys level 1 was not given: its checkpoints cannot
	// be checked, which verify says (not verified), never ok.
	l2bSigner := storetest.SignerFor(t, "l2b.audit")
	db2 := pstoretest.OpenSQLite(t)
	if err := sqlstore.Migrate(ctx, db2); err != nil {
		t.Fatal(err)
	}
	src2 := sqlstore.New(db2)
	if _, err := audit.NewLog(src2, l2bSigner, audit.LogOptions{Policy: audit.Policy{Every: 2, Interval: time.Hour}}).Append(ctx,
		storetest.Records("l2b", 2)); err != nil {
		t.Fatal(err)
	}
	b2 := audit.PeerBatch{Origin: "l2b.audit", At: time.Now()}
	if err := src2.ScanRecords(ctx, 0, func(r *audit.Record) error { b2.Records = append(b2.Records, *r); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := src2.Checkpoints(ctx, func(c *audit.Checkpoint) error { b2.Checkpoints = append(b2.Checkpoints, *c); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := hd.Store.AppendPeer(ctx, b2); err != nil {
		t.Fatal(err)
	}
	code, out, _ = h.run("audit", "verify", "--origin", "l2b.audit")
	if code == 0 || !strings.Contains(out, "NOT VERIFIED") || strings.Contains(out, "TAMPERED") {
		t.Fatalf("verify of a log whose keys are not configured: exit %d\n%s", code, out)
	}
}
