package ctl

import (
	"context"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDocsFlagsExist: every flag a `uias ctl NOUN VERB ... --flag` of the
// README and the guides shows is a flag of that command (or a global one):
// an operator copying a documented command line gets no "flag provided but
// not defined".
func TestDocsFlagsExist(t *testing.T) {
	cmds := commands()
	root := filepath.Join("..", "..", "..", "..")
	flagRe := regexp.MustCompile(`(?:^|\s)(--[a-z][a-z0-9-]*)`)
	word := regexp.MustCompile(`^[a-z][a-z-]*$`)
	checked := 0
	for _, f := range docFiles {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, code := range codeSpans(string(b)) {
			for _, m := range regexp.MustCompile(`uias ctl\b([^\n|;)#<>`+"`"+`]*)`).FindAllStringSubmatch(code, -1) {
				words := strings.Fields(strings.ReplaceAll(m[1], `\`, " "))
				for len(words) > 0 && strings.HasPrefix(words[0], "-") {
					if ctlFlagWithValue[words[0]] && !strings.Contains(words[0], "=") && len(words) > 1 {
						words = words[1:]
					}
					words = words[1:]
				}
				if len(words) < 2 || !word.MatchString(words[0]) {
					continue
				}
				verbs, ok := cmds[words[0]]
				if !ok {
					continue // TestDocsNameRegisteredCommands reports it
				}
				verb := words[1]
				c, ok := verbs[verb]
				if !ok {
					if c, ok = verbs[""]; !ok {
						continue
					}
					verb = ""
				}
				a := &app{ctx: context.Background(), stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
					env: func(string) string { return "" }}
				fs := flag.NewFlagSet("doc", flag.ContinueOnError)
				a.g.addGlobals(fs)
				c.setup(a, fs)
				for _, fm := range flagRe.FindAllStringSubmatch(" "+strings.Join(words, " "), -1) {
					checked++
					if fm[1] == "--help" {
						continue
					}
					if fs.Lookup(strings.TrimPrefix(fm[1], "--")) == nil {
						t.Errorf("%s: %q: %s %s has no flag %s", f, strings.TrimSpace(m[0]), words[0], verb, fm[1])
					}
				}
			}
		}
	}
	if checked < 100 {
		t.Errorf("only %d documented ctl flags found; is the search broken?", checked)
	}
}

// TestUsageFlagsExist: every --flag a command's own usage line names is a
// flag of that command or a global one (its help text also names other
// commands' flags: "audit verify --archive").
func TestUsageFlagsExist(t *testing.T) {
	flagRe := regexp.MustCompile(`(?:^|[\s\[(|])(--[a-z][a-z0-9-]*)`)
	n := 0
	for noun, verbs := range commands() {
		for verb, c := range verbs {
			a := &app{ctx: context.Background(), stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
				env: func(string) string { return "" }}
			fs := flag.NewFlagSet("usage", flag.ContinueOnError)
			a.g.addGlobals(fs)
			c.setup(a, fs)
			for _, m := range flagRe.FindAllStringSubmatch(c.usage, -1) {
				n++
				if fs.Lookup(strings.TrimPrefix(m[1], "--")) == nil {
					t.Errorf("uias ctl %s %s: its usage names %s, which it does not have", noun, verb, m[1])
				}
			}
		}
	}
	if n < 100 {
		t.Errorf("only %d flags in the usage lines; is the search broken?", n)
	}
}
