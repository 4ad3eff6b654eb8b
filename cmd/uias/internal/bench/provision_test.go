package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The provisioning phase alone, briefly: both rows reach the report with
// a floor. Figures are not checked.
func TestProvisionPhase(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a UIAS")
	}
	out := filepath.Join(t.TempDir(), "bench.md")
	var stdout, stderr bytes.Buffer
	code := Main(context.Background(), []string{"--only", "provision", "--duration", "300ms", "--warmup", "0s", "--slices", "1",
		"--argon2-memory", "8192", "--argon2-time", "1", "--out", out}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Provisioning to a signed webhook", "Provisioning to a SCIM 2.0 server", "the same requests sent directly"} {
		if !strings.Contains(string(md), want) {
			t.Fatalf("report lacks %q:\n%s\n%s", want, md, stderr.String())
		}
	}
	if strings.Contains(stdout.String(), "ERROR") {
		t.Fatalf("flagged an error:\n%s", stdout.String())
	}
}
