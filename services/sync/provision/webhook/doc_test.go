package webhook_test

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/services/sync/provision/webhook"
)

// The verification snippet of docs/integrators.md, compiled on its own and
// run against signatures made by the transport: valid, tampered, replayed.
func TestDocumentedVerificationSnippet(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "docs", "integrators.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- webhook-verify:begin -->")
	snippet, _, ok2 := strings.Cut(rest, "<!-- webhook-verify:end -->")
	if !ok || !ok2 {
		t.Fatal("docs/integrators.md has no webhook-verify snippet")
	}
	snippet = strings.TrimSpace(snippet)
	snippet = strings.TrimSuffix(strings.TrimPrefix(snippet, "```go"), "```")
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("verify.go", snippet)
	write("go.mod", "module verifysnippet\n\ngo 1.22\n")
	write("main.go", `package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

func main() {
	body, _ := io.ReadAll(os.Stdin)
	h := http.Header{}
	h.Set("X-Uias-Timestamp", os.Getenv("TS"))
	h.Set("X-Uias-Signature", os.Getenv("SIG"))
	if err := VerifyUIASWebhook([]byte(os.Getenv("KEY")), h, body, time.Now()); err != nil {
		fmt.Println("refused:", err)
		return
	}
	fmt.Println("ok")
}
`)
	bin := filepath.Join(dir, "verify")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the documented snippet does not compile: %v\n%s", err, out)
	}
	key := []byte("whsec-0123456789abcdef")
	body := []byte(`{"delivery":"s1:1","op":"upsert"}`)
	// run gives the snippet's answer; pkg/crypto's VerifyWebhook (what
	// UIAS's own tests receive with) must give the same
	run := func(ts int64, sig string, body []byte) string {
		t.Helper()
		cmd := exec.Command(bin)
		cmd.Env = []string{"KEY=" + string(key), "TS=" + strconv.FormatInt(ts, 10), "SIG=" + sig}
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		got := strings.TrimSpace(string(out))
		h := http.Header{}
		h.Set(crypto.WebhookTimestampHeader, strconv.FormatInt(ts, 10))
		h.Set(crypto.WebhookSignatureHeader, sig)
		want := "ok"
		if err := crypto.VerifyWebhook(key, h, body, time.Now(), 0); err != nil {
			want = "refused: " + err.Error()
		}
		if got != want {
			t.Errorf("the snippet says %q, pkg/crypto %q", got, want)
		}
		return got
	}
	now := time.Now().Unix()
	sign := crypto.WebhookSignature
	if got := run(now, sign(key, now, body), body); got != "ok" {
		t.Errorf("a valid delivery: %s", got)
	}
	if got := run(now, sign(key, now, body), []byte(`{"delivery":"s1:1","op":"delete"}`)); got != "refused: bad signature" {
		t.Errorf("a tampered body: %s", got)
	}
	old := now - 600
	if got := run(old, sign(key, old, body), body); got != "refused: timestamp outside the replay window" {
		t.Errorf("a replayed delivery: %s", got)
	}
	if got := run(now, sign([]byte("another key 0123456"), now, body), body); got != "refused: bad signature" {
		t.Errorf("another key: %s", got)
	}
	if got := run(now, "v1=not-hex", body); got != "refused: malformed signature" {
		t.Errorf("a malformed signature: %s", got)
	}
	// and the headers the transport sets (crypto.SignWebhook) pass
	h := http.Header{}
	crypto.SignWebhook(h, key, time.Now(), body)
	ts, _ := strconv.ParseInt(h.Get(webhook.HeaderTimestamp), 10, 64)
	if got := run(ts, h.Get(webhook.HeaderSignature), body); got != "ok" {
		t.Errorf("the transport's signature: %s", got)
	}
}
