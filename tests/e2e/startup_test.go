package e2e

import (
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lines are the lines of s that are not JSON log records (what `uias serve`
// prints for the operator).
func plainLines(s string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if l != "" && !strings.HasPrefix(l, "{") {
			out = append(out, l)
		}
	}
	return out
}

// TestStartupFaults runs `uias serve` with one fault each and checks that
// it says what is wrong in one line and exits non-zero at once (within
// seconds; the bound below only catches a hang).
func TestStartupFaults(t *testing.T) {
	dir := t.TempDir()
	ring := filepath.Join(dir, "ring")
	if err := os.MkdirAll(ring, 0o700); err != nil {
		t.Fatal(err)
	}
	newKeyRing(t, ring)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyAddr := busy.Addr().String()
	deadEtcd := "http://127.0.0.1:" + itoa(freePort(t))
	deadNATS := "nats://127.0.0.1:" + itoa(freePort(t))
	badJSON := filepath.Join(dir, "bad")
	if err := os.MkdirAll(badJSON, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(badJSON, "keyring.json"), []byte("{not a ring"), 0o600); err != nil {
		t.Fatal(err)
	}
	ringDir := filepath.Join(dir, "ringdir")
	if err := os.MkdirAll(filepath.Join(ringDir, "keyring.json"), 0o700); err != nil {
		t.Fatal(err)
	}
	identity := func(data string, extra ...string) []string {
		return append(identityArgs(data, []string{deadEtcd}, deadNATS), extra...)
	}
	cases := []struct {
		name string
		args []string
		env  []string
		want []string // in the one line
	}{
		{"wrong DSN (nothing listens)", identity(ring, "--db-driver=postgres",
			"--db-dsn=postgres://uias@127.0.0.1:"+itoa(freePort(t))+"/uias?sslmode=disable"), nil,
			[]string{"start identity", "cannot connect to postgres"}},
		{"malformed DSN", identity(ring, "--db-driver=postgres", "--db-dsn=postgres://uias@127.0.0.1:notaport/uias"), nil,
			[]string{"uias serve:"}},
		{"gRPC port in use", identity(ring, "--grpc-addr="+busyAddr), nil,
			[]string{"listen gRPC " + busyAddr, "address already in use"}},
		{"HTTP port in use", []string{"serve", "--target=gateway", "--data-dir=" + filepath.Join(dir, "gw"),
			"--http-addr=" + busyAddr, "--etcd-endpoints=" + deadEtcd}, nil,
			[]string{"listen HTTP " + busyAddr, "address already in use"}},
		{"key ring not valid", identity(badJSON), nil, []string{"key ring", "not valid JSON"}},
		{"key ring is a directory", identity(ringDir), nil, []string{"key ring", "not a regular file"}},
		{"key ring missing", identity(filepath.Join(dir, "empty")), nil, []string{"no key ring", "uias keys new --out"}},
		{"key ring from UIAS_KEYRING not valid", identity(ring), []string{"UIAS_KEYRING=nonsense"},
			[]string{"UIAS_KEYRING"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := startProc(t, cheapEnv(tc.env...), tc.args...)
			code, ok := p.exited(30 * time.Second)
			if !ok {
				t.Fatalf("still running:\n%s\n%s", p.stdout, p.stderr)
			}
			lines := plainLines(p.stderr.String())
			if code == 0 || len(lines) != 1 {
				t.Fatalf("exit %d, want non-zero and one line; stderr:\n%s", code, p.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(lines[0], w) {
					t.Errorf("the line lacks %q: %s", w, lines[0])
				}
			}
		})
	}

	// etcd or NATS unreachable: the component serves its probes, says so
	// in one log line each, and is not ready until it is registered.
	t.Run("etcd and NATS unreachable", func(t *testing.T) {
		p := startProc(t, cheapEnv("UIAS_ETCD_DIAL_TIMEOUT=1s"), identity(ring)...)
		ops := p.waitStdout("HTTP listening on ")
		if code := httpStatus(t, http.MethodGet, ops+"/readyz"); code != 503 {
			t.Fatalf("/readyz: %d, want 503", code)
		}
		eventually(t, "the log lines about etcd and NATS", func() bool {
			s := p.stderr.String()
			return strings.Contains(s, "etcd unreachable: not registered (not ready) yet; retrying") &&
				strings.Contains(s, "NATS unreachable: serving without it and retrying")
		})
		if _, ok := p.exited(0); ok {
			t.Fatalf("exited:\n%s", p.stderr)
		}
		g := startProc(t, cheapEnv(), "serve", "--target=gateway", "--data-dir="+filepath.Join(dir, "gw2"),
			"--http-addr=127.0.0.1:0", "--etcd-endpoints="+deadEtcd)
		edge := g.waitStdout("HTTP listening on ")
		if code := httpStatus(t, http.MethodGet, edge+"/readyz"); code != 503 {
			t.Fatalf("gateway /readyz: %d, want 503", code)
		}
		if code := httpStatus(t, http.MethodPost, edge+"/v1/authenticate"); code != 503 {
			t.Fatalf("gateway /v1/authenticate: %d, want 503", code)
		}
		if !strings.Contains(g.stderr.String(), "etcd does not answer") {
			t.Fatalf("the gateway does not say etcd is away:\n%s", g.stderr)
		}
	})
}
