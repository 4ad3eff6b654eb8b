package caller

import "net/netip"

// IPAllowed reports whether an allow-list admits ip. Entries are CIDR
// prefixes or single addresses (IPv4-mapped IPv6 addresses count as IPv4);
// entries that are neither are skipped. An empty list admits every
// address; a non-empty one never admits an unknown (invalid) address.
func IPAllowed(list []string, ip netip.Addr) bool {
	if len(list) == 0 {
		return true
	}
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	for _, c := range list {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			if a, aerr := netip.ParseAddr(c); aerr == nil && a.Unmap() == ip {
				return true
			}
			continue
		}
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
