package console

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestTextsComplete: both languages have the same keys (no page falls
// back to English in Chinese), and every key the templates and the code
// ask for exists (review rr29 B9).
func TestTextsComplete(t *testing.T) {
	en, zh := texts["en"], texts["zh-CN"]
	for k := range en {
		if _, ok := zh[k]; !ok {
			t.Errorf("text %q has no Chinese", k)
		}
	}
	for k := range zh {
		if _, ok := en[k]; !ok {
			t.Errorf("text %q is Chinese only", k)
		}
	}
	used := map[string]string{}
	tmplKey := regexp.MustCompile(`\.T "([^"]+)"`)
	codeKey := regexp.MustCompile(`\.T\("([^"]+)"\)`)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join("templates", "console.html"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, re := range []*regexp.Regexp{tmplKey, codeKey} {
			for _, m := range re.FindAllStringSubmatch(string(b), -1) {
				used[m[1]] = f
			}
		}
	}
	if len(used) < 50 {
		t.Fatalf("found only %d text keys in use: the scan is broken", len(used))
	}
	for k, f := range used {
		if _, ok := en[k]; !ok {
			t.Errorf("%s asks for text %q, which is not defined", f, k)
		}
	}
	for c, k := range refusedTexts {
		if _, ok := en[k]; !ok {
			t.Errorf("refusals with code %s are led by the undefined text %q", c, k)
		}
		if zh[k] == "" {
			t.Errorf("refusals with code %s have no Chinese lead (%q)", c, k)
		}
	}
	if zh["refusedOther"] == "" {
		t.Errorf("the other refusals have no Chinese lead")
	}
	for page, k := range pageHeadings {
		if _, ok := en[k]; !ok {
			t.Errorf("page %s is titled by the undefined text %q", page, k)
		}
	}
	for _, tp := range pages.Templates() {
		if _, ok := pageHeadings[tp.Name()]; !ok && !slices.Contains([]string{"", "head", "foot", "orgnode", "message", "console.html"}, tp.Name()) {
			t.Errorf("page %s has no heading in its title (pageHeadings)", tp.Name())
		}
	}
	for k := range reasonTexts {
		if _, ok := en[reasonTexts[k]]; !ok {
			t.Errorf("reason %s is worded by the undefined text %q", k, reasonTexts[k])
		}
	}
}
