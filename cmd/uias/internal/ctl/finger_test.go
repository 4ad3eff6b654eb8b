package ctl

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// fakeFingers records what the finger commands send.
type fakeFingers struct {
	identityv1.UnimplementedFingerServiceServer
	admin *fakeAdmin

	mu     sync.Mutex
	enroll *identityv1.EnrollFingerRequest
	del    *identityv1.DeleteFingerRequest
	bypass *identityv1.SetFingerprintBypassRequest
}

func (f *fakeFingers) EnrollFinger(ctx context.Context, r *identityv1.EnrollFingerRequest) (*identityv1.EnrolledFinger, error) {
	if err := f.admin.authorize(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.enroll = r
	f.mu.Unlock()
	return &identityv1.EnrolledFinger{UserId: r.GetUserId(), Position: r.GetPosition(), Quality: 80,
		Format: "ISO/IEC 19794-2:2005", Minutiae: 41, UpdateTime: timestamppb.Now()}, nil
}

func (f *fakeFingers) ListFingers(ctx context.Context, r *identityv1.ListFingersRequest) (*identityv1.ListFingersResponse, error) {
	if err := f.admin.authorize(ctx); err != nil {
		return nil, err
	}
	return &identityv1.ListFingersResponse{Fingers: []*identityv1.EnrolledFinger{{UserId: r.GetUserId(), Position: 2,
		Quality: 80, Format: "ANSI INCITS 378-2004", Minutiae: 41, UpdateTime: timestamppb.Now()}}}, nil
}

func (f *fakeFingers) DeleteFinger(ctx context.Context, r *identityv1.DeleteFingerRequest) (*identityv1.DeleteFingerResponse, error) {
	if err := f.admin.authorize(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.del = r
	f.mu.Unlock()
	return &identityv1.DeleteFingerResponse{}, nil
}

func (f *fakeFingers) SetFingerprintBypass(ctx context.Context, r *identityv1.SetFingerprintBypassRequest) (*identityv1.FingerprintBypass, error) {
	if err := f.admin.authorize(ctx); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.bypass = r
	f.mu.Unlock()
	return &identityv1.FingerprintBypass{AppId: r.GetAppId(), Enabled: r.GetEnabled(), Reason: r.GetReason(), SetBy: "u-admin",
		UpdateTime: timestamppb.Now()}, nil
}

func TestFingerCommands(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	admin := &fakeAdmin{}
	fingers := &fakeFingers{admin: admin}
	identityv1.RegisterAdminServiceServer(gs, admin)
	identityv1.RegisterFingerServiceServer(gs, fingers)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cfg := filepath.Join(t.TempDir(), "uias")
	h := &harness{t: t, addr: lis.Addr().String(), srv: admin, cfg: cfg,
		env: map[string]string{"UIAS_ADDR": lis.Addr().String(), "UIAS_CONFIG_DIR": cfg}}
	h.login()

	rec := filepath.Join(t.TempDir(), "finger.fmr")
	if err := os.WriteFile(rec, []byte("FMR\x00 20\x00record"), 0o600); err != nil {
		t.Fatal(err)
	}
	out := h.mustRun("user", "finger", "enroll", "u1", "--position", "2", "--record", rec)
	if fingers.enroll.GetUserId() != "u1" || fingers.enroll.GetPosition() != 2 || string(fingers.enroll.GetRecord()) != "FMR\x00 20\x00record" {
		t.Fatalf("enroll request %v", fingers.enroll)
	}
	if !strings.Contains(out, "ISO/IEC 19794-2:2005") || strings.Contains(out, "record") {
		t.Fatalf("enroll output %q", out)
	}
	h.stdin = "FMR\x00 20\x00stdin"
	h.mustRun("user", "finger", "enroll", "u1", "--position", "3", "--record", "-")
	h.stdin = ""
	if string(fingers.enroll.GetRecord()) != "FMR\x00 20\x00stdin" {
		t.Fatalf("record from stdin: %q", fingers.enroll.GetRecord())
	}
	if out := h.mustRun("user", "finger", "list", "u1"); !strings.Contains(out, "ANSI INCITS 378-2004") {
		t.Fatalf("list output %q", out)
	}
	h.mustRun("user", "finger", "delete", "u1", "--position", "2")
	if fingers.del.GetPosition() != 2 {
		t.Fatalf("delete request %v", fingers.del)
	}
	out = h.mustRun("app", "finger-bypass", "a1", "--on", "--reason", "scanners down")
	if !fingers.bypass.GetEnabled() || fingers.bypass.GetReason() != "scanners down" || !strings.Contains(out, "ON") {
		t.Fatalf("bypass %v, output %q", fingers.bypass, out)
	}
	for _, args := range [][]string{
		{"user", "finger", "enroll", "u1", "--record", rec}, // no position
		{"user", "finger", "enroll", "u1", "--position", "11", "--record", rec},
		{"user", "finger", "enroll", "u1", "--position", "1"}, // no record
		{"user", "finger", "grab", "u1"},
		{"user", "finger", "list"},
		{"app", "finger-bypass", "a1", "--on"}, // no reason
		{"app", "finger-bypass", "a1", "--on", "--off", "--reason", "x"},
	} {
		if code, _, _ := h.run(args...); code == 0 {
			t.Errorf("ctl %v: exit 0, want a usage error", args)
		}
	}
}
