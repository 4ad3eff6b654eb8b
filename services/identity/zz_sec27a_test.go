package identity_test

// sec27a proof (copy to services/identity/zz_sec27a_test.go, then
//   cd services/identity && nice -n 10 go test -count=1 -run TestSec27a .
// and delete the copy).

import (
	"testing"

	"github.com/uias/uias/services/identity"
)

// TestSec27aKerberosSkipsTOTP: a level-1 person who enrolled an
// authenticator app is never signed in by a password alone (SSOLogin
// answers OTP_REQUIRED) nor by a finger alone; a Kerberos ticket alone
// (a single factor: the AD password) signs them in with no code.
func TestSec27aKerberosSkipsTOTP(t *testing.T) {
	e := newTOTPEnv(t, identity.Policy{MaxFailures: 50, SourceFailures: 40})
	e.enrol(t)
	ctx := browserAt("192.0.2.9")
	pw, err := e.svc.SSOLogin(ctx, "pia", profilePass)
	if err != nil || pw.Reason != identity.ReasonOTPRequired {
		t.Fatalf("password alone: %+v %v", pw, err)
	}
	k, err := e.svc.SSOKerberosLogin(ctx, "pia", "pia@CORP.EXAMPLE", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("password alone: %s; Kerberos alone: %s (method %s)", pw.Reason, k.Reason, k.Method)
	if k.Reason == identity.ReasonOK {
		t.Errorf("BUG: a person with an authenticator app is signed in by a Kerberos ticket alone (no code asked)")
	}
}
