package e2e

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/hessian"
	"github.com/uias/uias/pkg/soap"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity/finger/synth"
)

// TestFingerprintCodesOnEveryTransport: the fingerprint result codes of
// issue 13 (0, -1 no match, -3 password-only person, -4 nothing enrolled,
// -5 malformed record) are the same over gRPC, REST, Hessian and SOAP.
func TestFingerprintCodesOnEveryTransport(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("oa", "fay", nil, nil)
	pw := e.seed("po", "pat", nil, func(r *identityv1.CreateUserRequest) { r.PasswordOnly = true })
	set := synth.Default(8)
	rec := func(id, imp int) []byte { return synth.NewFinger(set, id).Impression(imp) }
	returnRE := regexp.MustCompile(`<return>(-?[0-9]+)</return>`)

	type transport func(fx fixture, authType int, probe []byte, password string) int32
	transports := map[string]transport{
		"gRPC": func(fx fixture, at int, probe []byte, password string) int32 {
			res, err := e.auth.Authenticate(fx.ctx(), &identityv1.AuthenticateRequest{AppUserId: fx.account,
				Password: password, FingerprintFeature: probe, AuthType: identityv1.AuthType(at)})
			if err != nil {
				st, _ := status.FromError(err)
				n, _ := strconv.Atoi(errorInfo(st).GetMetadata()["legacy_code"])
				return int32(n)
			}
			return res.GetResultCode()
		},
		"REST": func(fx fixture, at int, probe []byte, password string) int32 {
			code, body, _ := e.rest("POST", "/v1/authenticate", appHeaders(fx), map[string]any{"app_user_id": fx.account,
				"password": password, "fingerprint_feature": base64.StdEncoding.EncodeToString(probe), "auth_type": at})
			if code == http.StatusOK {
				n, _ := strconv.Atoi(fmt.Sprint(body["result_code"]))
				return int32(n)
			}
			if details, _ := body["details"].([]any); len(details) > 0 {
				d, _ := details[0].(map[string]any)
				meta, _ := d["metadata"].(map[string]any)
				n, _ := strconv.Atoi(fmt.Sprint(meta["legacy_code"]))
				return int32(n)
			}
			t.Fatalf("REST: %d %v", code, body)
			return 0
		},
		"Hessian": func(fx fixture, at int, probe []byte, password string) int32 {
			call := []byte{'H', 2, 0, 'C'}
			call = hessian.AppendString(call, "authenticate")
			call = hessian.AppendInt(call, 7)
			for _, a := range []string{"", "", fx.account, base64.StdEncoding.EncodeToString(probe), password, strconv.Itoa(at), ""} {
				call = hessian.AppendString(call, a)
			}
			return postHessian(t, e.http, appHeaders(fx), call)
		},
		"SOAP": func(fx fixture, at int, probe []byte, password string) int32 {
			env := `<s:Envelope xmlns:s="` + soap.EnvelopeNS + `"><s:Body><a:authenticate xmlns:a="` + soap.Namespace + `">` +
				`<appUserid>` + fx.account + `</appUserid><fingerFeature>` +
				base64.StdEncoding.EncodeToString(probe) + `</fingerFeature><password>` + password + `</password><authType>` +
				strconv.Itoa(at) + `</authType></a:authenticate></s:Body></s:Envelope>`
			req, _ := http.NewRequest(http.MethodPost, e.http+"/legacy/soap/authenticate", strings.NewReader(env))
			req.Header.Set("Content-Type", "text/xml")
			for k, v := range appHeaders(fx) {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			m := returnRE.FindSubmatch(body)
			if m == nil {
				t.Fatalf("SOAP: %d %s", resp.StatusCode, body)
			}
			n, _ := strconv.Atoi(string(m[1]))
			return int32(n)
		},
	}
	// fresh is a new capture of finger id for each call (a record
	// presented twice is a replay, refused as a wrong finger)
	n := 10
	fresh := func(id int) func() []byte { return func() []byte { n++; return rec(id, n) } }
	same := func(b []byte) func() []byte { return func() []byte { return b } }
	check := func(what string, fx fixture, at int, probe func() []byte, password string, want int32) {
		t.Helper()
		for name, call := range transports {
			if got := call(fx, at, probe(), password); got != want {
				t.Errorf("%s over %s: %d, want %d", what, name, got, want)
			}
		}
	}
	check("nothing enrolled", f, 2, same(rec(1, 1)), "", -4)
	if _, err := identityv1.NewFingerServiceClient(e.conn).EnrollFinger(e.adm(),
		&identityv1.EnrollFingerRequest{UserId: f.userID, Position: 2, Record: rec(1, 0)}); err != nil {
		t.Fatal(err)
	}
	check("the enrolled finger", f, 2, fresh(1), "", 0)
	check("the enrolled finger and the password", f, 3, fresh(1), f.password, 0)
	check("another finger", f, 2, fresh(5), "", -1)
	check("a capture presented again (a replay)", f, 2, same(rec(1, 11)), "", -1) // the first fresh one
	check("a malformed record", f, 2, same([]byte("FMR\x00 20\x00short")), "", -5)
	check("a password-only person", pw, 2, same(rec(1, 2)), "", -3)
}
