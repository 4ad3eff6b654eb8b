package ctl

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// docFiles are the documents whose ctl commands TestDocsNameRegisteredCommands
// checks, relative to this package.
var docFiles = []string{"README.md", "docs/operators.md", "docs/integrators.md"}

// codeSpans returns the code of a Markdown text: fenced blocks and inline
// `spans`.
func codeSpans(text string) []string {
	var out []string
	fenced := false
	var block strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			if fenced {
				out = append(out, block.String())
				block.Reset()
			}
			fenced = !fenced
			continue
		}
		if fenced {
			block.WriteString(line + "\n")
			continue
		}
		out = append(out, regexp.MustCompile("`[^`]+`").FindAllString(line, -1)...)
	}
	return out
}

// ctlFlagWithValue are the global flags that take a value.
var ctlFlagWithValue = map[string]bool{"--addr": true, "--output": true, "-o": true, "--timeout": true, "--tls-ca": true, "--token": true}

// TestDocsNameRegisteredCommands: every `uias ctl NOUN VERB` shown in the
// README and the guides names a noun and verb ctl has (the guides once
// said "uias ctl users create").
func TestDocsNameRegisteredCommands(t *testing.T) {
	cmds := commands()
	root := filepath.Join("..", "..", "..", "..")
	checked := 0
	for _, f := range docFiles {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, code := range codeSpans(string(b)) {
			for _, m := range regexp.MustCompile(`uias ctl\b([^\n|;)`+"`"+`]*)`).FindAllStringSubmatch(code, -1) {
				words := strings.Fields(strings.ReplaceAll(m[1], `\`, " "))
				for len(words) > 0 && strings.HasPrefix(words[0], "-") {
					if ctlFlagWithValue[words[0]] && !strings.Contains(words[0], "=") && len(words) > 1 {
						words = words[1:]
					}
					words = words[1:]
				}
				if len(words) == 0 || !regexp.MustCompile(`^[a-z][a-z-]*$`).MatchString(words[0]) || words[0] == "help" {
					continue // "uias ctl ...", "uias ctl <noun>", "uias ctl NOUN VERB", "uias ctl help"
				}
				noun := words[0]
				verbs, ok := cmds[noun]
				if !ok {
					t.Errorf("%s: %q: ctl has no command %q", f, strings.TrimSpace(m[0]), noun)
					continue
				}
				checked++
				if _, single := verbs[""]; single || len(words) < 2 || !regexp.MustCompile(`^[a-z][a-z-]*$`).MatchString(words[1]) {
					continue
				}
				if _, ok := verbs[words[1]]; !ok {
					t.Errorf("%s: %q: ctl has no command %q %q", f, strings.TrimSpace(m[0]), noun, words[1])
				}
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d ctl commands found in the documents; is the search broken?", checked)
	}
}

// TestGuideSectionNumbers: the numbered sections ("## 8. ...") of each
// document count 1, 2, 3, ... with none twice (integrators.md had two 8s).
func TestGuideSectionNumbers(t *testing.T) {
	for _, f := range docFiles {
		b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", f))
		if err != nil {
			t.Fatal(err)
		}
		want := 1
		for _, m := range regexp.MustCompile(`(?m)^## (\d+)\. (.*)$`).FindAllStringSubmatch(string(b), -1) {
			if m[1] != strconv.Itoa(want) {
				t.Errorf("%s: section %q is numbered %s, want %d", f, m[2], m[1], want)
			}
			want++
		}
	}
}
