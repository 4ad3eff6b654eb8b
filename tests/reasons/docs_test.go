package reasons

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/apierr"
)

const (
	docFile   = "docs/integrators.md"
	docBegin  = "<!-- BEGIN error reasons: generated from the apierr reason table; UIAS_UPDATE_DOCS=1 go test ./reasons (in tests/) rewrites it -->"
	docEnd    = "<!-- END error reasons -->"
	updateEnv = "UIAS_UPDATE_DOCS"
)

// reasonTable renders the reason table as Markdown.
func reasonTable(rs []apierr.Reason) string {
	var b strings.Builder
	b.WriteString("| ErrorInfo reason | gRPC code | HTTP | `legacy_code` | When |\n")
	b.WriteString("|---|---|---|---|---|\n")
	for _, r := range rs {
		legacy := "–"
		if r.Legacy != 0 {
			legacy = fmt.Sprintf("`%d`", r.Legacy)
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %d | %s | %s |\n", r.Name, r.Code, r.HTTPStatus(), legacy,
			strings.ReplaceAll(r.Doc, "|", `\|`))
	}
	return b.String()
}

// docs/integrators.md lists exactly the registered reasons, as registered.
func TestIntegratorsGuideListsEveryReason(t *testing.T) {
	path := filepath.Join(repoRoot(t), docFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, docBegin), strings.Index(doc, docEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the generated block (%q ... %q)", docFile, docBegin, docEnd)
	}
	want := "\n" + reasonTable(apierr.Reasons())
	got := doc[i+len(docBegin) : j]
	if got == want {
		return
	}
	if os.Getenv(updateEnv) != "" {
		if err := os.WriteFile(path, []byte(doc[:i+len(docBegin)]+want+doc[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the reason table in %s", docFile)
		return
	}
	t.Errorf("the reason table in %s is out of step with the registry; run %s=1 go test ./reasons in tests/.\nwant:\n%s\ngot:\n%s",
		docFile, updateEnv, want, got)
}
