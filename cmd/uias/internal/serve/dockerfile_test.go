package serve

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDockerfileCommandParses: the default command of the image
// (deploy/Dockerfile CMD, run by ENTRYPOINT uias) is a `uias serve` command
// line the real flag parser accepts and whose configuration validates, so
// `docker run uias:<version>` starts (no container builder is needed for
// this check; cmd/uias TestDockerfile checks the rest of the file).
func TestDockerfileCommandParses(t *testing.T) {
	f, err := os.Open(filepath.Join(repoRoot(t), "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cmd []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "CMD "); ok {
			cmd = nil
			if err := json.Unmarshal([]byte(rest), &cmd); err != nil {
				t.Fatalf("CMD %s: want the exec (JSON) form: %v", rest, err)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cmd) == 0 || cmd[0] != "serve" {
		t.Fatalf("CMD %q: want a `uias serve` command line", cmd)
	}
	none := func(string) (string, bool) { return "", false }
	var stderr bytes.Buffer
	cfg, err := load(cmd[1:], none, &stderr)
	if err != nil {
		t.Fatalf("uias %s: %v\n%s", strings.Join(cmd, " "), err, stderr.String())
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("uias %s: invalid configuration:\n%v", strings.Join(cmd, " "), err)
	}
	if cfg.DataDir != "/var/lib/uias" {
		t.Errorf("data dir %q, want /var/lib/uias (the directory the image makes, owned by its user)", cfg.DataDir)
	}
}
