package natsctl

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/uias/uias/pkg/events"
)

// TestSetup runs "uias nats setup" against a server started from the
// deployed configuration (deploy/nats): with the setup user it creates the
// streams (and a second run finds them ready); a wrong password fails with
// an authorization error; without nats.url it explains there is nothing to
// set up.
func TestSetup(t *testing.T) {
	dir := t.TempDir()
	kp, _ := nkeys.CreateUser()
	pub, _ := kp.PublicKey()
	t.Setenv("UIAS_NATS_IDENTITY_NKEY", pub)
	tkp, _ := nkeys.CreateUser() // the ticket user: this test connects as setup only
	tpub, _ := tkp.PublicKey()
	t.Setenv("UIAS_NATS_TICKET_NKEY", tpub)
	akp, _ := nkeys.CreateUser()
	apub, _ := akp.PublicKey()
	t.Setenv("UIAS_NATS_AUDIT_NKEY", apub)
	skp, _ := nkeys.CreateUser()
	spub, _ := skp.PublicKey()
	t.Setenv("UIAS_NATS_SYNC_NKEY", spub)
	zkp, _ := nkeys.CreateUser()
	zpub, _ := zkp.PublicKey()
	t.Setenv("UIAS_NATS_AUTHZ_NKEY", zpub)
	siemKP, _ := nkeys.CreateUser()
	siemPub, _ := siemKP.PublicKey()
	t.Setenv("UIAS_NATS_SIEM_NKEY", siemPub)
	t.Setenv("UIAS_NATS_SETUP_PASSWORD", "setup-Secret-1")
	opts, err := server.ProcessConfigFile("../../../../deploy/nats/nats-server.conf")
	if err != nil {
		t.Fatal(err)
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	ns, err := events.StartNATS(filepath.Join(dir, "store"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("setup-Secret-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"UIAS_NATS_URL": ns.ClientURL(), "UIAS_NATS_USER": "uias-setup", "UIAS_NATS_PASSWORD_FILE": pw}
	run := func(env map[string]string, args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Main(context.Background(), args, &out, &errOut, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
		return code, out.String(), errOut.String()
	}
	for i := range 2 {
		code, out, errOut := run(env, "setup")
		if code != 0 || !strings.Contains(out, "stream CHANGES ready") || !strings.Contains(out, "stream AUDIT ready") {
			t.Fatalf("run %d: exit %d\n%s%s", i+1, code, out, errOut)
		}
	}
	bad := map[string]string{"UIAS_NATS_URL": ns.ClientURL(), "UIAS_NATS_USER": "uias-setup", "UIAS_NATS_PASSWORD": "guess-1"}
	if code, _, errOut := run(bad, "setup", "--timeout", "5s"); code != 1 || !strings.Contains(errOut, "Authorization Violation") ||
		strings.Contains(errOut, "guess-1") {
		t.Fatalf("wrong password: exit %d: %s", code, errOut)
	}
	if code, _, errOut := run(map[string]string{}, "setup"); code != 2 || !strings.Contains(errOut, "nats.url is not set") {
		t.Fatalf("no url: exit %d: %s", code, errOut)
	}
	if code, _, _ := run(env, "frobnicate"); code != 2 {
		t.Fatalf("unknown command: exit %d", code)
	}
}
