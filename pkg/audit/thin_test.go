package audit_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/uias/uias/pkg/audit"
)

func TestAddressKey(t *testing.T) {
	for ip, want := range map[string]string{
		"192.0.2.7":                "ip:192.0.2.7",
		"::ffff:192.0.2.7":         "ip:192.0.2.7",
		"2001:db8:1:2:3:4:5:6":     "ip:2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":     "ip:2001:db8:1:2::/64",
		"2001:db8:1:3::1":          "ip:2001:db8:1:3::/64",
		"fe80::1%eth0":             "ip:fe80::/64",
		"2001:db8:1:2:3:4:5:6%eth": "ip:2001:db8:1:2::/64",
	} {
		if got := audit.AddressKey(netip.MustParseAddr(ip)); got != want {
			t.Errorf("AddressKey(%s) = %s, want %s", ip, got, want)
		}
	}
	if got := audit.AddressKey(netip.Addr{}); got != "ip:unknown" {
		t.Errorf("no address: %s", got)
	}
}

// TestThinner: one record per key per second, the next one carrying how
// many were left out; keys are apart.
func TestThinner(t *testing.T) {
	var th audit.Thinner
	t0 := time.Unix(1000, 0)
	if ok, n := th.Note("a", t0); !ok || n != 0 {
		t.Fatalf("first: %v %d", ok, n)
	}
	for i := 1; i <= 5; i++ {
		if ok, _ := th.Note("a", t0.Add(time.Duration(i)*100*time.Millisecond)); ok {
			t.Fatalf("refusal %d within the second audited", i)
		}
	}
	if ok, _ := th.Note("b", t0.Add(200*time.Millisecond)); !ok {
		t.Fatal("another key thinned with a")
	}
	if ok, n := th.Note("a", t0.Add(1100*time.Millisecond)); !ok || n != 5 {
		t.Fatalf("after the second: %v, suppressed %d, want 5", ok, n)
	}
}
