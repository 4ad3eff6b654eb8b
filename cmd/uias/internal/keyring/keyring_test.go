package keyring

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/crypto"
)

func TestNew(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main([]string{"new"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if _, err := crypto.ParseRing(out.Bytes()); err != nil {
		t.Fatalf("printed ring does not parse: %v", err)
	}
	path := filepath.Join(t.TempDir(), "sub", "keyring.json")
	out.Reset()
	if code := Main([]string{"new", "--out", path}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("ring file: %v %v", fi, err)
	}
	if _, err := crypto.LoadRing(crypto.RingSource{File: path}); err != nil {
		t.Fatalf("written ring does not load: %v", err)
	}
	before, _ := os.ReadFile(path)
	errb.Reset()
	if code := Main([]string{"new", "--out", path}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "never replaced") {
		t.Fatalf("existing file: exit %d: %s", code, errb.String())
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("the existing ring was changed")
	}
}
