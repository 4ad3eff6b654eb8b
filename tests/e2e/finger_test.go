package e2e

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity/finger/synth"
)

// TestFingerprints: an administrator enrolls a finger over gRPC and REST,
// lists it (never the template), and Authenticate answers auth types 2
// and 3 with it; the bypass switch and deletion work end to end.
func TestFingerprints(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("oa", "tina", nil, nil)
	fingers := identityv1.NewFingerServiceClient(e.conn)
	set := synth.Default(3)
	rec := func(id, imp int) []byte { return synth.NewFinger(set, id).Impression(imp) }

	// Only administrators.
	if _, err := fingers.ListFingers(appCtx(f.appID, f.secret), &identityv1.ListFingersRequest{UserId: f.userID}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("ListFingers with app credentials: %v", err)
	}
	en, err := fingers.EnrollFinger(e.adm(), &identityv1.EnrollFingerRequest{UserId: f.userID, Position: 2, Record: rec(1, 0)})
	if err != nil || en.GetPosition() != 2 || en.GetMinutiae() == 0 || en.GetFormat() != "ISO/IEC 19794-2:2005" {
		t.Fatalf("EnrollFinger: %v %v", en, err)
	}
	// REST: enrol a second finger (base64 record in JSON), list both.
	admin := map[string]string{"Authorization": "Bearer " + e.token}
	code, body, _ := e.rest("POST", "/v1/users/"+f.userID+"/fingers", admin,
		map[string]any{"position": 7, "record": base64.StdEncoding.EncodeToString(rec(2, 1))})
	if code != http.StatusOK || fmt.Sprint(body["position"]) != "7" || body["format"] != "ANSI INCITS 378-2004" {
		t.Fatalf("REST enroll: %d %v", code, body)
	}
	code, body, _ = e.rest("GET", "/v1/users/"+f.userID+"/fingers", admin, nil)
	list, _ := body["fingers"].([]any)
	if code != http.StatusOK || len(list) != 2 {
		t.Fatalf("REST list: %d %v", code, body)
	}
	for _, x := range list {
		for k := range x.(map[string]any) {
			if strings.Contains(k, "record") || strings.Contains(k, "template") {
				t.Fatalf("a listed finger carries %q: %v", k, x)
			}
		}
	}
	// A malformed record: 400 with the reason.
	code, body, _ = e.rest("POST", "/v1/users/"+f.userID+"/fingers", admin,
		map[string]any{"position": 3, "record": base64.StdEncoding.EncodeToString([]byte("FMR\x00 20\x00garbage-garbage-garbage"))})
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body), "FINGER_RECORD_INVALID") {
		t.Fatalf("REST enroll of a malformed record: %d %v", code, body)
	}

	auth := func(at identityv1.AuthType, probe []byte, pw string) (*identityv1.AuthenticateResponse, error) {
		return e.auth.Authenticate(f.ctx(), &identityv1.AuthenticateRequest{AppUserId: f.account, Password: pw,
			FingerprintFeature: probe, AuthType: at})
	}
	fp, both := identityv1.AuthType_AUTH_TYPE_FINGERPRINT, identityv1.AuthType_AUTH_TYPE_PASSWORD_AND_FINGERPRINT
	res, err := auth(fp, rec(1, 3), "")
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	res, err = auth(fp, rec(2, 4), "")
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	res, err = auth(fp, rec(9, 1), "")
	wantResult(t, res, err, -1, identityv1.Reason_REASON_BAD_CREDENTIALS)
	res, err = auth(both, rec(1, 5), f.password)
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	res, err = auth(both, rec(1, 5), "Wrong-Pass-9")
	wantResult(t, res, err, -1, identityv1.Reason_REASON_BAD_CREDENTIALS)
	// Malformed probe: INVALID_ARGUMENT, legacy -5, the reason named.
	_, err = auth(fp, []byte("FMR\x00 20\x00short"), "")
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "fingerprint_feature") {
		t.Fatalf("malformed probe: %v", err)
	}
	// The same over REST.
	code, body, _ = e.rest("POST", "/v1/authenticate", appHeaders(f), map[string]any{"app_user_id": f.account,
		"fingerprint_feature": base64.StdEncoding.EncodeToString(rec(1, 6)), "auth_type": "AUTH_TYPE_FINGERPRINT"})
	if code != http.StatusOK || fmt.Sprint(body["result_code"]) != "0" {
		t.Fatalf("REST fingerprint authenticate: %d %v", code, body)
	}

	// Bypass: auth type 2 checks the password.
	if _, err := fingers.SetFingerprintBypass(e.adm(), &identityv1.SetFingerprintBypassRequest{AppId: f.appID, Enabled: true,
		Reason: "scanner fault"}); err != nil {
		t.Fatal(err)
	}
	res, err = auth(fp, rec(9, 1), f.password)
	wantResult(t, res, err, 0, identityv1.Reason_REASON_OK)
	b, err := fingers.GetFingerprintBypass(e.adm(), &identityv1.GetFingerprintBypassRequest{AppId: f.appID})
	if err != nil || !b.GetEnabled() || b.GetReason() != "scanner fault" || b.GetSetBy() == "" {
		t.Fatalf("bypass: %v %v", b, err)
	}
	if _, err := fingers.SetFingerprintBypass(e.adm(), &identityv1.SetFingerprintBypassRequest{AppId: f.appID, Enabled: false,
		Reason: "fixed"}); err != nil {
		t.Fatal(err)
	}

	// Delete both: nothing enrolled answers -4.
	for _, p := range []int32{2, 7} {
		if _, err := fingers.DeleteFinger(e.adm(), &identityv1.DeleteFingerRequest{UserId: f.userID, Position: p}); err != nil {
			t.Fatal(err)
		}
	}
	res, err = auth(fp, rec(1, 3), "")
	wantResult(t, res, err, -4, identityv1.Reason_REASON_NO_FINGERPRINT)
}
