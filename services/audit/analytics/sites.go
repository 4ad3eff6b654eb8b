package analytics

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Site is a network of an organisation's own whose place is known: an
// office, a bureau, a port (audit.analytics.sites). A login from a private
// address, which no geolocation database places, is placed at its site.
type Site struct {
	Network  netip.Prefix
	Name     string
	Lat, Lon float64
}

// ParseSite reads a site written "NETWORK LAT LON NAME", e.g.
// "10.20.0.0/16 22.54 114.06 Shenzhen MSA" (the name may hold spaces).
func ParseSite(s string) (Site, error) {
	f := strings.Fields(s)
	if len(f) < 4 {
		return Site{}, fmt.Errorf("%q: a site is \"NETWORK LATITUDE LONGITUDE NAME\", e.g. \"10.20.0.0/16 22.54 114.06 Shenzhen MSA\"", s)
	}
	p, err := netip.ParsePrefix(f[0])
	if err != nil {
		a, aerr := netip.ParseAddr(f[0])
		if aerr != nil {
			return Site{}, fmt.Errorf("%q: %q is neither a network (CIDR) nor an address", s, f[0])
		}
		p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
	}
	lat, err := strconv.ParseFloat(f[1], 64)
	if err != nil || lat < -90 || lat > 90 {
		return Site{}, fmt.Errorf("%q: the latitude %q is not a number between -90 and 90", s, f[1])
	}
	lon, err := strconv.ParseFloat(f[2], 64)
	if err != nil || lon < -180 || lon > 180 {
		return Site{}, fmt.Errorf("%q: the longitude %q is not a number between -180 and 180", s, f[2])
	}
	return Site{Network: p.Masked(), Name: strings.Join(f[3:], " "), Lat: lat, Lon: lon}, nil
}

// Sites is a Geo over the organisation's own networks: an address is at the
// site of the most specific network holding it.
type Sites struct {
	sites []Site // most specific first
}

// NewSites returns the Geo of sites; a network named twice is an error.
func NewSites(sites []Site) (*Sites, error) {
	s := &Sites{sites: slices.Clone(sites)}
	slices.SortStableFunc(s.sites, func(a, b Site) int { return b.Network.Bits() - a.Network.Bits() })
	for i := 1; i < len(s.sites); i++ {
		for _, o := range s.sites[:i] {
			if o.Network == s.sites[i].Network {
				return nil, fmt.Errorf("the network %s is given twice", o.Network)
			}
		}
	}
	return s, nil
}

// Locate implements Geo.
func (s *Sites) Locate(ip netip.Addr) (Location, bool, error) {
	ip = ip.Unmap()
	for _, site := range s.sites {
		if site.Network.Contains(ip) {
			return Location{Lat: site.Lat, Lon: site.Lon, City: site.Name}, true, nil
		}
	}
	return Location{}, false, nil
}

// Geos asks each Geo in turn: the first that places an address places it
// (the sites before the database).
type Geos []Geo

// Locate implements Geo.
func (g Geos) Locate(ip netip.Addr) (Location, bool, error) {
	for _, one := range g {
		loc, found, err := one.Locate(ip)
		if err != nil || found {
			return loc, found, err
		}
	}
	return Location{}, false, nil
}
