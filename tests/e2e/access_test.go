package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	auditcomponent "github.com/uias/uias/services/audit/component"
)

// Every API call, read or write, refused or not, over gRPC or REST, leaves
// one access record with the bank API standard's fields in the audit log,
// queryable like any record; the calls a component makes while serving one
// (the audit component asking identity who the administrator is) are part
// of that call and leave none of their own.
func TestAccessRecordOfEveryCall(t *testing.T) {
	cfg := testConfig(t.TempDir())
	auditcomponent.Settings(&cfg).BatchWait = 20 * time.Millisecond
	e := start(t, cfg)
	e.login()
	f := e.seed("acc", "mia", nil, nil)
	if _, err := e.authPW(f, f.account, f.password); err != nil {
		t.Fatal(err)
	}
	_, err := e.authPW(fixture{appID: f.appID, secret: "wrong-secret"}, f.account, f.password)
	wantCode(t, err, codes.Unauthenticated, "")
	if code, _, _ := e.rest(http.MethodPost, "/v1/authenticate", appHeaders(f), map[string]any{"app_user_id": f.account,
		"password": "wrong", "auth_type": "AUTH_TYPE_PASSWORD"}); code != http.StatusOK {
		t.Fatalf("REST authenticate: %d", code)
	}
	// the audit log is read by a security auditor
	audTok := e.grantedAdmin(t, "auditor-access", "security_auditor")
	aud := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+audTok)
	q := auditv1.NewAuditQueryServiceClient(e.conn)
	query := func(r *auditv1.QueryRecordsRequest) []*auditv1.Record {
		t.Helper()
		r.PageSize = 1000
		res, err := q.QueryRecords(aud, r)
		if err != nil {
			t.Fatal(err)
		}
		return res.GetRecords()
	}
	const authAPI = "uias.identity.v1.AuthService/Authenticate"
	eventually(t, "the access records of the three logins", func() bool {
		return len(query(&auditv1.QueryRecordsRequest{Api: authAPI})) == 3
	})
	var ok, refused int
	for _, r := range query(&auditv1.QueryRecordsRequest{Api: authAPI}) {
		if r.GetSerial() == "" || r.GetClientIp() != "127.0.0.1" || r.GetTime().AsTime().IsZero() || r.GetDurationMs() < 0 ||
			r.GetComponent() != "identity" {
			t.Errorf("access record lacks a field: %+v", r)
		}
		switch {
		case r.GetResult() == "success" && r.GetAppId() == f.appID && r.GetReason() == "OK":
			if r.GetDetail()["code"] == "OK" {
				ok++ // the gRPC login, and the REST one (a wrong password is an answer, not an error)
			}
		case r.GetResult() == "denied" && r.GetReason() != "":
			refused++
		}
	}
	if ok != 2 || refused != 1 {
		t.Errorf("access records of the logins: %d answered, %d refused; want 2 and 1", ok, refused)
	}

	// Reads are recorded too, with the administrator as actor, and the
	// nested WhoAmI of each audit call is not recorded on its own.
	const queryAPI = "uias.audit.v1.AuditQueryService/QueryRecords"
	var reads []*auditv1.Record
	eventually(t, "the access records of the audit queries", func() bool {
		reads = query(&auditv1.QueryRecordsRequest{Api: queryAPI})
		return len(reads) >= 2
	})
	if a := reads[0].GetActor(); a == "" || a == "anonymous" || reads[0].GetResult() != "success" {
		t.Errorf("audit query record: %+v", reads[0])
	}
	if n := len(query(&auditv1.QueryRecordsRequest{Api: "uias.identity.v1.AdminSessionService/WhoAmI"})); n != 0 {
		t.Errorf("%d access records of nested WhoAmI calls, want none", n)
	}
	// The refused audit call of someone without a token is recorded.
	_, err = q.QueryRecords(context.Background(), &auditv1.QueryRecordsRequest{})
	wantCode(t, err, codes.Unauthenticated, "BAD_ADMIN_TOKEN")
	eventually(t, "the refused audit query's access record", func() bool {
		return len(query(&auditv1.QueryRecordsRequest{Api: queryAPI, Result: "denied"})) == 1
	})
	// So is the system administrator's, refused a backup of the audit log
	// (the security auditor's), with them as its actor (not anonymous).
	const archiveAPI = "uias.audit.v1.AuditLogService/ArchiveRecords"
	_, err = auditv1.NewAuditLogServiceClient(e.conn).ArchiveRecords(e.adm(), &auditv1.ArchiveRecordsRequest{Before: timestamppb.Now()})
	wantCode(t, err, codes.PermissionDenied, "ADMIN_NOT_ALLOWED")
	var denied []*auditv1.Record
	eventually(t, "the system administrator's refused backup's access record", func() bool {
		denied = query(&auditv1.QueryRecordsRequest{Api: archiveAPI, Result: "denied"})
		return len(denied) == 1
	})
	if a := denied[0].GetActor(); !strings.HasPrefix(a, "user:") {
		t.Errorf("actor of the refused backup: %q, want the administrator", a)
	}
	// Health checks are not API calls.
	if n := len(query(&auditv1.QueryRecordsRequest{Api: "grpc.health.v1.Health/Check"})); n != 0 {
		t.Errorf("%d access records of health checks", n)
	}
}
