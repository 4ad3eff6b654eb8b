// Package analytics answers the login questions of the maritime design
// from the audit log: failed logins by person, application or address,
// login peak times, a person's login history, absence (no login for N
// days) and who is online now. It reads the stored audit records through
// Store (sqlstore implements it on SQLite and PostgreSQL with the query
// indexes of the log) within the caller's scope (audit.Scope), and has no
// gRPC imports.
package analytics

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/services/audit"
)

// The APIs of login attempts (the identity component's audit records).
const (
	APIAuthenticate = "authenticate"
	APIFingerBypass = "authenticate.finger_bypass"
	APISSOLogin     = "sso.login"
	APIAdminLogin   = "admin.login"
	// APISessionCreate and APISessionEnd are the ticket component's SSO
	// session records; APIAdminLogout the end of an administrator token.
	APISessionCreate = "session.create"
	APISessionEnd    = "session.end"
	APIAdminLogout   = "admin.logout"
	// APILockout is a lockout after too many failed logins.
	APILockout = "account.lockout"
	// APICallerDenied is a call refused as an application (pkg/audit's
	// CallerDenied records: subject "app:<App_ID>", the refusal's reason).
	APICallerDenied = "caller.denied"
)

// LoginAPIs are the APIs whose records are login attempts.
var LoginAPIs = audit.LoginAPIs

// Results of login records.
const (
	ResultSuccess = "success"
	ResultFailure = "failure"
	ResultDenied  = "denied"
)

// FailedResults are the results of failed login attempts.
var FailedResults = audit.LoginFailures

// Filter selects audit records for analytics; empty fields do not filter.
type Filter struct {
	// APIs and Results: the record's api and result are among them.
	APIs    []string
	Results []string
	// Subject: exactly this subject ("user:<id>").
	Subject string
	// Subjects: the subject is one of them.
	Subjects []string
	// From (inclusive) and To (exclusive) bound the record time.
	From, To time.Time
	// Orgs restricts the records to these orgs (set from the caller's
	// scope, never by the caller).
	Orgs []string
	// Origin: the records of this log only (ADR 0029); empty: every
	// origin held.
	Origin string
}

// Group is what records are counted by.
type Group int

// Groups of counts.
const (
	BySubject Group = iota + 1
	ByApp
	ByClientIP
	// ByHourOfDay: "00" to "23"; ByWeekday: "0" (Sunday) to "6"; both in
	// the count's UTC offset.
	ByHourOfDay
	ByWeekday
)

// Count is the number of records of one group and the latest one's time.
type Count struct {
	Key   string
	Count int64
	Last  time.Time
}

// LastSeen is a subject's latest matching record.
type LastSeen struct {
	Subject  string
	Org      string
	Time     time.Time
	ClientIP string
	AppID    string
}

// Store is what analytics reads of the audit log.
type Store interface {
	// CountBy counts the records of f by g, at most limit+1 groups: hours
	// and weekdays in their order, other groups most first (then by key).
	CountBy(ctx context.Context, f Filter, g Group, utcOffset time.Duration, limit int) ([]Count, error)
	// LatestPerSubject returns, for each subject with records matching f,
	// its latest record, at most limit+1 of them: when before is set only
	// subjects whose latest record is before it, oldest first; else newest
	// first.
	LatestPerSubject(ctx context.Context, f Filter, before time.Time, limit int) ([]LastSeen, error)
	// Records returns a page of the records matching f (with f.Subject
	// set: one person's), newest first, and the next page's token.
	Records(ctx context.Context, f Filter, pageSize int, pageToken string) ([]audit.Record, string, error)
	// Timelines calls fn for at most max records matching f that have a
	// client address, by subject and then oldest first; more reports
	// that there were more.
	Timelines(ctx context.Context, f Filter, max int, fn func(l LastSeen) error) (more bool, err error)
}

// Limits.
const (
	DefaultLimit    = 100
	MaxLimit        = 10000
	DefaultPageSize = 50
	MaxPageSize     = 1000
	// MaxAbsenceDays bounds an absence question (ten years).
	MaxAbsenceDays = 3650
)

// Analytics answers analytics questions over a store.
type Analytics struct {
	st     Store
	now    func() time.Time
	geo    Geo
	travel TravelRules
	// sessions: the ticket component's live sessions (nil: none).
	sessions SessionSource
	// people: the identity component's people (nil: none).
	people PeopleSource
	// important applications and allowed networks of the settings.
	important []string
	allowed   []netip.Prefix
	// peerOrigins: the logs of level-2 centres received here (ADR 0029).
	peerOrigins []string
	localOrigin string
}

// Options configure Analytics.
type Options struct {
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Geo locates addresses for impossible travel (nil: no database; the
	// question is refused).
	Geo Geo
	// Travel (zero: DefaultTravelRules).
	Travel TravelRules
	// Sessions lists the live SSO sessions for OnlineNow (nil: online
	// comes from the audit log's logins).
	Sessions SessionSource
	// People lists the identity component's people for AbsenceReport
	// (nil: absence knows only the people with a stored login).
	People PeopleSource
	// ImportantApps are the applications (App_ID) whose last access
	// LastAccess reports by default.
	ImportantApps []string
	// Allowed are the networks logins may come from (OutsideAllowList).
	Allowed []netip.Prefix
	// PeerOrigins are the logs of the level-2 centres received here
	// (audit.peers, ADR 0029): their people's SSO sessions live at their
	// own centre's ticket component, so OnlineNow from the sessions adds
	// the people online by those logs' logins.
	PeerOrigins []string
	// LocalOrigin is this centre's own log (audit.origin). With
	// PeerOrigins, a peer log's logins count only for the people homed at
	// that peer (HomeSource, review sec28b M1); this centre's own logins
	// count for everyone.
	LocalOrigin string
}

// New returns the analytics of st.
func New(st Store, o Options) *Analytics {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Travel == (TravelRules{}) {
		o.Travel = DefaultTravelRules
	}
	return &Analytics{st: st, now: o.Now, geo: o.Geo, travel: o.Travel, sessions: o.Sessions, people: o.People,
		important: o.ImportantApps, allowed: o.Allowed, peerOrigins: o.PeerOrigins, localOrigin: o.LocalOrigin}
}

func badRequest(msg string) error {
	return apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest, msg)
}

// scoped restricts f to scope and checks its time range.
func scoped(scope audit.Scope, f Filter) (Filter, error) {
	if !scope.All {
		if len(scope.Orgs) == 0 {
			// the audit log's refusal: ScopeOf gives every allowed reader a scope
			return f, audit.ScopeAll(scope)
		}
		f.Orgs = scope.Orgs
	} else {
		f.Orgs = nil
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, badRequest("start_time must be before end_time")
	}
	return f, nil
}

func limitOf(n, def int) (int, error) {
	switch {
	case n < 0 || n > MaxLimit:
		return 0, badRequest(fmt.Sprintf("limit must be between 0 and %d", MaxLimit))
	case n == 0:
		return def, nil
	}
	return n, nil
}

// Range is a time range of a question: From inclusive, To exclusive, zero
// for no bound.
type Range struct{ From, To time.Time }

// FailedLogins counts the failed login attempts in r by g (BySubject,
// ByApp or ByClientIP), most first; truncated reports more groups than
// limit.
func (a *Analytics) FailedLogins(ctx context.Context, scope audit.Scope, r Range, g Group, limit int) ([]Count, bool, error) {
	if g != BySubject && g != ByApp && g != ByClientIP {
		return nil, false, badRequest("by must be person, app or client_ip")
	}
	f, err := scoped(scope, Filter{APIs: LoginAPIs, Results: FailedResults, From: r.From, To: r.To})
	if err != nil {
		return nil, false, err
	}
	if limit, err = limitOf(limit, DefaultLimit); err != nil {
		return nil, false, err
	}
	counts, err := a.st.CountBy(ctx, f, g, 0, limit)
	if err != nil {
		return nil, false, err
	}
	if len(counts) > limit {
		return counts[:limit], true, nil
	}
	return counts, false, nil
}

// LoginPeaks counts the successful logins in r by hour of the day or
// weekday (in utcOffset), every hour or weekday listed (zero counts
// included), in order.
func (a *Analytics) LoginPeaks(ctx context.Context, scope audit.Scope, r Range, g Group, utcOffset time.Duration) ([]Count, error) {
	n := 0
	switch g {
	case ByHourOfDay:
		n = 24
	case ByWeekday:
		n = 7
	default:
		return nil, badRequest("by must be hour_of_day or weekday")
	}
	if utcOffset < -12*time.Hour || utcOffset > 14*time.Hour || utcOffset%time.Minute != 0 {
		return nil, badRequest("utc_offset_minutes must be whole minutes between -720 and 840")
	}
	f, err := scoped(scope, Filter{APIs: LoginAPIs, Results: []string{ResultSuccess}, From: r.From, To: r.To})
	if err != nil {
		return nil, err
	}
	counts, err := a.st.CountBy(ctx, f, g, utcOffset, n)
	if err != nil {
		return nil, err
	}
	out := make([]Count, n)
	for i := range out {
		out[i].Key = peakKey(g, i)
	}
	for _, c := range counts {
		for i := range out {
			if out[i].Key == c.Key {
				out[i] = c
			}
		}
	}
	return out, nil
}

func peakKey(g Group, i int) string {
	if g == ByHourOfDay {
		return fmt.Sprintf("%02d", i)
	}
	return fmt.Sprint(i)
}

// Label names a count's key for people (weekday names, hours).
func Label(g Group, key string) string {
	switch g {
	case ByWeekday:
		for i, d := range []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"} {
			if key == fmt.Sprint(i) {
				return d
			}
		}
	case ByHourOfDay:
		if key != "" {
			return key + ":00"
		}
	}
	return key
}

// UserSubject is the audit subject of person userID.
func UserSubject(userID string) string { return "user:" + userID }

// UserID is the person id of an audit subject "user:<id>" ("" for other
// subjects).
func UserID(subject string) string {
	id, ok := strings.CutPrefix(subject, "user:")
	if !ok {
		return ""
	}
	return id
}

// LoginHistory returns a page of the login attempts of person userID in
// r, newest first, and the next page's token.
func (a *Analytics) LoginHistory(ctx context.Context, scope audit.Scope, userID string, r Range, pageSize int, pageToken string) ([]audit.Record, string, error) {
	if userID == "" || strings.ContainsAny(userID, " \t\r\n") {
		return nil, "", badRequest("user_id must name a person")
	}
	f, err := scoped(scope, Filter{APIs: LoginAPIs, Subject: UserSubject(userID), From: r.From, To: r.To})
	if err != nil {
		return nil, "", err
	}
	// a person outside the subtrees is refused, not answered "no logins"
	if err := a.mayRead(ctx, scope, userID); err != nil {
		return nil, "", err
	}
	switch {
	case pageSize < 0 || pageSize > MaxPageSize:
		return nil, "", badRequest(fmt.Sprintf("page_size must be between 0 and %d", MaxPageSize))
	case pageSize == 0:
		pageSize = DefaultPageSize
	}
	recs, next, err := a.st.Records(ctx, f, pageSize, pageToken)
	if err != nil || len(a.peerOrigins) == 0 {
		return recs, next, err
	}
	// a peer log speaks only of its own people's logins (sec28b M1)
	homes, err := a.homeOrigins(ctx, []string{userID})
	if err != nil && !errors.Is(err, ErrNoHomes) { // no homes: no peer's record counts
		return nil, "", err
	}
	return slices.DeleteFunc(recs, func(r audit.Record) bool { return !a.mayTell(r.Origin, homes[userID]) }), next, nil
}

// Absence is a person whose last successful login is long ago, or who
// never logged in.
type Absence struct {
	LastSeen
	// Days are the whole days since the last login (Never: since the
	// account was made; 0 when that is unknown).
	Days int
	// Never: no successful login is stored (LastSeen has only Subject and
	// Org); Created is when the account was made.
	Never   bool
	Created time.Time
	// Login is the person's login name (when identity was asked).
	Login string
}

// Absences lists the people whose last successful login is more than
// days days ago, longest absent first. Only people with a stored login
// are known.
func (a *Analytics) Absences(ctx context.Context, scope audit.Scope, days, limit int) ([]Absence, bool, error) {
	if days < 1 || days > MaxAbsenceDays {
		return nil, false, badRequest(fmt.Sprintf("days must be between 1 and %d", MaxAbsenceDays))
	}
	f, err := scoped(scope, Filter{APIs: LoginAPIs, Results: []string{ResultSuccess}})
	if err != nil {
		return nil, false, err
	}
	if limit, err = limitOf(limit, DefaultLimit); err != nil {
		return nil, false, err
	}
	now := a.now()
	last, err := a.st.LatestPerSubject(ctx, f, now.Add(-time.Duration(days)*24*time.Hour), limit)
	if err != nil {
		return nil, false, err
	}
	truncated := len(last) > limit
	if truncated {
		last = last[:limit]
	}
	out := make([]Absence, len(last))
	for i, l := range last {
		out[i] = Absence{LastSeen: l, Days: int(now.Sub(l.Time) / (24 * time.Hour))}
	}
	return out, truncated, nil
}

// Online sources.
const (
	SourceTicket = "ticket"
	SourceLogins = "logins"
	// SourceTicketAndLogins: this centre's live SSO sessions and, for the
	// level-2 centres whose logs it receives, their recent logins.
	SourceTicketAndLogins = "ticket+logins"
)

// Defaults of OnlineFromLogins.
const (
	DefaultOnlineLimit = 1000
	MaxOnlineWindow    = 24 * time.Hour
)

// OnlineFromLogins lists the people with a successful login or SSO
// session start within window before now and no logout or session end
// after it, latest first (the audit log's view when the ticket
// component's sessions cannot be asked). A login whose session expired
// unused within the window still counts.
func (a *Analytics) OnlineFromLogins(ctx context.Context, scope audit.Scope, window time.Duration, limit int) ([]LastSeen, bool, error) {
	if len(a.peerOrigins) == 0 {
		return a.onlineFromLogins(ctx, scope, window, limit, "")
	}
	// this centre's own logins, then each peer's of its own people only
	// (sec28b M1)
	people, more, err := a.onlineFromLogins(ctx, scope, window, limit, a.localOrigin)
	if err != nil {
		return nil, false, err
	}
	on := Online{People: people, Truncated: more}
	if err := a.addPeerLogins(ctx, scope, window, limit, &on); err != nil {
		return nil, false, err
	}
	return on.People, on.Truncated, nil
}

// onlineFromLogins is OnlineFromLogins over the log origin ("": every log
// held).
func (a *Analytics) onlineFromLogins(ctx context.Context, scope audit.Scope, window time.Duration, limit int, origin string) ([]LastSeen, bool, error) {
	if window <= 0 || window > MaxOnlineWindow {
		return nil, false, badRequest("the online window must be between 1 minute and 24 hours")
	}
	from := a.now().Add(-window)
	f, err := scoped(scope, Filter{APIs: append([]string{APISessionCreate}, LoginAPIs...), Results: []string{ResultSuccess}, From: from,
		Origin: origin})
	if err != nil {
		return nil, false, err
	}
	if limit, err = limitOf(limit, DefaultOnlineLimit); err != nil {
		return nil, false, err
	}
	// every person who logged in within the window (their number is
	// bounded by the logins of one window), then those who left since
	in, err := a.st.LatestPerSubject(ctx, f, time.Time{}, MaxLimit*10)
	if err != nil {
		return nil, false, err
	}
	f.APIs, f.Results = []string{APISessionEnd, APIAdminLogout}, nil
	out, err := a.st.LatestPerSubject(ctx, f, time.Time{}, MaxLimit*10)
	if err != nil {
		return nil, false, err
	}
	left := make(map[string]time.Time, len(out))
	for _, o := range out {
		left[o.Subject] = o.Time
	}
	var online []LastSeen
	for _, l := range in {
		if UserID(l.Subject) == "" {
			continue
		}
		if t, ok := left[l.Subject]; ok && !t.Before(l.Time) {
			continue
		}
		online = append(online, l)
	}
	if len(online) > limit {
		return online[:limit], true, nil
	}
	return online, len(in) > MaxLimit*10, nil
}

// mayRead refuses a person outside scope's subtrees (PersonScope), when
// the source of people can tell.
func (a *Analytics) mayRead(ctx context.Context, scope audit.Scope, userID string) error {
	if ps, ok := a.people.(PersonScope); ok && !scope.All {
		return ps.MayRead(ctx, userID, scope.Orgs)
	}
	return nil
}
