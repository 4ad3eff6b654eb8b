package analytics

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/audit"
)

// ReasonNoGeoDB is the reason of a travel question without a geolocation
// database.
const ReasonNoGeoDB = "AUDIT_NO_GEO_DB"

// ErrNoGeo answers a travel question when no geolocation database is open.
var ErrNoGeo = apierr.New(apierr.FailedPrecondition, ReasonNoGeoDB,
	"impossible travel needs to know where addresses are: set audit.analytics.sites (your own networks and where they are) "+
		"or audit.analytics.geoip_db (a MaxMind-format .mmdb city database)")

func init() {
	apierr.Register(apierr.Reason{Name: ReasonNoGeoDB, Code: apierr.FailedPrecondition,
		Doc: "Audit analytics: impossible travel needs to know where addresses are: the organisation's own networks (audit.analytics.sites) or an IP geolocation database (audit.analytics.geoip_db, a MaxMind-format city database); neither is configured, or the database could not be opened (the log says why)."})
}

// Travel question bounds.
const (
	// DefaultTravelRange is the range of a travel question without a start.
	DefaultTravelRange = 7 * 24 * time.Hour
	// MaxTravelLogins bounds the logins one travel question reads.
	MaxTravelLogins = 1_000_000
)

// ImpossibleTravel finds, among the successful logins in r (default: the
// last DefaultTravelRange), each person's consecutive logins from places
// further apart than the rules allow in the time between; most recent
// first is not promised: by person, then time. truncated reports that the
// range held more than MaxTravelLogins logins (only those were read) or
// more than limit travels.
func (a *Analytics) ImpossibleTravel(ctx context.Context, scope audit.Scope, r Range, limit int) ([]Travel, bool, error) {
	if a.geo == nil {
		return nil, false, ErrNoGeo
	}
	if r.From.IsZero() {
		end := r.To
		if end.IsZero() {
			end = a.now()
		}
		r.From = end.Add(-DefaultTravelRange)
	}
	f, err := scoped(scope, Filter{APIs: LoginAPIs, Results: []string{ResultSuccess}, From: r.From, To: r.To})
	if err != nil {
		return nil, false, err
	}
	if limit, err = limitOf(limit, DefaultLimit); err != nil {
		return nil, false, err
	}
	var out []Travel
	var prev *Place
	prevSubject := ""
	errEnough := errors.New("enough")
	more, err := a.st.Timelines(ctx, f, MaxTravelLogins, func(l LastSeen) error {
		p, ok := a.place(l)
		if !ok {
			return nil
		}
		if l.Subject == prevSubject && prev != nil {
			if t, bad := a.travel.Impossible(l.Subject, l.Org, *prev, p); bad {
				if len(out) == limit {
					return errEnough
				}
				out = append(out, t)
			}
		}
		prevSubject, prev = l.Subject, &p
		return nil
	})
	if errors.Is(err, errEnough) {
		return out, true, nil
	}
	if err != nil {
		return nil, false, err
	}
	return out, more, nil
}

// place locates a login (false: no address or no location known).
func (a *Analytics) place(l LastSeen) (Place, bool) {
	ip, err := netip.ParseAddr(l.ClientIP)
	if err != nil {
		return Place{}, false
	}
	loc, found, err := a.geo.Locate(ip)
	if err != nil || !found {
		return Place{}, false
	}
	return Place{Time: l.Time, ClientIP: l.ClientIP, Location: loc}, true
}

// PreviousLogin returns a person's latest successful login before t (the
// detector's memory after a start).
func (a *Analytics) PreviousLogin(ctx context.Context, subject string, before time.Time) (LastSeen, bool, error) {
	recs, _, err := a.st.Records(ctx, Filter{APIs: LoginAPIs, Results: []string{ResultSuccess}, Subject: subject, To: before}, 1, "")
	if err != nil || len(recs) == 0 {
		return LastSeen{}, false, err
	}
	r := recs[0]
	return LastSeen{Subject: r.Subject, Org: r.Org, Time: r.Time, ClientIP: r.ClientIP, AppID: r.AppID}, true, nil
}
