package reasons

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/apierr"
)

// check returns a failure line for every use of an unregistered reason or of
// a code that contradicts the reason's registered code.
func check(uses []use, probs []problem) []string {
	var out []string
	for _, p := range probs {
		out = append(out, p.pos+": "+p.msg)
	}
	for _, u := range uses {
		r, ok := apierr.Lookup(u.reason)
		switch {
		case !ok:
			out = append(out, u.pos+": reason "+u.reason+" is not registered (apierr.Register in the package that uses it); the funnel would answer it as INTERNAL")
		case u.code != "" && codeNames[u.code] != r.Code:
			out = append(out, u.pos+": reason "+u.reason+" is given code "+u.code+" but is registered with "+r.Code.String())
		}
	}
	return out
}

// Every reason that any non-test source of any module in go.work hands to an
// apierr constructor is registered (with the code the call states). Reasons
// must be constants (or parameters given constants) so this can be checked.
func TestEverySourceReasonIsRegistered(t *testing.T) {
	root := repoRoot(t)
	mods := repoModules(t, root)
	w := newWalker(mods)
	uses, probs := w.walk(packagePaths(t, mods))
	for _, f := range check(uses, probs) {
		t.Error(strings.TrimPrefix(f, root+string(filepath.Separator)))
	}
	// The walk found the constructors it must find (it is not vacuous).
	found := map[string]bool{}
	for _, u := range uses {
		found[u.reason] = true
	}
	for _, want := range []string{"WEAK_PASSWORD", "BAD_REQUEST", "PARENT_DISABLED", "ORG_DISABLED",
		"STORAGE_UNAVAILABLE", "INVALID_JSON", "UNKNOWN_METHOD", "VERIFICATION_FAILED", "UNAVAILABLE"} {
		if !found[want] {
			t.Errorf("the walk did not see reason %s (found %d uses)", want, len(uses))
		}
	}
}

// The walker reports an unregistered reason, a contradicting code, a reason
// it cannot read and a reason forwarded through a helper.
func TestWalkerCatchesUnmappedReasons(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("go.mod", "module example.test/bad\n\ngo 1.26.0\n")
	write("bad.go", `package bad

import (
	"fmt"

	ae "github.com/uias/uias/pkg/apierr"
)

const reasonConst = "CONST_NOT_REGISTERED"

var errSentinel = ae.New(ae.NotFound, "SENTINEL_NOT_REGISTERED", "x")

func f(name string) error {
	_ = ae.Wrap(nil, ae.InvalidArgument, reasonConst, "x")
	_ = ae.New(ae.NotFound, "WEAK_PASSWORD", "wrong code")
	_ = &ae.Error{Code: ae.NotFound, Reason: "LITERAL_NOT_REGISTERED"}
	_ = ae.New(ae.NotFound, fmt.Sprint(name), "dynamic")
	_ = helper("FORWARDED_NOT_REGISTERED")
	_ = helper("BAD_REQUEST")
	return errSentinel
}

func helper(reason string) error { return ae.New(ae.InvalidArgument, reason, "x") }
`)
	w := newWalker(map[string]string{"example.test/bad": dir})
	uses, probs := w.walk([]string{"example.test/bad"})
	failures := strings.Join(check(uses, probs), "\n")
	for _, want := range []string{
		"CONST_NOT_REGISTERED is not registered",
		"SENTINEL_NOT_REGISTERED is not registered",
		"WEAK_PASSWORD is given code NotFound but is registered with INVALID_ARGUMENT",
		"LITERAL_NOT_REGISTERED is not registered",
		"reason fmt.Sprint(...) is not a constant",
		"FORWARDED_NOT_REGISTERED is not registered",
	} {
		if !strings.Contains(failures, want) {
			t.Errorf("walker did not report %q; it reported:\n%s", want, failures)
		}
	}
	if strings.Contains(failures, "BAD_REQUEST") {
		t.Errorf("a registered reason was reported:\n%s", failures)
	}
}
