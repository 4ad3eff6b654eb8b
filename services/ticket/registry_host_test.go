package ticket

import (
	"regexp"
	"testing"
)

// TestValidHostIsTheRegexp checks validHost against the regular expression
// it replaces, on hand-picked hosts and every string of up to four
// characters over an alphabet with each class of character.
func TestValidHostIsTheRegexp(t *testing.T) {
	re := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
	check := func(h string) {
		if got, want := validHost(h), re.MatchString(h); got != want {
			t.Errorf("validHost(%q) = %v, the regexp says %v", h, got, want)
		}
	}
	for _, h := range []string{"", "a", "app.example.com", "xn--bcher-kva.example", "a-b.c-d", "-a", "a-", "a..b", ".a", "a.",
		"A.example", "a_b", "1.2.3.4", "a.-b", "a.b-", "ex ample", "é"} {
		check(h)
	}
	const alphabet = "a0-.A_"
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		check(prefix)
		if n == 0 {
			return
		}
		for i := range len(alphabet) {
			gen(prefix+alphabet[i:i+1], n-1)
		}
	}
	gen("", 4)
}

var hostSink bool

// BenchmarkValidHost and BenchmarkHostRegexp compare the check of a
// service's host by hand and by the regular expression it replaces.
func BenchmarkValidHost(b *testing.B) {
	for b.Loop() {
		hostSink = validHost("app-1.cas.example.com")
	}
}

func BenchmarkHostRegexp(b *testing.B) {
	re := regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)
	for b.Loop() {
		hostSink = re.MatchString("app-1.cas.example.com")
	}
}
