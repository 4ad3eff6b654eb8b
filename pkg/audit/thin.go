package audit

import (
	"net/netip"
	"sync"
	"time"
)

// Thinner thins the audit of refusals an unauthenticated caller can
// provoke at will (throttled logins, forged peer assertions): at most one
// record per key per second, carrying how many refusals it stands for, so
// that a flood cannot fill the log. Memory is bounded (maxThinKeys keys;
// beyond, it starts afresh). The zero value is ready; safe for concurrent
// use.
type Thinner struct {
	mu sync.Mutex
	m  map[string]thinState
}

type thinState struct {
	last       time.Time
	suppressed int
}

const maxThinKeys = 10000

// Note reports whether a refusal of key at now is to be audited, and if
// so how many refusals of key since its last record were not.
func (h *Thinner) Note(key string, now time.Time) (audit bool, suppressed int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil || len(h.m) > maxThinKeys {
		h.m = map[string]thinState{}
	}
	st := h.m[key]
	if !st.last.IsZero() && now.Sub(st.last) < time.Second {
		st.suppressed++
		h.m[key] = st
		return false, 0
	}
	h.m[key] = thinState{last: now}
	return true, st.suppressed
}

// AddressKey is a client address as the source of requests: IPv4 whole,
// IPv6 by /64 (one host usually holds a whole /64).
func AddressKey(ip netip.Addr) string {
	if !ip.IsValid() {
		return "ip:unknown"
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return "ip:" + p.String()
	}
	return "ip:" + ip.String()
}
