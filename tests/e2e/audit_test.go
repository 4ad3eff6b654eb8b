package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/audit"
	auditcomponent "github.com/uias/uias/services/audit/component"
)

// The audit component of a monolithic process stores the AUDIT events of
// identity in its log, signs checkpoints (also published on NATS), proves
// inclusion and consistency to administrators, and verifies.
func TestAuditLog(t *testing.T) {
	cfg := testConfig(t.TempDir())
	ac := auditcomponent.Settings(&cfg)
	ac.CheckpointEvery, ac.BatchWait = 2, 20*time.Millisecond
	e := start(t, cfg)
	nc, err := e.app.ConnectNATS()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	notes, err := nc.SubscribeSync(auditcomponent.CheckpointSubject)
	if err != nil {
		t.Fatal(err)
	}
	e.login()
	ctx := context.Background()
	// a refused login and a refused administrator call are audited too
	_, err = e.admin.AdminLogin(ctx, &identityv1.AdminLoginRequest{LoginName: "admin", Password: "wrong"})
	wantCode(t, err, codes.Unauthenticated, "BAD_ADMIN_LOGIN")
	h := e.app.Value(auditcomponent.Name).(*auditcomponent.Handle)
	failed := int64(-1)
	eventually(t, "the refused login in the audit log", func() bool {
		_ = h.Store.ScanRecords(ctx, 0, func(r *audit.Record) error {
			if r.API == "admin.login" && r.Result == "failure" {
				failed = r.Seq
			}
			return nil
		})
		return failed >= 0
	})
	eventually(t, "a checkpoint covering it", func() bool {
		cp, err := h.Store.LatestCheckpoint(ctx)
		return err == nil && cp != nil && cp.Size > failed && cp.Size >= 2
	})

	// the audit log is the security auditor's (a system administrator may
	// not read it: TestAdminScopesOfComponents)
	audTok := e.grantedAdmin(t, "auditor-log", "security_auditor")
	aud := func() context.Context {
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+audTok)
	}
	logc := auditv1.NewAuditLogServiceClient(e.conn)
	cp, err := logc.GetCheckpoint(aud(), &auditv1.GetCheckpointRequest{})
	if err != nil {
		t.Fatal(err)
	}
	known, err := audit.VerifiersFromKeys(cp.GetVerifierKeys())
	if err != nil {
		t.Fatal(err)
	}
	opened, err := audit.OpenCheckpoint([]byte(cp.GetNote()), "uias.audit", known)
	if err != nil || opened.Size != cp.GetSize() || string(opened.Root[:]) != string(cp.GetRootHash()) {
		t.Fatalf("checkpoint note %q: %v", cp.GetNote(), err)
	}
	msg, err := notes.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no checkpoint on NATS: %v", err)
	}
	if _, err := audit.OpenCheckpoint(msg.Data, "uias.audit", known); err != nil {
		t.Fatalf("published checkpoint: %v", err)
	}

	var sawLogin bool
	var root tlog.Hash
	copy(root[:], cp.GetRootHash())
	for seq := int64(0); seq < cp.GetSize(); seq++ {
		p, err := logc.ProveInclusion(aud(), &auditv1.ProveInclusionRequest{Seq: seq, Size: cp.GetSize()})
		if err != nil {
			t.Fatal(err)
		}
		r := p.GetRecord()
		if tlog.RecordHash(r.GetLeafData()) != tlog.Hash(p.GetLeafHash()) {
			t.Fatalf("record %d: leaf hash is not the hash of its leaf data", seq)
		}
		var proof tlog.RecordProof
		for _, b := range p.GetProof() {
			proof = append(proof, tlog.Hash(b))
		}
		if err := tlog.CheckRecord(proof, cp.GetSize(), root, seq, tlog.Hash(p.GetLeafHash())); err != nil {
			t.Fatalf("record %d: %v", seq, err)
		}
		if r.GetComponent() == "identity" && r.GetApi() == "admin.login" && r.GetResult() == "failure" {
			sawLogin = true
			if r.GetClientIp() == "" || r.GetTime().AsTime().IsZero() {
				t.Errorf("record %+v lacks the client address or time", r)
			}
		}
	}
	if !sawLogin {
		t.Fatal("the refused administrator login is not in the audit log")
	}
	if _, err := logc.ProveInclusion(aud(), &auditv1.ProveInclusionRequest{Seq: 1 << 40}); err == nil {
		t.Fatal("proof of a record beyond the log")
	}
	// the oldest checkpoint (its size depends on how the first records
	// were batched)
	var oldest int64
	_ = h.Store.Checkpoints(ctx, func(c *audit.Checkpoint) error {
		if oldest == 0 {
			oldest = c.Size
		}
		return nil
	})
	c, err := logc.ProveConsistency(aud(), &auditv1.ProveConsistencyRequest{OldSize: oldest})
	if err != nil {
		t.Fatal(err)
	}
	var cproof tlog.TreeProof
	for _, b := range c.GetProof() {
		cproof = append(cproof, tlog.Hash(b))
	}
	if err := tlog.CheckTree(cproof, c.GetNew().GetSize(), tlog.Hash(c.GetNew().GetRootHash()), oldest, tlog.Hash(c.GetOld().GetRootHash())); err != nil {
		t.Fatalf("consistency: %v", err)
	}
	v, err := logc.VerifyLog(aud(), &auditv1.VerifyLogRequest{})
	if err != nil || !v.GetOk() || v.GetRecords() < cp.GetSize() || v.GetBadSeq() != -1 {
		t.Fatalf("verify: %+v %v", v, err)
	}

	q := auditv1.NewAuditQueryServiceClient(e.conn)
	res, err := q.QueryRecords(aud(), &auditv1.QueryRecordsRequest{Api: "admin.login", Result: "failure"})
	if err != nil || len(res.GetRecords()) != 1 || res.GetRecords()[0].GetSeq() != failed {
		t.Fatalf("query of the failed login: %v %v", res, err)
	}
	code, body, _ := e.rest(http.MethodGet, "/v1/audit/records?api=admin.login&page_size=1", map[string]string{"Authorization": "Bearer " + audTok}, nil)
	if code != http.StatusOK || len(body["records"].([]any)) != 1 {
		t.Fatalf("REST query: %d %v", code, body)
	}
	_, err = q.QueryRecords(aud(), &auditv1.QueryRecordsRequest{Text: "a\nb"})
	wantCode(t, err, codes.InvalidArgument, "BAD_REQUEST")

	// callers without an administrator token are refused
	_, err = logc.GetCheckpoint(ctx, &auditv1.GetCheckpointRequest{})
	wantCode(t, err, codes.Unauthenticated, "BAD_ADMIN_TOKEN")
	_, err = logc.ProveInclusion(ctx, &auditv1.ProveInclusionRequest{Seq: -1})
	if err == nil {
		t.Fatal("negative record number accepted")
	}
	code, body, _ = e.rest(http.MethodGet, "/v1/audit/checkpoint", map[string]string{"Authorization": "Bearer " + audTok}, nil)
	if code != http.StatusOK || fmt.Sprint(body["size"]) == "" {
		t.Fatalf("REST checkpoint: %d %v", code, body)
	}
	code, _, _ = e.rest(http.MethodGet, "/v1/audit/checkpoint", nil, nil)
	if code != http.StatusUnauthorized {
		t.Fatalf("REST checkpoint without token: %d", code)
	}

	// backups over REST: the auditor's, not the system administrator's
	// (403); a time in the future is a 400; the status says the backup
	before := map[string]any{"before": time.Now().UTC().Format(time.RFC3339Nano)}
	code, body, _ = e.rest(http.MethodPost, "/v1/audit/archives", map[string]string{"Authorization": "Bearer " + e.token}, before)
	if code != http.StatusForbidden || !strings.Contains(fmt.Sprint(body), "ADMIN_NOT_ALLOWED") {
		t.Fatalf("REST backup by the system administrator: %d %v", code, body)
	}
	code, body, _ = e.rest(http.MethodPost, "/v1/audit/archives", map[string]string{"Authorization": "Bearer " + audTok},
		map[string]any{"before": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)})
	if code != http.StatusBadRequest {
		t.Fatalf("REST backup before a future time: %d %v", code, body)
	}
	code, body, _ = e.rest(http.MethodPost, "/v1/audit/archives", map[string]string{"Authorization": "Bearer " + audTok}, before)
	if code != http.StatusOK || fmt.Sprint(body["removed"]) == "true" || len(body["archives"].([]any)) == 0 {
		t.Fatalf("REST backup: %d %v", code, body)
	}
	code, body, _ = e.rest(http.MethodGet, "/v1/audit/archives/status", map[string]string{"Authorization": "Bearer " + audTok}, nil)
	if last, _ := body["last_backup"].(map[string]any); code != http.StatusOK || last == nil || last["reason"] != audit.ReasonBackup ||
		fmt.Sprint(body["backup_due"]) == "true" {
		t.Fatalf("REST archive status: %d %v", code, body)
	}
	code, body, _ = e.rest(http.MethodGet, "/v1/audit/archives/status", map[string]string{"Authorization": "Bearer " + e.token}, nil)
	if code != http.StatusForbidden {
		t.Fatalf("REST archive status of the system administrator: %d %v", code, body)
	}
}
