package ctl

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/grpcx"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	identitycomponent "github.com/uias/uias/services/identity/component"
)

// App_Secret validity periods through a whole monolith: the server
// default, ctl's flags and output, and what an application with an
// expired secret gets over gRPC and REST.
func TestAppSecretLifetimeMonolith(t *testing.T) {
	const pw = "Secret-Life-Pass-1"
	a, h := startMonolith(t, pw, func(cfg *config.Config) {
		identitycomponent.Settings(cfg).AppSecretLifetime = 90 * 24 * time.Hour
	})

	var created struct {
		App struct {
			ID               string `json:"id"`
			SecretExpireTime string `json:"secret_expire_time"`
		} `json:"app"`
		AppSecret string `json:"app_secret"`
	}
	out := h.mustRun("-o", "json", "app", "create", "--type", "OA", "--code", "default", "--name", "Default")
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	exp, err := time.Parse(time.RFC3339, created.App.SecretExpireTime)
	if err != nil || time.Until(exp) < 89*24*time.Hour || time.Until(exp) > 90*24*time.Hour {
		t.Fatalf("expiry with the server default: %q %v", created.App.SecretExpireTime, err)
	}
	out = h.mustRun("app", "get", created.App.ID)
	if !strings.Contains(out, "server default") || !strings.Contains(out, exp.UTC().Format(time.RFC3339)) {
		t.Fatalf("app get:\n%s", out)
	}

	// An application whose secret lives a second.
	out = h.mustRun("-o", "json", "app", "create", "--type", "OA", "--code", "short", "--name", "Short", "--secret-lifetime", "1s")
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	shortID, shortSecret := created.App.ID, created.AppSecret
	out = h.mustRun("app", "list", "--secret-expiring", "30d")
	if !strings.Contains(out, shortID) || strings.Contains(out, "default") || !strings.Contains(out, "SECRET_EXPIRES") {
		t.Fatalf("app list --secret-expiring 30d:\n%s", out)
	}
	time.Sleep(1100 * time.Millisecond)
	out = h.mustRun("app", "list", "--secret-expiring", "0")
	if !strings.Contains(out, shortID) || !strings.Contains(out, "(expired)") {
		t.Fatalf("app list --secret-expiring 0:\n%s", out)
	}

	// gRPC: UNAUTHENTICATED with the reason, after the secret was verified.
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	authn := identityv1.NewAuthServiceClient(conn)
	call := func(secret string) error {
		ctx := metadata.AppendToOutgoingContext(context.Background(), grpcx.MetadataAppID, shortID, grpcx.MetadataAppSecret, secret)
		_, err := authn.Authenticate(ctx, &identityv1.AuthenticateRequest{AppUserId: "nobody", Password: "x"})
		return err
	}
	err = call(shortSecret)
	st := status.Convert(err)
	if st.Code() != codes.Unauthenticated || apierr.Info(st).GetReason() != "APP_SECRET_EXPIRED" ||
		!strings.Contains(st.Message(), "uias ctl app rotate-secret "+shortID) {
		t.Fatalf("gRPC with the expired secret: %v", err)
	}
	if r := apierr.Info(status.Convert(call("wrong-secret-0123456789"))).GetReason(); r != "BAD_APP_CREDENTIALS" {
		t.Fatalf("gRPC with a wrong secret: %s", r)
	}

	// REST: 401 from the ErrorInfo, with the application's challenge.
	req, _ := http.NewRequest(http.MethodPost, "http://"+a.HTTPAddr()+"/v1/authenticate",
		strings.NewReader(`{"app_user_id":"nobody","password":"x"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Uias-App-Id", shortID)
	req.Header.Set("X-Uias-App-Secret", shortSecret)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), "APP_SECRET_EXPIRED") ||
		!strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "UIAS-App") {
		t.Fatalf("REST: %d %q %s", res.StatusCode, res.Header.Get("WWW-Authenticate"), body)
	}

	// Rotating gives a fresh secret with a fresh expiry; lengthening the
	// lifetime recomputes it; bad lifetimes name the field.
	out = h.mustRun("app", "update", shortID, "--secret-lifetime", "30d")
	if !strings.Contains(out, "30d") || strings.Contains(out, "(expired)") {
		t.Fatalf("app update --secret-lifetime 30d:\n%s", out)
	}
	// The secret is valid again: the call gets past the caller check.
	if err := call(shortSecret); err != nil {
		if r := apierr.Info(status.Convert(err)).GetReason(); r == "APP_SECRET_EXPIRED" || r == "BAD_APP_CREDENTIALS" {
			t.Fatalf("after the lifetime was lengthened: %v", err)
		}
	}
	// Beyond the server's maximum (3650d): ctl says so before calling.
	code, _, errs := h.run("app", "update", shortID, "--secret-lifetime", "4000d")
	if code != 2 || !strings.Contains(errs, "up to 3650d") {
		t.Fatalf("absurd lifetime: exit %d, %s", code, errs)
	}
	code, _, errs = h.run("app", "update", shortID, "--secret-lifetime", "-1d")
	if code != 2 {
		t.Fatalf("negative lifetime: exit %d, %s", code, errs)
	}
}
