// Package layering holds a test of the module's import rules: the platform
// (pkg/) imports no component, edge or binary code, so every component can
// build on it and none is dragged into another.
package layering

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// forbidden are the import paths (and everything below them) no pkg/
// package, nor its tests, may import, directly or through anything else.
var forbidden = []string{
	"github.com/uias/uias/services",
	"github.com/uias/uias/gateway",
	"github.com/uias/uias/cmd",
	"github.com/uias/uias/tests",
}

func isForbidden(path string) bool {
	for _, p := range forbidden {
		if path == p || strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// violations reads `go list -deps -test` output lines "<package>: <import>
// <import> ..." and returns "package imports forbidden" for each edge
// into forbidden code.
func violations(lines string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(lines), "\n") {
		pkg, imports, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		for _, imp := range strings.Fields(imports) {
			if isForbidden(imp) {
				out = append(out, pkg+" imports "+imp)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// touchSources reads every Go file and go.mod of the module, so that the
// test cache, which cannot see what `go list` reads, reruns this test when
// any of them changes.
func touchSources(t *testing.T) {
	t.Helper()
	err := filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != "../.." {
			return filepath.SkipDir
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".go") || d.Name() == "go.mod") {
			_, err = os.ReadFile(path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestViolationsFindsServiceImports(t *testing.T) {
	got := violations(`github.com/uias/uias/pkg/a: fmt github.com/uias/uias/pkg/b
github.com/uias/uias/pkg/b: github.com/uias/uias/services/identity github.com/uias/uias/gateway
github.com/uias/uias/pkg/c: github.com/uias/uias/servicesx github.com/uias/uias/cmd/uias/app github.com/uias/uias/gatewayish`)
	want := []string{
		"github.com/uias/uias/pkg/b imports github.com/uias/uias/gateway",
		"github.com/uias/uias/pkg/b imports github.com/uias/uias/services/identity",
		"github.com/uias/uias/pkg/c imports github.com/uias/uias/cmd/uias/app",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("violations =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Every package of the module, with its tests and everything they import,
// imports no component (services/...), gateway, binary or end-to-end test
// code.
func TestPkgImportsNoService(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	touchSources(t)
	cmd := exec.Command("go", "list", "-deps", "-test", "-f", "{{.ImportPath}}: {{join .Imports \" \"}}",
		"github.com/uias/uias/pkg/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		// An import of a package outside this module's requirements (a
		// service, under GOWORK=off) fails here too.
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(string(out), "github.com/uias/uias/pkg/store:") {
		t.Fatalf("go list did not list the module's packages:\n%.2000s", out)
	}
	if v := violations(string(out)); len(v) > 0 {
		t.Fatalf("pkg/ must import no service, gateway or binary code:\n%s", strings.Join(v, "\n"))
	}
}
