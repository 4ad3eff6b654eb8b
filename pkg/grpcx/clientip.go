package grpcx

import (
	"net"
	"net/netip"
	"strings"
)

// ResolveClientIP returns the address of the client for a connection from
// peer. When peer lies within one of trusted, the X-Forwarded-For values (as
// received, possibly several comma-separated lists) are walked from the right
// and the first address not within trusted is returned (the "rightmost
// untrusted" rule). If every listed address is trusted the leftmost one is
// returned; the walk stops at the first unparsable entry. When peer is not
// trusted, forwarded values are ignored and peer is returned.
func ResolveClientIP(peer netip.Addr, forwardedFor []string, trusted []netip.Prefix) netip.Addr {
	peer = peer.Unmap()
	if !peer.IsValid() || !inPrefixes(peer, trusted) {
		return peer
	}
	var hops []string
	for _, v := range forwardedFor {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		ip, ok := parseHop(hops[i])
		if !ok {
			break
		}
		client = ip
		if !inPrefixes(ip, trusted) {
			break
		}
	}
	return client
}

// AddrFromNet converts a net.Addr (as found in peer.Peer) to a netip.Addr;
// the zero Addr if it carries no IP (e.g. a unix socket).
func AddrFromNet(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case nil, InprocAddr:
		return netip.Addr{}
	case *net.TCPAddr:
		return v.AddrPort().Addr().Unmap()
	case *net.UDPAddr:
		return v.AddrPort().Addr().Unmap()
	}
	if ap, err := netip.ParseAddrPort(a.String()); err == nil {
		return ap.Addr().Unmap()
	}
	if ip, err := netip.ParseAddr(a.String()); err == nil {
		return ip.Unmap()
	}
	return netip.Addr{}
}

func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return netip.Addr{}, false
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		return ip.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	return netip.Addr{}, false
}

func inPrefixes(ip netip.Addr, prefixes []netip.Prefix) bool {
	ip = ip.WithZone("")
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
