package ctl

import (
	"context"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/apierr"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// fakeTOTPAdmin adds GetUser with an authenticator app and ResetUserTotp.
type fakeTOTPAdmin struct {
	*fakeAdmin

	mu      sync.Mutex
	enabled bool
	resets  []string
}

func (f *fakeTOTPAdmin) GetUser(ctx context.Context, r *identityv1.GetUserRequest) (*identityv1.User, error) {
	if err := f.authorize(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	u := &identityv1.User{Id: r.GetId(), LoginName: "mia", TotpEnrolled: f.enabled}
	if f.enabled {
		u.TotpEnrolledAt = timestamppb.New(time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
	}
	return u, nil
}

func (f *fakeTOTPAdmin) ResetUserTotp(ctx context.Context, r *identityv1.ResetUserTotpRequest) (*identityv1.User, error) {
	if err := f.authorize(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resets = append(f.resets, r.GetId())
	if !f.enabled {
		return nil, apierr.ToStatus(apierr.New(apierr.NotFound, "TOTP_NOT_ENROLLED", "no authenticator app is set up for this person"))
	}
	f.enabled = false
	return &identityv1.User{Id: r.GetId(), LoginName: "mia"}, nil
}

// TestTOTPCommands: user get says whether an authenticator app is set up
// and since when; user reset-totp sends the ID and reports the refusal of
// a user without one.
func TestTOTPCommands(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	admin := &fakeAdmin{}
	f := &fakeTOTPAdmin{fakeAdmin: admin, enabled: true}
	identityv1.RegisterAdminServiceServer(gs, f)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cfg := filepath.Join(t.TempDir(), "uias")
	h := &harness{t: t, addr: lis.Addr().String(), srv: admin, cfg: cfg,
		env: map[string]string{"UIAS_ADDR": lis.Addr().String(), "UIAS_CONFIG_DIR": cfg}}
	h.login()

	if out := h.mustRun("user", "get", "u1"); !strings.Contains(out, "Authenticator app") || !strings.Contains(out, "yes (since 2026-12-01T08:00:00Z)") {
		t.Fatalf("user get:\n%s", out)
	}
	var got struct {
		TOTPEnrolled bool   `json:"totp_enrolled"`
		Since        string `json:"totp_enrolled_at"`
	}
	// protojson's spacing varies from run to run: read it as JSON.
	if out := h.mustRun("user", "get", "u1", "-o", "json"); json.Unmarshal([]byte(out), &got) != nil || !got.TOTPEnrolled || got.Since == "" {
		t.Fatalf("user get -o json:\n%s", out)
	}
	if out := h.mustRun("user", "reset-totp", "u1"); !strings.Contains(out, "Authenticator app") || !strings.Contains(out, "no (reset:") {
		t.Fatalf("user reset-totp says nothing of the reset:\n%s", out)
	}
	if out := h.mustRun("user", "get", "u1"); !strings.Contains(out, "Authenticator app") || !strings.Contains(out, "no") {
		t.Fatalf("user get after the reset:\n%s", out)
	}
	code, _, stderr := h.run("user", "reset-totp", "u1")
	if code == 0 || !strings.Contains(stderr, "no authenticator app") {
		t.Fatalf("reset-totp without an app: %d %s", code, stderr)
	}
	if len(f.resets) != 2 || f.resets[0] != "u1" {
		t.Fatalf("resets %v", f.resets)
	}
	if code, _, _ := h.run("user", "reset-totp"); code == 0 {
		t.Fatal("reset-totp without an ID succeeded")
	}
}
