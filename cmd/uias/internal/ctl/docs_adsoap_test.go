package ctl

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOperatorsADAndSOAPExamples: the `uias ctl sync subscribe` lines of
// docs/operators.md's Active Directory and SOAP section parse (they fail
// only for want of a server), and its `uias ctl sync wsdl` line prints a
// WSDL with the endpoint it names.
func TestOperatorsADAndSOAPExamples(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "docs", "operators.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "### Active Directory (`ldap` with `profile=ad`) and SOAP (`soap`) targets")
	end := strings.Index(doc[start:], "\nNATS: provisioning runs")
	if start < 0 || end < 0 {
		t.Fatal("the section is not in docs/operators.md")
	}
	section := strings.ReplaceAll(doc[start:start+end], "\\\n", " ")
	var subscribes, wsdls int
	for _, line := range strings.Split(section, "\n") {
		_, cmd, ok := strings.Cut(line, "uias ctl ")
		if !ok || strings.Contains(line, "`uias ctl") {
			continue
		}
		cmd, out, _ := strings.Cut(strings.NewReplacer("<App_ID>", "app-1", "<org id>", "org-1").Replace(cmd), ">")
		args := shellWords(cmd)
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), append([]string{"--addr", "127.0.0.1:1", "--timeout", "2s"}, args...),
			strings.NewReader("a-secret-of-sixteen-chars\n"), &stdout, &stderr, nil)
		switch {
		case len(args) > 1 && args[1] == "subscribe":
			subscribes++
			if code == 0 || code == 2 || strings.Contains(stderr.String(), "Usage") {
				t.Errorf("%s: exit %d (want a failure to reach the server, not a usage error): %s", cmd, code, stderr.String())
			}
		case len(args) > 1 && args[1] == "wsdl":
			wsdls++
			if code != 0 || !strings.Contains(stdout.String(), `location="https://erp.example.com/uias/provisioning"`) || out == "" {
				t.Errorf("%s: exit %d: %s", cmd, code, stderr.String())
			}
		}
	}
	if subscribes != 2 || wsdls != 1 {
		t.Fatalf("found %d subscribe and %d wsdl examples, want 2 and 1", subscribes, wsdls)
	}
}

// shellWords splits s as a shell would a simple command line: on blanks,
// keeping double-quoted parts together.
func shellWords(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, r := range s {
		switch {
		case r == '"':
			inQuote, have = !inQuote, true
		case (r == ' ' || r == '\t') && !inQuote:
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(r)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}
