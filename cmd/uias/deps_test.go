package main

import (
	"errors"
	"os/exec"
	"path"
	"strings"
	"testing"
)

// TestBinaryLeavesOutTestServers fails when the uias binary links code that
// only tests need: the embedded etcd server (the binary is an etcd client
// only; tests start a server with pkg/discovery/etcdtest) or one of the
// project's test helper packages (…test, e.g. storetest, etcdtest).
func TestBinaryLeavesOutTestServers(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		msg := ""
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			msg = string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %v\n%s", err, msg)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %d packages: %q", len(deps), deps)
	}
	var etcdServer, helpers []string
	for _, p := range deps {
		switch {
		case p == "go.etcd.io/etcd/server/v3" || strings.HasPrefix(p, "go.etcd.io/etcd/server/"):
			etcdServer = append(etcdServer, p)
		case strings.HasPrefix(p, "github.com/uias/uias/") && strings.HasSuffix(path.Base(p), "test"):
			helpers = append(helpers, p)
		}
	}
	if len(etcdServer) > 0 {
		t.Errorf("uias links the etcd server (%d packages, e.g. %s); only tests may import it, through pkg/discovery/etcdtest",
			len(etcdServer), etcdServer[0])
	}
	if len(helpers) > 0 {
		t.Errorf("uias links test helper packages %q; only _test.go files may import them", helpers)
	}
}
