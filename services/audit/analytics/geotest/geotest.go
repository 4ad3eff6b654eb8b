// Package geotest writes a small MaxMind-format city database for tests
// (the analytics tests and the end-to-end impossible travel). It is not
// linked into the uias binary.
package geotest

import (
	"fmt"
	"net"
	"os"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Test networks of the database.
const (
	// Beijing is 198.51.100.0/24 (TEST-NET-2), Paris 203.0.113.0/24
	// (TEST-NET-3), Tianjin 2001:db8:1::/48; 192.0.2.128/25 has a country
	// (DE) but no coordinates.
	BeijingIP = "198.51.100.7"
	ParisIP   = "203.0.113.200"
)

// WriteCityDB writes the test database to path.
func WriteCityDB(path string) error {
	w, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "UIAS-Test-City", RecordSize: 28, IncludeReservedNetworks: true})
	if err != nil {
		return err
	}
	city := func(lat, lon float64, country, name string) mmdbtype.Map {
		return mmdbtype.Map{
			"location": mmdbtype.Map{"latitude": mmdbtype.Float64(lat), "longitude": mmdbtype.Float64(lon)},
			"country":  mmdbtype.Map{"iso_code": mmdbtype.String(country)},
			"city":     mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(name)}},
		}
	}
	for cidr, rec := range map[string]mmdbtype.Map{
		"198.51.100.0/24": city(39.9042, 116.4074, "CN", "Beijing"),
		"203.0.113.0/24":  city(48.8566, 2.3522, "FR", "Paris"),
		"2001:db8:1::/48": city(39.3434, 117.3616, "CN", "Tianjin"),
		"192.0.2.128/25":  {"country": mmdbtype.Map{"iso_code": mmdbtype.String("DE")}},
	} {
		_, n, err := net.ParseCIDR(cidr)
		if err != nil {
			return err
		}
		if err := w.Insert(n, rec); err != nil {
			return fmt.Errorf("insert %s: %w", cidr, err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := w.WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
