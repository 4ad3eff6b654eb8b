package app_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestREADMELayoutNamesEveryModule: README.md's "Layout" names every
// module of go.work, in the table and in the sentence listing the modules
// (it listed identity only, after ticket, authz, audit and sync had come).
func TestREADMELayoutNamesEveryModule(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	work, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	use := regexp.MustCompile(`(?s)use \((.*?)\)`).FindSubmatch(work)
	if use == nil {
		t.Fatal("go.work has no use block")
	}
	sentence := regexp.MustCompile(`(?s)Each of (.*?) is its own Go module`).FindSubmatch(readme)
	if sentence == nil {
		t.Fatal(`README.md no longer says "Each of ... is its own Go module"`)
	}
	listed := strings.Join(strings.Fields(string(sentence[1])), " ")
	var mods int
	for _, l := range strings.Split(string(use[1]), "\n") {
		m := strings.TrimPrefix(strings.TrimSpace(l), "./")
		if m == "" {
			continue
		}
		mods++
		if !strings.Contains(listed, "`"+m+"`") {
			t.Errorf("README.md's list of modules lacks `%s` (go.work uses it): %q", m, listed)
		}
		row := m
		if m == "proto/gen" {
			row = "proto" // the proto row covers the definitions and proto/gen
		}
		if !strings.Contains(string(readme), "\n| `"+row+"` |") {
			t.Errorf("README.md's Layout table has no row for `%s`", row)
		}
	}
	if mods < 5 {
		t.Fatalf("read %d modules from go.work", mods)
	}
}
