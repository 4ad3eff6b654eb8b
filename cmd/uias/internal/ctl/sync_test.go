package ctl

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	uiasapp "github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/crypto"
	identitycomponent "github.com/uias/uias/services/identity/component"
	synccomponent "github.com/uias/uias/services/sync/component"
	"github.com/uias/uias/services/sync/synctest"
)

// "uias ctl sync" against a level-1 centre (a monolithic process on its
// own NATS in JetStream domain l1): status lists the local link, digest
// the replica tables, skipped an empty listing.
func TestSyncCommands(t *testing.T) {
	n := synctest.StartLevel1(t, "l1")
	cfg := uiasapp.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.DB.DSN, identitycomponent.Settings(&cfg).KeyFile = "", ""
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.AdvertiseAddr = "127.0.0.1:0", "127.0.0.1:0", ""
	identitycomponent.Settings(&cfg).Argon2 = crypto.Argon2Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	cfg.NATS.URL = n.URL()
	sc := synccomponent.Settings(&cfg)
	sc.Centre, sc.Peers = "l1", []synccomponent.Peer{{Name: "l2a", Subtrees: []string{"bureau-a"}}}
	cfg.Complete()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const pw = "Sync-Ctl-Pass-1"
	a, err := uiasapp.Start(ctx, cfg, uiasapp.Options{BootstrapPassword: pw})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	h := &harness{t: t, addr: a.GRPCAddr(), cfg: filepath.Join(t.TempDir(), "uias"),
		env: map[string]string{"UIAS_ADDR": a.GRPCAddr()}}
	h.env["UIAS_CONFIG_DIR"] = h.cfg
	h.stdin = pw + "\n"
	h.mustRun("login", "--user", "admin", "--password-stdin")
	h.stdin = ""

	// The bootstrap wrote the root org and the administrator: the local
	// link applies them.
	deadline := time.Now().Add(45 * time.Second)
	var out string
	for {
		out = h.mustRun("sync", "status")
		if strings.Contains(out, "centre l1") && strings.Contains(out, "SYNC_L2A") && !strings.Contains(out, "CHANGES  0 ") &&
			strings.Contains(out, "waiting") {
			if code, d, _ := h.run("sync", "digest", "--home", "l1", "--kind", "identity.org"); code == 0 && strings.Contains(d, "objects  1 ") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("status:\n%s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	d := h.mustRun("sync", "digest", "--home", "l1", "--kind", "identity.org")
	if !strings.Contains(d, "applied  1 ") {
		t.Fatalf("digest:\n%s", d)
	}
	if out := h.mustRun("sync", "skipped"); !strings.Contains(out, "REASON") || strings.Count(out, "\n") != 1 {
		t.Fatalf("skipped:\n%s", out)
	}
	if code, _, stderr := h.run("sync", "digest", "--kind"); code == 0 || !strings.Contains(stderr, "kind") {
		t.Fatalf("a flag without its value: %d %s", code, stderr)
	}
	if code, _, stderr := h.run("sync", "resolve", "no-such-change", "--object", "user:u1"); code == 0 ||
		!strings.Contains(stderr, "open conflict of change no-such-change not found") {
		t.Fatalf("resolving a change with no open conflict: %d %s", code, stderr)
	}
	if code, _, stderr := h.run("sync", "resolve"); code == 0 || !strings.Contains(stderr, "EVENT_ID") {
		t.Fatalf("resolve without the change: %d %s", code, stderr)
	}
}
