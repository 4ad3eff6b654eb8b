package server

import (
	"net/netip"
	"testing"
)

// Credentials meet in the cache only when every part is the same: the
// application, the secret, the address (an IPv4 address and its IPv6
// mapping are two) and the certificate, with no ambiguity where one part
// ends and the next begins.
func TestCredKeyTellsCredentialsApart(t *testing.T) {
	a := NewCallerAuth(nil)
	v4, v6 := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("::ffff:10.1.2.3")
	base := a.credKey("oa", "s3cret", v4, "")
	if a.credKey("oa", "s3cret", v4, "") != base {
		t.Fatal("the same credentials give two keys")
	}
	for name, k := range map[string]string{
		"secret":      a.credKey("oa", "s3creT", v4, ""),
		"app":         a.credKey("ob", "s3cret", v4, ""),
		"split":       a.credKey("oas", "3cret", v4, ""),
		"address":     a.credKey("oa", "s3cret", netip.MustParseAddr("10.1.2.4"), ""),
		"mapped":      a.credKey("oa", "s3cret", v6, ""),
		"no address":  a.credKey("oa", "s3cret", netip.Addr{}, ""),
		"certificate": a.credKey("oa", "s3cret", v4, "ab12"),
		"other key":   NewCallerAuth(nil).credKey("oa", "s3cret", v4, ""),
	} {
		if k == base {
			t.Errorf("%s: a different credential gives the same key", name)
		}
	}
}

func BenchmarkCredKey(b *testing.B) {
	a := NewCallerAuth(nil)
	ip := netip.MustParseAddr("10.1.2.3")
	b.ReportAllocs()
	for b.Loop() {
		_ = a.credKey("oa-app-0001", "0123456789abcdef0123456789abcdef", ip, "")
	}
}
