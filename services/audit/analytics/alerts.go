package analytics

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/uias/uias/services/audit"
)

// Alert kinds.
const (
	AlertImpossibleTravel    = "impossible_travel"
	AlertLockoutBurst        = "lockout_burst"
	AlertUnauthorisedAddress = "unauthorised_address"
	// AlertAdminLoginFailures: failed administrator logins of one account
	// within the window reached the burst size (someone is guessing an
	// administrator's password).
	AlertAdminLoginFailures = "admin_login_failures"
	// AlertAuditRemoval: the security auditor removed records from the
	// audit log's database (they stay in the archive files).
	AlertAuditRemoval = "audit_removal"
	// AlertCallerRefusals: calls refused as one application (a wrong
	// secret or signature, a replayed nonce, an address off its list, a
	// missing certificate) within the window reached the burst size:
	// someone is calling as an application they are not, or it is
	// misconfigured (JR/T 0185-2020: unauthorised and impersonated calls
	// are found in real time).
	AlertCallerRefusals = "caller_refusals"
)

// Alert is a security alert raised from an audit record as it arrives.
type Alert struct {
	// ID is stable for a record and kind ("<event id>:<kind>"): a
	// receiver drops an alert it already handled.
	ID   string    `json:"id"`
	Kind string    `json:"kind"`
	Time time.Time `json:"time"`
	// EventID is the audit record's event id.
	EventID  string `json:"event_id"`
	API      string `json:"api,omitempty"`
	Subject  string `json:"subject,omitempty"`
	UserID   string `json:"user_id,omitempty"`
	Org      string `json:"org,omitempty"`
	ClientIP string `json:"client_ip,omitempty"`
	AppID    string `json:"app_id,omitempty"`
	// Message says what happened, for people.
	Message string `json:"message"`
	// Travel: the two logins of an impossible travel.
	Travel *AlertTravel `json:"travel,omitempty"`
	// Lockouts: the lockouts within the window of a burst.
	Lockouts int `json:"lockouts,omitempty"`
	// Failures: the failed administrator logins within the window.
	Failures int `json:"failures,omitempty"`
	// Actor: who acted (an audit removal).
	Actor string `json:"actor,omitempty"`
}

// AlertTravel are the places of an impossible travel.
type AlertTravel struct {
	From       AlertPlace `json:"from"`
	To         AlertPlace `json:"to"`
	DistanceKM float64    `json:"distance_km"`
	// SpeedKMH is 0 for two logins at the same moment.
	SpeedKMH float64 `json:"speed_kmh"`
}

// AlertPlace is a located login of an alert.
type AlertPlace struct {
	Time     time.Time `json:"time"`
	ClientIP string    `json:"client_ip"`
	Country  string    `json:"country,omitempty"`
	City     string    `json:"city,omitempty"`
	Lat      float64   `json:"latitude"`
	Lon      float64   `json:"longitude"`
}

func alertPlace(p Place) AlertPlace {
	return AlertPlace{Time: p.Time, ClientIP: p.ClientIP, Country: p.Country, City: p.City, Lat: p.Lat, Lon: p.Lon}
}

// DetectorOptions configure a Detector.
type DetectorOptions struct {
	// Geo places logins for impossible travel (nil: no travel alerts).
	Geo    Geo
	Travel TravelRules
	// Allowed are the networks logins may come from (empty: no address
	// alerts).
	Allowed []netip.Prefix
	// LockoutBurst lockouts within LockoutWindow raise one alert per
	// window (0: no burst alerts).
	LockoutBurst  int
	LockoutWindow time.Duration
	// AdminFailureBurst failed administrator logins of one account within
	// LockoutWindow raise one alert per window and account (0: none).
	AdminFailureBurst int
	// CallerRefusalBurst calls refused as one application (caller.denied)
	// within LockoutWindow raise one alert per window and application (0:
	// none).
	CallerRefusalBurst int
	// Previous returns a person's latest successful login before t, when
	// the detector has not seen one since it started (nil: none).
	Previous func(ctx context.Context, subject string, before time.Time) (LastSeen, bool, error)
}

// maxPlaces bounds the people whose last place a Detector keeps (beyond
// it, it forgets them all and asks Previous again).
const maxPlaces = 100_000

// Detector raises alerts from audit records in arrival order: impossible
// travel, bursts of lockouts, logins from outside the allowed networks.
// It is safe for concurrent use.
type Detector struct {
	o DetectorOptions

	mu     sync.Mutex
	places map[string]Place
	// lockouts: the lockouts within the window; adminFails, by subject,
	// the failed administrator logins within the window.
	lockouts   failBurst
	adminFails map[string]*failBurst
	// callerFails, by subject ("app:<App_ID>"), the refused calls within
	// the window.
	callerFails map[string]*failBurst
}

// failBurst are events within a window, and until when the burst of that
// window was raised.
type failBurst struct {
	times []time.Time
	until time.Time
}

// NewDetector returns a detector with options o.
func NewDetector(o DetectorOptions) *Detector {
	if o.Travel == (TravelRules{}) {
		o.Travel = DefaultTravelRules
	}
	return &Detector{o: o, places: map[string]Place{}, adminFails: map[string]*failBurst{}, callerFails: map[string]*failBurst{}}
}

// Observe returns the alerts r raises (none for most records).
func (d *Detector) Observe(ctx context.Context, r *audit.Record) ([]Alert, error) {
	base := Alert{Time: r.Time, EventID: r.EventID, API: r.API, Subject: r.Subject, UserID: UserID(r.Subject), Org: r.Org,
		ClientIP: r.ClientIP, AppID: r.AppID}
	var out []Alert
	add := func(kind, msg string, fill func(a *Alert)) {
		a := base
		a.ID, a.Kind, a.Message = r.EventID+":"+kind, kind, msg
		if fill != nil {
			fill(&a)
		}
		out = append(out, a)
	}
	switch {
	case r.API == APICallerDenied:
		if n, burst := d.callerRefusal(r.Subject, r.Time); burst {
			add(AlertCallerRefusals, fmt.Sprintf("%d calls refused as %s within %s (the latest: %s from %s)", n, r.Subject,
				d.o.LockoutWindow, r.Reason, r.ClientIP), func(a *Alert) { a.Failures = n })
		}
	case r.API == APILockout:
		if n, burst := d.lockout(r.Time); burst {
			add(AlertLockoutBurst, fmt.Sprintf("%d accounts locked within %s", n, d.o.LockoutWindow), func(a *Alert) { a.Lockouts = n })
		}
	case slices.Contains(LoginAPIs, r.API):
		if r.API == APIAdminLogin && r.Result == ResultFailure {
			if n, burst := d.adminFailure(r.Subject, r.Time); burst {
				add(AlertAdminLoginFailures, fmt.Sprintf("%d failed administrator logins of %s within %s", n, r.Subject, d.o.LockoutWindow),
					func(a *Alert) { a.Failures = n })
			}
		}
		ip, err := netip.ParseAddr(r.ClientIP)
		if err == nil && len(d.o.Allowed) > 0 && !d.allowed(ip) {
			add(AlertUnauthorisedAddress, fmt.Sprintf("login attempt (%s, %s) from %s, outside the allowed networks", r.API, r.Result, ip), nil)
		}
		if err == nil && r.Result == ResultSuccess && d.o.Geo != nil && UserID(r.Subject) != "" {
			t, bad, err := d.travel(ctx, r, ip)
			if err != nil {
				return out, err
			}
			if bad {
				add(AlertImpossibleTravel, fmt.Sprintf("login from %s %.0f km away from the previous one (%s) %s later",
					placeName(t.To), t.DistanceKM, placeName(t.From), t.To.Time.Sub(t.From.Time).Round(time.Second)), func(a *Alert) {
					a.Travel = &AlertTravel{From: alertPlace(t.From), To: alertPlace(t.To), DistanceKM: t.DistanceKM}
					if t.To.Time.After(t.From.Time) {
						a.Travel.SpeedKMH = t.SpeedKMH
					}
				})
			}
		}
	}
	return out, nil
}

func placeName(p Place) string {
	switch {
	case p.City != "" && p.Country != "":
		return p.City + ", " + p.Country
	case p.Country != "":
		return p.Country
	}
	return p.ClientIP
}

func (d *Detector) allowed(ip netip.Addr) bool { return inNetworks(d.o.Allowed, ip) }

// lockout counts a lockout at t; burst is true once per window when the
// lockouts within the window reach the burst size.
func (d *Detector) lockout(t time.Time) (int, bool) {
	if d.o.LockoutBurst <= 0 {
		return 0, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lockouts.add(t, d.o.LockoutWindow, d.o.LockoutBurst)
}

// adminFailure counts a failed administrator login of subject at t; burst
// is true once per window and subject when the failures within the window
// reach AdminFailureBurst.
//
// Only people count ("user:<id>"): an account nobody has is nobody's
// administrator, and names made up by the thousand must not fill the
// table so that it is emptied with the counts of the account really
// attacked (review sec9 L3). At the bound the table is thinned to three
// quarters of it (so that it is done once in many failures, not at each):
// first the subjects without a failure within the window, then those with
// a single one (a spray of real login names: review sec10 M1); all go
// only if that is not enough.
func (d *Detector) adminFailure(subject string, t time.Time) (int, bool) {
	if d.o.AdminFailureBurst <= 0 || UserID(subject) == "" {
		return 0, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count(&d.adminFails, subject, t, d.o.AdminFailureBurst)
}

// callerRefusal counts a call refused as application subject
// ("app:<App_ID>", as claimed) at t; burst is true once per window and
// subject when they reach CallerRefusalBurst. Made-up App_IDs thin the
// table as made-up logins do adminFailure's.
func (d *Detector) callerRefusal(subject string, t time.Time) (int, bool) {
	if d.o.CallerRefusalBurst <= 0 || subject == "" {
		return 0, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count(&d.callerFails, subject, t, d.o.CallerRefusalBurst)
}

// count adds an event of key at t to *table (d.mu held), thinning the
// table at its bound (see adminFailure), and reports the burst.
func (d *Detector) count(table *map[string]*failBurst, key string, t time.Time, size int) (int, bool) {
	fails := *table
	if len(fails) > maxPlaces {
		low := maxPlaces * 3 / 4
		for _, drop := range []func(f *failBurst) bool{
			func(f *failBurst) bool {
				return len(f.times) == 0 || t.Sub(slices.MaxFunc(f.times, time.Time.Compare)) >= d.o.LockoutWindow
			},
			func(f *failBurst) bool { return len(f.times) < 2 },
		} {
			for s, f := range fails {
				if drop(f) {
					delete(fails, s)
				}
			}
			if len(fails) <= low {
				break
			}
		}
		if len(fails) > low {
			fails = map[string]*failBurst{}
			*table = fails
		}
	}
	f := fails[key]
	if f == nil {
		f = &failBurst{}
		fails[key] = f
	}
	return f.add(t, d.o.LockoutWindow, size)
}

// add counts an event at t and keeps those within window before it; burst
// is true once per window when they reach size.
func (f *failBurst) add(t time.Time, window time.Duration, size int) (int, bool) {
	f.times = append(f.times, t)
	// the window ends at the latest event seen: records arrive nearly,
	// not strictly, in time order
	latest := t
	for _, x := range f.times {
		if x.After(latest) {
			latest = x
		}
	}
	kept := f.times[:0]
	for _, x := range f.times {
		if latest.Sub(x) < window {
			kept = append(kept, x)
		}
	}
	f.times = kept
	if len(kept) < size || latest.Before(f.until) {
		return len(kept), false
	}
	f.until = latest.Add(window)
	return len(kept), true
}

// RemovalAlert is the alert of a removal of records [from, to) from the
// audit log's database by actor, recorded as event eventID.
func RemovalAlert(eventID, actor string, from, to int64, at time.Time) Alert {
	return Alert{ID: eventID + ":" + AlertAuditRemoval, Kind: AlertAuditRemoval, Time: at, EventID: eventID, API: "archive",
		Subject: "audit:records", Actor: actor, Message: fmt.Sprintf("records %d to %d (%d) removed from the audit log's database by %s "+
			"(they stay in the archive files)", from, to-1, to-from, actor)}
}

// travel checks r's place against the person's previous one and keeps
// r's as the latest.
func (d *Detector) travel(ctx context.Context, r *audit.Record, ip netip.Addr) (Travel, bool, error) {
	loc, found, err := d.o.Geo.Locate(ip)
	if err != nil || !found {
		return Travel{}, false, nil //nolint:nilerr // an address the database cannot place raises nothing
	}
	cur := Place{Time: r.Time, ClientIP: r.ClientIP, Location: loc}
	d.mu.Lock()
	prev, ok := d.places[r.Subject]
	d.mu.Unlock()
	if !ok && d.o.Previous != nil {
		l, found, err := d.o.Previous(ctx, r.Subject, r.Time)
		if err != nil {
			return Travel{}, false, err
		}
		if ip, perr := netip.ParseAddr(l.ClientIP); found && perr == nil {
			if ploc, pfound, gerr := d.o.Geo.Locate(ip); gerr == nil && pfound {
				prev, ok = Place{Time: l.Time, ClientIP: l.ClientIP, Location: ploc}, true
			}
		}
	}
	d.mu.Lock()
	if latest, seen := d.places[r.Subject]; !seen || !cur.Time.Before(latest.Time) {
		if len(d.places) >= maxPlaces {
			clear(d.places)
		}
		d.places[r.Subject] = cur
	}
	d.mu.Unlock()
	if !ok || cur.Time.Before(prev.Time) {
		return Travel{}, false, nil
	}
	t, bad := d.o.Travel.Impossible(r.Subject, r.Org, prev, cur)
	return t, bad, nil
}
