package analytics

import (
	"fmt"
	"math"
	"net/netip"
	"time"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Location is where an address is, as far as the geolocation database
// knows.
type Location struct {
	Lat, Lon float64
	Country  string // ISO code
	City     string // English name, if the database has one
}

// Geo locates client addresses.
type Geo interface {
	// Locate returns the address's location; found is false when the
	// database has none (private addresses, unknown networks).
	Locate(ip netip.Addr) (loc Location, found bool, err error)
}

// MMDB is a Geo over a MaxMind-format database (GeoLite2/GeoIP2 City or
// any database with the same location fields).
type MMDB struct {
	r *maxminddb.Reader
}

// OpenMMDB opens the database file at path.
func OpenMMDB(path string) (*MMDB, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("IP geolocation database %s: %w", path, err)
	}
	return &MMDB{r: r}, nil
}

// Close releases the database.
func (m *MMDB) Close() error { return m.r.Close() }

type mmdbCity struct {
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	City struct {
		Names map[string]string `maxminddb:"names"`
	} `maxminddb:"city"`
}

// Locate implements Geo. A record without coordinates is not found.
func (m *MMDB) Locate(ip netip.Addr) (Location, bool, error) {
	res := m.r.Lookup(ip.Unmap())
	if err := res.Err(); err != nil {
		return Location{}, false, err
	}
	if !res.Found() {
		return Location{}, false, nil
	}
	var c mmdbCity
	if err := res.Decode(&c); err != nil {
		return Location{}, false, err
	}
	if c.Location.Latitude == nil || c.Location.Longitude == nil {
		return Location{}, false, nil
	}
	return Location{Lat: *c.Location.Latitude, Lon: *c.Location.Longitude, Country: c.Country.ISOCode, City: c.City.Names["en"]}, true, nil
}

// earthRadiusKM is the mean radius of the Earth.
const earthRadiusKM = 6371.0

// DistanceKM is the great-circle distance between a and b (haversine).
func DistanceKM(a, b Location) float64 {
	rad := func(d float64) float64 { return d * math.Pi / 180 }
	dLat, dLon := rad(b.Lat-a.Lat), rad(b.Lon-a.Lon)
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(rad(a.Lat))*math.Cos(rad(b.Lat))*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKM * math.Asin(math.Min(1, math.Sqrt(h)))
}

// Place is a located login.
type Place struct {
	Time     time.Time
	ClientIP string
	Location
}

// Travel is the same person logging in from two places further apart
// than plausible in the time between.
type Travel struct {
	Subject  string
	Org      string
	From, To Place
	// DistanceKM between the places and the speed it would take.
	DistanceKM float64
	SpeedKMH   float64
}

// TravelRules say what travel is impossible.
type TravelRules struct {
	// MaxSpeedKMH is the fastest plausible travel (an airliner: 900).
	MaxSpeedKMH float64
	// MinDistanceKM ignores shorter distances (the database's precision
	// and mobile networks move a person's address that far).
	MinDistanceKM float64
}

// DefaultTravelRules are the defaults of the audit.analytics settings.
var DefaultTravelRules = TravelRules{MaxSpeedKMH: 900, MinDistanceKM: 100}

// Impossible reports the travel from a to b when it is faster than
// plausible (b not before a).
func (r TravelRules) Impossible(subject, org string, a, b Place) (Travel, bool) {
	d := DistanceKM(a.Location, b.Location)
	if d < r.MinDistanceKM {
		return Travel{}, false
	}
	hours := b.Time.Sub(a.Time).Hours()
	speed := math.Inf(1)
	if hours > 0 {
		speed = d / hours
	}
	if speed <= r.MaxSpeedKMH {
		return Travel{}, false
	}
	return Travel{Subject: subject, Org: org, From: a, To: b, DistanceKM: d, SpeedKMH: speed}, true
}
