package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/hessian"
	"github.com/uias/uias/services/identity/finger/synth"
)

// TestLegacyTransports: Authenticate over Hessian 2.0 (calls serialized by
// the npm hessian.js) and SOAP 1.1 (the npm soap client, reading the
// WSDL) at the edge, with the same caller checks and result codes.
func TestLegacyTransports(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the legacy transport tests drive npm clients with it")
	}
	out, err := exec.Command(filepath.Join("..", "..", "scripts", "legacy-clients.sh")).Output()
	if err != nil {
		t.Skipf("npm clients not installed (registry unreachable?): %v", err)
	}
	t.Setenv("NODE_PATH", filepath.Join(strings.TrimSpace(string(out)), "node_modules"))
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("oa", "hank", nil, nil)
	pkg := filepath.Join("..", "..", "pkg")

	hess := func(hdr map[string]string, args ...string) int32 {
		t.Helper()
		call, err := exec.Command("node", append([]string{filepath.Join(pkg, "hessian", "testdata", "call.js"), "encode"}, args...)...).Output()
		if err != nil {
			t.Fatalf("node: %v", err)
		}
		return postHessian(t, e.http, hdr, call)
	}
	creds := map[string]string{"X-Uias-App-Id": f.appID, "X-Uias-App-Secret": f.secret}
	if c := hess(creds, "OA", "oa", f.account, "null", f.password, "1", "null"); c != 0 {
		t.Fatalf("Hessian, right password: %d", c)
	}
	if c := hess(creds, "OA", "oa", f.account, "", "Wrong-Pass-7", "1", ""); c != -1 {
		t.Fatalf("Hessian, wrong password: %d", c)
	}
	if c := hess(creds, "OA", "oa", "nobody", "", "x", "1", ""); c != -2 {
		t.Fatalf("Hessian, unknown account: %d", c)
	}
	if c := hess(creds, "OA", "oa", f.account, "", "", "2", ""); c != -5 {
		t.Fatalf("Hessian, auth type 2 without a finger: %d", c)
	}
	probe := base64.StdEncoding.EncodeToString(synth.NewFinger(synth.Default(4), 0).Impression(1))
	if c := hess(creds, "OA", "oa", f.account, probe, "", "2", ""); c != -4 {
		t.Fatalf("Hessian, fingerprint with none enrolled: %d", c)
	}
	if c := hess(creds, "OA", "oa", f.account, "", f.password, "9", ""); c != -5 {
		t.Fatalf("Hessian, auth type 9: %d", c)
	}
	// Basic authentication carries the credentials too; none or wrong ones are refused.
	if c := hess(map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(f.appID+":"+f.secret))},
		"OA", "oa", f.account, "", f.password, "1", ""); c != 0 {
		t.Fatalf("Hessian with basic auth: %d", c)
	}
	if c := hess(nil, "OA", "oa", f.account, "", f.password, "1", ""); c != -5 {
		t.Fatalf("Hessian without credentials: %d", c)
	}
	// Malformed calls: -5, never a crash.
	for _, b := range [][]byte{nil, []byte("garbage"), {'H', 2, 0, 'C', 0x0c}} {
		if c := postHessian(t, e.http, creds, b); c != -5 {
			t.Fatalf("malformed call %q: %d", b, c)
		}
	}

	// SOAP: the npm soap client reads ?wsdl and calls.
	soapCall := func(user, pass string, args map[string]string) map[string]any {
		t.Helper()
		raw, _ := json.Marshal(args)
		cmd := exec.Command("node", filepath.Join(pkg, "soap", "testdata", "client.js"), e.http+"/legacy/soap/authenticate", string(raw))
		cmd.Env = append(os.Environ(), "SOAP_USER="+user, "SOAP_PASS="+pass)
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("node soap: %v: %s", err, ee.Stderr)
			}
			t.Fatal(err)
		}
		var m map[string]any
		_ = json.Unmarshal(out, &m)
		return m
	}
	ret := func(m map[string]any) any {
		r, _ := m["result"].(map[string]any)
		return r["return"]
	}
	args := map[string]string{"appType": "OA", "appCode": "oa", "appUserid": f.account, "fingerFeature": "",
		"password": f.password, "authType": "1", "extendinfo": ""}
	if m := soapCall(f.appID, f.secret, args); ret(m) != float64(0) {
		t.Fatalf("SOAP, right password: %v", m)
	}
	args["password"] = "Wrong-Pass-7"
	if m := soapCall(f.appID, f.secret, args); ret(m) != float64(-1) {
		t.Fatalf("SOAP, wrong password: %v", m)
	}
	if m := soapCall(f.appID, "wrong-secret", args); ret(m) != float64(-5) {
		t.Fatalf("SOAP, wrong secret: %v", m)
	}
	// A bad envelope is a SOAP fault.
	resp, err := http.Post(e.http+"/legacy/soap/authenticate", "text/xml", strings.NewReader("<not-soap/>"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !bytes.Contains(body, []byte("<faultcode>soap:Client</faultcode>")) {
		t.Fatalf("bad envelope: %d %s", resp.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodPost, e.http+"/legacy/soap/authenticate", strings.NewReader("<Envelope>secret-text"))
	req.SetBasicAuth(f.appID, f.secret)
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()

	// Malformed requests are audited like other failed Authenticate calls,
	// with the transport and what was wrong, never their content.
	want := map[string]bool{"hessian call 0": false, "hessian auth_type ": false, "soap envelope ": false}
	deadline := time.Now().Add(30 * time.Second)
	for {
		missing := 0
		for _, ev := range appEvents(t, e.app, "AUDIT", "uias.audit.identity.authenticate") {
			d, _ := ev["detail"].(map[string]any)
			if d["malformed"] == nil {
				continue
			}
			if ev["reason"] != "BAD_REQUEST" || ev["result"] != "failure" || ev["app_id"] != f.appID {
				t.Fatalf("audit record of a malformed request: %v", ev)
			}
			if raw, _ := json.Marshal(ev); bytes.Contains(raw, []byte("secret-text")) || bytes.Contains(raw, []byte("garbage")) {
				t.Fatalf("audit record holds request content: %s", raw)
			}
			at, _ := d["at_byte"].(string)
			want[fmt.Sprintf("%v %v %s", d["transport"], d["malformed"], at)] = true
		}
		for _, ok := range want {
			if !ok {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit records of malformed legacy requests: %v", want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// postHessian posts a call and decodes the int reply.
func postHessian(t *testing.T, base string, hdr map[string]string, call []byte) int32 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/legacy/hessian/authenticate", bytes.NewReader(call))
	req.Header.Set("Content-Type", "application/x-hessian")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || len(b) < 5 || string(b[:4]) != "H\x02\x00R" {
		t.Fatalf("Hessian reply: %d %q", resp.StatusCode, b)
	}
	// The reply is an int: decode it as the single argument of a call.
	c, err := hessian.DecodeCall(append(append([]byte{'C'}, hessian.AppendString(nil, "r")...), append([]byte{0x91}, b[4:]...)...))
	if err != nil {
		t.Fatalf("reply %q: %v", b, err)
	}
	return c.Args[0].(int32)
}
