package e2e

import (
	"testing"
	"time"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	auditcomponent "github.com/uias/uias/services/audit/component"
)

// TestReportedPersonAddressRecorded (trial5 D5): an application that
// reports the person's address (extend_info client_ip) gets it recorded as
// the login record's client_ip, its own address as app_ip, so that the
// address analytics see where the person is; the access record of the call
// keeps the application's address. Without a report nothing changes.
func TestReportedPersonAddressRecorded(t *testing.T) {
	cfg := testConfig(t.TempDir())
	auditcomponent.Settings(&cfg).BatchWait = 20 * time.Millisecond
	e := start(t, cfg)
	e.login()
	f := e.seed("pip", "pia", nil, nil)
	if _, err := e.auth.Authenticate(f.ctx(), &identityv1.AuthenticateRequest{AppUserId: f.account, Password: "Wrong-Pass-1",
		AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD, ExtendInfo: map[string]string{"client_ip": "203.0.113.2"}}); err != nil {
		t.Fatal(err)
	}
	// an address with a zone is text of the application's choosing: not taken
	if _, err := e.auth.Authenticate(f.ctx(), &identityv1.AuthenticateRequest{AppUserId: f.account, Password: f.password,
		AuthType: identityv1.AuthType_AUTH_TYPE_PASSWORD, ExtendInfo: map[string]string{"client_ip": "fe80::1%any-text-here"}}); err != nil {
		t.Fatal(err)
	}
	q := auditv1.NewAuditQueryServiceClient(e.conn)
	var recs []*auditv1.Record
	eventually(t, "the two login records", func() bool {
		r, err := q.QueryRecords(e.aud(), &auditv1.QueryRecordsRequest{Api: "authenticate", Subject: "user:" + f.userID})
		if err != nil {
			t.Fatal(err)
		}
		recs = r.GetRecords()
		return len(recs) == 2
	})
	failed, ok := recs[1], recs[0] // newest first
	if failed.GetResult() != "failure" || failed.GetClientIp() != "203.0.113.2" || failed.GetDetail()["app_ip"] != "127.0.0.1" {
		t.Fatalf("the login with a reported address: %v", failed)
	}
	if ok.GetResult() != "success" || ok.GetClientIp() != "127.0.0.1" || ok.GetDetail()["app_ip"] != "" {
		t.Fatalf("the login without a (usable) one: %v", ok)
	}
	r, err := q.QueryRecords(e.aud(), &auditv1.QueryRecordsRequest{Api: "uias.identity.v1.AuthService/Authenticate", ClientIp: "203.0.113.2"})
	if err != nil || len(r.GetRecords()) != 0 {
		t.Fatalf("an access record with the reported address: %v %v", r, err)
	}
	// the failed logins by address count the person's
	c := auditv1.NewAuditAnalyticsServiceClient(e.conn)
	res, err := c.FailedLogins(e.aud(), &auditv1.FailedLoginsRequest{By: auditv1.LoginGroup_LOGIN_GROUP_CLIENT_IP})
	if err != nil || len(res.GetCounts()) != 1 || res.GetCounts()[0].GetKey() != "203.0.113.2" {
		t.Fatalf("failed logins by address: %v %v", res, err)
	}
}
