package ctl

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	uiasapp "github.com/uias/uias/cmd/uias/app"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/crypto"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// startMonolith starts a whole monolithic process on loopback ports and
// its own data directory (cheap password hashing; set further settings in
// tweak, nil: none), bootstrapped with the administrator password pw, and
// returns it with a ctl harness logged in as that administrator.
func startMonolith(t *testing.T, pw string, tweak func(cfg *config.Config)) (*uiasapp.App, *harness) {
	t.Helper()
	cfg := uiasapp.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.DB.DSN, identitycomponent.Settings(&cfg).KeyFile = "", ""
	cfg.GRPCAddr, cfg.HTTPAddr, cfg.AdvertiseAddr = "127.0.0.1:0", "127.0.0.1:0", ""
	identitycomponent.Settings(&cfg).Argon2 = crypto.Argon2Params{MemoryKiB: 8 * 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	if tweak != nil {
		tweak(&cfg)
	}
	cfg.Complete()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
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
	return a, h
}

// loginEventually logs h in as login with password pw, retrying for up to
// 30 s while the account is not yet an administrator (identity appoints
// the first start's auditor in authz as soon as authz answers).
func (h *harness) loginEventually(login, pw string) string {
	h.t.Helper()
	h.stdin = pw + "\n"
	defer func() { h.stdin = "" }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, errs := h.run("login", "--user", login, "--password-stdin")
		if code == 0 {
			return pw
		}
		if strings.Contains(errs, "set by another person") {
			// an administrator's password is their own: they choose it at
			// their first login (identity's PASSWORD_CHANGE_REQUIRED)
			own := pw + "-own"
			h.stdin = pw + "\n" + own + "\n"
			if code, _, errs := h.run("login", "--user", login, "--password-stdin", "--new-password-stdin"); code != 0 {
				h.t.Fatalf("%s choosing their own password: %s", login, errs)
			}
			return own
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s never logged in as an administrator: %s", login, errs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// createApp registers an application of type OA with code and name
// through ctl and returns its App_ID and App_Secret.
func (h *harness) createApp(code, name string) (string, string) {
	h.t.Helper()
	var created struct {
		App struct {
			ID string `json:"id"`
		} `json:"app"`
		AppSecret string `json:"app_secret"`
	}
	if err := json.Unmarshal([]byte(h.mustRun("-o", "json", "app", "create", "--type", "OA", "--code", code, "--name", name)), &created); err != nil {
		h.t.Fatal(err)
	}
	return created.App.ID, created.AppSecret
}
