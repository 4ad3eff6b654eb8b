package ctl

import (
	"strings"
	"testing"
)

// TestHelpListsEveryCommand: "uias ctl help" lists every noun and verb of
// the command table, so a new command cannot be left out of it.
func TestHelpListsEveryCommand(t *testing.T) {
	h := newHarness(t)
	code, out, errs := h.run("help")
	if code != 0 || errs != "" {
		t.Fatalf("help: exit %d, stderr %q", code, errs)
	}
	for noun, verbs := range commands() {
		for verb := range verbs {
			want := strings.TrimSpace("  " + noun + " " + verb)
			found := false
			for _, line := range strings.Split(out, "\n") {
				if line == "  "+want || strings.HasPrefix(line, "  "+want+" ") {
					found = true
					break
				}
			}
			if !found {
				t.Errorf("help does not list %q", want)
			}
		}
	}
	// What the reviewer looked for.
	for _, s := range []string{"authz check", "sync subscribe", "sessions list", "--client-cert", "audit export", "user finger"} {
		if !strings.Contains(out, s) {
			t.Errorf("help lacks %q", s)
		}
	}
	// No argument at all: the same text on standard error, exit 2.
	code, out2, errs2 := h.run()
	if code != exitUsage || out2 != "" || errs2 != out {
		t.Errorf("no arguments: exit %d, stdout %q, stderr differs from help: %v", code, out2, errs2 != out)
	}
	code, out3, _ := h.run("--help")
	if code != 0 || out3 != out {
		t.Errorf("--help: exit %d, differs from help: %v", code, out3 != out)
	}
}

// TestHelpNounOrder: nounOrder names only nouns that exist, and a noun it
// does not name is still listed.
func TestHelpNounOrder(t *testing.T) {
	cmds := commands()
	for _, n := range nounOrder {
		if _, ok := cmds[n]; !ok {
			t.Errorf("nounOrder names %q, which is not a command", n)
		}
	}
	cmds["zz-new"] = map[string]command{"do": {usage: "--thing X"}}
	if out := usageText(cmds); !strings.Contains(out, "\n  zz-new do --thing X\n") {
		t.Errorf("a noun missing from nounOrder is not listed:\n%s", out)
	}
}

func TestWrapUsage(t *testing.T) {
	line := "sync subscribe --app APP [--org ORG]... [--setting KEY=VALUE]... (--user ID | --group ID) [--a [--b C]]"
	got := wrapUsage(line, "  ", "      ", 40)
	want := "  sync subscribe --app APP\n" +
		"      [--org ORG]...\n" +
		"      [--setting KEY=VALUE]...\n" +
		"      (--user ID | --group ID)\n" +
		"      [--a [--b C]]\n"
	if got != want {
		t.Errorf("wrapUsage:\n%s\nwant\n%s", got, want)
	}
	// A word longer than the width stays whole on its own line.
	if got := wrapUsage("x [--a-very-long-flag VALUE]", "  ", "    ", 10); got != "  x\n    [--a-very-long-flag VALUE]\n" {
		t.Errorf("long word: %q", got)
	}
	if got := wrapUsage("logout", "  ", "    ", 10); got != "  logout\n" {
		t.Errorf("one word: %q", got)
	}
}
